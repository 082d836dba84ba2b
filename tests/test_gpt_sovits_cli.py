"""``tts: gpt_sovits`` through ESPnet's real command-line tools on the mini
corpus at 32 kHz: collect stats, one epoch, an interrupted run resumed for a
second epoch, then synthesis with the plugin's inference entry point; v2 and
v2Pro (which adds the speaker-verification embeddings as ``spembs``)."""

import numpy as np
import soundfile as sf
import pytest
import torch

from tests.gpt_sovits_corpus import HOP, gpt_sovits_train_config, write_gpt_sovits_corpus
from tests.scratch import scratch_folder
from tests.tiny_corpus import run_module, write_config

pytestmark = pytest.mark.slow

TRAIN = "espnet_sovits_disc.bin.gan_tts_train"


def stage_args(data, config, stats, exp):
    args = ["--config", str(config), *data.data_args(), "--ngpu", "0"]
    for split in ("train", "valid"):
        for shape in ("text_shape", "speech_shape"):
            args += [f"--{split}_shape_file", str(stats / split / shape)]
    return args + ["--fold_length", "150", "--fold_length", "204800", "--output_dir", str(exp)]


@pytest.fixture(scope="module", params=["v2", "v2Pro"])
def run(request, tmp_path_factory):
    version = request.param
    with scratch_folder(tmp_path_factory, f"gpt_sovits_{version}") as root:
        data = write_gpt_sovits_corpus(root / "corpus", version)
        config = gpt_sovits_train_config(version)
        one_epoch = write_config(root / "epochs1.yaml", config)
        two_epochs = write_config(root / "epochs2.yaml", dict(config, max_epoch=2))
        stats, exp = root / "stats", root / "exp"
        shapes = []
        for split in ("train", "valid"):
            shapes += [f"--{split}_shape_file", str(data.split_dir(split) / "wav.scp")]
        run_module(
            TRAIN,
            ["--collect_stats", "true", "--config", str(one_epoch), *data.data_args(),
             *shapes, "--output_dir", str(stats)],
        )
        run_module(TRAIN, stage_args(data, one_epoch, stats, exp))
        after_epoch1 = torch.load(exp / "1epoch.pth", map_location="cpu")
        resumed = run_module(
            TRAIN, stage_args(data, two_epochs, stats, exp) + ["--resume", "true"]
        )
        decode = root / "decode"
        triples = []
        for triple in data.triples("valid"):
            triples += ["--data_path_and_name_and_type", triple]
        run_module(
            "espnet_sovits_disc.bin.gpt_sovits_inference",
            ["--train_config", str(exp / "config.yaml"), "--model_file",
             str(exp / "latest.pth"), *triples, "--output_dir", str(decode),
             "--noise_scale", "0.5"],
        )
        yield dict(
            data=data,
            exp=exp,
            stats=stats,
            decode=decode,
            after_epoch1=after_epoch1,
            resume_log=resumed.stdout + resumed.stderr,
            version=version,
        )


def test_stats_hold_the_features_and_embeddings(run):
    shapes = {path.name for path in (run["stats"] / "train").iterdir()}
    assert {"text_shape", "speech_shape", "ssl_feats_shape"} <= shapes
    assert ("spembs_shape" in shapes) == (run["version"] == "v2Pro")


def test_resumed_run_trained_epoch_2_only(run):
    log = run["resume_log"]
    assert "2epoch results" in log and "1epoch results" not in log
    checkpoint = torch.load(run["exp"] / "checkpoint.pth", weights_only=False)
    assert checkpoint["reporter"]["epoch"] == 2
    stats = checkpoint["reporter"]["stats"][2]["train"]
    for key in ("generator_mel_loss", "generator_kl_loss", "generator_commit_loss",
                "generator_feat_match_loss_p11", "discriminator_real_loss_s"):
        assert key in stats, sorted(stats)
    periods = [k for k in stats if k.startswith("discriminator_fake_loss_p")]
    assert len(periods) == {"v2": 5, "v2Pro": 7}[run["version"]]


def test_training_left_ssl_proj_and_quantizer_frozen(run):
    before = run["after_epoch1"]
    after = torch.load(run["exp"] / "2epoch.pth", map_location="cpu")
    frozen = [
        k for k in after
        if k.startswith(("tts.generator.ssl_proj.", "tts.generator.quantizer."))
    ]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(
        before["tts.generator.dec.conv_pre.weight"],
        after["tts.generator.dec.conv_pre.weight"],
    )


def test_synthesis_wrote_every_validation_utterance(run):
    valid = run["data"].split_dir("valid")
    for line in (valid / "ssl_feats.scp").read_text().splitlines():
        utt, path = line.split()
        frames = np.load(path).shape[0]
        wav, fs = sf.read(run["decode"] / "wav" / f"{utt}.wav")
        assert fs == 32000
        assert len(wav) == (frames - frames % 2) * HOP
        assert wav.std() > 0
