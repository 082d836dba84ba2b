"""LJSpeech recipe configurations and the conf/ presets.

Every ``egs/ljspeech/tts1/conf/tuning/train_*.yaml`` of ``tts: sovits`` is
parsed by the plugin's task parser and built at full size (GPT-SoVITS's
s2.json numbers are checked on the built model), and takes one CPU training
iteration through the plugin's trainer with the generator shrunk (the
discriminator, losses, optimizers and schedulers kept as configured). The
``*_gpt_sovits_s2_*.yaml`` configs of ``tts: gpt_sovits`` are built at full
size and checked against GPT-SoVITS's s2.json / s2v2Pro.json and the golden
parameter counts (their CLI run is in test_gpt_sovits_cli.py and
test_recipes.py). Every preset in
``conf/`` is merged into a config with ``--tts_conf "$(cat preset)"`` and
built.
"""

import copy
import importlib.util
import math
from pathlib import Path

import pytest
import torch
import yaml

from espnet_sovits_disc.bin import gan_tts_train
from espnet_sovits_disc.discriminators import (
    SoVITSMultiPeriodDiscriminator,
    SoVITSMultiResolutionDiscriminator,
    SoVITSSVCDiscriminator,
)
from espnet_sovits_disc.tasks.gan_tts import GANTTSTask
from tests.golden_s2 import golden_json
from tests.gpt_sovits_corpus import build_gpt_sovits_model

ROOT = Path(__file__).resolve().parents[1]
TUNING = ROOT / "egs" / "ljspeech" / "tts1" / "conf" / "tuning"
S2_CONFIGS = sorted(TUNING.glob("*_gpt_sovits_s2_*.yaml"))
TRAIN_CONFIGS = sorted(set(TUNING.glob("train_*.yaml")) - set(S2_CONFIGS))
PRESETS = sorted((ROOT / "conf").glob("*.yaml"))
MINI_CORPUS = ROOT / "egs" / "mini_ljspeech" / "tts1" / "corpus" / "LJSpeech-mini"
LJSPEECH_TRAIN_UTTS = 12600  # tr_no_dev of local/data.sh

GPT_SOVITS_MEL = {
    "fs": 32000,
    "n_fft": 2048,
    "hop_length": 640,
    "win_length": 2048,
    "n_mels": 128,
    "fmin": 0,
    "fmax": None,
}
GPT_SOVITS_ADAMW = {
    "lr": 1.0e-4,
    "betas": [0.8, 0.99],
    "eps": 1.0e-9,
    "weight_decay": 0.01,
}

# Shrinks only the generator: the discriminator is what the configs are about.
TINY_GENERATOR = {
    "hidden_channels": 8,
    "segment_size": 4,  # 4 x hop 640 = 2560 samples (> 1808 for the MRD)
    "text_encoder_ffn_expand": 1,
    "text_encoder_blocks": 1,
    "decoder_channels": 32,
    "decoder_resblock_kernel_sizes": [3],
    "decoder_resblock_dilations": [[1]],
    "posterior_encoder_layers": 1,
    "flow_flows": 1,
    "flow_layers": 1,
    "stochastic_duration_predictor_flows": 1,
    "stochastic_duration_predictor_dds_conv_layers": 1,
}


def load(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(config: Path, token_list: Path, *extra: str):
    args = GANTTSTask.get_parser().parse_args(
        [
            "--config",
            str(config),
            "--token_list",
            str(token_list),
            "--token_type",
            "char",
            "--output_dir",
            "unused",
            *extra,
        ]
    )
    return args, GANTTSTask.build_model(args)


@pytest.mark.parametrize("config", TRAIN_CONFIGS, ids=lambda p: p.stem)
def test_ljspeech_config_is_the_gpt_sovits_stage2_setup(config, token_list):
    args, model = build(config, token_list)
    tts = model.tts
    conf = args.tts_conf
    gen = conf["generator_params"]
    assert args.tts == "sovits" and type(tts).__name__ == "SoVITS"
    # 32 kHz, linear spectrogram 2048/640/2048, hop = decoder upsampling.
    assert conf["sampling_rate"] == 32000 and tts.fs == 32000
    assert args.feats_extract == "linear_spectrogram"
    assert args.feats_extract_conf == {
        "n_fft": 2048,
        "hop_length": 640,
        "win_length": 2048,
    }
    assert gen["decoder_upsample_scales"] == [10, 8, 2, 2, 2]
    assert conf["generator_type"] == "sovits_vits_generator"
    upsamplers = [stage[-1] for stage in tts.generator.decoder.upsamples]
    assert [layer.kernel_size[0] for layer in upsamplers] == [16, 16, 8, 2, 2]
    assert math.prod(gen["decoder_upsample_scales"]) == 640
    assert gen["decoder_channels"] == 512 and gen["hidden_channels"] == 192
    assert gen["segment_size"] * 640 == 20480
    assert tts.generator.segment_size == 32
    # GPT-SoVITS losses and weights.
    assert conf["mel_loss_params"] == GPT_SOVITS_MEL
    # Optimizers: AdamW for both, exponential decay rescaled to ESPnet epochs.
    assert args.optim == args.optim2 == "adamw"
    assert args.optim_conf == args.optim2_conf == GPT_SOVITS_ADAMW
    assert args.scheduler == args.scheduler2 == "exponentiallr"
    passes = args.num_iters_per_epoch * args.batch_size / LJSPEECH_TRAIN_UTTS
    gamma = 0.999875**passes
    assert args.scheduler_conf["gamma"] == pytest.approx(gamma, rel=0, abs=1e-15)
    assert args.scheduler2_conf == args.scheduler_conf
    assert args.batch_type == "sorted" and args.batch_size == 32
    assert args.use_amp is True and args.grad_clip <= 0 and args.accum_grad == 1
    assert args.generator_first is False
    assert args.unused_parameters is True  # required by DDP (tests/test_distributed.py)

    if config.stem == "train_vits_baseline":
        assert (
            type(tts.discriminator).__name__
            == "HiFiGANMultiScaleMultiPeriodDiscriminator"
        )
    elif config.stem == "train_sovits_svc":
        assert isinstance(tts.discriminator, SoVITSSVCDiscriminator)
        assert n_params(tts.discriminator) == 23_460_708
        assert tts.generator_adv_loss.average_by_discriminators
        assert tts.discriminator_adv_loss.average_by_discriminators
        assert tts.feat_match_loss.average_by_discriminators
        assert (
            tts.lambda_adv,
            tts.lambda_feat_match,
            tts.lambda_mel,
            tts.lambda_kl,
            tts.lambda_stft,
        ) == (
            1.0,
            2.0,
            1.0,
            0.2,
            9.0,
        )
        assert tts.stft_loss.resolutions == [
            (1024, 120, 600),
            (2048, 240, 1200),
            (4096, 480, 2400),
            (512, 50, 240),
        ]
    else:
        periods = (
            (2, 3, 5, 7, 11) if config.stem.endswith("v2") else (2, 3, 5, 7, 11, 17, 23)
        )
        assert isinstance(tts.discriminator, SoVITSMultiPeriodDiscriminator)
        assert tuple(tts.discriminator.periods) == periods
        assert (
            n_params(tts.discriminator) == {5: 46_747_132, 7: 63_189_440}[len(periods)]
        )
        assert (
            tts.lambda_adv,
            tts.lambda_feat_match,
            tts.lambda_mel,
            tts.lambda_kl,
        ) == (
            1.0,
            2.0,
            45.0,
            1.0,
        )
        assert not tts.generator_adv_loss.average_by_discriminators
        assert not tts.discriminator_adv_loss.average_by_discriminators
        assert not tts.feat_match_loss.average_by_discriminators
        assert tts.stft_loss is None


def without(config: dict, *paths: str) -> dict:
    config = copy.deepcopy(config)
    for path in paths:
        *parents, leaf = path.split(".")
        node = config
        for key in parents:
            node = node[key]
        del node[leaf]
    return config


def test_variants_differ_from_v2_only_where_intended():
    """v2Pro: 7 periods and p_dropout 0; baseline: the discriminator only."""
    v2 = load(TUNING / "train_gpt_sovits_v2.yaml")
    v2pro = load(TUNING / "train_gpt_sovits_v2pro.yaml")
    baseline = load(TUNING / "train_vits_baseline.yaml")
    dropouts = [
        "tts_conf.generator_params.text_encoder_dropout_rate",
        "tts_conf.generator_params.text_encoder_attention_dropout_rate",
    ]
    assert v2pro["tts_conf"]["discriminator_params"]["version"] == "v2Pro"
    assert without(
        v2pro, "tts_conf.discriminator_params.version", *dropouts
    ) == without(v2, "tts_conf.discriminator_params.version", *dropouts)
    disc = ["tts_conf.discriminator_type", "tts_conf.discriminator_params"]
    assert without(baseline, *disc) == without(v2, *disc)
    svc = load(TUNING / "train_sovits_svc.yaml")
    losses = [
        f"tts_conf.{name}"
        for name in (
            "generator_adv_loss_params",
            "discriminator_adv_loss_params",
            "feat_match_loss_params",
            "lambda_mel",
            "lambda_kl",
        )
    ]
    stft = ["tts_conf.stft_loss_params", "tts_conf.lambda_stft"]
    assert without(svc, *disc, *losses, *stft) == without(v2, *disc, *losses)


# Parameters of GPT-SoVITS's multi-period discriminators (S + 5 or 7 periods).
S2_DISCRIMINATOR_PARAMS = {"v1": 46_747_132, "v2": 46_747_132, "v2Pro": 63_189_440}

# v1 (no golden data): v2's generator with 322 embedding rows instead of 732
# and a reference encoder reading 1025 bins instead of 704 (test_gpt_sovits_v1.py).
V1_GENERATOR_PARAMS = 51_272_448


def generator_params(version):
    if version == "v1":
        return V1_GENERATOR_PARAMS
    return golden_json()["versions"][version]["n_params"]["total"]


@pytest.mark.parametrize("config", S2_CONFIGS, ids=lambda p: p.stem)
def test_gpt_sovits_s2_config_builds_the_reference_models(config, tmp_path):
    args, model = build_gpt_sovits_model(config, tmp_path)
    tts = model.tts
    version = args.tts_conf["version"]
    assert args.tts == "gpt_sovits" and type(tts).__name__ == "GPTSoVITS"
    assert model.feats_extract is None and args.odim == 1025
    # SynthesizerTrn of the version at the reference size, sovits_mpd to match.
    assert n_params(tts.generator) == generator_params(version)
    assert n_params(tts.discriminator) == S2_DISCRIMINATOR_PARAMS[version]
    assert tts.generator.config.segment_size * 640 == 20480
    assert args.tts_conf["spectrogram_params"] == {
        key: value for key, value in GPT_SOVITS_MEL.items() if key != "fs"
    }
    assert (args.tts_conf["lambda_mel"], args.tts_conf["lambda_kl"]) == (45.0, 1.0)
    # s2_train.py's optimizers: text_low_lr_rate 0.4 on three generator groups.
    optim_g, optim_d = GANTTSTask.build_optimizers(args, model)
    assert [g["lr"] for g in optim_g.param_groups] == pytest.approx([1e-4] + [4e-5] * 3)
    assert args.optim == args.optim2 == "adamw"
    assert args.optim_conf == args.optim2_conf == GPT_SOVITS_ADAMW
    passes = args.num_iters_per_epoch * args.batch_size / LJSPEECH_TRAIN_UTTS
    assert args.scheduler_conf["gamma"] == pytest.approx(0.999875**passes, rel=0, abs=1e-15)
    assert args.scheduler2_conf == args.scheduler_conf
    assert args.batch_size == 32 and args.use_amp is True and args.grad_clip <= 0
    assert args.generator_first is False and args.unused_parameters is True
    if args.init_param:
        # The file run_gpt_sovits.sh's stage 4 writes for this config.
        assert args.init_param == [f"exp/pretrained/{config.stem}.pth"]


def test_gpt_sovits_s2_variants_differ_only_where_intended():
    """v2Pro: the version; fine-tuning: init_param and the schedule; v1
    fine-tuning: v2's but for the version and its init_param file."""
    v2 = load(TUNING / "train_gpt_sovits_s2_v2.yaml")
    v2pro = load(TUNING / "train_gpt_sovits_s2_v2pro.yaml")
    finetune = load(TUNING / "finetune_gpt_sovits_s2_v2.yaml")
    finetune_v1 = load(TUNING / "finetune_gpt_sovits_s2_v1.yaml")
    assert [p.stem for p in S2_CONFIGS] == [
        "finetune_gpt_sovits_s2_v1",
        "finetune_gpt_sovits_s2_v2",
        "train_gpt_sovits_s2_v2",
        "train_gpt_sovits_s2_v2pro",
    ]
    assert v2pro["tts_conf"]["version"] == "v2Pro"
    assert without(v2pro, "tts_conf.version") == without(v2, "tts_conf.version")
    assert finetune["max_epoch"] < v2["max_epoch"]
    assert without(finetune, "init_param", "max_epoch") == without(v2, "max_epoch")
    assert finetune_v1["tts_conf"]["version"] == "v1"
    assert without(finetune_v1, "tts_conf.version", "init_param") == without(
        finetune, "tts_conf.version", "init_param"
    )


@pytest.fixture(scope="module")
def mini_data(tmp_path_factory, token_list):
    """The committed mini corpus at 32 kHz with collected shape files."""
    helper = ROOT / "egs" / "TEMPLATE" / "tts1" / "pyscripts" / "prepare_ljspeech.py"
    spec = importlib.util.spec_from_file_location("prepare_ljspeech", helper)
    prep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prep)
    root = tmp_path_factory.mktemp("mini32k")
    prep.prepare(MINI_CORPUS, root / "data", fs=32000, n_dev=2, n_eval=0)
    data_args = [
        "--use_preprocessor",
        "true",
        "--token_type",
        "char",
        "--token_list",
        str(token_list),
        "--cleaner",
        "tacotron",
        "--g2p",
        "none",
    ]
    for split, name in (("train", "tr_no_dev"), ("valid", "dev")):
        directory = root / "data" / name
        data_args += [
            f"--{split}_data_path_and_name_and_type",
            f"{directory}/text,text,text",
            f"--{split}_data_path_and_name_and_type",
            f"{directory}/wav.scp,speech,sound",
        ]
    config = tiny_config(TUNING / "train_gpt_sovits_v2.yaml", root / "stats.yaml")
    gan_tts_train.main(
        [
            "--collect_stats",
            "true",
            "--config",
            str(config),
            "--ngpu",
            "0",
            "--train_shape_file",
            str(root / "data" / "tr_no_dev" / "wav.scp"),
            "--valid_shape_file",
            str(root / "data" / "dev" / "wav.scp"),
            "--output_dir",
            str(root / "stats"),
            *data_args,
        ]
    )
    for split in ("train", "valid"):
        data_args += [
            f"--{split}_shape_file",
            str(root / "stats" / split / "text_shape"),
            f"--{split}_shape_file",
            str(root / "stats" / split / "speech_shape"),
        ]
    return data_args + ["--fold_length", "150", "--fold_length", "204800"]


def tiny_config(config: Path, out: Path) -> Path:
    """The config with a tiny generator and a one-iteration CPU run."""
    conf = load(config)
    conf["tts_conf"]["generator_params"].update(TINY_GENERATOR)
    conf.update(
        max_epoch=1,
        num_iters_per_epoch=1,
        batch_size=2,
        num_workers=0,
        num_att_plot=0,
        use_amp=False,  # fp16 autocast needs a GPU
        use_matplotlib=False,
        use_tensorboard=False,
        keep_nbest_models=1,
    )
    with open(out, "w") as f:
        yaml.safe_dump(conf, f)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("config", TRAIN_CONFIGS, ids=lambda p: p.stem)
def test_ljspeech_config_trains_one_cpu_iteration(config, mini_data, tmp_path):
    tiny = tiny_config(config, tmp_path / "tiny.yaml")
    exp = tmp_path / "exp"
    gan_tts_train.main(
        ["--config", str(tiny), "--ngpu", "0", "--output_dir", str(exp), *mini_data]
    )
    checkpoint = torch.load(
        exp / "checkpoint.pth", map_location="cpu", weights_only=False
    )
    stats = checkpoint["reporter"]["stats"][1]["train"]
    for key in ("generator_loss", "generator_mel_loss", "discriminator_loss"):
        assert math.isfinite(stats[key]), (key, stats[key])
    # Both optimizers stepped once and both schedulers were built.
    assert len(checkpoint["optimizers"]) == 2
    for optimizer in checkpoint["optimizers"]:
        assert all(s["step"] == 1 for s in optimizer["state"].values())
    assert len(checkpoint["schedulers"]) == 2


PRESET_DISCRIMINATORS = {
    "sovits_mpd_v1": (SoVITSMultiPeriodDiscriminator, 46_747_132, False),
    "sovits_mpd_v2": (SoVITSMultiPeriodDiscriminator, 46_747_132, False),
    "sovits_mpd_v2pro": (SoVITSMultiPeriodDiscriminator, 63_189_440, False),
    "sovits_mrd": (SoVITSMultiResolutionDiscriminator, None, True),
    "sovits_svc": (SoVITSSVCDiscriminator, 23_460_708, True),
}


def test_every_preset_is_checked():
    assert sorted(p.stem for p in PRESETS) == sorted(PRESET_DISCRIMINATORS)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_merges_into_a_config_and_builds(preset, token_list, tmp_path):
    """--tts_conf "$(cat preset)" on top of a config, with tts: sovits and vits."""
    cls, size, averaged = PRESET_DISCRIMINATORS[preset.stem]
    text = preset.read_text()
    fragment = yaml.safe_load(text)
    base = load(TUNING / "train_vits_baseline.yaml")
    base["tts_conf"]["generator_params"].update(TINY_GENERATOR)
    config = tmp_path / "base.yaml"
    config.write_text(yaml.safe_dump(base))

    args, model = build(config, token_list, "--tts_conf", text)
    tts = model.tts
    assert isinstance(tts.discriminator, cls)
    if size is not None:
        assert n_params(tts.discriminator) == size
    assert tts.generator_adv_loss.average_by_discriminators is averaged
    assert tts.discriminator_adv_loss.average_by_discriminators is averaged
    assert tts.feat_match_loss.average_by_discriminators is averaged
    for key, value in fragment.items():
        assert args.tts_conf[key] == value
        if key.startswith("lambda_"):
            assert getattr(tts, key) == value
    # The rest of the config is kept.
    assert args.tts_conf["mel_loss_params"] == GPT_SOVITS_MEL

    # With ESPnet's own VITS (and its own generator, which needs kernels of
    # twice the upsampling scale), the discriminator lines alone.
    disc_only = {k: fragment[k] for k in ("discriminator_type", "discriminator_params")}
    _, vits = build(
        config,
        token_list,
        "--tts",
        "vits",
        "--tts_conf",
        yaml.safe_dump(disc_only),
        "--tts_conf",
        "mel_loss_params.fs=32000",
        "--tts_conf",
        "generator_type=vits_generator",
        "--tts_conf",
        "generator_params.decoder_upsample_kernel_sizes=[20,16,4,4,4]",
    )
    assert isinstance(vits.tts.discriminator, cls)
