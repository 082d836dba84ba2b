"""Scale discriminator "S": a grouped Conv1d stack on the raw waveform.

This is GPT-SoVITS ``DiscriminatorS``, which is also so-vits-svc-5.0's MSD.
"""

from typing import List

import torch
from typeguard import typechecked

from espnet_sovits_disc.discriminators.conv import (
    conv_stack_outputs,
    normalized_conv,
)
from espnet_sovits_disc.discriminators.inputs import check_waveform

# (in_channels, out_channels, kernel_size, stride, groups, padding) per conv.
SCALE_LAYERS = (
    (1, 16, 15, 1, 1, 7),
    (16, 64, 41, 4, 4, 20),
    (64, 256, 41, 4, 16, 20),
    (256, 1024, 41, 4, 64, 20),
    (1024, 1024, 41, 4, 256, 20),
    (1024, 1024, 5, 1, 1, 2),
)


class ScaleDiscriminator(torch.nn.Module):
    """Scale discriminator on the raw waveform (GPT-SoVITS ``DiscriminatorS``)."""

    name = "s"
    batch_pairs_on_cpu = True
    minimum_length = 1
    length_requirement = "at least one sample"

    @typechecked
    def __init__(self, *, lrelu_slope: float = 0.1, use_spectral_norm: bool = False):
        """Initialize ScaleDiscriminator.

        Args:
            lrelu_slope (float): Negative slope of the leaky ReLUs.
            use_spectral_norm (bool): Spectral instead of weight normalization.

        """
        super().__init__()
        self.lrelu_slope = lrelu_slope
        self.convs = torch.nn.ModuleList(
            normalized_conv(
                dims=1,
                in_channels=in_channels,
                out_channels=out_channels,
                kernel_size=kernel_size,
                stride=stride,
                groups=groups,
                padding=padding,
                use_spectral_norm=use_spectral_norm,
            )
            for in_channels, out_channels, kernel_size, stride, groups, padding in (
                SCALE_LAYERS
            )
        )
        self.conv_post = normalized_conv(
            dims=1,
            in_channels=SCALE_LAYERS[-1][1],
            out_channels=1,
            kernel_size=3,
            padding=1,
            use_spectral_norm=use_spectral_norm,
        )

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Calculate forward propagation.

        Args:
            x (Tensor): Waveform tensor (B, 1, T).

        Returns:
            List[Tensor]: Six feature maps (B, C_l, T_l), the output of each
                conv after its leaky ReLU, then the score (B, ceil(T / 256)).

        """
        check_waveform(x, owner="ScaleDiscriminator")
        x = x.to(self.conv_post.bias.dtype)
        return conv_stack_outputs(self.convs, self.conv_post, x, self.lrelu_slope)
