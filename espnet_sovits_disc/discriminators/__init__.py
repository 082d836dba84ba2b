"""The SoVITS-family discriminators: building blocks and ESPnet-facing wrappers."""

from espnet_sovits_disc.discriminators.multi import (
    MultiDiscriminator,
    SoVITSMultiPeriodDiscriminator,
    SoVITSMultiResolutionDiscriminator,
    SoVITSSVCDiscriminator,
)
from espnet_sovits_disc.discriminators.period import PeriodDiscriminator
from espnet_sovits_disc.discriminators.resolution import ResolutionDiscriminator
from espnet_sovits_disc.discriminators.scale import ScaleDiscriminator

__all__ = [
    "MultiDiscriminator",
    "PeriodDiscriminator",
    "ResolutionDiscriminator",
    "ScaleDiscriminator",
    "SoVITSMultiPeriodDiscriminator",
    "SoVITSMultiResolutionDiscriminator",
    "SoVITSSVCDiscriminator",
]
