"""The SoVITS-family discriminators: building blocks and ESPnet-facing wrappers.

``base.SubDiscriminator`` is the contract of the three sub-discriminators
(scale S, period P, resolution R); ``multi`` combines them into the
discriminators ESPnet looks up by name; ``dispatch`` decides which
implementation of a convolution runs where.
"""

from espnet_sovits_disc.discriminators.base import SubDiscriminator
from espnet_sovits_disc.discriminators.multi import (
    CombinedDiscriminator,
    MultiDiscriminator,
    SoVITSMultiPeriodDiscriminator,
    SoVITSMultiResolutionDiscriminator,
    SoVITSSVCDiscriminator,
)
from espnet_sovits_disc.discriminators.period import PeriodDiscriminator
from espnet_sovits_disc.discriminators.resolution import ResolutionDiscriminator
from espnet_sovits_disc.discriminators.scale import ScaleDiscriminator

__all__ = [
    "CombinedDiscriminator",
    "MultiDiscriminator",
    "PeriodDiscriminator",
    "ResolutionDiscriminator",
    "ScaleDiscriminator",
    "SoVITSMultiPeriodDiscriminator",
    "SoVITSMultiResolutionDiscriminator",
    "SoVITSSVCDiscriminator",
    "SubDiscriminator",
]
