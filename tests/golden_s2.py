"""Access to the golden outputs of GPT-SoVITS's stage-2 generator
(tests/data/golden_s2, whose README defines every array and the fill rule)."""

import math
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch

from espnet_sovits_disc.gpt_sovits import build_synthesizer

from tests.golden import read_golden_arrays, read_golden_json

DATA_DIR = Path(__file__).parent / "data" / "golden_s2"
VERSIONS = ("v2", "v2Pro")
SQRT3 = math.sqrt(3.0)


@lru_cache(maxsize=None)
def golden_json() -> dict:
    return read_golden_json(DATA_DIR)


@lru_cache(maxsize=None)
def golden_arrays() -> Dict[str, np.ndarray]:
    return read_golden_arrays(DATA_DIR)


def array(name: str) -> np.ndarray:
    """A stored array, e.g. ``input.ssl`` or ``v2.ref_enc.ge``."""
    return golden_arrays()[name]


def tensor(name: str) -> torch.Tensor:
    return torch.from_numpy(array(name))


def u01(name: str, n: int) -> np.ndarray:
    """The README's hash: n float64 values in [0, 1) from (name, index)."""
    s = np.uint64(zlib.crc32(name.encode("utf-8")))
    with np.errstate(over="ignore"):
        x = (s << np.uint64(32)) + np.arange(n, dtype=np.uint64) + np.uint64(1)
        z = x * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (2.0**-53)


def fill_value(key: str, shape) -> torch.Tensor:
    """The golden weight of one state-dict entry (the README's fill rule)."""
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape)) if shape else 1
    leaf = key.rsplit(".", 1)[-1]
    if leaf in ("inited", "cluster_size"):
        values = np.ones(n)
    elif leaf in ("embed", "embed_avg"):
        values = 0.5 * SQRT3 * (2.0 * u01(key[: -len(leaf)] + "embed", n) - 1.0)
    else:
        r = 2.0 * u01(key, n) - 1.0
        if leaf == "weight_g":
            values = (1.5 if key.startswith("dec.ups.") else 1.0) * (1.0 + 0.2 * r)
        elif leaf == "weight_v":
            values = r
        elif leaf == "bias":
            values = 0.02 * r
        elif leaf == "gamma":
            values = 1.0 + 0.1 * r
        elif leaf == "beta":
            values = 0.02 * r
        elif leaf in ("emb_rel_k", "emb_rel_v"):
            values = SQRT3 * r / math.sqrt(shape[-1])
        elif key.endswith("embedding.weight"):
            values = SQRT3 * r
        elif key.endswith("prelu.weight"):
            values = 0.25 + 0.05 * r
        elif leaf == "weight" and len(shape) >= 2:
            values = 0.5 * SQRT3 * r / math.sqrt(int(np.prod(shape[1:])))
        else:
            raise KeyError(key)
    return torch.from_numpy(values.reshape(shape).astype(np.float32))


def layout(version: str, prefix: str) -> list:
    """(key without ``prefix``, shape) of the reference's entries under ``prefix``."""
    return [
        (key[len(prefix) :], shape)
        for key, shape in golden_json()["versions"][version]["state_dict"]
        if key.startswith(prefix)
    ]


def golden_state_dict(version: str, prefix: str) -> Dict[str, torch.Tensor]:
    """The golden weights of the submodule at ``prefix`` (e.g. ``ref_enc.``),
    keyed relative to it."""
    return {
        key: fill_value(prefix + key, shape) for key, shape in layout(version, prefix)
    }


def y_mask() -> torch.Tensor:
    """``sequence_mask(y_lengths, T)[:, None]`` as float (B, 1, T)."""
    lengths = tensor("input.y_lengths")
    frames = golden_json()["T"]
    return (torch.arange(frames)[None, :] < lengths[:, None]).float()[:, None, :]


def deviation(actual: torch.Tensor, name: str) -> Tuple[float, float]:
    """The largest ``|a - ref|`` and its allowance ``1e-4 max|ref| + 1e-3 |ref|``
    at the element where the ratio of the two is largest (README's tolerance)."""
    expected = array(name).astype(np.float64)
    actual = actual.detach().double().numpy()
    assert (
        actual.shape == expected.shape
    ), f"{name}: shape {actual.shape} != {expected.shape}"
    allowance = 1e-4 * np.abs(expected).max() + 1e-3 * np.abs(expected)
    error = np.abs(actual - expected)
    worst = int(np.argmax(error / allowance))
    return float(error.flat[worst]), float(allowance.flat[worst])


def assert_close(actual: torch.Tensor, name: str) -> None:
    """Compare a float array elementwise with the README's tolerance."""
    error, allowance = deviation(actual, name)
    assert error <= allowance, f"{name}: |a - ref| = {error:.3g} > {allowance:.3g}"


def assert_sums(actual: torch.Tensor, name: str) -> None:
    """Compare whole-array sums with rtol 1e-4 (against ``abs_sum`` for ``sum``)."""
    stats = golden_json()["arrays"][name]
    values = actual.detach().double()
    np.testing.assert_allclose(
        values.sum().item(),
        stats["sum"],
        rtol=0,
        atol=1e-4 * stats["abs_sum"],
        err_msg=name,
    )
    np.testing.assert_allclose(values.abs().sum().item(), stats["abs_sum"], rtol=1e-4)
    np.testing.assert_allclose(values.square().sum().item(), stats["sq_sum"], rtol=1e-4)


@lru_cache(maxsize=None)
def golden_model(version: str) -> torch.nn.Module:
    """The full-size SynthesizerTrn with the golden weights, every Dropout's p 0
    (the golden protocol); one shared instance per version."""
    model = build_synthesizer(version)
    layout = golden_json()["versions"][version]["state_dict"]
    model.load_state_dict(
        {key: fill_value(key, shape) for key, shape in layout}, strict=True
    )
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def training_forward(version: str):
    """The golden protocol's training forward: train mode, the seed, the call."""
    model = golden_model(version).train()
    sv_emb = tensor("input.sv_emb") if version == "v2Pro" else None
    torch.manual_seed(golden_json()["manual_seed"])
    return model(
        tensor("input.ssl"),
        tensor("input.y"),
        tensor("input.y_lengths"),
        tensor("input.text"),
        tensor("input.text_lengths"),
        sv_emb=sv_emb,
    )
