"""The plugin's discriminator names and a lookup without side effects.

Like ESPnet's own ``AVAILABLE_DISCRIMINATORS``, this is a static
name-to-class table: a model builds a discriminator as
``get_discriminator_class(name)(**params)``. Adding the names to ESPnet's
tables is :func:`espnet_sovits_disc.registration.register`'s job alone.
"""

from typing import Dict, List, Type

import torch
from espnet2.gan_tts.vits.vits import AVAILABLE_DISCRIMINATORS as ESPNET_DISCRIMINATORS

from espnet_sovits_disc.discriminators import (
    SoVITSMultiPeriodDiscriminator,
    SoVITSMultiResolutionDiscriminator,
    SoVITSSVCDiscriminator,
)

DISCRIMINATORS: Dict[str, Type[torch.nn.Module]] = {
    "sovits_mpd": SoVITSMultiPeriodDiscriminator,
    "sovits_mrd": SoVITSMultiResolutionDiscriminator,
    "sovits_svc": SoVITSSVCDiscriminator,
}


def available_discriminators() -> List[str]:
    """Return the sorted names of the plugin's and ESPnet's discriminators."""
    return sorted({*ESPNET_DISCRIMINATORS, *DISCRIMINATORS})


def get_discriminator_class(name: str) -> Type[torch.nn.Module]:
    """Look up a discriminator class by its registry name.

    Args:
        name (str): A name such as ``sovits_mpd``, or one of ESPnet's own
            (``hifigan_multi_scale_multi_period_discriminator``, ...).

    Returns:
        Type[Module]: The discriminator class.

    Raises:
        ValueError: If the name is unknown; the message lists the known names.

    """
    if name in DISCRIMINATORS:
        return DISCRIMINATORS[name]
    if name in ESPNET_DISCRIMINATORS:
        return ESPNET_DISCRIMINATORS[name]
    raise ValueError(
        f"unknown discriminator_type {name!r}; available: "
        f"{', '.join(available_discriminators())}"
    )
