"""Period discriminator "P": a Conv2d stack on the waveform folded by a period.

The defaults are GPT-SoVITS ``DiscriminatorP(period, kernel_size=5,
stride=3)``; ``channels=(64, 128, 256, 512, 1024)`` with ``lrelu_slope=0.2``
gives so-vits-svc-5.0's UnivNet variant.

The stack runs either as the reference does, (k, 1) convolutions on
(B, C, H, p) tensors ("direct"), or time-major as one matrix product per
layer ("gemm", see ``gemm.py``); both give the reference's numbers.
"""

from typing import List, Sequence

import torch
import torch.nn.functional as F
from typeguard import typechecked

from espnet_sovits_disc.discriminators.base import SubDiscriminator
from espnet_sovits_disc.discriminators.conv import conv_stack_outputs
from espnet_sovits_disc.discriminators.dispatch import check_conv_algorithm, uses_gemm
from espnet_sovits_disc.discriminators.gemm import time_major_conv

GPT_SOVITS_PERIOD_CHANNELS = (32, 128, 512, 1024, 1024)
UNIVNET_PERIOD_CHANNELS = (64, 128, 256, 512, 1024)


class PeriodDiscriminator(SubDiscriminator):
    """Period discriminator (GPT-SoVITS ``DiscriminatorP`` by default).

    Its large matrix products and convolutions gain from scoring real and
    fake in one batch (benchmarks/README.md), so it batches pairs on the CPU.
    """

    @typechecked
    def __init__(
        self,
        *,
        period: int,
        channels: Sequence[int] = GPT_SOVITS_PERIOD_CHANNELS,
        kernel_size: int = 5,
        stride: int = 3,
        lrelu_slope: float = 0.1,
        use_spectral_norm: bool = False,
        conv_algorithm: str = "auto",
    ):
        """Initialize PeriodDiscriminator.

        Args:
            period (int): The period p; the waveform is viewed as (T / p, p).
            channels (Sequence[int]): Output channels of each conv; all but the
                last use stride (stride, 1), the last (1, 1).
            kernel_size (int): Kernel height; kernels are (kernel_size, 1).
            stride (int): Stride along the folded time axis.
            lrelu_slope (float): Negative slope of the leaky ReLUs.
            use_spectral_norm (bool): Spectral instead of weight normalization.
            conv_algorithm (str): How the convolutions run: "direct" as
                (k, 1) convolutions on (B, C, H, p), "gemm" as matrix products
                on time-major (B * p, H, C) activations (weight normalization
                only), "auto" gemm for CPU tensors on AVX2 CPUs and on
                AVX-512 CPUs with oneDNN's matrix product, direct otherwise
                (CUDA, spectral norm). The same numbers up to float32 rounding.

        """
        check_conv_algorithm(conv_algorithm)
        if conv_algorithm == "gemm" and use_spectral_norm:
            raise ValueError(
                "conv_algorithm='gemm' needs weight-normalized convolutions; "
                "with use_spectral_norm=True use conv_algorithm='direct' or 'auto'"
            )
        if period < 1:
            raise ValueError(f"period must be a positive integer, got {period}")
        if len(channels) == 0:
            raise ValueError("channels must name at least one conv layer")
        super().__init__(
            name=f"p{period}",
            owner=f"PeriodDiscriminator(period={period})",
            # Reflect padding by p - T % p needs that many samples plus one.
            minimum_length=period // 2 + 1,
            length_requirement=f"reflect padding to a multiple of the period {period}",
            batch_pairs_on_cpu=True,
            lrelu_slope=lrelu_slope,
        )
        self.period = period
        self.use_spectral_norm = use_spectral_norm
        self.conv_algorithm = conv_algorithm
        in_channels = [1] + list(channels[:-1])
        strides = [stride] * (len(channels) - 1) + [1]
        kernel, padding = (kernel_size, 1), (kernel_size // 2, 0)
        self.build_conv_stack(
            dims=2,
            layers=[
                (in_ch, out_ch, kernel, (layer_stride, 1), 1, padding)
                for in_ch, out_ch, layer_stride in zip(in_channels, channels, strides)
            ],
            post=(channels[-1], 1, (3, 1), (1, 1), 1, (1, 0)),
            use_spectral_norm=use_spectral_norm,
        )

    def conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """The waveform in the module's dtype, reflect-padded at the end to a
        multiple of the period and folded: (B, 1, ceil(T / p), p)."""
        x = x.to(self.dtype)
        remainder = x.size(-1) % self.period
        if remainder:
            x = F.pad(x, (0, self.period - remainder), "reflect")
        return x.view(x.size(0), x.size(1), -1, self.period)

    def run(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Score a checked waveform (B, 1, T).

        Returns:
            List[Tensor]: One feature map (B, C_l, H_l, p) per conv, the output
                of the conv after its leaky ReLU, then the score (B, H * p),
                where T is first reflect-padded to a multiple of p.

        """
        x = self.conv_input(x)
        if self._uses_gemm(x):
            return self._forward_time_major(x)
        return conv_stack_outputs(self.convs, self.conv_post, x, self.lrelu_slope)

    def _uses_gemm(self, x: torch.Tensor) -> bool:
        return uses_gemm(self.conv_algorithm, self.use_spectral_norm, x.device)

    def _forward_time_major(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The conv stack on the B * p folded columns, time-major (B * p, H, C).

        Takes the folded waveform (B, 1, H, p). The feature maps are returned
        as (B, C_l, H_l, p) views of the time-major activations (not
        contiguous), the score as (B, H * p).
        """
        batch, period = x.size(0), self.period
        columns = x.view(batch, -1, period).transpose(1, 2)
        h = columns.reshape(batch * period, -1, 1)
        feature_maps = []
        for conv in self.convs:
            h = F.leaky_relu(self._time_major_conv(conv, h), self.lrelu_slope)
            feature_maps.append(
                h.view(batch, period, h.size(1), h.size(2)).permute(0, 3, 2, 1)
            )
        score = self._time_major_conv(self.conv_post, h).view(batch, period, -1)
        return feature_maps + [score.transpose(1, 2).reshape(batch, -1)]

    @staticmethod
    def _time_major_conv(conv: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
        return time_major_conv(
            h, conv.normalized_weight(), conv.bias, conv.stride[0], conv.padding[0]
        )
