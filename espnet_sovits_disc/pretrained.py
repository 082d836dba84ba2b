"""Pretrained discriminators: reference checkpoints into ESPnet and back out.

Reading is always ``torch.load(..., weights_only=True)``: a file that holds
pickled Python objects other than tensors, containers and numbers is refused
and nothing in it runs (on request, ``inert_objects=True``, such objects are
read as inert placeholders instead, still without importing or running any
of their code). Every import and export checks coverage both ways:
each parameter of the target discriminator must come from the checkpoint, and
each checkpoint tensor must land in the discriminator with its shape;
otherwise a :class:`CheckpointError` names the missing, extra or mis-shaped
sub-discriminators (GPT-SoVITS's own ``strict=False`` loading would leave
them silently at random initialization).

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

Export writes ``{"weight": state_dict}`` (GPT-SoVITS, for ``sovits_mpd``) or
``{"model_d": state_dict}`` (so-vits-svc-5.0, for ``sovits_svc``), keys in the
reference order with the old weight-norm names.

Weight-norm parameters may use the old names (``weight_g``, ``weight_v``) or
the newer ``parametrizations.weight.original0`` / ``original1``; a
``module.`` prefix left by ``DistributedDataParallel`` is removed; float16
and bfloat16 tensors are upcast to float32.
"""

import json
import os
import pickle
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
import yaml
from typeguard import typechecked

from espnet_sovits_disc.registry import DISCRIMINATORS

PathLike = Union[str, os.PathLike]
StateDict = Dict[str, torch.Tensor]

DEFAULT_PREFIX = "tts.discriminator."
"""Where ESPnet's GAN-TTS models (``ESPnetGANTTSModel.tts``) keep the discriminator."""

EXPORT_FORMATS = {
    "gpt_sovits": ("weight", "sovits_mpd"),
    "sovits_svc": ("model_d", "sovits_svc"),
}
"""Export format -> (top-level entry of the written file, discriminator type)."""

IMPORT_FORMATS = {
    "auto": ("weight", "model", "model_d", None),
    "gpt_sovits": ("weight", "model", None),
    "sovits_svc": ("model_d",),
}
"""Import format -> entries searched for the state dict, in order (None: bare)."""

KNOWN_LAYOUTS: Tuple[Tuple[str, Dict[str, Any], str], ...] = (
    ("sovits_mpd", {"version": "v2"}, "GPT-SoVITS v1/v2, periods 2, 3, 5, 7, 11"),
    (
        "sovits_mpd",
        {"version": "v2Pro"},
        "GPT-SoVITS v2Pro/v2ProPlus, periods 2, 3, 5, 7, 11, 17, 23",
    ),
    ("sovits_mrd", {}, "so-vits-svc-5.0 multi-resolution discriminator"),
    ("sovits_svc", {}, "so-vits-svc-5.0 full discriminator"),
)
"""The published discriminator layouts, used to suggest a fitting configuration."""

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
_EXAMPLES = 3


class CheckpointError(ValueError):
    """A checkpoint or setting cannot be used; the message names problem and fix."""


@dataclass
class TransferSummary:
    """What an import or export did.

    Attributes:
        src (str): The file read.
        dst (str): The file written.
        entry (str): Where in ``src`` the state dict was found (``"weight"``,
            ``"model"``, ``"model_d"`` or ``"top level"``).
        discriminator_type (str): Registry name of the discriminator.
        sub_discriminators (List[str]): Its sub-discriminator names, in order.
        num_tensors (int): Number of tensors written.
        num_elements (int): Total number of values in them.
        upcast (int): Number of float16/bfloat16 tensors upcast to float32.
        renamed (int): Number of keys renamed to the reference names (new-API
            weight-norm names, whisper-vits-svc's ``DIS.`` for ``MSD.``).

    """

    src: str
    dst: str
    entry: str
    discriminator_type: str
    sub_discriminators: List[str]
    num_tensors: int
    num_elements: int
    upcast: int
    renamed: int

    def describe(self) -> str:
        """Return a one-line human-readable summary."""
        notes = []
        if self.upcast:
            notes.append(f"{self.upcast} float16/bfloat16 tensors upcast to float32")
        if self.renamed:
            notes.append(f"{self.renamed} keys renamed to reference names")
        suffix = f"; {', '.join(notes)}" if notes else ""
        return (
            f"wrote {self.dst}: {self.num_tensors} tensors "
            f"({self.num_elements:,} values) of {self.discriminator_type} "
            f"({', '.join(self.sub_discriminators)}) from {self.entry!r} of "
            f"{self.src}{suffix}"
        )


def _numpy_safe_globals() -> List[Any]:
    """Numeric numpy scalar types, which ESPnet's reporter stores in checkpoint.pth."""
    core = getattr(np, "_core", None) or np.core
    allowed: List[Any] = [core.multiarray.scalar, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        names = (
            "BoolDType",
            "Float16DType",
            "Float32DType",
            "Float64DType",
            "Int8DType",
            "Int16DType",
            "Int32DType",
            "Int64DType",
            "UInt8DType",
            "UInt16DType",
            "UInt32DType",
            "UInt64DType",
        )
        allowed += [getattr(dtypes, name) for name in names if hasattr(dtypes, name)]
    return allowed


class InertObject:
    """Stands in for a pickled object of any other class; runs none of its code.

    With ``inert_objects=True``, :func:`read_checkpoint` maps every class or
    function named in a checkpoint beyond tensors and containers (for example
    GPT-SoVITS's ``HParams`` config stored next to the weights) to this class,
    so the weights load while the foreign object is neither imported nor run.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        """Accept and drop whatever the pickle passes."""

    def __setstate__(self, state: Any) -> None:
        """Drop the pickled state."""


def _safe_globals_for(path: Path, inert_objects: bool) -> List[Any]:
    allowed = _numpy_safe_globals()
    if inert_objects:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception as error:
            raise CheckpointError(
                f"cannot list the objects in {str(path)!r} for inert loading "
                f"({type(error).__name__}: {error}); it must be a zip-format "
                "PyTorch checkpoint"
            ) from None
        allowed += [(InertObject, name) for name in names]
    return allowed


@typechecked
def read_checkpoint(path: PathLike, *, inert_objects: bool = False) -> Any:
    """Load a checkpoint file without running any code stored in it.

    Uses ``torch.load(path, map_location="cpu", weights_only=True)``, which
    only rebuilds tensors, containers, strings and numbers (plus numeric
    numpy scalars, which ESPnet training checkpoints contain).

    Args:
        path (Union[str, os.PathLike]): The checkpoint file.
        inert_objects (bool): Read objects of other classes as
            :class:`InertObject` placeholders instead of refusing the file.
            Still nothing from the file is imported or run.

    Returns:
        Any: The loaded object.

    Raises:
        CheckpointError: If the file is missing, holds other pickled Python
            objects (refused unexecuted, unless ``inert_objects``), or is
            truncated or not a PyTorch checkpoint.

    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not exist or is not a file"
        )
    try:
        allowed = _safe_globals_for(path, inert_objects)
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as error:
        message = str(error)
        if "GLOBAL" in message or "Can only build" in message:
            raise CheckpointError(
                f"refused to load {str(path)!r}: it holds pickled content that a "
                f"weights-only load does not allow ({_unsafe_detail(message)}), "
                "and nothing in it was run. If you trust it to be a checkpoint "
                "(e.g. weights saved next to a GPT-SoVITS HParams config), "
                "--inert_objects (inert_objects=True) reads such objects as inert "
                "placeholders, still running none of their code"
            ) from None
        raise _unreadable(path, error) from None
    except Exception as error:
        raise _unreadable(path, error) from None


def _unsafe_detail(message: str) -> str:
    for line in message.splitlines()[1:]:
        line = line.split("WeightsUnpickler error:", 1)[-1].strip()
        if line and not line.startswith(("Check the documentation", "Please file")):
            return line.rstrip(".")
    return "an object outside the allowed types"


def _unreadable(path: Path, error: BaseException) -> CheckpointError:
    text = str(error).strip()
    reason = text.splitlines()[0].split(". ")[0].rstrip(".") if text else ""
    return CheckpointError(
        f"cannot read {str(path)!r} as a PyTorch checkpoint: it is truncated, "
        f"corrupt or not a checkpoint ({type(error).__name__}"
        f"{': ' + reason if reason else ''}); "
        "download or copy it again"
    )


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
    if format not in IMPORT_FORMATS:
        raise CheckpointError(
            f"unknown checkpoint format {format!r}; choose one of "
            f"{sorted(IMPORT_FORMATS)}"
        )
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


def _rename_aliases(
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


@typechecked
def build_discriminator(
    discriminator_type: str,
    discriminator_conf: Optional[Mapping[str, Any]] = None,
    *,
    device: Union[str, torch.device, None] = None,
) -> torch.nn.Module:
    """Build one of the plugin's discriminators.

    Args:
        discriminator_type (str): ``sovits_mpd``, ``sovits_mrd`` or ``sovits_svc``.
        discriminator_conf (Optional[Mapping[str, Any]]): Constructor keyword
            arguments, e.g. ``{"version": "v2Pro"}``.
        device (Union[str, torch.device, None]): Where to build; ``"meta"``
            gives the layout (names and shapes) without allocating weights.

    Returns:
        Module: The discriminator.

    Raises:
        CheckpointError: If the type is unknown or the conf is refused.

    """
    if discriminator_type not in DISCRIMINATORS:
        raise CheckpointError(
            f"unknown discriminator_type {discriminator_type!r} for pretrained "
            f"weights; choose one of {sorted(DISCRIMINATORS)}"
        )
    conf = dict(discriminator_conf or {})
    try:
        with torch.device(device) if device is not None else nullcontext():
            return DISCRIMINATORS[discriminator_type](**conf)
    except Exception as error:
        raise CheckpointError(
            f"cannot build {discriminator_type} with discriminator_conf "
            f"{json.dumps(conf)}: {error}"
        ) from None


def _layout(discriminator: torch.nn.Module) -> Dict[str, torch.Size]:
    return {key: value.shape for key, value in discriminator.state_dict().items()}


def _sub_prefixes(discriminator: torch.nn.Module) -> Dict[str, str]:
    paths = {id(module): path for path, module in discriminator.named_modules()}
    return {paths[id(sub)]: sub.name for sub in discriminator.sub_discriminators()}


def _owner(key: str, prefixes: Mapping[str, str]) -> str:
    best = ""
    for prefix in prefixes:
        if key.startswith(prefix + ".") and len(prefix) > len(best):
            best = prefix
    if best:
        return prefixes[best]
    parts = key.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def _matching_layout(
    layout: Mapping[str, torch.Size],
) -> Optional[Tuple[str, Dict[str, Any], str, torch.nn.Module]]:
    for discriminator_type, conf, description in KNOWN_LAYOUTS:
        candidate = build_discriminator(discriminator_type, conf, device="meta")
        if _layout(candidate) == dict(layout):
            return discriminator_type, conf, description, candidate
    return None


def _group(
    keys: List[str], prefixes: Mapping[str, str], totals: Mapping[str, int]
) -> str:
    groups: Dict[str, List[str]] = {}
    for key in keys:
        groups.setdefault(_owner(key, prefixes), []).append(key)
    parts = []
    for name, members in groups.items():
        if totals.get(name) == len(members):
            parts.append(name)
        else:
            shown = ", ".join(members[:_EXAMPLES])
            more = ", ..." if len(members) > _EXAMPLES else ""
            parts.append(
                f"{name} ({len(members)} of {totals.get(name, 0)} tensors: "
                f"{shown}{more})"
            )
    return ", ".join(parts)


def _totals(keys: List[str], prefixes: Mapping[str, str]) -> Dict[str, int]:
    totals: Dict[str, int] = {}
    for key in keys:
        owner = _owner(key, prefixes)
        totals[owner] = totals.get(owner, 0) + 1
    return totals


@typechecked
def verify_coverage(
    discriminator: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    discriminator_type: str,
    source: str = "the checkpoint",
) -> None:
    """Check that a state dict fills a discriminator exactly.

    Every parameter of ``discriminator`` must be in ``state_dict`` with its
    shape, and every tensor of ``state_dict`` must be a parameter of it.

    Args:
        discriminator (Module): The target (may live on the meta device).
        state_dict (Mapping[str, Tensor]): Canonical state dict (see
            :func:`canonicalize`).
        discriminator_type (str): Registry name, for the message.
        source (str): What ``state_dict`` came from, for the message.

    Raises:
        CheckpointError: Naming the missing and extra sub-discriminators
            (all of one, or which tensors of it), shape mismatches with both
            shapes, and a fitting configuration when the checkpoint matches
            a published layout.

    """
    target = _layout(discriminator)
    missing = [key for key in target if key not in state_dict]
    extra = [key for key in state_dict if key not in target]
    mismatched = [
        key
        for key in target
        if key in state_dict and tuple(state_dict[key].shape) != tuple(target[key])
    ]
    if not (missing or extra or mismatched):
        return
    target_prefixes = _sub_prefixes(discriminator)
    subs = ", ".join(discriminator.sub_discriminator_names)
    problems = []
    if missing:
        totals = _totals(list(target), target_prefixes)
        problems.append(
            "missing from the checkpoint: " + _group(missing, target_prefixes, totals)
        )
    match = _matching_layout({k: v.shape for k, v in state_dict.items()})
    if extra:
        prefixes = _sub_prefixes(match[3]) if match else target_prefixes
        totals = _totals(list(state_dict), prefixes)
        problems.append(
            "in the checkpoint but not in the discriminator: "
            + _group(extra, prefixes, totals)
        )
    by_owner: Dict[str, List[str]] = {}
    for key in mismatched:
        by_owner.setdefault(_owner(key, target_prefixes), []).append(key)
    totals = _totals(list(target), target_prefixes)
    for owner, keys in by_owner.items():
        first = keys[0]
        shapes = (
            f"{first!r} is {list(state_dict[first].shape)} in the checkpoint but "
            f"{list(target[first])} in the discriminator"
        )
        if len(keys) == 1:
            problems.append(f"shape mismatch in {owner}: {shapes}")
        else:
            problems.append(
                f"shape mismatch in {owner} ({len(keys)} of {totals[owner]} "
                f"tensors, e.g. {shapes})"
            )
    if match:
        hint = (
            f"the checkpoint matches discriminator_type={match[0]!r} with "
            f"discriminator_conf={json.dumps(match[1])} ({match[2]}); use that"
        )
    else:
        hint = (
            "choose the discriminator_type and discriminator_conf the checkpoint "
            "was trained with"
        )
    raise CheckpointError(
        f"{source} does not fit discriminator_type={discriminator_type!r} "
        f"({subs}): " + "; ".join(problems) + f". Nothing was loaded; {hint}"
    )


@typechecked
def load_reference_state_dict(
    src: PathLike,
    discriminator_type: str,
    discriminator_conf: Optional[Mapping[str, Any]] = None,
    *,
    format: str = "auto",
    inert_objects: bool = False,
) -> Tuple[StateDict, TransferSummary]:
    """Read a GPT-SoVITS / so-vits-svc-5.0 discriminator checkpoint and verify it.

    Args:
        src (Union[str, os.PathLike]): The checkpoint file.
        discriminator_type (str): ``sovits_mpd``, ``sovits_mrd`` or ``sovits_svc``.
        discriminator_conf (Optional[Mapping[str, Any]]): Its constructor
            arguments, e.g. ``{"version": "v2Pro"}`` for 7 periods.
        format (str): ``"auto"``, ``"gpt_sovits"`` or ``"sovits_svc"`` (see
            :func:`find_state_dict`).
        inert_objects (bool): Read pickled objects of other classes as inert
            placeholders instead of refusing the file (see :func:`read_checkpoint`).

    Returns:
        Tuple[Dict[str, Tensor], TransferSummary]: The state dict in the
            reference key order (old weight-norm names, float32) and a
            summary whose ``dst`` is empty.

    Raises:
        CheckpointError: If the file is unsafe, unreadable, or does not fit.

    """
    checkpoint = read_checkpoint(src, inert_objects=inert_objects)
    found, entry = find_state_dict(checkpoint, format=format)
    state_dict, upcast, renamed = canonicalize(found)
    state_dict, aliased = _rename_aliases(state_dict, discriminator_type)
    renamed += aliased
    discriminator, ordered = _in_reference_order(
        state_dict,
        discriminator_type,
        discriminator_conf,
        source=f"{str(src)!r} ({entry!r})",
    )
    summary = TransferSummary(
        src=str(src),
        dst="",
        entry=entry,
        discriminator_type=discriminator_type,
        sub_discriminators=list(discriminator.sub_discriminator_names),
        num_tensors=len(ordered),
        num_elements=sum(t.numel() for t in ordered.values()),
        upcast=upcast,
        renamed=renamed,
    )
    return ordered, summary


@typechecked
def load_pretrained_discriminator(
    src: PathLike,
    discriminator_type: str,
    discriminator_conf: Optional[Mapping[str, Any]] = None,
    *,
    format: str = "auto",
    inert_objects: bool = False,
) -> torch.nn.Module:
    """Build a discriminator holding the weights of a reference checkpoint.

    Args:
        src (Union[str, os.PathLike]): GPT-SoVITS or so-vits-svc-5.0 checkpoint.
        discriminator_type (str): ``sovits_mpd``, ``sovits_mrd`` or ``sovits_svc``.
        discriminator_conf (Optional[Mapping[str, Any]]): Constructor arguments.
        format (str): ``"auto"``, ``"gpt_sovits"`` or ``"sovits_svc"``.
        inert_objects (bool): Read pickled objects of other classes as inert
            placeholders instead of refusing the file (see :func:`read_checkpoint`).

    Returns:
        Module: The discriminator on the CPU, every parameter from ``src``.

    Raises:
        CheckpointError: If the file is unsafe, unreadable, or does not fit.

    """
    state_dict, _ = load_reference_state_dict(
        src,
        discriminator_type,
        discriminator_conf,
        format=format,
        inert_objects=inert_objects,
    )
    discriminator = build_discriminator(
        discriminator_type, discriminator_conf, device="meta"
    )
    discriminator.load_state_dict(state_dict, strict=True, assign=True)
    return discriminator


def _in_reference_order(
    state_dict: StateDict,
    discriminator_type: str,
    discriminator_conf: Optional[Mapping[str, Any]],
    source: str,
) -> Tuple[torch.nn.Module, StateDict]:
    """Check that ``state_dict`` fits the discriminator exactly and order it.

    Returns:
        Tuple[Module, Dict[str, Tensor]]: The (meta-device) discriminator and
            the state dict in its (the reference's) key order.

    Raises:
        CheckpointError: If tensors are missing, extra or of another shape.

    """
    discriminator = build_discriminator(
        discriminator_type, discriminator_conf, device="meta"
    )
    verify_coverage(
        discriminator,
        state_dict,
        discriminator_type=discriminator_type,
        source=source,
    )
    return discriminator, {key: state_dict[key] for key in discriminator.state_dict()}


def _normalize_prefix(prefix: str) -> str:
    return prefix if prefix == "" or prefix.endswith(".") else prefix + "."


def _refuse_overwriting_source(src: PathLike, dst: PathLike) -> None:
    if Path(dst).resolve() == Path(src).resolve():
        raise CheckpointError(
            f"the output {str(dst)!r} is the input checkpoint; write to another file"
        )


def _save(obj: Any, dst: PathLike) -> None:
    """Write atomically: a partly written file never takes ``dst``'s name."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.{os.getpid()}.tmp"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@typechecked
def import_discriminator(
    src: PathLike,
    dst: PathLike,
    discriminator_type: str,
    discriminator_conf: Optional[Mapping[str, Any]] = None,
    *,
    prefix: str = DEFAULT_PREFIX,
    format: str = "auto",
    inert_objects: bool = False,
) -> TransferSummary:
    """Convert a reference discriminator checkpoint into an ESPnet state dict.

    The written file maps ``prefix + reference key`` to float32 tensors, so
    ESPnet training takes it as ``--init_param dst`` (ESPnet's
    ``load_pretrained_model`` merges it into the model's state dict).

    Args:
        src (Union[str, os.PathLike]): GPT-SoVITS or so-vits-svc-5.0 checkpoint.
        dst (Union[str, os.PathLike]): Output file (parent folders are made).
        discriminator_type (str): ``sovits_mpd``, ``sovits_mrd`` or ``sovits_svc``.
        discriminator_conf (Optional[Mapping[str, Any]]): Constructor arguments
            of the discriminator in the ESPnet config (``discriminator_params``).
        prefix (str): Key prefix of the discriminator in the ESPnet model;
            ``tts.discriminator.`` for GAN-TTS, ``svs.discriminator.`` for GAN-SVS.
        format (str): ``"auto"``, ``"gpt_sovits"`` or ``"sovits_svc"``.
        inert_objects (bool): Read pickled objects of other classes as inert
            placeholders instead of refusing the file (see :func:`read_checkpoint`).

    Returns:
        TransferSummary: What was written.

    Raises:
        CheckpointError: If the file is unsafe, unreadable, or does not fit.

    """
    _refuse_overwriting_source(src, dst)
    state_dict, summary = load_reference_state_dict(
        src,
        discriminator_type,
        discriminator_conf,
        format=format,
        inert_objects=inert_objects,
    )
    prefix = _normalize_prefix(prefix)
    _save({prefix + key: tensor for key, tensor in state_dict.items()}, dst)
    summary.dst = str(dst)
    return summary


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
    prefix = _normalize_prefix(prefix)
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
            f"{', '.join(heads[:8])}; pass the discriminator's prefix"
        )
    return found, entry


@typechecked
def export_discriminator(
    src: PathLike,
    dst: PathLike,
    *,
    format: str = "gpt_sovits",
    discriminator_type: Optional[str] = None,
    discriminator_conf: Optional[Mapping[str, Any]] = None,
    prefix: str = DEFAULT_PREFIX,
) -> TransferSummary:
    """Write the discriminator of an ESPnet checkpoint in a reference layout.

    ``gpt_sovits`` writes ``{"weight": state_dict}`` like the published
    ``s2D*.pth`` files (GPT-SoVITS's ``s2_train.py`` reads
    ``torch.load(path)["weight"]`` for ``pretrained_s2D``); ``sovits_svc``
    writes ``{"model_d": state_dict}``, the discriminator entry of so-vits-svc-5.0
    training checkpoints. Keys are in the reference order with old
    weight-norm names, tensors float32.

    Args:
        src (Union[str, os.PathLike]): ESPnet model file or ``checkpoint.pth``.
        dst (Union[str, os.PathLike]): Output file (parent folders are made).
        format (str): ``"gpt_sovits"`` (needs ``sovits_mpd``) or
            ``"sovits_svc"`` (needs ``sovits_svc``).
        discriminator_type (Optional[str]): The discriminator in the ESPnet
            model; inferred from the tensors when they match a published
            layout.
        discriminator_conf (Optional[Mapping[str, Any]]): Its constructor arguments.
        prefix (str): Key prefix of the discriminator in the ESPnet model.

    Returns:
        TransferSummary: What was written.

    Raises:
        CheckpointError: If the file is unsafe, unreadable, holds another
            discriminator, or does not fit.

    """
    if format not in EXPORT_FORMATS:
        raise CheckpointError(
            f"unknown export format {format!r}; choose one of {sorted(EXPORT_FORMATS)}"
        )
    _refuse_overwriting_source(src, dst)
    found, entry = find_espnet_discriminator(read_checkpoint(src), prefix=prefix)
    state_dict, upcast, renamed = canonicalize(found)
    if discriminator_type is None:
        match = _matching_layout({k: v.shape for k, v in state_dict.items()})
        if match is None:
            raise CheckpointError(
                f"the discriminator under {_normalize_prefix(prefix)!r} in "
                f"{str(src)!r} matches no published layout; pass its "
                "discriminator_type and discriminator_conf (as in the ESPnet "
                "training config)"
            )
        discriminator_type, discriminator_conf = match[0], match[1]
    entry_out, needed_type = EXPORT_FORMATS[format]
    if discriminator_type != needed_type:
        others = [f for f, (_, t) in EXPORT_FORMATS.items() if t == discriminator_type]
        fix = f"use format {others[0]!r}" if others else "no reference layout holds it"
        raise CheckpointError(
            f"format {format!r} holds a {needed_type} discriminator, but the ESPnet "
            f"checkpoint's is {discriminator_type}; {fix}"
        )
    discriminator, ordered = _in_reference_order(
        state_dict,
        discriminator_type,
        discriminator_conf,
        source=f"{str(src)!r} (under {_normalize_prefix(prefix)!r})",
    )
    _save({entry_out: ordered}, dst)
    return TransferSummary(
        src=str(src),
        dst=str(dst),
        entry=entry,
        discriminator_type=discriminator_type,
        sub_discriminators=list(discriminator.sub_discriminator_names),
        num_tensors=len(ordered),
        num_elements=sum(t.numel() for t in ordered.values()),
        upcast=upcast,
        renamed=renamed,
    )


@typechecked
def parse_discriminator_conf(text: Optional[str]) -> Dict[str, Any]:
    """Parse a ``--discriminator_conf`` JSON object.

    Args:
        text (Optional[str]): JSON text such as ``'{"version": "v2Pro"}'``.

    Returns:
        Dict[str, Any]: The constructor arguments (empty for None).

    Raises:
        CheckpointError: If the text is not a JSON object.

    """
    if text is None:
        return {}
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"--discriminator_conf is not valid JSON ({error}); write e.g. "
            '\'{"version": "v2Pro"}\''
        ) from None
    if not isinstance(conf, dict):
        raise CheckpointError(
            f"--discriminator_conf must be a JSON object, got {text!r}; write e.g. "
            '\'{"version": "v2Pro"}\''
        )
    return conf


@typechecked
def discriminator_from_config(path: PathLike) -> Tuple[str, Dict[str, Any]]:
    """Read the discriminator of an ESPnet GAN-TTS training configuration.

    Importing with the training configuration guarantees that the imported
    file fits the model ESPnet will build: ESPnet's ``init_param`` loading
    keeps the model's own random values for any parameter the file lacks.

    Args:
        path (Union[str, os.PathLike]): YAML configuration with
            ``tts_conf: {discriminator_type, discriminator_params}`` (or the
            plugin trainer's top-level ``discriminator_type`` and
            ``discriminator_conf``).

    Returns:
        Tuple[str, Dict[str, Any]]: The discriminator type and its parameters.

    Raises:
        CheckpointError: If the file cannot be read or names no discriminator.

    """
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as error:
        raise CheckpointError(
            f"cannot read the configuration {str(path)!r}: {error}"
        ) from None
    config = config if isinstance(config, dict) else {}
    tts_conf = config.get("tts_conf") or {}
    if config.get("discriminator_type") is not None:
        found = config["discriminator_type"], config.get("discriminator_conf")
    elif isinstance(tts_conf, dict) and "discriminator_type" in tts_conf:
        found = tts_conf["discriminator_type"], tts_conf.get("discriminator_params")
    else:
        raise CheckpointError(
            f"the configuration {str(path)!r} sets no tts_conf.discriminator_type "
            "(nor a top-level discriminator_type); pass --discriminator_type"
        )
    discriminator_type, conf = found
    if not isinstance(conf, (dict, type(None))):
        raise CheckpointError(
            f"the discriminator parameters in {str(path)!r} are not a mapping: {conf!r}"
        )
    return str(discriminator_type), dict(conf or {})


@typechecked
def resolve_discriminator(
    config: Optional[PathLike],
    discriminator_type: Optional[str],
    discriminator_conf: Optional[str],
) -> Tuple[Optional[str], Dict[str, Any]]:
    """Settle the discriminator from the command-line options.

    Args:
        config (Optional[Union[str, os.PathLike]]): ``--config`` (training YAML).
        discriminator_type (Optional[str]): ``--discriminator_type``.
        discriminator_conf (Optional[str]): ``--discriminator_conf`` (JSON).

    Returns:
        Tuple[Optional[str], Dict[str, Any]]: The type (None when neither
            option gives one) and its parameters.

    Raises:
        CheckpointError: If ``--config`` is combined with the other two, or
            ``--discriminator_conf`` comes without a type, or either is invalid.

    """
    if config is not None:
        if discriminator_type is not None or discriminator_conf is not None:
            raise CheckpointError(
                "--config sets the discriminator; leave out --discriminator_type "
                "and --discriminator_conf"
            )
        return discriminator_from_config(config)
    conf = parse_discriminator_conf(discriminator_conf)
    if discriminator_conf is not None and discriminator_type is None:
        raise CheckpointError("--discriminator_conf needs --discriminator_type as well")
    return discriminator_type, conf
