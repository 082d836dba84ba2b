"""Coverage diagnostics: does a state dict fill a discriminator exactly?

Every parameter of the target must come from the checkpoint, and every
checkpoint tensor must land in the target with its shape; otherwise the
:class:`CheckpointError` names the missing, extra or mis-shaped tensors by
sub-discriminator and, when the checkpoint matches a published layout, the
configuration that fits it (GPT-SoVITS's own ``strict=False`` loading would
leave them silently at random initialization).
"""

import json
from contextlib import nullcontext
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from typeguard import typechecked

from espnet_sovits_disc.pretrained.errors import CheckpointError, check_choice
from espnet_sovits_disc.pretrained.state_dict import StateDict
from espnet_sovits_disc.registry import DISCRIMINATORS

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


_EXAMPLES = 3


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
    check_choice("discriminator_type", discriminator_type, DISCRIMINATORS)
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


def matching_layout(
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
    match = matching_layout({k: v.shape for k, v in state_dict.items()})
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


def in_reference_order(
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
