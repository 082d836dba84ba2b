"""End to end through ESPnet's real command-line tools on a tiny corpus.

Collect statistics (through the recipe wrapper ``espnet_sovits_disc.run``),
train two iterations of ``tts: vits`` with ``--discriminator_type
sovits_mpd`` and of ``tts: sovits`` (discriminator options as YAML keys,
generator turn first), resume the latter for a second epoch (discriminator
turn first), synthesize with ``espnet2.bin.tts_inference.Text2Speech`` and,
as ``tts.sh`` does, with ``espnet2.bin.tts_inference`` through the wrapper.
Also the option handling of the plugin's GAN-TTS task and the wrapper's
script, ``-c`` and ``-m`` forms.
"""

import math
import sys

import pytest
import soundfile as sf
import torch
from espnet2.bin.tts_inference import Text2Speech
from espnet2.gan_tts.vits import VITS
from espnet2.tasks import gan_tts as espnet_gan_tts
import yaml

import espnet_sovits_disc
from espnet_sovits_disc.discriminators import SoVITSMultiPeriodDiscriminator
from espnet_sovits_disc.model import SoVITS
from espnet_sovits_disc.run import main as run_main
from espnet_sovits_disc.tasks.gan_tts import (
    GANTTSTask,
    apply_discriminator_options,
    apply_grad_clip,
)
from tests.scratch import scratch_folder
from tests.tiny_corpus import (
    HOP_LENGTH,
    TEXTS,
    data_args,
    run_module,
    tiny_train_config,
    train_args,
    write_config,
)

# ESPnet's command-line tools train and decode in subprocesses.
pytestmark = pytest.mark.slow

TRAIN = "espnet_sovits_disc.bin.gan_tts_train"


@pytest.fixture(scope="module")
def cli_root(tmp_path_factory):
    """This module's configs, statistics and experiments."""
    with scratch_folder(tmp_path_factory, "cli") as root:
        yield root


@pytest.fixture(scope="module")
def vits_config(cli_root):
    """A stock VITS config whose discriminator is ESPnet's, with parameters
    that ``sovits_mpd`` would refuse: only a reset makes the switch work."""
    return write_config(
        cli_root / "vits.yaml",
        tiny_train_config(
            "vits",
            discriminator_type="hifigan_multi_period_discriminator",
            discriminator_params={"periods": [2, 3]},
        ),
    )


@pytest.fixture(scope="module")
def stats(tiny_corpus, cli_root, vits_config):
    output_dir = cli_root / "stats"
    run_module(
        "espnet_sovits_disc.run",
        [
            "-m",
            "espnet2.bin.gan_tts_train",
            "--collect_stats",
            "true",
            "--config",
            str(vits_config),
            *data_args(tiny_corpus),
            "--train_shape_file",
            str(tiny_corpus.train_dir / "wav.scp"),
            "--valid_shape_file",
            str(tiny_corpus.valid_dir / "wav.scp"),
            "--output_dir",
            str(output_dir),
        ],
    )
    return output_dir


@pytest.fixture(scope="module")
def vits_exp(tiny_corpus, cli_root, vits_config, stats):
    exp = cli_root / "exp_vits"
    run_module(
        TRAIN,
        train_args(tiny_corpus, vits_config, stats, exp)
        + ["--discriminator_type", "sovits_mpd"],
    )
    return exp


def sovits_args(tiny_corpus, stats, exp):
    """Arguments of the ``tts: sovits`` run, its config beside ``exp``."""
    config = tiny_train_config("sovits")
    config.update(
        discriminator_type="sovits_mpd",
        discriminator_conf={"periods": [2]},
        generator_first=True,
    )
    return train_args(
        tiny_corpus, write_config(exp.parent / "sovits.yaml", config), stats, exp
    )


@pytest.fixture(scope="module")
def sovits_exp(tiny_corpus, cli_root, stats):
    exp = cli_root / "exp_sovits"
    run_module(TRAIN, sovits_args(tiny_corpus, stats, exp))
    return exp, load_reporter(exp)


@pytest.fixture(scope="module")
def resumed_sovits_exp(tiny_corpus, stats, sovits_exp):
    """Second epoch from checkpoint.pth, now with the discriminator turn first."""
    exp, _ = sovits_exp
    resume = ["--max_epoch", "2", "--resume", "true", "--generator_first", "false"]
    run_module(TRAIN, sovits_args(tiny_corpus, stats, exp) + resume)
    return exp


def load_reporter(exp):
    return torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)[
        "reporter"
    ]


def read_config(exp):
    with open(exp / "config.yaml") as f:
        return yaml.safe_load(f)


def test_collect_stats_through_the_recipe_wrapper(tiny_corpus, stats):
    for split, count in (("train", 4), ("valid", 2)):
        lines = (stats / split / "speech_shape").read_text().split("\n")
        shapes = dict(line.split() for line in lines if line)
        assert len(shapes) == count
        texts = dict(
            line.split(" ", 1)
            for line in (getattr(tiny_corpus, f"{split}_dir") / "text")
            .read_text()
            .splitlines()
        )
        for utt_id, text in texts.items():
            assert int(shapes[utt_id]) == int(tiny_corpus.fs * (0.5 + 0.03 * len(text)))


def test_vits_trains_with_discriminator_type_flag(vits_exp):
    config = read_config(vits_exp)
    assert config["tts"] == "vits"
    assert config["tts_conf"]["discriminator_type"] == "sovits_mpd"
    assert config["tts_conf"]["discriminator_params"] == {}
    state = torch.load(vits_exp / "1epoch.pth", map_location="cpu")
    assert "tts.discriminator.discriminators.5.conv_post.weight_g" in state
    assert "tts.discriminator.discriminators.6.conv_post.weight_g" not in state
    train = load_reporter(vits_exp)["stats"][1]["train"]
    assert train["total_count"] == 2
    assert math.isfinite(train["discriminator_loss"])


def test_sovits_trains_with_yaml_keys_and_per_sub_discriminator_stats(sovits_exp):
    exp, reporter = sovits_exp
    config = read_config(exp)
    assert config["tts"] == "sovits"
    assert config["generator_first"] is True
    assert config["tts_conf"]["discriminator_type"] == "sovits_mpd"
    assert config["tts_conf"]["discriminator_params"] == {"periods": [2]}
    train = reporter["stats"][1]["train"]
    assert train["total_count"] == 2
    for name in ("s", "p2"):
        for key in (
            "discriminator_real_loss",
            "discriminator_fake_loss",
            "generator_adv_loss",
            "generator_feat_match_loss",
        ):
            assert math.isfinite(train[f"{key}_{name}"]), key
            assert (exp / "images" / f"{key}_{name}.png").is_file()
    assert "discriminator_fake_loss_p3" not in train
    valid = reporter["stats"][1]["valid"]
    assert math.isfinite(valid["generator_adv_loss_p2"])


def test_resume_continues_from_the_checkpoint(sovits_exp, resumed_sovits_exp):
    _, first = sovits_exp
    reporter = load_reporter(resumed_sovits_exp)
    assert read_config(resumed_sovits_exp)["generator_first"] is False
    assert reporter["epoch"] == 2
    assert reporter["stats"][1] == first["stats"][1]
    assert reporter["stats"][2]["train"]["total_count"] == 4
    assert (resumed_sovits_exp / "2epoch.pth").is_file()


def synthesize(exp, model_file, seed, **kwargs):
    espnet_sovits_disc.register()
    text2speech = Text2Speech(
        train_config=exp / "config.yaml", model_file=exp / model_file, **kwargs
    )
    torch.manual_seed(seed)
    return text2speech, text2speech(TEXTS[1])


@pytest.mark.parametrize("which", ["vits", "sovits"])
def test_synthesize_with_text2speech(which, request):
    if which == "vits":
        exp, model_file = request.getfixturevalue("vits_exp"), "1epoch.pth"
    else:
        exp, model_file = request.getfixturevalue("resumed_sovits_exp"), "2epoch.pth"
    quiet = dict(noise_scale=0.0, noise_scale_dur=0.0)
    text2speech, out = synthesize(exp, model_file, seed=0, **quiet)
    assert isinstance(text2speech.tts, VITS)
    assert isinstance(text2speech.tts, SoVITS) == (which == "sovits")
    assert isinstance(text2speech.tts.discriminator, SoVITSMultiPeriodDiscriminator)
    assert text2speech.decode_conf["noise_scale"] == 0.0
    wav, duration = out["wav"], out["duration"]
    assert wav.dim() == 1 and wav.numel() > 0
    assert wav.numel() == int(duration.sum().item()) * HOP_LENGTH
    assert text2speech.fs == 16000

    _, again = synthesize(exp, model_file, seed=1, **quiet)
    assert torch.equal(again["wav"], wav)
    _, noisy = synthesize(
        exp, model_file, seed=1, noise_scale=0.667, noise_scale_dur=0.8
    )
    assert not (noisy["wav"].shape == wav.shape and torch.equal(noisy["wav"], wav))


def test_recipe_inference_through_the_wrapper(tiny_corpus, resumed_sovits_exp, tmp_path):
    """What tts.sh runs: a stock ESPnet module that needs the registration
    (``tts: sovits`` and ``sovits_mpd``) before it builds the model."""
    output_dir = tmp_path / "decode"
    run_module(
        "espnet_sovits_disc.run",
        [
            "-m",
            "espnet2.bin.tts_inference",
            "--ngpu",
            "0",
            "--train_config",
            str(resumed_sovits_exp / "config.yaml"),
            "--model_file",
            str(resumed_sovits_exp / "2epoch.pth"),
            "--data_path_and_name_and_type",
            f"{tiny_corpus.valid_dir}/text,text,text",
            "--output_dir",
            str(output_dir),
            "--noise_scale",
            "0.0",
            "--noise_scale_dur",
            "0.0",
        ],
    )
    lines = (output_dir / "durations" / "durations").read_text().splitlines()
    durations = {line.split()[0]: line.split()[1:] for line in lines}
    assert sorted(durations) == ["utt00", "utt01"]
    for utt_id, frames in durations.items():
        wav, fs = sf.read(output_dir / "wav" / f"{utt_id}.wav")
        assert fs == 16000
        assert len(wav) == sum(int(float(d)) for d in frames) * HOP_LENGTH


class _NoDiscriminator:
    def __init__(self, idim: int = 1):
        pass


def test_discriminator_type_resets_parameters_only_on_a_switch():
    hifigan = {
        "discriminator_type": "hifigan_multi_period_discriminator",
        "discriminator_params": {"periods": [2, 3]},
    }
    switched = apply_discriminator_options(VITS, hifigan, "sovits_mpd", None)
    assert switched == {"discriminator_type": "sovits_mpd", "discriminator_params": {}}
    assert hifigan["discriminator_type"] == "hifigan_multi_period_discriminator"
    same = apply_discriminator_options(
        VITS, hifigan, "hifigan_multi_period_discriminator", None
    )
    assert same == hifigan
    configured = apply_discriminator_options(
        VITS, hifigan, "sovits_mpd", {"version": "v2Pro"}
    )
    assert configured["discriminator_params"] == {"version": "v2Pro"}
    only_conf = apply_discriminator_options(VITS, hifigan, None, {"periods": [5]})
    assert only_conf == {
        "discriminator_type": "hifigan_multi_period_discriminator",
        "discriminator_params": {"periods": [5]},
    }
    # The model's default type counts when tts_conf names none.
    assert apply_discriminator_options(
        SoVITS, {"discriminator_params": {"periods": [2]}}, "sovits_mpd", None
    )["discriminator_params"] == {"periods": [2]}
    assert (
        apply_discriminator_options(
            VITS, {"discriminator_params": {"x": 1}}, "sovits_mpd", None
        )["discriminator_params"]
        == {}
    )


def test_unknown_discriminator_and_missing_discriminator_errors():
    with pytest.raises(
        ValueError, match="unknown discriminator_type 'mpd'.*sovits_mpd"
    ):
        apply_discriminator_options(VITS, {}, "mpd", None)
    with pytest.raises(
        ValueError, match="unknown discriminator_type 'bogus'.*sovits_svc"
    ):
        apply_discriminator_options(VITS, {"discriminator_type": "bogus"}, None, None)
    with pytest.raises(ValueError, match="has no discriminator"):
        apply_discriminator_options(_NoDiscriminator, {}, "sovits_mpd", None)


def test_yaml_keys_accepted_by_plugin_task_only(tmp_path, token_list, capsys):
    config = tiny_train_config("vits")
    config.update(
        discriminator_type="sovits_mrd", discriminator_conf={"lrelu_slope": 0.1}
    )
    path = write_config(tmp_path / "train.yaml", config)
    cmd = ["--config", str(path), "--token_list", str(token_list)]
    with pytest.raises(SystemExit):
        espnet_gan_tts.GANTTSTask.get_parser().parse_args(cmd)
    assert "unrecognized arguments: discriminator_type" in capsys.readouterr().err
    args = GANTTSTask.get_parser().parse_args(
        cmd + ["--discriminator_conf", "lrelu_slope=0.3"]
    )
    assert args.discriminator_conf == {"lrelu_slope": 0.3}
    model = GANTTSTask.build_model(args)
    assert [d.lrelu_slope for d in model.tts.discriminator.discriminators] == [0.3] * 4
    assert args.tts_conf["discriminator_params"] == {"lrelu_slope": 0.3}

    bad = GANTTSTask.get_parser().parse_args(cmd + ["--discriminator_type", "sovits"])
    with pytest.raises(
        ValueError, match="available: .*sovits_mpd, sovits_mrd, sovits_svc"
    ):
        GANTTSTask.build_model(bad)


def test_run_wrapper_script_and_code_forms(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "_wrapper_sibling.py").write_text("VALUE = 'b'\n")
    script = tmp_path / "script.py"
    out = tmp_path / "out.txt"
    script.write_text(
        "import sys\n"
        "from espnet2.gan_tts.jets.jets import AVAILABLE_DISCRIMINATORS as D\n"
        "from _wrapper_sibling import VALUE\n"
        "words = sys.argv[2:] + [VALUE, str('sovits_svc' in D)]\n"
        "open(sys.argv[1], 'w').write(' '.join(words))\n"
    )
    run_main([str(script), str(out), "a"])
    assert out.read_text() == "a b True"
    run_main(["-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[0])", str(out)])
    assert out.read_text() == "-c"
    src = tmp_path / "in.json"
    src.write_text('{"b": 1}')
    run_main(["-m", "json.tool", str(src), str(out)])
    assert yaml.safe_load(out.read_text()) == {"b": 1}
    with pytest.raises(SystemExit, match="usage"):
        run_main(["-m"])


def test_grad_clip_keeps_generator_turn_discriminator_gradients():
    """ESPnet clips the norm over all parameters, so with grad_clip > 0 the
    discriminator's generator-turn gradients stay unless the config says."""
    option = "discriminator_grads_in_generator_turn"
    assert apply_grad_clip(SoVITS, {}, -1.0) == {}
    assert apply_grad_clip(SoVITS, {}, 0.0) == {}
    assert apply_grad_clip(SoVITS, {}, 1.0) == {option: True}
    assert apply_grad_clip(SoVITS, {option: False}, 1.0) == {option: False}
    assert apply_grad_clip(VITS, {}, 1.0) == {}


def test_task_keeps_generator_turn_discriminator_gradients_only_when_clipping(
    tmp_path, token_list
):
    path = write_config(tmp_path / "train.yaml", tiny_train_config("sovits"))
    cmd = ["--config", str(path), "--token_list", str(token_list)]
    for extra, expected in [
        ([], False),
        (["--grad_clip", "1.0"], True),
        (
            [
                "--grad_clip",
                "1.0",
                "--tts_conf",
                "discriminator_grads_in_generator_turn=false",
            ],
            False,
        ),
    ]:
        args = GANTTSTask.get_parser().parse_args(cmd + extra)
        model = GANTTSTask.build_model(args)
        assert model.tts.discriminator_grads_in_generator_turn is expected, extra
    # Without grad_clip in the config, ESPnet's default (5.0) clips.
    config = tiny_train_config("sovits")
    del config["grad_clip"]
    path = write_config(tmp_path / "default_clip.yaml", config)
    args = GANTTSTask.get_parser().parse_args(
        ["--config", str(path), "--token_list", str(token_list)]
    )
    assert args.grad_clip > 0
    assert GANTTSTask.build_model(args).tts.discriminator_grads_in_generator_turn
