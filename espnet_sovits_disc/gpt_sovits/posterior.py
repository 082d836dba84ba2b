"""``enc_q``: the posterior encoder of the reference (``PosteriorEncoder``).

A 1x1 convolution of the linear spectrogram, a :class:`WaveNet` conditioned
on ``ge`` (detached, as the reference does), and a 1x1 projection to the
mean and log standard deviation of ``z``, which is then sampled with one
``torch.randn_like`` draw (the first of the two random draws of the
training forward).
"""

from typing import Optional, Tuple

import torch
from typeguard import typechecked

from espnet_sovits_disc.gpt_sovits.config import SynthesizerConfig
from espnet_sovits_disc.gpt_sovits.wavenet import WaveNet


def sequence_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """1 at the first ``lengths[b]`` of ``frames`` frames, else 0.

    Args:
        lengths (Tensor): Lengths (B,), int64.
        frames (int): Total frames.

    Returns:
        Tensor: Boolean mask (B, frames).

    """
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


class PosteriorEncoder(torch.nn.Module):
    """Linear spectrogram to the posterior latent ``z`` (B, out_channels, T)."""

    @typechecked
    def __init__(self, config: SynthesizerConfig):
        """Initialize PosteriorEncoder.

        Args:
            config (SynthesizerConfig): Uses ``spec_channels`` (input bins),
                ``inter_channels`` (``z``), ``hidden_channels`` and
                ``gin_channels``.

        """
        super().__init__()
        self.in_channels = config.spec_channels
        self.out_channels = config.inter_channels
        self.pre = torch.nn.Conv1d(self.in_channels, config.hidden_channels, 1)
        self.enc = WaveNet(config, n_layers=16)
        self.proj = torch.nn.Conv1d(config.hidden_channels, 2 * self.out_channels, 1)

    def forward(
        self, y: torch.Tensor, y_lengths: torch.Tensor, g: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode and sample.

        Args:
            y (Tensor): Linear spectrogram (B, in_channels, T).
            y_lengths (Tensor): Frames per item (B,).
            g (Optional[Tensor]): Global conditioning (B, gin_channels, 1).

        Returns:
            Tuple[Tensor, Tensor, Tensor, Tensor]: ``z``, its mean and log
                standard deviation (B, out_channels, T) and the mask (B, 1, T).

        Raises:
            ValueError: If ``y`` is not (B, in_channels, T).

        """
        if y.dim() != 3 or y.size(1) != self.in_channels:
            raise ValueError(
                f"spectrogram has shape {tuple(y.shape)}; expected (batch, "
                f"{self.in_channels}, frames): the linear magnitude spectrogram"
            )
        y_mask = sequence_mask(y_lengths, y.size(2))[:, None].to(y.dtype)
        if g is not None:
            g = g.detach()
        hidden = self.enc(self.pre(y) * y_mask, y_mask, g=g)
        m, logs = torch.split(self.proj(hidden) * y_mask, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * y_mask
        return z, m, logs, y_mask
