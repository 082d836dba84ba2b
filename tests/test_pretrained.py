"""Pretrained discriminators: reference checkpoints into ESPnet and back.

Checkpoints are built in the reference layouts from the golden key lists and
the golden fill rule (tests/data/GOLDEN_README.md), in every container the
references write: GPT-SoVITS pretrained ``{"weight": sd}``, GPT-SoVITS
training ``D_<step>.pth`` ``{"model": sd, "iteration", "optimizer",
"learning_rate"}``, so-vits-svc-5.0 training ``{"model_g", "model_d",
"optim_g", "optim_d", "step", "epoch", "hp_str"}`` and bare state dicts.
"""

import builtins
import copy
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from espnet_sovits_disc.bin import export_discriminator as export_cli
from espnet_sovits_disc.bin import import_discriminator as import_cli
from espnet_sovits_disc.bin.discriminator_arguments import (
    discriminator_from_config,
    parse_discriminator_conf,
)
from espnet_sovits_disc.pretrained import (
    CheckpointError,
    InertObject,
    UnsafeCheckpointError,
    build_discriminator,
    export_discriminator,
    import_discriminator,
    load_pretrained_discriminator,
    read_checkpoint,
    verify_coverage,
)
from tests.golden import (
    CASES,
    assert_close_array,
    assert_close_sum,
    fill_value,
    golden_arrays,
    golden_json,
    inputs,
    reference_state_dict,
    reference_state_dict_layout,
)
from tests.scratch import scratch_folder
from tests.tiny_corpus import TINY_GENERATOR_PARAMS

PREFIX = "tts.discriminator."
REPO = Path(__file__).resolve().parents[1]
FINETUNE_CONFIG = REPO / "egs/ljspeech/tts1/conf/tuning/finetune_gpt_sovits_v2.yaml"


def new_api_names(state_dict):
    """Rename to torch.nn.utils.parametrizations.weight_norm's key names."""
    return {
        key.replace(".weight_g", ".parametrizations.weight.original0").replace(
            ".weight_v", ".parametrizations.weight.original1"
        ): value
        for key, value in state_dict.items()
    }


def optimizer_state():
    """A real AdamW state dict, as training checkpoints hold."""
    parameter = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([parameter], lr=1e-4, betas=(0.8, 0.99), eps=1e-9)
    parameter.sum().backward()
    optimizer.step()
    return optimizer.state_dict()


def gpt_sovits_pretrained(state_dict):
    """s2D488k.pth / s2D2333k.pth / s2Dv2Pro*.pth: read as torch.load(f)["weight"]."""
    return {"weight": state_dict}


def gpt_sovits_training(state_dict):
    """GPT-SoVITS utils.save_checkpoint's D_<step>.pth, new weight-norm names."""
    return {
        "model": new_api_names(state_dict),
        "iteration": 2333,
        "optimizer": optimizer_state(),
        "learning_rate": 1e-4,
    }


def sovits_svc_training(state_dict):
    """so-vits-svc-5.0 vits_extend/train.py's <name>_<epoch>.pt.

    The keys are stored in reverse order: import must restore the reference order.
    """
    return {
        "model_g": {"emb_g.weight": torch.zeros(4, 2)},
        "model_d": dict(reversed(list(state_dict.items()))),
        "optim_g": optimizer_state(),
        "optim_d": optimizer_state(),
        "step": 100,
        "epoch": 2,
        "hp_str": "train:\n  seed: 1234\n",
    }


def bare(state_dict):
    return dict(state_dict)


CONTAINERS = {
    "gpt_sovits_mpd_v1": (gpt_sovits_pretrained, "weight"),
    "gpt_sovits_mpd_v2pro": (gpt_sovits_training, "model"),
    "sovits_svc_mrd": (bare, "top level"),
    "sovits_svc_full": (sovits_svc_training, "model_d"),
}


@pytest.fixture(scope="module")
def weights():
    """Golden reference weights per case, computed once."""
    cache = {}

    def get(case):
        if case not in cache and case == "gpt_sovits_mpd_v1":
            # The fill rule depends only on key and shape, and v1's keys and
            # shapes are v2Pro's first six sub-discriminators: reuse them.
            v2pro = get("gpt_sovits_mpd_v2pro")
            layout = reference_state_dict_layout(case)
            assert all(list(v2pro[key].shape) == shape for key, shape in layout)
            cache[case] = {key: v2pro[key] for key, _ in layout}
        elif case not in cache:
            cache[case] = reference_state_dict(case)
        return cache[case]

    return get


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, weights):
    """Reference-layout checkpoint files per case, written once."""
    cache = {}
    with scratch_folder(tmp_path_factory, "reference") as folder:

        def get(case):
            if case not in cache:
                wrap, _ = CONTAINERS[case]
                cache[case] = folder / f"{case}.pth"
                torch.save(wrap(weights(case)), cache[case])
            return cache[case]

        yield get


def build_with(case, state_dict):
    """The case's discriminator holding ``state_dict`` (built without random init)."""
    name, params = CASES[case]
    discriminator = build_discriminator(name, params, device="meta")
    discriminator.load_state_dict(state_dict, strict=True, assign=True)
    return discriminator


def strip_prefix(espnet_state_dict, prefix=PREFIX):
    assert all(key.startswith(prefix) for key in espnet_state_dict)
    return {key[len(prefix) :]: value for key, value in espnet_state_dict.items()}


def assert_golden_outputs(case, discriminator):
    """Every score, feature-map head and feature-map sum within golden tolerance."""
    real, fake = inputs()
    arrays = golden_arrays()
    with torch.no_grad():
        outs_real, outs_fake = discriminator.eval().forward_pair(real, fake)
    for which, outputs in (("real", outs_real), ("fake", outs_fake)):
        reference = golden_json()["cases"][case]["outputs"][f"{case}.{which}"]
        assert len(outputs) == len(reference)
        for i, sub in enumerate(outputs):
            key = f"{case}.{which}.d{i}"
            assert_close_array(sub[-1].numpy(), arrays[f"{key}.score"], f"{key}.score")
            assert len(sub) - 1 == reference[i]["n_fmaps"]
            for j, fmap in enumerate(sub[:-1]):
                what = f"{key}.fmap{j}"
                expected = reference[i]["fmaps"][j]
                assert list(fmap.shape) == expected["shape"], what
                head = fmap[0].flatten()[:64].numpy()
                assert_close_array(head, arrays[f"{what}.head"], what)
                assert_close_sum(fmap.double().sum().item(), expected["sum"], what)
                assert_close_sum(
                    fmap.double().abs().sum().item(), expected["abs_sum"], what
                )
                assert_close_sum(
                    fmap.double().square().sum().item(), expected["sq_sum"], what
                )


@pytest.mark.parametrize("case", list(CASES))
def test_imported_checkpoint_reproduces_golden_outputs(
    case, checkpoints, weights, tmp_path
):
    """Import writes prefixed, reference-ordered float32 tensors: golden outputs."""
    name, params = CASES[case]
    dst = tmp_path / "espnet.pth"
    summary = import_discriminator(checkpoints(case), dst, name, params)
    assert summary.entry == CONTAINERS[case][1]
    layout = reference_state_dict_layout(case)
    assert summary.num_tensors == len(layout)
    assert summary.num_elements == golden_json()["cases"][case]["n_params"]

    imported = torch.load(dst, weights_only=True)
    assert list(imported) == [PREFIX + key for key, _ in layout]
    state_dict = strip_prefix(imported)
    for key, value in weights(case).items():
        assert state_dict[key].dtype == torch.float32
        assert torch.equal(state_dict[key], value), key

    assert_golden_outputs(case, build_with(case, state_dict))


def test_load_pretrained_discriminator_gives_golden_outputs(checkpoints):
    """The Python API returns a ready discriminator (built without random init)."""
    discriminator = load_pretrained_discriminator(
        checkpoints("sovits_svc_mrd"), "sovits_mrd"
    )
    assert all(p.device.type == "cpu" for p in discriminator.parameters())
    assert all(p.requires_grad for p in discriminator.parameters())
    assert_golden_outputs("sovits_svc_mrd", discriminator)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_upcast_exactly(dtype, weights, tmp_path):
    reference = weights("sovits_svc_mrd")
    src = tmp_path / "half.pth"
    torch.save({"weight": {k: v.to(dtype) for k, v in reference.items()}}, src)
    summary = import_discriminator(src, tmp_path / "out.pth", "sovits_mrd")
    assert summary.upcast == len(reference)
    imported = strip_prefix(torch.load(tmp_path / "out.pth", weights_only=True))
    for key, value in reference.items():
        assert imported[key].dtype == torch.float32
        assert torch.equal(imported[key], value.to(dtype).float()), key
    assert any(not torch.equal(imported[k], v) for k, v in reference.items())


def test_distributed_data_parallel_prefix_is_removed(weights, tmp_path):
    reference = weights("sovits_svc_mrd")
    torch.save(
        {"model": {"module." + k: v for k, v in reference.items()}}, tmp_path / "d.pth"
    )
    import_discriminator(tmp_path / "d.pth", tmp_path / "out.pth", "sovits_mrd")
    imported = strip_prefix(torch.load(tmp_path / "out.pth", weights_only=True))
    assert list(imported) == list(reference)
    assert all(torch.equal(imported[k], v) for k, v in reference.items())


def test_whisper_vits_svc_dis_names_are_accepted(weights, tmp_path):
    """whisper-vits-svc (so-vits-svc-5.0 renamed) calls MSD "DIS"; same weights."""
    reference = weights("sovits_svc_full")
    renamed = {
        ("DIS." + k[len("MSD.") :] if k.startswith("MSD.") else k): v
        for k, v in reference.items()
    }
    assert sum(k.startswith("DIS.") for k in renamed) == 21
    torch.save(sovits_svc_training(renamed), tmp_path / "w.pt")
    summary = import_discriminator(tmp_path / "w.pt", tmp_path / "o.pth", "sovits_svc")
    assert summary.renamed == 21
    imported = strip_prefix(torch.load(tmp_path / "o.pth", weights_only=True))
    assert list(imported) == list(reference)
    assert all(torch.equal(imported[k], v) for k, v in reference.items())


@pytest.mark.parametrize(
    "case, fmt, entry",
    [
        ("gpt_sovits_mpd_v2pro", "gpt_sovits", "weight"),
        ("sovits_svc_full", "sovits_svc", "model_d"),
    ],
)
def test_round_trip_is_identity(case, fmt, entry, checkpoints, weights, tmp_path):
    """import -> export -> import: same tensors, reference key order, bit for bit."""
    name, params = CASES[case]
    first, exported, second = (tmp_path / f for f in ("a.pth", "ref.pth", "b.pth"))
    import_discriminator(checkpoints(case), first, name, params)
    summary = export_discriminator(first, exported, format=fmt)
    assert (summary.discriminator_type, summary.entry) == (name, "top level")

    written = torch.load(exported, weights_only=True)
    assert list(written) == [entry]
    assert [(k, list(v.shape)) for k, v in written[entry].items()] == (
        reference_state_dict_layout(case)
    )
    for key, value in weights(case).items():
        assert torch.equal(written[entry][key], value), key

    import_discriminator(exported, second, name, params)
    assert not list(tmp_path.glob(".*.tmp"))
    a = torch.load(first, weights_only=True)
    b = torch.load(second, weights_only=True)
    assert list(a) == list(b)
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_export_from_espnet_training_checkpoint(weights, tmp_path):
    """checkpoint.pth (model + reporter with numpy scalars + optimizers) exports."""
    conf = {"periods": [3]}
    layout = build_discriminator("sovits_mpd", conf, device="meta").state_dict()
    disc = {key: fill_value(key, list(value.shape)) for key, value in layout.items()}
    model = {"tts.generator.dec.conv_pre.bias": torch.zeros(4)}
    model.update({PREFIX + key: value for key, value in disc.items()})
    src = tmp_path / "checkpoint.pth"
    torch.save(
        {
            "model": model,
            "reporter": {
                "stats": {1: {"train": {"discriminator_loss": np.float64(2.5)}}},
                "epoch": 1,
            },
            "optimizers": [optimizer_state(), optimizer_state()],
            "schedulers": [{"last_epoch": 1}, {"last_epoch": 1}],
            "scaler": None,
        },
        src,
    )
    with pytest.raises(CheckpointError, match="matches no published layout; pass its"):
        export_discriminator(src, tmp_path / "x.pth", format="gpt_sovits")
    summary = export_discriminator(
        src,
        tmp_path / "out.pth",
        format="gpt_sovits",
        discriminator_type="sovits_mpd",
        discriminator_conf=conf,
    )
    assert summary.entry == "model"
    assert summary.sub_discriminators == ["s", "p3"]
    written = torch.load(tmp_path / "out.pth", weights_only=True)["weight"]
    assert list(written) == list(layout)
    assert all(torch.equal(written[key], disc[key]) for key in disc)
    assert not (tmp_path / "x.pth").exists()


def test_export_refuses_a_layout_the_format_cannot_hold(checkpoints, tmp_path):
    full, mrd = tmp_path / "full.pth", tmp_path / "mrd.pth"
    import_discriminator(checkpoints("sovits_svc_full"), full, "sovits_svc")
    import_discriminator(checkpoints("sovits_svc_mrd"), mrd, "sovits_mrd")
    with pytest.raises(CheckpointError, match="is sovits_svc; use format 'sovits_svc'"):
        export_discriminator(full, tmp_path / "x.pth", format="gpt_sovits")
    with pytest.raises(
        CheckpointError, match="is sovits_mrd; no reference layout holds it"
    ):
        export_discriminator(mrd, tmp_path / "x.pth", format="sovits_svc")
    with pytest.raises(
        CheckpointError,
        match=r"no tensors under prefix 'svs\.discriminator\.'.*tts\.discriminator\.",
    ):
        export_discriminator(
            mrd, tmp_path / "x.pth", format="sovits_svc", prefix="svs.discriminator"
        )
    assert not (tmp_path / "x.pth").exists()


def test_five_periods_into_seven_names_p17_and_p23(checkpoints, tmp_path):
    dst = tmp_path / "out.pth"
    with pytest.raises(CheckpointError) as error:
        import_discriminator(
            checkpoints("gpt_sovits_mpd_v1"), dst, "sovits_mpd", {"version": "v2Pro"}
        )
    message = str(error.value)
    assert "missing from the checkpoint: p17, p23." in message
    assert "Nothing was loaded" in message
    assert 'discriminator_conf={"version": "v2"}' in message
    assert not dst.exists()


def test_seven_periods_into_five_names_the_extra_p17_and_p23(checkpoints, tmp_path):
    with pytest.raises(CheckpointError) as error:
        import_discriminator(
            checkpoints("gpt_sovits_mpd_v2pro"), tmp_path / "o.pth", "sovits_mpd"
        )
    message = str(error.value)
    assert "in the checkpoint but not in the discriminator: p17, p23." in message
    assert 'discriminator_conf={"version": "v2Pro"}' in message


def test_wrong_shape_and_partial_coverage_are_named(weights, tmp_path):
    state_dict = dict(weights("sovits_svc_mrd"))
    state_dict["discriminators.2.convs.1.weight_v"] = torch.zeros(32, 32, 3, 8)
    del state_dict["discriminators.3.conv_post.bias"]
    state_dict["discriminators.0.extra.bias"] = torch.zeros(1)
    torch.save({"weight": state_dict}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as error:
        import_discriminator(tmp_path / "bad.pth", tmp_path / "o.pth", "sovits_mrd")
    message = str(error.value)
    assert (
        "missing from the checkpoint: r512 (1 of 18 tensors: "
        "discriminators.3.conv_post.bias)"
    ) in message
    assert (
        "in the checkpoint but not in the discriminator: r1024 (1 of 19 tensors: "
        "discriminators.0.extra.bias)"
    ) in message
    assert (
        "shape mismatch in r4096: 'discriminators.2.convs.1.weight_v' is "
        "[32, 32, 3, 8] in the checkpoint but [32, 32, 3, 9] in the discriminator"
    ) in message
    assert not (tmp_path / "o.pth").exists()


def test_wrong_discriminator_type_is_summarized_with_a_hint(weights):
    """An MRD checkpoint offered to the MPD: grouped problems, and what fits."""
    target = build_discriminator("sovits_mpd", device="meta")
    with pytest.raises(CheckpointError) as error:
        verify_coverage(
            target, weights("sovits_svc_mrd"), discriminator_type="sovits_mpd"
        )
    message = str(error.value)
    assert "missing from the checkpoint: s (3 of 21 tensors: " in message
    assert ", p7, p11;" in message
    assert (
        "shape mismatch in s (17 of 21 tensors, e.g. 'discriminators.0.convs.0.bias'"
        " is [32] in the checkpoint but [16] in the discriminator)"
    ) in message
    assert message.count("shape mismatch in") == 4
    assert "matches discriminator_type='sovits_mrd' with discriminator_conf={}" in (
        message
    )


class CreatesMarkerWhenUnpickled:
    """A payload whose unpickling would create a file: proof that it ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_unsafe_pickle_is_refused_and_never_run(writer, tmp_path):
    marker = tmp_path / "marker"
    src = tmp_path / "evil.pth"
    payload = {
        "weight": {"x": torch.zeros(1)},
        "hook": CreatesMarkerWhenUnpickled(marker),
    }
    if writer == "torch.save":
        torch.save(payload, src)
    else:
        with open(src, "wb") as f:
            pickle.dump(payload, f, protocol=2)

    with pytest.raises(
        CheckpointError, match="refused to load .*nothing in it was run"
    ):
        import_discriminator(src, tmp_path / "o.pth", "sovits_mpd")
    assert not marker.exists()
    assert not (tmp_path / "o.pth").exists()

    if writer == "torch.save":
        loaded = read_checkpoint(src, inert_objects=True)
        assert isinstance(loaded["hook"], InertObject)
        assert torch.equal(loaded["weight"]["x"], torch.zeros(1))
    else:
        with pytest.raises(CheckpointError, match="must be a zip-format"):
            read_checkpoint(src, inert_objects=True)
    assert not marker.exists()

    # The payload is live: an unrestricted load does create the marker.
    if writer == "torch.save":
        torch.load(src, weights_only=False)
    else:
        pickle.loads(src.read_bytes())
    assert marker.exists()


class HParams:
    """Like GPT-SoVITS's utils.HParams, which its saved weight files may carry."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def test_weights_next_to_a_config_object_load_with_inert_objects(weights, tmp_path):
    reference = weights("sovits_svc_mrd")
    src = tmp_path / "s2D.pth"
    half = {k: v.half() for k, v in reference.items()}
    torch.save({"weight": half, "config": HParams(lr=1e-4), "info": "488k"}, src)
    with pytest.raises(UnsafeCheckpointError, match="with inert_objects=True") as e:
        import_discriminator(src, tmp_path / "o.pth", "sovits_mrd")
    assert "--" not in str(e.value), "a library error names no command-line flag"
    summary = import_discriminator(
        src, tmp_path / "o.pth", "sovits_mrd", inert_objects=True
    )
    assert summary.entry == "weight" and summary.upcast == len(reference)
    imported = strip_prefix(torch.load(tmp_path / "o.pth", weights_only=True))
    assert all(torch.equal(imported[k], v.float()) for k, v in half.items())


def test_truncated_and_non_checkpoint_files_get_a_clear_error(checkpoints, tmp_path):
    data = checkpoints("sovits_svc_mrd").read_bytes()
    cases = {
        "truncated.pth": data[: len(data) // 2],
        "text.pth": b"not a checkpoint\n",
        "empty.pth": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(
            CheckpointError, match="it is truncated, corrupt or not a checkpoint"
        ):
            read_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pth")

    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list, not a dict"):
        import_discriminator(tmp_path / "list.pth", tmp_path / "o.pth", "sovits_mrd")
    torch.save({"config": {"a": 1}, "info": "x"}, tmp_path / "nodict.pth")
    with pytest.raises(CheckpointError, match="no state dict found.*'config', 'info'"):
        import_discriminator(tmp_path / "nodict.pth", tmp_path / "o.pth", "sovits_mrd")


def test_format_option_selects_the_entry(checkpoints, tmp_path):
    svc = checkpoints("sovits_svc_full")
    with pytest.raises(
        CheckpointError, match="format 'gpt_sovits' searched 'weight', 'model'"
    ):
        import_discriminator(svc, tmp_path / "o.pth", "sovits_svc", format="gpt_sovits")
    summary = import_discriminator(
        svc, tmp_path / "o.pth", "sovits_svc", format="sovits_svc"
    )
    assert summary.entry == "model_d"
    with pytest.raises(CheckpointError, match="searched 'model_d'"):
        import_discriminator(
            checkpoints("sovits_svc_mrd"),
            tmp_path / "o.pth",
            "sovits_mrd",
            format="sovits_svc",
        )


def test_bad_settings_are_refused_clearly(checkpoints):
    with pytest.raises(CheckpointError, match="unknown discriminator_type 'hifigan'"):
        build_discriminator("hifigan", device="meta")
    with pytest.raises(CheckpointError, match="cannot build sovits_mpd .*v9"):
        build_discriminator("sovits_mpd", {"version": "v9"}, device="meta")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        parse_discriminator_conf("{version: v2}")
    with pytest.raises(CheckpointError, match="must be a JSON object"):
        parse_discriminator_conf("[1]")
    src = checkpoints("sovits_svc_mrd")
    with pytest.raises(CheckpointError, match="is the input checkpoint"):
        import_discriminator(src, src, "sovits_mrd")
    with pytest.raises(
        CheckpointError,
        match=r"unknown checkpoint format 'ckpt'; choose one of \['auto', 'gpt_sovits'",
    ):
        import_discriminator(src, src.with_name("o.pth"), "sovits_mrd", format="ckpt")
    with pytest.raises(
        CheckpointError,
        match=r"unknown export format 'svc'; choose one of \['gpt_sovits', 'sovits_svc'\]",
    ):
        export_discriminator(src, src.with_name("o.pth"), format="svc")


def test_espnet_task_loads_the_import_through_the_finetune_config(
    checkpoints, weights, tmp_path, token_list, monkeypatch
):
    """ESPnet's GANTTSTask builds VITS with sovits_mpd from the fine-tuning config,
    and its own load_pretrained_model applies the config's init_param entry and
    the plain ``--init_param OUT.pth`` form; the discriminator then holds the
    checkpoint's weights exactly and the generator is untouched."""
    from espnet_sovits_disc import register

    register()
    from espnet2.tasks.gan_tts import GANTTSTask
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

    monkeypatch.chdir(tmp_path)
    args = GANTTSTask.get_parser().parse_args(
        ["--config", str(FINETUNE_CONFIG), "--token_list", str(token_list)]
    )
    assert args.tts_conf["discriminator_type"] == "sovits_mpd"
    assert args.ignore_init_mismatch is False
    (init_param,) = args.init_param
    imported = Path(init_param.split(":")[0])
    summary = import_discriminator(
        checkpoints("gpt_sovits_mpd_v1"),
        imported,
        "sovits_mpd",
        args.tts_conf["discriminator_params"],
    )
    assert summary.sub_discriminators == ["s", "p2", "p3", "p5", "p7", "p11"]

    # A tiny generator keeps the build fast; the discriminator, the features
    # and the upsampling (ESPnet checks it equals the hop) are as configured.
    configured = args.tts_conf["generator_params"]
    tiny = copy.deepcopy(TINY_GENERATOR_PARAMS)
    for key in ("decoder_upsample_scales", "decoder_upsample_kernel_sizes"):
        tiny[key] = configured[key]
    args.tts_conf["generator_params"] = tiny
    model = GANTTSTask.build_model(args)
    generator_before = {
        k: v.clone() for k, v in model.tts.generator.state_dict().items()
    }
    for entry in (init_param, str(imported)):
        with torch.no_grad():
            for parameter in model.tts.discriminator.parameters():
                parameter.zero_()
        load_pretrained_model(init_param=entry, model=model, ignore_init_mismatch=False)
        loaded = model.tts.discriminator.state_dict()
        assert list(loaded) == [
            key for key, _ in reference_state_dict_layout("gpt_sovits_mpd_v1")
        ]
        for key, value in weights("gpt_sovits_mpd_v1").items():
            assert torch.equal(loaded[key], value), (entry, key)
        after = model.tts.generator.state_dict()
        assert all(torch.equal(after[k], v) for k, v in generator_before.items())


def test_finetune_config_is_the_training_config_plus_init_param():
    """The fine-tuning config differs from train_gpt_sovits_v2.yaml only where
    fine-tuning needs it, so the imported discriminator fits that model."""
    finetune = yaml.safe_load(FINETUNE_CONFIG.read_text())
    train = yaml.safe_load(
        (FINETUNE_CONFIG.parent / "train_gpt_sovits_v2.yaml").read_text()
    )
    assert finetune.pop("init_param") == [
        "exp/pretrained/s2D2333k.espnet.pth:tts.discriminator:tts.discriminator"
    ]
    assert finetune.pop("ignore_init_mismatch") is False
    assert finetune.pop("max_epoch") <= train.pop("max_epoch")
    assert finetune == train


def run_cli(module, *args):
    return subprocess.run(
        [sys.executable, "-m", f"espnet_sovits_disc.bin.{module}", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_import_and_export(checkpoints, weights, tmp_path):
    espnet_file, exported = tmp_path / "espnet.pth", tmp_path / "s2D.pth"
    result = run_cli(
        "import_discriminator",
        "--src",
        checkpoints("gpt_sovits_mpd_v1"),
        "--dst",
        espnet_file,
        "--discriminator_type",
        "sovits_mpd",
        "--discriminator_conf",
        '{"version": "v2"}',
    )
    assert result.returncode == 0, result.stderr
    assert (
        "111 tensors (46,747,132 values) of sovits_mpd (s, p2, p3, p5, p7, p11)"
        in result.stdout
    )
    result = run_cli(
        "export_discriminator",
        "--src",
        espnet_file,
        "--dst",
        exported,
        "--format",
        "gpt_sovits",
    )
    assert result.returncode == 0, result.stderr
    written = torch.load(exported, weights_only=True)["weight"]
    assert [
        (k, list(v.shape)) for k, v in written.items()
    ] == reference_state_dict_layout("gpt_sovits_mpd_v1")
    assert all(
        torch.equal(written[k], v) for k, v in weights("gpt_sovits_mpd_v1").items()
    )


def test_import_takes_the_discriminator_from_the_training_config(
    checkpoints, tmp_path, capsys
):
    """--config makes the import fit the model the config trains, or fail."""
    config = ["--config", str(FINETUNE_CONFIG)]
    v2pro, v1 = checkpoints("gpt_sovits_mpd_v2pro"), checkpoints("gpt_sovits_mpd_v1")
    dst = tmp_path / "o.pth"
    assert import_cli.main(["--src", str(v2pro), "--dst", str(dst), *config]) == 1
    err = capsys.readouterr().err
    assert "in the checkpoint but not in the discriminator: p17, p23" in err
    assert not dst.exists()
    assert import_cli.main(["--src", str(v1), "--dst", str(dst), *config]) == 0
    out = capsys.readouterr().out
    assert "of sovits_mpd (s, p2, p3, p5, p7, p11) from 'weight'" in out
    both = ["--discriminator_type", "sovits_mpd", *config]
    assert import_cli.main(["--src", str(v1), "--dst", str(dst), *both]) == 1
    assert "--config sets the discriminator" in capsys.readouterr().err
    assert import_cli.main(["--src", str(v1), "--dst", str(dst)]) == 1
    assert "pass --discriminator_type or --config" in capsys.readouterr().err
    (tmp_path / "none.yaml").write_text("tts: vits\ntts_conf: {}\n")
    with pytest.raises(CheckpointError, match="sets no tts_conf.discriminator_type"):
        discriminator_from_config(tmp_path / "none.yaml")
    (tmp_path / "top.yaml").write_text(
        "discriminator_type: sovits_mpd\ndiscriminator_conf: {version: v2Pro}\n"
    )
    assert discriminator_from_config(tmp_path / "top.yaml") == (
        "sovits_mpd",
        {"version": "v2Pro"},
    )


def test_cli_mains_report_errors_and_exit_nonzero(checkpoints, tmp_path, capsys):
    status = import_cli.main(
        [
            "--src",
            str(checkpoints("gpt_sovits_mpd_v1")),
            "--dst",
            str(tmp_path / "o.pth"),
            "--discriminator_type",
            "sovits_mpd",
            "--discriminator_conf",
            '{"version": "v2Pro"}',
        ]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("import_discriminator: error: ") and err.count("\n") == 1
    assert "missing from the checkpoint: p17, p23" in err
    status = export_cli.main(
        [
            "--src",
            str(tmp_path / "none.pth"),
            "--dst",
            str(tmp_path / "x.pth"),
            "--format",
            "gpt_sovits",
        ]
    )
    err = capsys.readouterr().err
    assert status == 1 and "does not exist" in err and err.count("\n") == 1
    status = export_cli.main(
        [
            "--src",
            str(tmp_path / "none.pth"),
            "--dst",
            str(tmp_path / "x.pth"),
            "--format",
            "gpt_sovits",
            "--discriminator_conf",
            '{"version": "v2"}',
        ]
    )
    assert status == 1 and "needs --discriminator_type" in capsys.readouterr().err
    marker = tmp_path / "marker"
    torch.save({"weight": CreatesMarkerWhenUnpickled(marker)}, tmp_path / "evil.pth")
    status = import_cli.main(
        [
            "--src",
            str(tmp_path / "evil.pth"),
            "--dst",
            str(tmp_path / "o.pth"),
            "--discriminator_type",
            "sovits_mpd",
        ]
    )
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1
    assert err.startswith("import_discriminator: error: refused to load")
    assert err.endswith("; pass --inert_objects to do so\n")
    assert not marker.exists() and not (tmp_path / "o.pth").exists()
