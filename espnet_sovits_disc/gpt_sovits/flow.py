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

from espnet_sovits_disc.gpt_sovits.wavenet import WaveNet


class Flip(torch.nn.Module):
    """Reverse the order of the channels (its own inverse)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flip ``x`` (B, C, T) along the channels."""
        return torch.flip(x, [1])


class MeanOnlyCoupling(torch.nn.Module):
    """``[x0, x1] -> [x0, x1 + m(x0)]`` with ``m`` a WaveNet of ``x0``."""

    def __init__(
        self,
        *,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int,
    ):
        """Initialize MeanOnlyCoupling.

        Args:
            channels (int): Channels of the latent (even).
            hidden_channels (int): Width of the WaveNet.
            kernel_size (int): Its kernel size.
            dilation_rate (int): Its dilation rate.
            n_layers (int): Its layers.
            gin_channels (int): Channels of the global conditioning.

        """
        super().__init__()
        if channels % 2:
            raise ValueError(f"channels must be even, got {channels}")
        self.half_channels = channels // 2
        self.pre = torch.nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WaveNet(
            hidden_channels=hidden_channels,
            kernel_size=kernel_size,
            dilation_rate=dilation_rate,
            n_layers=n_layers,
            gin_channels=gin_channels,
        )
        self.post = torch.nn.Conv1d(hidden_channels, self.half_channels, 1)
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
    def __init__(
        self,
        *,
        channels: int = 192,
        hidden_channels: int = 192,
        kernel_size: int = 5,
        dilation_rate: int = 1,
        n_layers: int = 4,
        n_flows: int = 4,
        gin_channels: int = 512,
    ):
        """Initialize CouplingFlow.

        Args:
            channels (int): Channels of the latent (``inter_channels``).
            hidden_channels (int): Width of each coupling's WaveNet.
            kernel_size (int): Their kernel size.
            dilation_rate (int): Their dilation rate.
            n_layers (int): Their layers.
            n_flows (int): Number of coupling layers (each followed by a flip).
            gin_channels (int): Channels of the global conditioning.

        """
        super().__init__()
        self.flows = torch.nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(
                MeanOnlyCoupling(
                    channels=channels,
                    hidden_channels=hidden_channels,
                    kernel_size=kernel_size,
                    dilation_rate=dilation_rate,
                    n_layers=n_layers,
                    gin_channels=gin_channels,
                )
            )
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
