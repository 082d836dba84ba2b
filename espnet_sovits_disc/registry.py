"""Registration of the plugin's discriminators, generator and model into ESPnet 202511.

ESPnet has no plugin mechanism: its GAN models look discriminators up by name
in module-level ``AVAILABLE_DISCRIMINATORS`` dicts (and VITS its generators in
``AVAILABLE_GENERATERS``), and its tasks look models up in ``tts_choices``. ``register()`` adds our names to all of them; it is
idempotent and runs whenever the package's task or entry-point modules are
imported (so processes spawned by ESPnet's multi-GPU launcher register too).
"""

import importlib
from typing import Dict, List, Type

import torch

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

# Modules of ESPnet 202511 holding an ``AVAILABLE_DISCRIMINATORS`` dict.
DISCRIMINATOR_TABLES = (
    "espnet2.gan_tts.vits.vits",
    "espnet2.gan_tts.jets.jets",
    "espnet2.gan_tts.joint.joint_text2wav",
    "espnet2.gan_svs.vits.vits",
    "espnet2.gan_svs.joint.joint_score2wav",
)

# The VITS generator table (ESPnet's spelling) and the plugin's entry in it.
GENERATOR_TABLE = "espnet2.gan_tts.vits.vits"
GENERATOR_NAME = "sovits_vits_generator"

# ``ClassChoices`` of ESPnet 202511 that list the TTS models: training
# (``gan_tts``) and inference / ``build_model_from_file`` (``tts``).
MODEL_TABLES = (
    "espnet2.tasks.gan_tts",
    "espnet2.tasks.tts",
)


def discriminator_tables() -> List[dict]:
    """Return every ``AVAILABLE_DISCRIMINATORS`` dict of the installed ESPnet."""
    return [
        importlib.import_module(module).AVAILABLE_DISCRIMINATORS
        for module in DISCRIMINATOR_TABLES
    ]


def get_discriminator_class(name: str) -> Type[torch.nn.Module]:
    """Look up a discriminator class by its registry name.

    Args:
        name (str): A name such as ``sovits_mpd``, or one of ESPnet's own.

    Returns:
        Type[Module]: The discriminator class.

    Raises:
        ValueError: If the name is unknown; the message lists the known names.

    """
    register()
    table = discriminator_tables()[0]
    if name not in table:
        raise ValueError(
            f"unknown discriminator_type {name!r}; available: {sorted(table)}"
        )
    return table[name]


def model_tables() -> List[dict]:
    """Return the model dicts of ESPnet's GAN-TTS and TTS ``tts_choices``."""
    return [
        importlib.import_module(module).tts_choices.classes for module in MODEL_TABLES
    ]


def register() -> None:
    """Add the plugin's discriminators to every ESPnet discriminator table,
    ``sovits_vits_generator`` to VITS's generators and ``tts: sovits`` to both
    task choices (idempotent)."""
    for table in discriminator_tables():
        for name, cls in DISCRIMINATORS.items():
            table.setdefault(name, cls)
    from espnet_sovits_disc.generator import SoVITSGenerator

    generators = importlib.import_module(GENERATOR_TABLE).AVAILABLE_GENERATERS
    generators.setdefault(GENERATOR_NAME, SoVITSGenerator)
    from espnet_sovits_disc.model import SoVITS

    for table in model_tables():
        table.setdefault("sovits", SoVITS)
