"""GPT-SoVITS generator files into ESPnet and back out, on weights built by the
golden fill rule (tests/data/golden_s2): the SoVITS_weights layout written the
way GPT-SoVITS writes it (float16, no enc_q, a pickled ``utils.HParams``
config, the ``05`` header for v2Pro) round-trips bit for bit; the exported
file reads back the way GPT-SoVITS's ``load_sovits_new`` and inference read
it; training checkpoints keep ``enc_q`` and load with ESPnet's
``--init_param`` machinery; every mismatch is a clear error."""

import io
import sys
import types

import pytest
import torch
from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

from espnet_sovits_disc.bin.gpt_sovits_weights import main as weights_main
from espnet_sovits_disc.gpt_sovits.espnet_model import SSLGANTTSModel
from espnet_sovits_disc.gpt_sovits import build_synthesizer
from espnet_sovits_disc.gpt_sovits.gan_tts import GPTSoVITS
from espnet_sovits_disc.pretrained import CheckpointError
from espnet_sovits_disc.pretrained.synthesizer import (
    export_synthesizer,
    import_synthesizer,
    read_synthesizer_file,
)
from espnet_sovits_disc.registry import get_discriminator_class
from tests.golden_s2 import VERSIONS, fill_value, golden_json
from tests.gpt_sovits_corpus import gpt_sovits_train_config
from tests.tiny_corpus import write_config

HEADERS = {"v2": b"PK", "v2Pro": b"05"}


def golden_weights(version):
    layout = golden_json()["versions"][version]["state_dict"]
    return {key: fill_value(key, shape) for key, shape in layout}


class HParams:
    """Stands for GPT-SoVITS's ``utils.HParams``: attributes, nested."""

    def __init__(self, **entries):
        for key, value in entries.items():
            setattr(self, key, HParams(**value) if isinstance(value, dict) else value)


def save_with_hparams(obj, header=b"PK"):
    """``torch.save`` bytes pickling ``utils.HParams`` as GPT-SoVITS does
    (``process_ckpt.my_save2`` then writes the version over ``PK``)."""
    utils = types.ModuleType("utils")
    utils.HParams = HParams
    HParams.__module__, HParams.__qualname__ = "utils", "HParams"
    sys.modules["utils"] = utils
    try:
        buffer = io.BytesIO()
        torch.save(obj, buffer)
    finally:
        del sys.modules["utils"]
        HParams.__module__, HParams.__qualname__ = __name__, "HParams"
    return header + buffer.getvalue()[2:]


def write_sovits_weights(path, version):
    """An exported SoVITS_weights file of the golden weights, as savee writes it."""
    weights = golden_weights(version)
    config = HParams(
        train={"segment_size": 20480, "pretrained_s2G": "s2G2333k.pth"},
        data={"filter_length": 2048, "hop_length": 640, "n_speakers": 300},
        model={**golden_json()["versions"][version]["constructor"]},
        version=version,
    )
    exported = {
        "weight": {k: v.half() for k, v in weights.items() if "enc_q" not in k},
        "config": config,
        "info": "8epoch_800iteration",
    }
    path.write_bytes(save_with_hparams(exported, HEADERS[version]))
    return exported


def load_the_gpt_sovits_way(path):
    """process_ckpt.load_sovits_new: restore PK, then a plain torch.load."""
    data = path.read_bytes()
    if data[:2] != b"PK":
        data = b"PK" + data[2:]
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def load_into_espnet_model(init_file, tts):
    """``tts`` inside ESPnet's GAN-TTS model, loaded from ``init_file`` by
    ESPnet's own --init_param loader; returns ``tts``."""
    model = SSLGANTTSModel(
        feats_extract=None, normalize=None, pitch_extract=None, pitch_normalize=None,
        energy_extract=None, energy_normalize=None, tts=tts,
    )
    load_pretrained_model(str(init_file), model, ignore_init_mismatch=False)
    return tts


@pytest.mark.parametrize("version", VERSIONS)
def test_import_export_import_is_bit_identical(tmp_path, version):
    original = write_sovits_weights(tmp_path / "voice.pth", version)
    first = import_synthesizer(
        tmp_path / "voice.pth", tmp_path / "a.pth", version=version, reinit_enc_q=True
    )
    assert first.posterior_encoder == "re-initialised" and first.upcast == first.num_tensors
    export_synthesizer(
        tmp_path / "a.pth", tmp_path / "exported.pth", epoch=8, iteration=800
    )
    import_synthesizer(tmp_path / "exported.pth", tmp_path / "b.pth", reinit_enc_q=True)
    a, b = torch.load(tmp_path / "a.pth"), torch.load(tmp_path / "b.pth")
    assert list(a) == list(b)
    assert all(a[k].dtype == torch.float32 and torch.equal(a[k], b[k]) for k in a)
    exported = load_the_gpt_sovits_way(tmp_path / "exported.pth")
    assert (tmp_path / "exported.pth").read_bytes()[:2] == HEADERS[version]
    assert list(exported["weight"]) == list(original["weight"])
    for key, tensor in original["weight"].items():
        assert exported["weight"][key].dtype == torch.float16
        assert torch.equal(exported["weight"][key], tensor), key


@pytest.mark.parametrize("version", VERSIONS)
def test_exported_config_builds_the_reference_synthesizer(tmp_path, version):
    """The fields GPT-SoVITS's inference reads: SynthesizerTrn(filter_length //
    2 + 1, segment_size // hop_length, n_speakers=..., **hps.model)."""
    weights = {f"tts.generator.{k}": v for k, v in golden_weights(version).items()}
    torch.save(weights, tmp_path / "model.pth")
    export_synthesizer(tmp_path / "model.pth", tmp_path / "exported.pth")
    exported = load_the_gpt_sovits_way(tmp_path / "exported.pth")
    config, constructor = exported["config"], golden_json()["versions"][version]["constructor"]
    assert config["data"]["filter_length"] // 2 + 1 == constructor["spec_channels"]
    assert config["train"]["segment_size"] // config["data"]["hop_length"] == constructor["segment_size"]
    assert config["data"]["n_speakers"] == constructor["n_speakers"]
    assert config["model"] == {
        k: v for k, v in constructor.items() if k not in ("spec_channels", "segment_size", "n_speakers")
    }
    assert exported["info"] == "0epoch_0iteration"
    assert not any("enc_q" in k for k in exported["weight"])
    assert len(exported["weight"]) == len(weights) - sum("enc_q" in k for k in weights)


@pytest.mark.parametrize("version", VERSIONS)
def test_training_checkpoint_and_discriminator_initialise_the_espnet_model(tmp_path, version):
    """G_<step>.pth (float32, enc_q) + s2D*.pth -> --init_param, loaded by
    ESPnet's load_pretrained_model into tts: gpt_sovits."""
    weights = golden_weights(version)
    torch.save({"model": weights, "iteration": 800, "optimizer": {}, "learning_rate": 1e-4},
               tmp_path / "G_800.pth")
    discriminator = get_discriminator_class("sovits_mpd")(version=version)
    torch.save({"weight": discriminator.state_dict()}, tmp_path / "s2D.pth")
    summary = import_synthesizer(
        tmp_path / "G_800.pth", tmp_path / "init.pth", version=version,
        discriminator_src=tmp_path / "s2D.pth",
    )
    assert summary.posterior_encoder == "included" and summary.num_tensors == len(weights)
    assert summary.discriminator_tensors == len(discriminator.state_dict())
    tts = load_into_espnet_model(tmp_path / "init.pth", GPTSoVITS(idim=732, version=version))
    loaded = tts.generator.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in weights.items())
    ours = tts.discriminator.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in discriminator.state_dict().items())


def test_v1_file_imports_trains_and_exports_as_gpt_sovits_reads_it(tmp_path):
    """s2G488k.pth (322 text symbols, reference encoder on 1025 bins), with
    s2D488k.pth: detected as v1, into tts: gpt_sovits v1, and back out as a
    plain zip (GPT-SoVITS marks only v2Pro and later) whose config says v1."""
    with torch.device("meta"):
        layout = build_synthesizer("v1").state_dict()
    weights = {key: fill_value(key, value.shape) for key, value in layout.items()}
    torch.save({"weight": weights}, tmp_path / "s2G488k.pth")
    discriminator = get_discriminator_class("sovits_mpd")(version="v1")
    torch.save({"weight": discriminator.state_dict()}, tmp_path / "s2D488k.pth")
    summary = import_synthesizer(
        tmp_path / "s2G488k.pth", tmp_path / "init.pth",
        discriminator_src=tmp_path / "s2D488k.pth",
    )
    assert summary.version == "v1" and summary.posterior_encoder == "included"
    tts = load_into_espnet_model(tmp_path / "init.pth", GPTSoVITS(idim=322, version="v1"))
    loaded = tts.generator.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in weights.items())
    export_synthesizer(tmp_path / "init.pth", tmp_path / "exported.pth")
    assert (tmp_path / "exported.pth").read_bytes()[:2] == b"PK"
    exported = load_the_gpt_sovits_way(tmp_path / "exported.pth")
    assert exported["config"]["model"]["version"] == "v1"
    assert exported["weight"]["enc_p.text_embedding.weight"].shape == (322, 192)
    assert list(exported["weight"]) == [k for k in weights if "enc_q" not in k]
    import_synthesizer(tmp_path / "exported.pth", tmp_path / "again.pth", reinit_enc_q=True)
    first, again = torch.load(tmp_path / "init.pth"), torch.load(tmp_path / "again.pth")
    for key, tensor in again.items():
        if key.startswith("tts.generator.") and "enc_q" not in key:
            assert torch.equal(tensor, first[key].half().float()), key
    with pytest.raises(CheckpointError, match="holds a v1 generator but the configuration says version 'v2'"):
        import_synthesizer(tmp_path / "s2G488k.pth", tmp_path / "o.pth", version="v2")
    assert weights_main(
        ["import", "--src", str(tmp_path / "s2G488k.pth"), "--dst", str(tmp_path / "cli.pth"),
         "--version", "v1", "--discriminator_src", str(tmp_path / "s2D488k.pth")]
    ) == 0
    cli, init = torch.load(tmp_path / "cli.pth"), torch.load(tmp_path / "init.pth")
    assert list(cli) == list(init) and all(torch.equal(cli[k], init[k]) for k in init)


def test_pickled_config_is_inert_data(tmp_path):
    write_sovits_weights(tmp_path / "voice.pth", "v2Pro")
    assert "utils" not in sys.modules
    read = read_synthesizer_file(tmp_path / "voice.pth")
    assert "utils" not in sys.modules
    assert read.header_version == "v2Pro" and read.entry == "weight"
    assert read.config["model"]["version"] == "v2Pro"
    assert read.config["train"]["pretrained_s2G"] == "s2G2333k.pth"
    assert read.info == "8epoch_800iteration"


def test_clear_errors(tmp_path):
    write_sovits_weights(tmp_path / "voice.pth", "v2Pro")
    with pytest.raises(CheckpointError, match="has no enc_q .* fine-tuning needs enc_q.*reinit_enc_q"):
        import_synthesizer(tmp_path / "voice.pth", tmp_path / "o.pth")
    with pytest.raises(CheckpointError, match="holds a v2Pro generator but the configuration says version 'v2'"):
        import_synthesizer(tmp_path / "voice.pth", tmp_path / "o.pth", version="v2", reinit_enc_q=True)
    with pytest.raises(CheckpointError, match=r"does not fit a v2Pro SynthesizerTrn .*: 290 with other shapes: dec.conv_pre.weight: \(512, 192, 7\) vs \(32, 192, 7\)"):
        import_synthesizer(
            tmp_path / "voice.pth", tmp_path / "o.pth", reinit_enc_q=True,
            generator_params={"upsample_initial_channel": 32},
        )
    data = bytearray((tmp_path / "voice.pth").read_bytes())
    data[:2] = b"01"
    (tmp_path / "marked_v2.pth").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is marked v2 but its weights are v2Pro"):
        import_synthesizer(tmp_path / "marked_v2.pth", tmp_path / "o.pth", reinit_enc_q=True)
    data[:2] = b"XY"
    (tmp_path / "junk.pth").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="starts with b'XY'"):
        import_synthesizer(tmp_path / "junk.pth", tmp_path / "o.pth")
    flow_matching = golden_weights("v2")
    del flow_matching["enc_p.text_embedding.weight"]
    torch.save({"weight": flow_matching}, tmp_path / "s2Gv3.pth")
    with pytest.raises(CheckpointError, match="GPT-SoVITS v3/v4 generator .* start from s2G488k.pth"):
        import_synthesizer(tmp_path / "s2Gv3.pth", tmp_path / "o.pth")
    with pytest.raises(CheckpointError, match="output .* is the input"):
        import_synthesizer(tmp_path / "voice.pth", tmp_path / "voice.pth")


def test_command_line_reads_the_training_config(tmp_path, capsys):
    write_sovits_weights(tmp_path / "voice.pth", "v2")
    config = write_config(tmp_path / "train.yaml", gpt_sovits_train_config("v2Pro"))
    status = weights_main(
        ["import", "--src", str(tmp_path / "voice.pth"), "--dst", str(tmp_path / "o.pth"),
         "--config", str(config), "--reinit_enc_q"]
    )
    assert status == 1
    assert "holds a v2 generator but the configuration says version 'v2Pro'" in capsys.readouterr().err
    full = write_config(tmp_path / "full.yaml", {"tts": "gpt_sovits", "tts_conf": {"version": "v2"}})
    assert weights_main(
        ["import", "--src", str(tmp_path / "voice.pth"), "--dst", str(tmp_path / "o.pth"),
         "--config", str(full), "--reinit_enc_q"]
    ) == 0
    assert "of GPT-SoVITS v2, enc_q re-initialised" in capsys.readouterr().out
    assert weights_main(
        ["export", "--src", str(tmp_path / "o.pth"), "--dst", str(tmp_path / "e.pth"),
         "--config", str(full), "--epoch", "3", "--iteration", "30"]
    ) == 0
    assert load_the_gpt_sovits_way(tmp_path / "e.pth")["info"] == "3epoch_30iteration"
