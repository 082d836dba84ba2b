"""Safe reading of checkpoint files: weights only, foreign objects inert.

Reading is always ``torch.load(..., weights_only=True)``: a file that holds
pickled Python objects other than tensors, containers and numbers is refused
and nothing in it runs (on request, ``inert_objects=True``, such objects are
read as inert placeholders instead, still without importing or running any
of their code).
"""

import io
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Callable, List, Union

import numpy as np
import torch
from typeguard import typechecked

from espnet_sovits_disc.pretrained.errors import CheckpointError, UnsafeCheckpointError

PathLike = Union[str, os.PathLike]


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
    Its pickled state (for ``HParams``, its attribute dict) is kept as data in
    ``pickled_state``; :func:`plain_data` turns such objects into dicts.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        """Accept and drop the constructor arguments the pickle passes."""
        self.pickled_state: Any = None

    def __setstate__(self, state: Any) -> None:
        """Keep the pickled state as data."""
        self.pickled_state = state


def plain_data(obj: Any) -> Any:
    """``obj`` with every :class:`InertObject` replaced by its pickled state.

    Args:
        obj (Any): What a checkpoint read with ``inert_objects=True`` holds.

    Returns:
        Any: Dicts, lists, tuples and scalars; an object pickled with an
            attribute dict (``HParams``) becomes that dict, recursively.

    """
    if isinstance(obj, InertObject):
        return plain_data(obj.pickled_state)
    if isinstance(obj, dict):
        return {key: plain_data(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain_data(value) for value in obj)
    return obj


def _safe_globals_for(
    open_file: Callable[[], Union[Path, BinaryIO]], source: str, inert_objects: bool
) -> List[Any]:
    allowed = _numpy_safe_globals()
    if inert_objects:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(open_file())
        except Exception as error:
            raise CheckpointError(
                f"cannot list the objects in {source!r} for inert loading "
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
        UnsafeCheckpointError: If the file holds other pickled Python objects
            (refused unexecuted, unless ``inert_objects``).
        CheckpointError: If the file is missing, truncated or not a PyTorch
            checkpoint.

    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not exist or is not a file"
        )
    return _load(lambda: path, str(path), inert_objects)


@typechecked
def read_checkpoint_bytes(
    data: bytes, source: str, *, inert_objects: bool = False
) -> Any:
    """:func:`read_checkpoint` for a checkpoint's bytes held in memory.

    Args:
        data (bytes): The bytes of a zip-format PyTorch checkpoint.
        source (str): Where they came from, for error messages.
        inert_objects (bool): As for :func:`read_checkpoint`.

    Returns:
        Any: The loaded object.

    Raises:
        UnsafeCheckpointError: As :func:`read_checkpoint`.
        CheckpointError: As :func:`read_checkpoint`.

    """
    return _load(lambda: io.BytesIO(data), source, inert_objects)


def _load(
    open_file: Callable[[], Union[Path, BinaryIO]], source: str, inert_objects: bool
) -> Any:
    try:
        allowed = _safe_globals_for(open_file, source, inert_objects)
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(open_file(), map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as error:
        message = str(error)
        if "GLOBAL" in message or "Can only build" in message:
            raise UnsafeCheckpointError(
                f"refused to load {source!r}: it holds pickled content that a "
                f"weights-only load does not allow ({_unsafe_detail(message)}), "
                "and nothing in it was run. If you trust it to be a checkpoint "
                "(e.g. weights saved next to a GPT-SoVITS HParams config), "
                "reading it with inert_objects=True turns such objects into inert "
                "placeholders, still running none of their code"
            ) from None
        raise _unreadable(source, error) from None
    except Exception as error:
        raise _unreadable(source, error) from None


def _unsafe_detail(message: str) -> str:
    for line in message.splitlines()[1:]:
        line = line.split("WeightsUnpickler error:", 1)[-1].strip()
        if line and not line.startswith(("Check the documentation", "Please file")):
            return line.rstrip(".")
    return "an object outside the allowed types"


def _unreadable(source: str, error: BaseException) -> CheckpointError:
    text = str(error).strip()
    reason = text.splitlines()[0].split(". ")[0].rstrip(".") if text else ""
    return CheckpointError(
        f"cannot read {source!r} as a PyTorch checkpoint: it is truncated, "
        f"corrupt or not a checkpoint ({type(error).__name__}"
        f"{': ' + reason if reason else ''}); "
        "download or copy it again"
    )
