"""run_gpt_sovits.sh, offline, stages 3 to 8: HuBERT features of 32 kHz audio
through a randomly initialised ``HubertModel`` saved where the user would put
chinese-hubert-base, the import of a GPT-SoVITS training checkpoint
(``G_<step>.pth``) for the config's ``init_param``, statistics, fine-tuning,
synthesis and the export to GPT-SoVITS's SoVITS_weights layout.

Stage 2 (g2p_en) needs NLTK data that cannot be fetched here, so the test
writes its output, ``text_int``; the phoneme code is tested on fixed inputs
in test_gpt_sovits_data.py.
"""

import shutil
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import HubertConfig, HubertModel

from espnet_sovits_disc.gpt_sovits import build_synthesizer
from tests.gpt_sovits_corpus import FS, SSL_DIM, TINY_SYNTHESIZER, gpt_sovits_train_config
from tests.test_recipes import copy_recipes, read_kaldi, run
from tests.tiny_corpus import write_config, write_corpus

pytestmark = pytest.mark.slow

TAG = "tiny_finetune"


def write_recipe_inputs(tmp_path, recipe):
    """data/<set>/wav.scp of the tiny corpus at 32 kHz and stage 2's text_int."""
    corpus = write_corpus(tmp_path / "corpus", fs=FS)
    rng = np.random.default_rng(3)
    for name, directory in (("tr_no_dev", corpus.train_dir), ("dev", corpus.valid_dir)):
        data = recipe / "data" / name
        data.mkdir(parents=True)
        shutil.copy(directory / "wav.scp", data / "wav.scp")
        dump = recipe / "dump" / "gpt_sovits" / name
        dump.mkdir(parents=True)
        lines = [
            f"{utt} {' '.join(map(str, rng.integers(1, 732, size=12)))}\n"
            for utt in read_kaldi(data / "wav.scp")
        ]
        (dump / "text_int").write_text("".join(lines))


def write_random_hubert(directory):
    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=SSL_DIM, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    HubertModel(config).save_pretrained(directory)
    return directory


def test_run_gpt_sovits_fine_tunes_synthesizes_and_exports(tmp_path):
    egs = copy_recipes(tmp_path)
    recipe = egs / "ljspeech" / "tts1"
    write_recipe_inputs(tmp_path, recipe)
    hubert = write_random_hubert(tmp_path / "chinese-hubert-base")
    config = gpt_sovits_train_config("v2")
    config["init_param"] = [f"exp/pretrained/{TAG}.pth"]
    write_config(recipe / "conf" / "tuning" / f"{TAG}.yaml", config)
    torch.manual_seed(1)
    pretrained = build_synthesizer("v2", **TINY_SYNTHESIZER).state_dict()
    checkpoint = tmp_path / "G_300.pth"
    torch.save(
        {"model": pretrained, "iteration": 300, "optimizer": {}, "learning_rate": 1e-4},
        checkpoint,
    )

    proc = run(
        ["bash", "run_gpt_sovits.sh", "--stage", "3", "--stop_stage", "8",
         "--python", sys.executable, "--ngpu", "0", "--hubert_dir", str(hubert),
         "--train_config", f"conf/tuning/{TAG}.yaml", "--pretrained_s2G", str(checkpoint),
         "--test_sets", "dev"],
        cwd=recipe,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    # Stage 3: the rescaled 32 kHz audio and 50 Hz features, one frame short
    # of the spectrogram as GPT-SoVITS's extraction leaves them.
    dump = recipe / "dump" / "gpt_sovits" / "dev"
    wavs, feats = read_kaldi(dump / "wav.scp"), read_kaldi(dump / "ssl_feats.scp")
    assert list(wavs) == list(feats) == ["utt00", "utt01"]
    for utt in wavs:
        info = sf.info(wavs[utt].strip())
        assert info.samplerate == FS
        ssl = np.load(feats[utt].strip())
        assert ssl.shape[1] == SSL_DIM and abs(ssl.shape[0] - info.frames // 640) <= 1

    # Stages 4 and 6: the imported checkpoint initialised the model, and the
    # frozen ssl_proj (as s2_train.py trains) is still the checkpoint's.
    exp = recipe / "exp" / f"tts_{TAG}"
    imported = torch.load(recipe / "exp" / "pretrained" / f"{TAG}.pth", map_location="cpu")
    trained = torch.load(exp / "latest.pth", map_location="cpu")
    for key in ("ssl_proj.weight", "enc_p.text_embedding.weight"):
        assert torch.equal(imported[f"tts.generator.{key}"], pretrained[key]), key
    assert torch.equal(trained["tts.generator.ssl_proj.weight"], pretrained["ssl_proj.weight"])
    assert not torch.equal(
        trained["tts.generator.enc_p.text_embedding.weight"],
        pretrained["enc_p.text_embedding.weight"],
    )

    # Stage 7: one waveform per dev utterance.
    decoded = sorted((exp / "decode_latest" / "dev" / "wav").glob("*.wav"))
    assert [p.stem for p in decoded] == ["utt00", "utt01"]
    for path in decoded:
        audio, fs = sf.read(path)
        assert fs == FS and len(audio) > 0 and np.isfinite(audio).all()
        assert np.abs(audio).max() > 0

    # Stage 8: GPT-SoVITS's SoVITS_weights layout (float16, no enc_q), read
    # back as its loader reads a v2 file.
    exported = torch.load(exp / "sovits_weights" / f"{TAG}.pth", map_location="cpu")
    weight = exported["weight"]
    assert not any(key.startswith("enc_q.") for key in weight)
    assert {tensor.dtype for tensor in weight.values()} == {torch.float16}
    names = [k.removeprefix("tts.generator.") for k in trained if k.startswith("tts.generator.")]
    assert sorted(weight) == sorted(n for n in names if not n.startswith("enc_q."))
    assert torch.equal(weight["ssl_proj.weight"], pretrained["ssl_proj.weight"].half())
    assert exported["config"]["model"]["version"] == "v2"
