"""Access to the golden outputs of the reference implementations (tests/data)."""

import json
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch

DATA_DIR = Path(__file__).parent / "data"

# (case name, discriminator type in the registry, discriminator params)
CASES = {
    "gpt_sovits_mpd_v1": ("sovits_mpd", {}),
    "gpt_sovits_mpd_v2pro": ("sovits_mpd", {"version": "v2Pro"}),
    "sovits_svc_mrd": ("sovits_mrd", {}),
    "sovits_svc_full": ("sovits_svc", {}),
}


def read_golden_json(directory: Path) -> dict:
    """``golden.json`` of a golden data directory."""
    with open(directory / "golden.json") as f:
        return json.load(f)


def read_golden_arrays(directory: Path) -> Dict[str, np.ndarray]:
    """Every array of ``golden.npz`` in a golden data directory."""
    with np.load(directory / "golden.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


@lru_cache(maxsize=None)
def golden_json() -> dict:
    return read_golden_json(DATA_DIR)


@lru_cache(maxsize=None)
def golden_arrays() -> Dict[str, np.ndarray]:
    return read_golden_arrays(DATA_DIR)


def reference_state_dict_layout(case: str) -> List[Tuple[str, List[int]]]:
    return [(key, shape) for key, shape in golden_json()["cases"][case]["state_dict"]]


def fill_value(key: str, shape: List[int]) -> torch.Tensor:
    """The deterministic weight of the golden README's fill rule."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.float64)
    s = zlib.crc32(key.encode()) % 1000
    if key.endswith("weight_g"):
        values = 0.5 + 0.25 * np.sin(0.37 * i + s)
    elif key.endswith("weight_v"):
        values = np.sin(0.71 * i + s) + 0.5 * np.cos(0.013 * i + 2 * s)
    elif key.endswith("bias"):
        values = 0.01 * np.sin(0.29 * i + s)
    else:
        raise KeyError(f"no fill rule for {key}")
    return torch.from_numpy(values.reshape(shape).astype(np.float32))


@lru_cache(maxsize=None)
def _reference_weights(case: str) -> Tuple[Tuple[str, torch.Tensor], ...]:
    return tuple(
        (key, fill_value(key, shape)) for key, shape in reference_state_dict_layout(case)
    )


def reference_state_dict(case: str) -> Dict[str, torch.Tensor]:
    """The golden weights under the reference (old weight-norm) key names
    (computed once per case; every call returns its own copies)."""
    return {key: weight.clone() for key, weight in _reference_weights(case)}


def inputs() -> Tuple[torch.Tensor, torch.Tensor]:
    arrays = golden_arrays()
    return torch.from_numpy(arrays["input.real"]), torch.from_numpy(arrays["input.fake"])


def assert_close_array(actual, expected, what: str) -> None:
    """Compare with the golden tolerance: rtol 1e-3, atol 1e-4 x max |expected|."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    atol = 1e-4 * float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=atol, err_msg=what)


def assert_close_sum(actual: float, expected: float, what: str) -> None:
    """Compare a sum with the golden tolerance rtol 1e-4."""
    np.testing.assert_allclose(actual, expected, rtol=1e-4, err_msg=what)
