"""Registration of the plugin's discriminators, generator and model in ESPnet.

ESPnet has no plugin mechanism: its GAN models look discriminators up by name
in module-level ``AVAILABLE_DISCRIMINATORS`` dicts (and VITS its generators in
``AVAILABLE_GENERATERS``), and its tasks look models up in ``tts_choices``.
:func:`register` adds our names to all of them and is the only code that
changes ESPnet's tables; it is idempotent and runs when the plugin's task or
entry-point modules are imported (so processes spawned by ESPnet's multi-GPU
launcher register too).
"""

import importlib
from typing import List

from espnet_sovits_disc.generator import GENERATOR_NAME, SoVITSGenerator
from espnet_sovits_disc.gpt_sovits.gan_tts import GPTSoVITS
from espnet_sovits_disc.model import SoVITS
from espnet_sovits_disc.registry import DISCRIMINATORS

# Modules of ESPnet holding an ``AVAILABLE_DISCRIMINATORS`` dict.
DISCRIMINATOR_TABLES = (
    "espnet2.gan_tts.vits.vits",
    "espnet2.gan_tts.jets.jets",
    "espnet2.gan_tts.joint.joint_text2wav",
    "espnet2.gan_svs.vits.vits",
    "espnet2.gan_svs.joint.joint_score2wav",
)

# The module holding VITS's generator table (``AVAILABLE_GENERATERS``).
GENERATOR_TABLE = "espnet2.gan_tts.vits.vits"

# ``ClassChoices`` of ESPnet that list the TTS models: training
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


def model_tables() -> List[dict]:
    """Return the model dicts of ESPnet's GAN-TTS and TTS ``tts_choices``."""
    return [
        importlib.import_module(module).tts_choices.classes for module in MODEL_TABLES
    ]


def register() -> None:
    """Add the plugin's discriminators to every ESPnet discriminator table,
    ``sovits_vits_generator`` to VITS's generators and ``tts: sovits`` and
    ``tts: gpt_sovits`` to both task choices (idempotent)."""
    for table in discriminator_tables():
        for name, cls in DISCRIMINATORS.items():
            table.setdefault(name, cls)
    generators = importlib.import_module(GENERATOR_TABLE).AVAILABLE_GENERATERS
    generators.setdefault(GENERATOR_NAME, SoVITSGenerator)
    for table in model_tables():
        table.setdefault("sovits", SoVITS)
        table.setdefault("gpt_sovits", GPTSoVITS)
