"""Transfer: reference checkpoints into ESPnet and back out.

Import writes ``prefix + reference key`` -> float32 tensors, which ESPnet
training takes as ``--init_param``. Export writes ``{"weight": state_dict}``
(GPT-SoVITS, for ``sovits_mpd``) or ``{"model_d": state_dict}``
(so-vits-svc-5.0, for ``sovits_svc``), keys in the reference order with the
old weight-norm names. Both check coverage both ways first and report what
they did in a :class:`TransferSummary`.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple

import torch
from typeguard import typechecked

from espnet_sovits_disc.pretrained.coverage import (
    build_discriminator,
    in_reference_order,
    matching_layout,
)
from espnet_sovits_disc.pretrained.errors import CheckpointError, check_choice
from espnet_sovits_disc.pretrained.reading import PathLike, read_checkpoint
from espnet_sovits_disc.pretrained.state_dict import (
    DEFAULT_PREFIX,
    StateDict,
    canonicalize,
    find_espnet_discriminator,
    find_state_dict,
    normalize_prefix,
    rename_prefix_aliases,
)

EXPORT_FORMATS = {
    "gpt_sovits": ("weight", "sovits_mpd"),
    "sovits_svc": ("model_d", "sovits_svc"),
}
"""Export format -> (top-level entry of the written file, discriminator type)."""


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

    @classmethod
    def written(
        cls,
        *,
        src: PathLike,
        dst: PathLike,
        entry: str,
        discriminator_type: str,
        discriminator: torch.nn.Module,
        state_dict: StateDict,
        upcast: int,
        renamed: int,
    ) -> "TransferSummary":
        """Summarize the transfer of ``state_dict`` into ``discriminator``'s layout.

        Args:
            src (Union[str, os.PathLike]): The file read.
            dst (Union[str, os.PathLike]): The file written (``""``: none yet).
            entry (str): Where in ``src`` the state dict was found.
            discriminator_type (str): Registry name of the discriminator.
            discriminator (Module): The discriminator (any device, meta too).
            state_dict (Dict[str, Tensor]): The tensors transferred.
            upcast (int): Number of 16-bit tensors upcast to float32.
            renamed (int): Number of keys renamed to the reference names.

        Returns:
            TransferSummary: The summary.

        """
        return cls(
            src=str(src),
            dst=str(dst),
            entry=entry,
            discriminator_type=discriminator_type,
            sub_discriminators=list(discriminator.sub_discriminator_names),
            num_tensors=len(state_dict),
            num_elements=sum(t.numel() for t in state_dict.values()),
            upcast=upcast,
            renamed=renamed,
        )

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
    state_dict, aliased = rename_prefix_aliases(state_dict, discriminator_type)
    renamed += aliased
    discriminator, ordered = in_reference_order(
        state_dict,
        discriminator_type,
        discriminator_conf,
        source=f"{str(src)!r} ({entry!r})",
    )
    summary = TransferSummary.written(
        src=src,
        dst="",
        entry=entry,
        discriminator_type=discriminator_type,
        discriminator=discriminator,
        state_dict=ordered,
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


def refuse_overwriting_source(src: PathLike, dst: PathLike) -> None:
    if Path(dst).resolve() == Path(src).resolve():
        raise CheckpointError(
            f"the output {str(dst)!r} is the input checkpoint; write to another file"
        )


def save_atomically(obj: Any, dst: PathLike) -> None:
    """Write ``obj`` with ``torch.save`` (or ``bytes`` as they are) atomically:
    a partly written file never takes ``dst``'s name."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.{os.getpid()}.tmp"
    try:
        if isinstance(obj, bytes):
            tmp.write_bytes(obj)
        else:
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
    refuse_overwriting_source(src, dst)
    state_dict, summary = load_reference_state_dict(
        src,
        discriminator_type,
        discriminator_conf,
        format=format,
        inert_objects=inert_objects,
    )
    prefix = normalize_prefix(prefix)
    save_atomically({prefix + key: tensor for key, tensor in state_dict.items()}, dst)
    summary.dst = str(dst)
    return summary


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
    check_choice("export format", format, EXPORT_FORMATS)
    refuse_overwriting_source(src, dst)
    found, entry = find_espnet_discriminator(read_checkpoint(src), prefix=prefix)
    state_dict, upcast, renamed = canonicalize(found)
    if discriminator_type is None:
        match = matching_layout({k: v.shape for k, v in state_dict.items()})
        if match is None:
            raise CheckpointError(
                f"the discriminator under {normalize_prefix(prefix)!r} in "
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
    discriminator, ordered = in_reference_order(
        state_dict,
        discriminator_type,
        discriminator_conf,
        source=f"{str(src)!r} (under {normalize_prefix(prefix)!r})",
    )
    save_atomically({entry_out: ordered}, dst)
    return TransferSummary.written(
        src=src,
        dst=dst,
        entry=entry,
        discriminator_type=discriminator_type,
        discriminator=discriminator,
        state_dict=ordered,
        upcast=upcast,
        renamed=renamed,
    )
