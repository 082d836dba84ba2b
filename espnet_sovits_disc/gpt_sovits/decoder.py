"""``dec``: the reference's HiFi-GAN generator (``Generator`` with ``ResBlock1``).

A 7-tap convolution of the latent plus a 1x1 projection of ``ge``, then per
stage a leaky ReLU (slope 0.1), a weight-normalized transposed convolution
(kernel ``k``, stride ``u``, padding ``(k - u) // 2``) and the mean of three
residual blocks; then a leaky ReLU with PyTorch's default slope 0.01 (the
reference's constant), a 7-tap convolution without bias and ``tanh``.
"""

from typing import List, Optional

import torch
import torch.nn.functional as F
from typeguard import typechecked

from espnet_sovits_disc.discriminators.conv import (
    WeightNormConv,
    WeightNormConvTranspose1d,
)
from espnet_sovits_disc.gpt_sovits.config import SynthesizerConfig

LEAKY_RELU_SLOPE = 0.1


def _same_length_conv(channels: int, kernel_size: int, dilation: int) -> WeightNormConv:
    return WeightNormConv(
        dims=1,
        in_channels=channels,
        out_channels=channels,
        kernel_size=kernel_size,
        dilation=dilation,
        padding=(kernel_size * dilation - dilation) // 2,
    )


class ResidualBlock(torch.nn.Module):
    """Three pairs of (dilated, plain) convolutions, each pair a residual step."""

    def __init__(self, channels: int, kernel_size: int, dilations: List[int]):
        """Initialize ResidualBlock.

        Args:
            channels (int): Channels in and out.
            kernel_size (int): Kernel size of every convolution.
            dilations (List[int]): Dilation of each pair's first convolution.

        """
        super().__init__()
        self.convs1 = torch.nn.ModuleList(
            _same_length_conv(channels, kernel_size, d) for d in dilations
        )
        self.convs2 = torch.nn.ModuleList(
            _same_length_conv(channels, kernel_size, 1) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` (B, channels, T)."""
        for first, second in zip(self.convs1, self.convs2):
            step = first(F.leaky_relu(x, LEAKY_RELU_SLOPE))
            x = second(F.leaky_relu(step, LEAKY_RELU_SLOPE)) + x
        return x


class Decoder(torch.nn.Module):
    """Latent frames to a waveform: ``prod(upsample_rates)`` samples per frame."""

    @typechecked
    def __init__(self, config: SynthesizerConfig):
        """Initialize Decoder.

        Args:
            config (SynthesizerConfig): Uses ``inter_channels`` (the latent),
                ``upsample_initial_channel`` (halved by every stage),
                ``upsample_rates``, ``upsample_kernel_sizes`` (``k - u`` even),
                ``resblock_kernel_sizes``, ``resblock_dilation_sizes`` and
                ``gin_channels`` (0: no conditioning).

        """
        super().__init__()
        upsample_rates, upsample_kernel_sizes = (
            config.upsample_rates,
            config.upsample_kernel_sizes,
        )
        resblock_kernel_sizes = config.resblock_kernel_sizes
        resblock_dilation_sizes = config.resblock_dilation_sizes
        upsample_initial_channel = config.upsample_initial_channel
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError(
                f"{len(upsample_rates)} upsample_rates but "
                f"{len(upsample_kernel_sizes)} upsample_kernel_sizes; give one per stage"
            )
        odd = [
            (u, k) for u, k in zip(upsample_rates, upsample_kernel_sizes) if (k - u) % 2
        ]
        if odd:
            raise ValueError(
                f"upsampling (rate, kernel) {odd} have an odd k - u: the stage "
                "would not multiply the length by its rate"
            )
        if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
            raise ValueError(
                "give one resblock_dilation_sizes entry per resblock kernel size"
            )
        self.conv_pre = torch.nn.Conv1d(
            config.inter_channels, upsample_initial_channel, 7, 1, padding=3
        )
        self.ups = torch.nn.ModuleList()
        self.resblocks = torch.nn.ModuleList()
        channels = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes):
            self.ups.append(
                WeightNormConvTranspose1d(
                    in_channels=channels,
                    out_channels=channels // 2,
                    kernel_size=kernel,
                    stride=rate,
                    padding=(kernel - rate) // 2,
                )
            )
            channels //= 2
            for size, dilations in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(ResidualBlock(channels, size, dilations))
        self.conv_post = torch.nn.Conv1d(channels, 1, 7, 1, padding=3, bias=False)
        self.blocks_per_stage = len(resblock_kernel_sizes)
        if config.gin_channels:
            self.cond = torch.nn.Conv1d(
                config.gin_channels, upsample_initial_channel, 1
            )

    def forward(
        self, z: torch.Tensor, g: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Generate a waveform.

        Args:
            z (Tensor): Latent (B, in_channels, T).
            g (Optional[Tensor]): Global conditioning (B, gin_channels, 1).

        Returns:
            Tensor: Waveform in (-1, 1) (B, 1, T * prod(upsample_rates)).

        """
        x = self.conv_pre(z)
        if g is not None:
            x = x + self.cond(g)
        for stage, upsample in enumerate(self.ups):
            x = upsample(F.leaky_relu(x, LEAKY_RELU_SLOPE))
            blocks = self.resblocks[
                stage * self.blocks_per_stage : (stage + 1) * self.blocks_per_stage
            ]
            total = blocks[0](x)
            for block in blocks[1:]:
                total = total + block(x)
            x = total / self.blocks_per_stage
        return torch.tanh(self.conv_post(F.leaky_relu(x)))
