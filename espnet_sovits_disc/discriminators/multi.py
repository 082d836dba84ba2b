"""Multi-discriminators: thin wrappers that run sub-discriminators side by side.

All three take a waveform (B, 1, T) and return ESPnet's discriminator format,
``List[List[Tensor]]``: one inner list per sub-discriminator, in the
reference order, each ``[fmap_0, ..., fmap_{N-1}, score]``.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch.utils.checkpoint import checkpoint
from typeguard import typechecked

from espnet_sovits_disc.discriminators.base import SubDiscriminator
from espnet_sovits_disc.discriminators.inputs import check_pair, check_waveform
from espnet_sovits_disc.discriminators.period import (
    UNIVNET_PERIOD_CHANNELS,
    PeriodDiscriminator,
)
from espnet_sovits_disc.discriminators.resolution import (
    SOVITS_SVC_RESOLUTIONS,
    ResolutionDiscriminator,
)
from espnet_sovits_disc.discriminators.scale import ScaleDiscriminator

DiscriminatorOutputs = List[List[torch.Tensor]]

GPT_SOVITS_PERIODS: Dict[str, Tuple[int, ...]] = {
    "v1": (2, 3, 5, 7, 11),
    "v2": (2, 3, 5, 7, 11),
    "v2Pro": (2, 3, 5, 7, 11, 17, 23),
    "v2ProPlus": (2, 3, 5, 7, 11, 17, 23),
}
DEFAULT_PERIODS = GPT_SOVITS_PERIODS["v2"]
SOVITS_SVC_PERIODS = (2, 3, 5, 7, 11)


class CombinedDiscriminator(torch.nn.Module):
    """Runs sub-discriminators side by side on one waveform, in ESPnet's format.

    Subclasses say which ``SubDiscriminator``s, in output order
    (``sub_discriminators``). The waveform is checked once, against the
    longest minimum length of them all, and each sub-discriminator then
    scores it unchecked (``SubDiscriminator.run``).
    """

    def __init__(self, *, gradient_checkpointing: bool = False):
        """Initialize CombinedDiscriminator.

        Args:
            gradient_checkpointing (bool): Recompute each sub-discriminator's
                activations in the backward pass instead of keeping them.

        """
        super().__init__()
        self.gradient_checkpointing = gradient_checkpointing

    def sub_discriminators(self) -> List[SubDiscriminator]:
        """Return the sub-discriminators in output order."""
        raise NotImplementedError

    @property
    def sub_discriminator_names(self) -> List[str]:
        """Names of the sub-discriminators in output order, e.g. ``["s", "p2"]``."""
        return [d.name for d in self.sub_discriminators()]

    @property
    def minimum_length(self) -> int:
        """The shortest waveform (in samples) every sub-discriminator accepts."""
        return self._limiting_sub_discriminator().minimum_length

    def forward(self, x: torch.Tensor) -> DiscriminatorOutputs:
        """Calculate forward propagation.

        Args:
            x (Tensor): Waveform tensor (B, 1, T).

        Returns:
            List[List[Tensor]]: Per sub-discriminator, its feature maps and
                then its score (B, N_k).

        """
        check_waveform(x, owner=type(self).__name__)
        self._check_length(x)
        return [self._run(sub, x) for sub in self.sub_discriminators()]

    def forward_pair(
        self, real: torch.Tensor, fake: torch.Tensor
    ) -> Tuple[DiscriminatorOutputs, DiscriminatorOutputs]:
        """Score real and generated waveforms, batched where that is faster.

        Every convolution acts on each batch item separately, so this equals
        ``(self(real), self(fake))``. Sub-discriminators that run faster on
        a larger batch score both in one pass over the concatenated batch,
        which also normalizes each weight once: all of them on a GPU; on the
        CPU those whose ``batch_pairs_on_cpu`` is true (scale and period; the
        resolution discriminators were slower batched, benchmarks/README.md).

        Args:
            real (Tensor): Real waveform (B, 1, T).
            fake (Tensor): Generated waveform (B, 1, T).

        Returns:
            Tuple[List[List[Tensor]], List[List[Tensor]]]: The outputs for
                ``real`` and for ``fake``, each in the format of ``forward``.

        """
        check_pair(real, fake, owner=type(self).__name__)
        dtype = torch.promote_types(real.dtype, fake.dtype)
        real, fake = real.to(dtype), fake.to(dtype)
        self._check_length(real)
        batch = real.size(0)
        both = None
        outs_real, outs_fake = [], []
        for sub in self.sub_discriminators():
            if real.device.type == "cpu" and not sub.batch_pairs_on_cpu:
                outs_real.append(self._run(sub, real))
                outs_fake.append(self._run(sub, fake))
                continue
            if both is None:
                both = torch.cat([real, fake], dim=0)
            outputs = self._run(sub, both)
            outs_real.append([t[:batch] for t in outputs])
            outs_fake.append([t[batch:] for t in outputs])
        return outs_real, outs_fake

    def _limiting_sub_discriminator(self) -> SubDiscriminator:
        """The sub-discriminator that needs the longest waveform (the first
        of them on a tie)."""
        return max(self.sub_discriminators(), key=lambda d: d.minimum_length)

    def _check_length(self, x: torch.Tensor) -> None:
        """Refuse a waveform too short for the whole discriminator, naming
        its minimum and the sub-discriminator that sets it."""
        limiting = self._limiting_sub_discriminator()
        length = x.size(-1)
        if length < limiting.minimum_length:
            raise ValueError(
                f"waveform of {length} samples is too short for "
                f"{type(self).__name__}, which needs at least "
                f"{limiting.minimum_length} samples: its sub-discriminator "
                f"{limiting.name} needs them ({limiting.length_requirement}); use "
                "longer segments (e.g. a larger segment_size) or remove that "
                "sub-discriminator"
            )

    def _run(self, sub: SubDiscriminator, x: torch.Tensor) -> List[torch.Tensor]:
        """One sub-discriminator's outputs, recomputed in backward if asked."""
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(sub.run, x, use_reentrant=False)
        return sub.run(x)


class MultiDiscriminator(CombinedDiscriminator):
    """A flat list of sub-discriminators (state-dict keys ``discriminators.{i}``)."""

    @typechecked
    def __init__(
        self,
        *,
        discriminators: Sequence[SubDiscriminator],
        gradient_checkpointing: bool = False,
    ):
        """Initialize MultiDiscriminator.

        Args:
            discriminators (Sequence[SubDiscriminator]): Sub-discriminators,
                in output order.
            gradient_checkpointing (bool): Recompute each sub-discriminator's
                activations in the backward pass instead of keeping them.

        """
        super().__init__(gradient_checkpointing=gradient_checkpointing)
        if len(discriminators) == 0:
            raise ValueError("a multi-discriminator needs at least one sub-discriminator")
        self.discriminators = torch.nn.ModuleList(discriminators)

    def sub_discriminators(self) -> List[SubDiscriminator]:
        """Return the sub-discriminators in output order."""
        return list(self.discriminators)


class SoVITSMultiPeriodDiscriminator(MultiDiscriminator):
    """GPT-SoVITS ``MultiPeriodDiscriminator``: S followed by one P per period."""

    @typechecked
    def __init__(
        self,
        *,
        periods: Sequence[int] = DEFAULT_PERIODS,
        version: Optional[str] = None,
        use_spectral_norm: bool = False,
        gradient_checkpointing: bool = False,
        conv_algorithm: str = "auto",
    ):
        """Initialize SoVITSMultiPeriodDiscriminator.

        Args:
            periods (Sequence[int]): Periods of the period discriminators.
            version (Optional[str]): GPT-SoVITS version shortcut for the
                periods: "v1" and "v2" give [2, 3, 5, 7, 11], "v2Pro" and
                "v2ProPlus" add 17 and 23. Conflicting ``periods`` are refused.
            use_spectral_norm (bool): Spectral instead of weight normalization.
            gradient_checkpointing (bool): Recompute activations in backward.
            conv_algorithm (str): "auto", "direct" (the reference's
                convolutions everywhere) or "gemm"; see ``dispatch.py``.

        """
        periods = _periods_for_version(tuple(periods), version)
        discriminators = [
            ScaleDiscriminator(
                use_spectral_norm=use_spectral_norm, conv_algorithm=conv_algorithm
            )
        ]
        discriminators += [
            PeriodDiscriminator(
                period=p,
                use_spectral_norm=use_spectral_norm,
                conv_algorithm=conv_algorithm,
            )
            for p in periods
        ]
        super().__init__(
            discriminators=discriminators,
            gradient_checkpointing=gradient_checkpointing,
        )
        self.periods = periods


class SoVITSMultiResolutionDiscriminator(MultiDiscriminator):
    """so-vits-svc-5.0 ``MultiResolutionDiscriminator``: one R per resolution."""

    @typechecked
    def __init__(
        self,
        *,
        resolutions: Sequence[Sequence[int]] = SOVITS_SVC_RESOLUTIONS,
        lrelu_slope: float = 0.2,
        window: str = "rectangular",
        use_spectral_norm: bool = False,
        gradient_checkpointing: bool = False,
    ):
        """Initialize SoVITSMultiResolutionDiscriminator.

        Args:
            resolutions (Sequence[Sequence[int]]): (n_fft, hop_length,
                win_length) of each resolution discriminator.
            lrelu_slope (float): Negative slope of the leaky ReLUs.
            window (str): "rectangular" (the reference) or "hann" (a departure).
            use_spectral_norm (bool): Spectral instead of weight normalization.
            gradient_checkpointing (bool): Recompute activations in backward.

        """
        discriminators = []
        for resolution in resolutions:
            if len(resolution) != 3:
                raise ValueError(
                    "each resolution is [n_fft, hop_length, win_length], got "
                    f"{list(resolution)}"
                )
            n_fft, hop_length, win_length = resolution
            discriminators.append(
                ResolutionDiscriminator(
                    n_fft=n_fft,
                    hop_length=hop_length,
                    win_length=win_length,
                    window=window,
                    lrelu_slope=lrelu_slope,
                    use_spectral_norm=use_spectral_norm,
                )
            )
        super().__init__(
            discriminators=discriminators,
            gradient_checkpointing=gradient_checkpointing,
        )


class SoVITSSVCDiscriminator(CombinedDiscriminator):
    """so-vits-svc-5.0 ``Discriminator``: its three parts ``MRD`` (resolution
    discriminators), ``MPD`` (UnivNet period discriminators) and ``MSD`` (a
    scale discriminator), scored in that order; the part names are the
    reference's state-dict prefixes."""

    @typechecked
    def __init__(
        self,
        *,
        resolutions: Sequence[Sequence[int]] = SOVITS_SVC_RESOLUTIONS,
        periods: Sequence[int] = SOVITS_SVC_PERIODS,
        period_channels: Sequence[int] = UNIVNET_PERIOD_CHANNELS,
        lrelu_slope: float = 0.2,
        scale_lrelu_slope: float = 0.1,
        window: str = "rectangular",
        use_spectral_norm: bool = False,
        gradient_checkpointing: bool = False,
        conv_algorithm: str = "auto",
    ):
        """Initialize SoVITSSVCDiscriminator.

        Args:
            resolutions (Sequence[Sequence[int]]): MRD (n_fft, hop, win) triples.
            periods (Sequence[int]): MPD periods.
            period_channels (Sequence[int]): MPD conv output channels.
            lrelu_slope (float): Leaky ReLU slope of the MRD and the MPD.
            scale_lrelu_slope (float): Leaky ReLU slope of the MSD.
            window (str): MRD STFT window, "rectangular" (the reference) or "hann".
            use_spectral_norm (bool): Spectral instead of weight normalization.
            gradient_checkpointing (bool): Recompute activations in backward.
            conv_algorithm (str): "auto", "direct" (the reference's
                convolutions everywhere) or "gemm"; see ``dispatch.py``.

        """
        super().__init__(gradient_checkpointing=gradient_checkpointing)
        self.MRD = SoVITSMultiResolutionDiscriminator(
            resolutions=resolutions,
            lrelu_slope=lrelu_slope,
            window=window,
            use_spectral_norm=use_spectral_norm,
        )
        self.MPD = MultiDiscriminator(
            discriminators=[
                PeriodDiscriminator(
                    period=p,
                    channels=period_channels,
                    lrelu_slope=lrelu_slope,
                    use_spectral_norm=use_spectral_norm,
                    conv_algorithm=conv_algorithm,
                )
                for p in periods
            ]
        )
        self.MSD = ScaleDiscriminator(
            lrelu_slope=scale_lrelu_slope,
            use_spectral_norm=use_spectral_norm,
            conv_algorithm=conv_algorithm,
        )

    def sub_discriminators(self) -> List[SubDiscriminator]:
        """Return the sub-discriminators in output order: R..., P..., S."""
        return [*self.MRD.sub_discriminators(), *self.MPD.sub_discriminators(), self.MSD]


def _periods_for_version(
    periods: Tuple[int, ...], version: Optional[str]
) -> Tuple[int, ...]:
    if version is None:
        return periods
    if version not in GPT_SOVITS_PERIODS:
        raise ValueError(
            f"unknown GPT-SoVITS version {version!r}; choose one of "
            f"{sorted(GPT_SOVITS_PERIODS)} (v3 and v4 train without a "
            "discriminator)"
        )
    version_periods = GPT_SOVITS_PERIODS[version]
    if periods not in (DEFAULT_PERIODS, version_periods):
        raise ValueError(
            f"version={version!r} implies periods {list(version_periods)}, "
            f"but periods={list(periods)} was given; pass only one of them"
        )
    return version_periods
