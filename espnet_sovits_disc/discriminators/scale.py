"""Scale discriminator "S": a grouped Conv1d stack on the raw waveform.

This is GPT-SoVITS ``DiscriminatorS``, which is also so-vits-svc-5.0's MSD.
"""

import torch
from typeguard import typechecked

from espnet_sovits_disc.discriminators.base import SubDiscriminator

# (in_channels, out_channels, kernel_size, stride, groups, padding) per conv.
SCALE_LAYERS = (
    (1, 16, 15, 1, 1, 7),
    (16, 64, 41, 4, 4, 20),
    (64, 256, 41, 4, 16, 20),
    (256, 1024, 41, 4, 64, 20),
    (1024, 1024, 41, 4, 256, 20),
    (1024, 1024, 5, 1, 1, 2),
)
SCALE_POST = (1024, 1, 3, 1, 1, 1)


class ScaleDiscriminator(SubDiscriminator):
    """Scale discriminator on the raw waveform (GPT-SoVITS ``DiscriminatorS``)."""

    @typechecked
    def __init__(
        self,
        *,
        lrelu_slope: float = 0.1,
        use_spectral_norm: bool = False,
        conv_algorithm: str = "auto",
    ):
        """Initialize ScaleDiscriminator.

        Args:
            lrelu_slope (float): Negative slope of the leaky ReLUs.
            use_spectral_norm (bool): Spectral instead of weight normalization.
            conv_algorithm (str): "direct" runs the reference's grouped
                convolutions; "auto" and "gemm" run the wide grouped layers
                in polyphase form on the CPU (``dispatch.uses_polyphase``).

        """
        super().__init__(
            name="s",
            owner="ScaleDiscriminator",
            minimum_length=1,
            length_requirement="at least one sample",
            batch_pairs_on_cpu=True,
            lrelu_slope=lrelu_slope,
        )
        self.build_conv_stack(
            dims=1,
            layers=SCALE_LAYERS,
            post=SCALE_POST,
            use_spectral_norm=use_spectral_norm,
            conv_algorithm=conv_algorithm,
        )

    def conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """The waveform (B, 1, T) in the module's dtype.

        The outputs of ``forward`` are six feature maps (B, C_l, T_l), then
        the score (B, ceil(T / 256)).
        """
        return x.to(self.dtype)
