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
    def __init__(
        self,
        *,
        in_channels: int = 1025,
        out_channels: int = 192,
        hidden_channels: int = 192,
        kernel_size: int = 5,
        dilation_rate: int = 1,
        n_layers: int = 16,
        gin_channels: int = 512,
    ):
        """Initialize PosteriorEncoder.

        Args:
            in_channels (int): Linear spectrogram bins (``n_fft // 2 + 1``).
            out_channels (int): Channels of ``z`` (``inter_channels``).
            hidden_channels (int): Width of the WaveNet.
            kernel_size (int): Its kernel size.
            dilation_rate (int): Its dilation rate.
            n_layers (int): Its layers.
            gin_channels (int): Channels of the global conditioning.

        """
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.pre = torch.nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WaveNet(
            hidden_channels=hidden_channels,
            kernel_size=kernel_size,
            dilation_rate=dilation_rate,
            n_layers=n_layers,
            gin_channels=gin_channels,
        )
        self.proj = torch.nn.Conv1d(hidden_channels, out_channels * 2, 1)

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
