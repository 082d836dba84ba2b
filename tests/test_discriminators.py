"""Parity of the discriminators with the reference implementations' golden outputs.

Every score and feature map of all four golden cases is compared within the
tolerances of tests/data/GOLDEN_README.md: arrays with rtol 1e-3 and atol
1e-4 x max|expected|, whole-map sums with rtol 1e-4. The cases with period
discriminators run with both convolution algorithms ("direct" and "gemm"),
whichever ``auto`` picks on this machine, and the gemm products on both
matrix-product backends (oneDNN's and ``torch.mm``), whatever the CPU. Every
case also runs with PyTorch's private entry points switched off (the
public fallbacks of ``dispatch.py``: unfused weight normalization,
``torch.mm``), as on a PyTorch release that lacks or changed them.
"""

import pytest
import torch

from espnet_sovits_disc.discriminators import dispatch, gemm
from espnet_sovits_disc.registry import get_discriminator_class
from tests.golden import (
    CASES,
    assert_close_array,
    assert_close_sum,
    golden_arrays,
    golden_json,
    inputs,
    reference_state_dict,
    reference_state_dict_layout,
)

SUB_DISCRIMINATOR_NAMES = {
    "gpt_sovits_mpd_v1": ["s", "p2", "p3", "p5", "p7", "p11"],
    "gpt_sovits_mpd_v2pro": ["s", "p2", "p3", "p5", "p7", "p11", "p17", "p23"],
    "sovits_svc_mrd": ["r1024", "r2048", "r4096", "r512"],
    "sovits_svc_full": [
        "r1024", "r2048", "r4096", "r512", "p2", "p3", "p5", "p7", "p11", "s",
    ],
}

EXPECTED_PARAMETERS = {
    "gpt_sovits_mpd_v1": 46_747_132,
    "gpt_sovits_mpd_v2pro": 63_189_440,
    "sovits_svc_mrd": 374_536,
    "sovits_svc_full": 23_460_708,
}


# How the private PyTorch entry points are used: as ``dispatch`` decides
# ("fast"), with oneDNN's or ``torch.mm``'s product forced for the gemm
# convolutions, or all of them off ("public").
TORCH_PATHS = ("fast", "onednn", "mm", "public")


def golden_runs():
    """Golden cases crossed with convolution algorithm and PyTorch path."""
    for case in CASES:
        if case == "sovits_svc_mrd":
            yield case, "auto", "fast"
            yield case, "auto", "public"
            continue
        yield case, "direct", "fast"
        yield case, "direct", "public"
        yield case, "gemm", "onednn"
        yield case, "gemm", "mm"
        yield case, "gemm", "public"


GOLDEN_RUNS = list(golden_runs())


def build(case: str, conv_algorithm: str = "auto") -> torch.nn.Module:
    name, params = CASES[case]
    if conv_algorithm != "auto":
        params = {**params, "conv_algorithm": conv_algorithm}
    return get_discriminator_class(name)(**params)


def use_torch_path(monkeypatch: pytest.MonkeyPatch, torch_path: str) -> None:
    """Force one of ``TORCH_PATHS`` for what runs while ``monkeypatch`` lasts."""
    if torch_path == "public":
        monkeypatch.setattr(dispatch, "fused_weight_norm_works", lambda: False)
        monkeypatch.setattr(dispatch, "onednn_matmul_works", lambda: False)
        monkeypatch.setattr(gemm, "matmul_backend", lambda *_: dispatch.TORCH_MM)
    elif torch_path == "onednn":
        if not dispatch.onednn_matmul_works():
            pytest.skip("this PyTorch has no working oneDNN matrix product")
        monkeypatch.setattr(gemm, "matmul_backend", lambda *_: dispatch.ONEDNN)
    elif torch_path == "mm":
        monkeypatch.setattr(gemm, "matmul_backend", lambda *_: dispatch.TORCH_MM)


@pytest.fixture(
    scope="module", params=GOLDEN_RUNS, ids=["-".join(run) for run in GOLDEN_RUNS]
)
def golden_case(request):
    """A discriminator of one golden case with the golden weights, and its outputs."""
    case, conv_algorithm, torch_path = request.param
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_torch_path(monkeypatch, torch_path)
        discriminator = build(case, conv_algorithm).eval()
        discriminator.load_state_dict(reference_state_dict(case))
        real, fake = inputs()
        with torch.no_grad():
            outputs = {"real": discriminator(real), "fake": discriminator(fake)}
    return case, discriminator, outputs


def test_public_path_is_the_fallback_the_probes_choose(monkeypatch):
    """With the private entry points off, ``dispatch`` chooses the public
    operations, and the public weight normalization equals the fused one."""
    v = torch.randn(8, 3, 5, dtype=torch.float64)
    g = torch.rand(8, 1, 1, dtype=torch.float64) + 0.5
    fused = dispatch.weight_norm(v, g)
    use_torch_path(monkeypatch, "public")
    assert not dispatch.auto_uses_gemm(torch.device("cpu")) or (
        dispatch.cpu_capability() == "AVX2"
    )
    assert dispatch.matmul_backend(torch.device("cpu"), torch.float32) == dispatch.TORCH_MM
    torch.testing.assert_close(dispatch.weight_norm(v, g), fused, rtol=1e-12, atol=0)


@pytest.mark.parametrize("case", list(CASES))
def test_state_dict_keys_and_shapes_equal_reference(case):
    ours = [(key, list(value.shape)) for key, value in build(case).state_dict().items()]
    assert ours == reference_state_dict_layout(case)


@pytest.mark.parametrize("case", list(CASES))
def test_parameter_count(case):
    n_params = sum(p.numel() for p in build(case).parameters())
    assert n_params == EXPECTED_PARAMETERS[case] == golden_json()["cases"][case]["n_params"]


def test_sub_discriminator_order(golden_case):
    case, discriminator, outputs = golden_case
    assert discriminator.sub_discriminator_names == SUB_DISCRIMINATOR_NAMES[case]
    assert len(outputs["real"]) == len(SUB_DISCRIMINATOR_NAMES[case])


def test_scores_equal_reference(golden_case):
    case, _, outputs = golden_case
    arrays = golden_arrays()
    for which, output in outputs.items():
        for i, sub_output in enumerate(output):
            key = f"{case}.{which}.d{i}.score"
            assert_close_array(sub_output[-1].numpy(), arrays[key], key)


def test_feature_maps_equal_reference(golden_case):
    case, _, outputs = golden_case
    arrays = golden_arrays()
    for which, output in outputs.items():
        reference = golden_json()["cases"][case]["outputs"][f"{case}.{which}"]
        for i, sub_output in enumerate(output):
            feature_maps = sub_output[:-1]
            assert len(feature_maps) == reference[i]["n_fmaps"]
            for j, fmap in enumerate(feature_maps):
                what = f"{case}.{which}.d{i}.fmap{j}"
                expected = reference[i]["fmaps"][j]
                assert list(fmap.shape) == expected["shape"], what
                assert_close_array(
                    fmap[0].flatten()[:64].numpy(), arrays[f"{what}.head"], what
                )
                fmap64 = fmap.double()
                assert_close_sum(fmap64.sum().item(), expected["sum"], f"{what} sum")
                assert_close_sum(
                    fmap64.abs().sum().item(), expected["abs_sum"], f"{what} abs_sum"
                )
                assert_close_sum(
                    fmap64.square().sum().item(), expected["sq_sum"], f"{what} sq_sum"
                )


def test_forward_pair_equals_separate_passes(golden_case):
    case, discriminator, outputs = golden_case
    real, fake = inputs()
    with torch.no_grad():
        outs_real, outs_fake = discriminator.forward_pair(real, fake)
    for which, paired in (("real", outs_real), ("fake", outs_fake)):
        for i, (pair_sub, sub) in enumerate(zip(paired, outputs[which])):
            assert len(pair_sub) == len(sub)
            for j, (a, b) in enumerate(zip(pair_sub, sub)):
                assert_close_array(a.numpy(), b.numpy(), f"{case}.{which}.d{i}.{j}")


def test_forward_pair_batches_scale_and_period_but_not_resolution_on_cpu(
    monkeypatch,
):
    """On the CPU, S and P score real and fake in one batch of 2B; each R
    scores them one after the other (two batches of B)."""
    discriminator = build("sovits_svc_full")
    seen = {}

    def recording(sub):
        run = sub.run

        def recorded_run(x):
            seen.setdefault(sub.name, []).append(x.size(0))
            return run(x)

        return recorded_run

    for sub in discriminator.sub_discriminators():
        monkeypatch.setattr(sub, "run", recording(sub))
    real, fake = inputs()
    with torch.no_grad():
        discriminator.forward_pair(real, fake)
    batch = real.size(0)
    assert seen == {
        name: [batch, batch] if name.startswith("r") else [2 * batch]
        for name in SUB_DISCRIMINATOR_NAMES["sovits_svc_full"]
    }


@pytest.mark.parametrize("case", ["gpt_sovits_mpd_v1", "sovits_svc_full"])
def test_loads_new_weight_norm_api_names(case):
    """Checkpoints saved with torch.nn.utils.parametrizations.weight_norm load."""
    renamed = {
        key.replace("weight_g", "parametrizations.weight.original0").replace(
            "weight_v", "parametrizations.weight.original1"
        ): value
        for key, value in reference_state_dict(case).items()
    }
    discriminator = build(case)
    discriminator.load_state_dict(renamed)
    for key, value in reference_state_dict(case).items():
        assert torch.equal(discriminator.state_dict()[key], value), key


def test_weight_norm_matches_torch_parametrization():
    """Our weight-normalized conv equals torch's weight_norm on the same weights."""
    from espnet_sovits_disc.discriminators.conv import WeightNormConv

    ours = WeightNormConv(dims=1, in_channels=4, out_channels=6, kernel_size=5, padding=2)
    theirs = torch.nn.utils.parametrizations.weight_norm(
        torch.nn.Conv1d(4, 6, 5, padding=2)
    )
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 4, 50)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-6, atol=1e-6)


def test_version_shortcut():
    mpd = get_discriminator_class("sovits_mpd")
    assert mpd(version="v1").periods == (2, 3, 5, 7, 11)
    assert mpd(version="v2ProPlus").periods == (2, 3, 5, 7, 11, 17, 23)
    with pytest.raises(ValueError, match="v3 and v4 train without a discriminator"):
        mpd(version="v3")
    with pytest.raises(ValueError, match="implies periods"):
        mpd(version="v2Pro", periods=[2, 3])


def test_spectral_norm_uses_reference_key_names():
    mpd = get_discriminator_class("sovits_mpd")(periods=[2], use_spectral_norm=True)
    keys = set(mpd.state_dict())
    assert "discriminators.0.convs.0.weight_orig" in keys
    assert "discriminators.1.conv_post.weight_u" in keys
    x = torch.randn(1, 1, 300)
    assert all(torch.isfinite(sub[-1]).all() for sub in mpd(x))


def test_hann_window_is_a_departure_with_the_same_layout():
    mrd = get_discriminator_class("sovits_mrd")
    rectangular, hann = mrd(), mrd(window="hann")
    hann.load_state_dict(rectangular.state_dict())
    x = torch.randn(1, 1, 4000)
    with torch.no_grad():
        a, b = rectangular(x)[0][-1], hann(x)[0][-1]
    assert a.shape == b.shape
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="window must be one of"):
        mrd(window="hamming")
