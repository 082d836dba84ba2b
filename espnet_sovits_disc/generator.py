"""ESPnet's VITS generator with GPT-SoVITS's decoder upsampling kernels.

ESPnet's HiFi-GAN decoder only accepts upsampling kernels of twice the scale,
while GPT-SoVITS (like the original VITS) upsamples with any kernel ``k`` for
scale ``u`` as ``ConvTranspose1d(k, stride=u, padding=(k - u) // 2)``; s2.json
uses kernels [16, 16, 8, 2, 2] for scales [10, 8, 2, 2, 2]. This generator
builds ESPnet's ``VITSGenerator`` and then gives its decoder those layers,
initialized the way ESPnet initializes the decoder (normal(0, 0.01), then
weight normalization when the decoder uses it).
"""

from typing import Any, List, Sequence

import torch
from espnet2.gan_tts.vits.generator import VITSGenerator
from typeguard import typechecked

# The generator's name in VITS's ``AVAILABLE_GENERATERS`` (``generator_type``).
GENERATOR_NAME = "sovits_vits_generator"


class SoVITSGenerator(VITSGenerator):
    """``VITSGenerator`` whose decoder takes GPT-SoVITS's upsampling kernels."""

    @typechecked
    def __init__(
        self,
        *,
        decoder_upsample_scales: List[int] = [10, 8, 2, 2, 2],
        decoder_upsample_kernel_sizes: List[int] = [16, 16, 8, 2, 2],
        **generator_params: Any,
    ):
        """Initialize SoVITSGenerator.

        Args:
            decoder_upsample_scales (List[int]): Upsampling factor of each
                decoder stage; their product is the hop size (s2.json: 640).
            decoder_upsample_kernel_sizes (List[int]): Kernel size of each
                stage's transposed convolution; ``k - u`` must be even and
                non-negative so that each stage multiplies the length by ``u``.
            **generator_params (Any): Every other ``VITSGenerator`` parameter
                (``vocabs``, ``aux_channels``, ``hidden_channels``, ...).

        """
        _check_kernels(decoder_upsample_scales, decoder_upsample_kernel_sizes)
        super().__init__(
            decoder_upsample_scales=decoder_upsample_scales,
            decoder_upsample_kernel_sizes=[2 * u for u in decoder_upsample_scales],
            **generator_params,
        )
        for stage, kernel, scale in zip(
            self.decoder.upsamples,
            decoder_upsample_kernel_sizes,
            decoder_upsample_scales,
        ):
            stage[-1] = _upsampling_conv(stage[-1], kernel, scale)


def _check_kernels(scales: Sequence[int], kernels: Sequence[int]) -> None:
    if len(scales) != len(kernels):
        raise ValueError(
            f"decoder_upsample_kernel_sizes {list(kernels)} needs one kernel per "
            f"decoder_upsample_scales entry {list(scales)}"
        )
    for scale, kernel in zip(scales, kernels):
        if kernel < scale or (kernel - scale) % 2:
            raise ValueError(
                f"upsampling kernel {kernel} for scale {scale}: the kernel must be "
                "at least the scale and differ from it by an even number, so the "
                "stage multiplies the length by exactly the scale"
            )


def _upsampling_conv(
    template: torch.nn.Module, kernel: int, scale: int
) -> torch.nn.ConvTranspose1d:
    use_weight_norm = hasattr(template, "weight_g") or hasattr(
        template, "parametrizations"
    )
    conv = torch.nn.ConvTranspose1d(
        template.in_channels,
        template.out_channels,
        kernel,
        scale,
        padding=(kernel - scale) // 2,
    )
    conv.weight.data.normal_(0.0, 0.01)
    if use_weight_norm:
        conv = torch.nn.utils.weight_norm(conv)
    return conv
