"""Pretrained discriminators: reference checkpoints into ESPnet and back out.

One module per job:

* :mod:`.reading`: weights-only reading; foreign pickled objects refused or,
  on request, inert.
* :mod:`.state_dict`: where the state dict is in a checkpoint, and its
  canonical form (old weight-norm names, no ``module.``, float32).
* :mod:`.coverage`: whether a state dict fills a discriminator exactly, and
  what is missing or left over, by sub-discriminator.
* :mod:`.transfer`: load, import and export, with a :class:`TransferSummary`.
* :mod:`.synthesizer`: the same for GPT-SoVITS's stage-2 generator
  (``s2G*.pth``, ``SoVITS_weights`` exports with their version header and
  pickled config, ``G_<step>.pth``), with a :class:`SynthesizerSummary`.

Checkpoint layouts read here:

* GPT-SoVITS pretrained discriminators (``s2D488k.pth``, ``s2D2333k.pth``,
  ``s2Dv2Pro.pth``, ``s2Dv2ProPlus.pth``): ``{"weight": state_dict}``.
* GPT-SoVITS training checkpoints ``D_<step>.pth``: ``{"model": state_dict,
  "iteration", "optimizer", "learning_rate"}``.
* so-vits-svc-5.0 training checkpoints ``<name>_<epoch>.pt``: ``{"model_g",
  "model_d", "optim_g", "optim_d", "step", "epoch", "hp_str"}``; the
  discriminator is ``model_d`` (keys ``MRD.``, ``MPD.``, ``MSD.``; the later
  whisper-vits-svc names ``MSD`` ``DIS``, also accepted).
* A bare state dict.

Weight-norm parameters may use the old names (``weight_g``, ``weight_v``) or
the newer ``parametrizations.weight.original0`` / ``original1``; float16 and
bfloat16 tensors are upcast to float32.
"""

from espnet_sovits_disc.pretrained.coverage import (
    KNOWN_LAYOUTS,
    build_discriminator,
    verify_coverage,
)
from espnet_sovits_disc.pretrained.errors import CheckpointError, UnsafeCheckpointError
from espnet_sovits_disc.pretrained.reading import (
    InertObject,
    plain_data,
    read_checkpoint,
    read_checkpoint_bytes,
)
from espnet_sovits_disc.pretrained.state_dict import (
    DEFAULT_PREFIX,
    IMPORT_FORMATS,
    canonicalize,
    find_espnet_discriminator,
    find_state_dict,
)
from espnet_sovits_disc.pretrained.synthesizer import (
    GENERATOR_PREFIX,
    SynthesizerSummary,
    export_synthesizer,
    import_synthesizer,
    read_synthesizer_file,
)
from espnet_sovits_disc.pretrained.transfer import (
    EXPORT_FORMATS,
    TransferSummary,
    export_discriminator,
    import_discriminator,
    load_pretrained_discriminator,
    load_reference_state_dict,
)

__all__ = [
    "DEFAULT_PREFIX",
    "GENERATOR_PREFIX",
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "KNOWN_LAYOUTS",
    "CheckpointError",
    "InertObject",
    "SynthesizerSummary",
    "TransferSummary",
    "UnsafeCheckpointError",
    "build_discriminator",
    "canonicalize",
    "export_discriminator",
    "export_synthesizer",
    "find_espnet_discriminator",
    "find_state_dict",
    "import_discriminator",
    "import_synthesizer",
    "load_pretrained_discriminator",
    "load_reference_state_dict",
    "plain_data",
    "read_checkpoint",
    "read_checkpoint_bytes",
    "read_synthesizer_file",
    "verify_coverage",
]
