"""Finding the discriminator's state dict in a checkpoint and canonicalising it.

Reference layouts keep it under ``weight`` (GPT-SoVITS pretrained
discriminators), ``model`` (GPT-SoVITS ``D_<step>.pth``), ``model_d``
(so-vits-svc-5.0) or bare; ESPnet keeps it under a key prefix of the model.
The canonical form has the old weight-norm names (``weight_g``,
``weight_v``), no ``module.`` prefix left by ``DistributedDataParallel``,
the reference's sub-module names and float32 tensors.
"""

from typing import Any, Dict, Mapping, Tuple

import torch
from typeguard import typechecked

from espnet_sovits_disc.pretrained.errors import CheckpointError, check_choice

StateDict = Dict[str, torch.Tensor]


DEFAULT_PREFIX = "tts.discriminator."
"""Where ESPnet's GAN-TTS models (``ESPnetGANTTSModel.tts``) keep the discriminator."""


IMPORT_FORMATS = {
    "auto": ("weight", "model", "model_d", None),
    "gpt_sovits": ("weight", "model", None),
    "sovits_svc": ("model_d",),
}
"""Import format -> entries searched for the state dict, in order (None: bare)."""


_NEW_WEIGHT_NORM_NAMES = {
    ".parametrizations.weight.original0": ".weight_g",
    ".parametrizations.weight.original1": ".weight_v",
}


_DDP_PREFIX = "module."


_PREFIX_ALIASES = {"sovits_svc": (("DIS.", "MSD."),)}
"""Other names of a sub-module in reference checkpoints, per discriminator type.

so-vits-svc-5.0 (``vits_decoder/discriminator.py``) calls its scale
discriminator ``MSD``; later versions of the same project, renamed
whisper-vits-svc, call the identical module ``DIS``.
"""


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
        )
    )


@typechecked
def find_state_dict(checkpoint: Any, *, format: str = "auto") -> Tuple[StateDict, str]:
    """Find the discriminator state dict inside a loaded checkpoint.

    Args:
        checkpoint (Any): What :func:`read_checkpoint` returned.
        format (str): ``"auto"`` searches ``weight``, ``model``, ``model_d``
            and then a bare state dict; ``"gpt_sovits"`` searches ``weight``,
            ``model``, bare; ``"sovits_svc"`` only ``model_d``.

    Returns:
        Tuple[Dict[str, Tensor], str]: The state dict and where it was found
            (the entry name or ``"top level"``).

    Raises:
        CheckpointError: If no state dict is where the format puts it.

    """
    check_choice("checkpoint format", format, IMPORT_FORMATS)
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f"the checkpoint holds a {type(checkpoint).__name__}, not a dict; "
            "expected a state dict or a dict with one under 'weight', 'model' or "
            "'model_d'"
        )
    for entry in IMPORT_FORMATS[format]:
        if entry is None:
            if _is_state_dict(checkpoint):
                return dict(checkpoint), "top level"
        elif _is_state_dict(checkpoint.get(entry)):
            return dict(checkpoint[entry]), entry
    searched = ", ".join(
        "a bare state dict" if e is None else repr(e) for e in IMPORT_FORMATS[format]
    )
    entries = ", ".join(repr(k) for k in list(checkpoint)[:8])
    raise CheckpointError(
        f"no state dict found (format {format!r} searched {searched}); the "
        f"checkpoint's top-level entries are: {entries or 'none'}. GPT-SoVITS "
        "pretrained discriminators hold {'weight': state_dict}, its D_<step>.pth "
        "training checkpoints {'model': state_dict, ...}, so-vits-svc-5.0 training "
        "checkpoints {'model_d': state_dict, ...}"
    )


@typechecked
def find_espnet_discriminator(
    checkpoint: Any, *, prefix: str = DEFAULT_PREFIX
) -> Tuple[StateDict, str]:
    """Take the discriminator's tensors out of a loaded ESPnet checkpoint.

    Args:
        checkpoint (Any): An ESPnet model file (a state dict) or training
            ``checkpoint.pth`` (``{"model": state_dict, "optimizers", ...}``).
        prefix (str): Key prefix of the discriminator in the model.

    Returns:
        Tuple[Dict[str, Tensor], str]: The discriminator's state dict with the
            prefix removed, and where the model state dict was found.

    Raises:
        CheckpointError: If there is no model state dict or nothing under prefix.

    """
    return find_espnet_submodule(checkpoint, prefix, "discriminator")


def find_espnet_submodule(
    checkpoint: Any, prefix: str, what: str
) -> Tuple[StateDict, str]:
    """Take the tensors under ``prefix`` out of a loaded ESPnet checkpoint.

    Args:
        checkpoint (Any): An ESPnet model file or training ``checkpoint.pth``.
        prefix (str): Key prefix of the submodule, e.g. ``tts.generator.``.
        what (str): Its name for error messages, e.g. ``"generator"``.

    Returns:
        Tuple[Dict[str, Tensor], str]: Its state dict with the prefix
            removed, and where the model state dict was found.

    Raises:
        CheckpointError: If there is no model state dict or nothing under prefix.

    """
    prefix = normalize_prefix(prefix)
    if _is_state_dict(checkpoint):
        model, entry = checkpoint, "top level"
    elif isinstance(checkpoint, Mapping) and _is_state_dict(checkpoint.get("model")):
        model, entry = checkpoint["model"], "model"
    else:
        raise CheckpointError(
            "not an ESPnet checkpoint: expected a model file (a state dict) or a "
            "training checkpoint.pth with a 'model' state dict"
        )
    found = {k[len(prefix) :]: v for k, v in model.items() if k.startswith(prefix)}
    if not found:
        heads = sorted({".".join(k.split(".")[:2]) + "." for k in model})
        raise CheckpointError(
            f"no tensors under prefix {prefix!r}; the checkpoint's keys start with "
            f"{', '.join(heads[:8])}; pass the {what}'s prefix"
        )
    return found, entry


@typechecked
def canonicalize(state_dict: Mapping[str, torch.Tensor]) -> Tuple[StateDict, int, int]:
    """Bring a reference state dict to old weight-norm names and float32.

    Removes a ``module.`` prefix carried by every key, renames
    ``parametrizations.weight.original0/1`` to ``weight_g/weight_v``, upcasts
    float16/bfloat16 (exactly) and casts other floating types to float32.

    Args:
        state_dict (Mapping[str, Tensor]): The state dict as stored.

    Returns:
        Tuple[Dict[str, Tensor], int, int]: The canonical state dict, the
            number of tensors upcast from 16 bits and the number renamed.

    Raises:
        CheckpointError: On a non-floating tensor or a name clash after renaming.

    """
    strip = len(state_dict) > 0 and all(k.startswith(_DDP_PREFIX) for k in state_dict)
    result: StateDict = {}
    upcast = renamed = 0
    for key, tensor in state_dict.items():
        name = key[len(_DDP_PREFIX) :] if strip else key
        for new, old in _NEW_WEIGHT_NORM_NAMES.items():
            if name.endswith(new):
                name = name[: -len(new)] + old
                renamed += 1
        if name in result:
            raise CheckpointError(
                f"the checkpoint holds {name!r} twice (under old and new "
                "weight-norm names); keep one of them"
            )
        if not tensor.is_floating_point():
            raise CheckpointError(
                f"tensor {key!r} has dtype {tensor.dtype}; discriminator weights "
                "must be floating point"
            )
        if tensor.dtype in (torch.float16, torch.bfloat16):
            upcast += 1
        result[name] = tensor.detach().to(torch.float32)
    return result, upcast, renamed


def rename_prefix_aliases(
    state_dict: StateDict, discriminator_type: str
) -> Tuple[StateDict, int]:
    renamed = 0
    for alias, name in _PREFIX_ALIASES.get(discriminator_type, ()):
        if any(k.startswith(name) for k in state_dict):
            continue
        result = {}
        for key, tensor in state_dict.items():
            if key.startswith(alias):
                key = name + key[len(alias) :]
                renamed += 1
            result[key] = tensor
        state_dict = result
    return state_dict, renamed


def normalize_prefix(prefix: str) -> str:
    return prefix if prefix == "" or prefix.endswith(".") else prefix + "."
