"""``flow``: the reference's ResidualCouplingBlock.

Four mean-only affine coupling layers, each followed by a channel flip: the
first half of the channels passes unchanged and, through a 1x1 convolution,
a :class:`WaveNet` and a 1x1 convolution, shifts the second half. The
reference zero-initialises the last convolution (``post``), so an untrained
flow is the identity.
"""

from typing import Optional

import torch
from typeguard import typechecked

from espnet_sovits_disc.gpt_sovits.config import SynthesizerConfig
from espnet_sovits_disc.gpt_sovits.wavenet import WaveNet


class Flip(torch.nn.Module):
    """Reverse the order of the channels (its own inverse)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flip ``x`` (B, C, T) along the channels."""
        return torch.flip(x, [1])


class MeanOnlyCoupling(torch.nn.Module):
    """``[x0, x1] -> [x0, x1 + m(x0)]`` with ``m`` a WaveNet of ``x0``."""

    def __init__(self, config: SynthesizerConfig):
        """Initialize MeanOnlyCoupling.

        Args:
            config (SynthesizerConfig): Uses ``inter_channels`` (the latent,
                even), ``hidden_channels`` and ``gin_channels``.

        """
        super().__init__()
        if config.inter_channels % 2:
            raise ValueError(
                f"inter_channels must be even, got {config.inter_channels}"
            )
        self.half_channels = config.inter_channels // 2
        self.pre = torch.nn.Conv1d(self.half_channels, config.hidden_channels, 1)
        self.enc = WaveNet(config, n_layers=4)
        self.post = torch.nn.Conv1d(config.hidden_channels, self.half_channels, 1)
        with torch.no_grad():
            self.post.weight.zero_()
            self.post.bias.zero_()

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor,
        g: Optional[torch.Tensor] = None,
        reverse: bool = False,
    ) -> torch.Tensor:
        """Shift (or, reversed, unshift) the second half of the channels.

        Args:
            x (Tensor): Latent (B, channels, T).
            x_mask (Tensor): 1 at valid frames (B, 1, T).
            g (Optional[Tensor]): Global conditioning (B, gin_channels, 1).
            reverse (bool): Apply the inverse.

        Returns:
            Tensor: (B, channels, T).

        """
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        hidden = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        shift = self.post(hidden) * x_mask
        x1 = (x1 - shift) * x_mask if reverse else shift + x1 * x_mask
        return torch.cat([x0, x1], 1)


class CouplingFlow(torch.nn.Module):
    """The reference's ``ResidualCouplingBlock`` (``flow``)."""

    @typechecked
    def __init__(self, config: SynthesizerConfig, n_flows: int = 4):
        """Initialize CouplingFlow.

        Args:
            config (SynthesizerConfig): Uses ``inter_channels``,
                ``hidden_channels`` and ``gin_channels``.
            n_flows (int): Coupling layers, each followed by a flip.

        """
        super().__init__()
        self.flows = torch.nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(MeanOnlyCoupling(config))
            self.flows.append(Flip())

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor,
        g: Optional[torch.Tensor] = None,
        reverse: bool = False,
    ) -> torch.Tensor:
        """Map the posterior latent to the prior's space, or back.

        Args:
            x (Tensor): Latent (B, channels, T).
            x_mask (Tensor): 1 at valid frames (B, 1, T).
            g (Optional[Tensor]): Global conditioning (B, gin_channels, 1).
            reverse (bool): Run the inverse (prior to posterior).

        Returns:
            Tensor: (B, channels, T).

        """
        for flow in reversed(self.flows) if reverse else self.flows:
            x = (
                flow(x)
                if isinstance(flow, Flip)
                else flow(x, x_mask, g=g, reverse=reverse)
            )
        return x
