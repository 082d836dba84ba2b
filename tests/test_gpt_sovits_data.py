"""The data stages of ``tts: gpt_sovits``: GPT-SoVITS phoneme ids on fixed
inputs, HuBERT features through the real ``transformers`` loading and
extraction code on a randomly initialised ``HubertModel`` saved to a
temporary directory, and the speaker-verification list."""

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import HubertConfig, HubertModel

from espnet_sovits_disc.bin.gpt_sovits_prepare import (
    main as prepare_main,
    read_table,
    write_features,
    write_phonemes,
    write_sv_embeddings,
)
from espnet_sovits_disc.gpt_sovits.batch import aligned_ssl
from espnet_sovits_disc.gpt_sovits.phonemes import (
    EnglishPhonemizer,
    normalize_english,
    phoneme_ids,
)
from espnet_sovits_disc.gpt_sovits.ssl_features import HuBERTFeatures
from espnet_sovits_disc.gpt_sovits.symbols import inventory_ids
from tests.tiny_corpus import synthesize

LEXICON = {
    "hello": ["HH", "AH0", "L", "OW1"],
    "world": ["W", "ER1", "L", "D"],
    "you're": ["Y", "UH1", "'", "R"],
    "zyx": ["<unk>"],
}


def fixed_g2p(text):
    """A g2p_en-shaped stand-in: phones per word, spaces, punctuation kept."""
    phones = []
    for token in text.replace(",", " , ").replace("!", " ! ").split():
        phones += LEXICON.get(token.lower(), [token]) + [" "]
    return phones


def ids(*symbols):
    return [inventory_ids("v2")[s] for s in symbols]


def test_english_normalisation_as_the_reference():
    assert normalize_english("Hello; world!!") == "Hello, world!"
    # a mark after a space goes too (the reference's pattern takes the space
    # as the run's first character)
    assert normalize_english("a： b ，c。 d！？") == "a, b c. d!"
    assert normalize_english("say “hi” ’twas") == "say “hi” 'twas"
    assert normalize_english("wait ... what?!") == "wait  what?"


def test_phoneme_ids_follow_the_reference_rules():
    phones = ["HH", "AH0", "L", "OW1", " ", "UW", "<s>", "<unk>", "'", "XX", ",", "UW1"]
    assert phoneme_ids(phones) == ids("HH", "AH0", "L", "OW1", "UNK", "-", ",", "UW1")
    assert ids("!", "AA1") == [0, 7]


def test_english_phonemizer_on_fixed_text():
    phonemizer = EnglishPhonemizer(fixed_g2p)
    assert phonemizer("Hello, world!!") == ids(
        "HH", "AH0", "L", "OW1", ",", "W", "ER1", "L", "D", "!"
    )
    assert phonemizer("You're zyx") == ids("Y", "UH1", "-", "R", "UNK")
    with pytest.raises(ValueError, match="no GPT-SoVITS phoneme in"):
        phonemizer("###")


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory):
    """A randomly initialised HubertModel with chinese-hubert-base's widths."""
    directory = tmp_path_factory.mktemp("chinese-hubert-base")
    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=768, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    HubertModel(config).save_pretrained(directory)
    return directory


def test_features_are_the_reference_scaling_through_hubert(hubert_dir):
    audio = synthesize(32000 * 3 // 2, seed=3, fs=32000)
    speech, ssl = HuBERTFeatures(hubert_dir)(audio)
    peak = np.abs(audio).max()
    expected_speech = (audio / peak * (0.95 * 0.5 * 32768) + 0.5 * 32768 * audio).astype(np.int16)
    assert np.array_equal((speech * 32768).astype(np.int16), expected_speech)
    hubert_input = audio / peak * (0.95 * 0.5 * 1145.14) + 0.5 * 1145.14 * audio
    resampled = librosa.resample(hubert_input, orig_sr=32000, target_sr=16000)
    model = HubertModel.from_pretrained(hubert_dir).eval()
    with torch.no_grad():
        reference = model(torch.from_numpy(resampled)[None].float()).last_hidden_state[0]
    assert ssl.shape == (74, 768)
    np.testing.assert_array_equal(ssl, reference.numpy())
    frames = len(speech) // 640
    assert aligned_ssl(torch.from_numpy(ssl).T, frames).shape == (768, frames)
    assert HuBERTFeatures(hubert_dir)(audio * 6.0) is None  # peak 2.7 > 2.2


def test_dump_dir_of_a_set(tmp_path, hubert_dir, capsys):
    wav_scp, text = tmp_path / "wav.scp", tmp_path / "text"
    lines, texts = [], []
    for i, scale in enumerate((0.5, 3.0, 0.4)):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, scale * synthesize(24000, seed=i, fs=32000) / 0.45, 32000, subtype="FLOAT")
        lines.append(f"u{i} {path}\n")
        texts.append(f"u{i} hello world\n")
    wav_scp.write_text("".join(lines))
    text.write_text("".join(texts))
    dump = tmp_path / "dump"
    assert write_phonemes(text, dump, EnglishPhonemizer(fixed_g2p)) == 3
    skipped = write_features(wav_scp, dump, HuBERTFeatures(hubert_dir))
    assert skipped == ["u1"]
    for name in ("text_int", "wav.scp", "ssl_feats.scp"):
        assert list(read_table(dump / name)) == ["u0", "u2"], name
    assert read_table(dump / "text_int")["u0"] == " ".join(
        map(str, ids("HH", "AH0", "L", "OW1", "W", "ER1", "L", "D"))
    )
    assert np.load(read_table(dump / "ssl_feats.scp")["u2"]).shape == (37, 768)
    assert sf.info(read_table(dump / "wav.scp")["u2"]).samplerate == 32000

    sv_dir = tmp_path / "sv"
    sv_dir.mkdir()
    first = np.linspace(-1, 1, 20480, dtype=np.float32)
    np.save(sv_dir / "u0.npy", first)
    with pytest.raises(ValueError, match=r"no speaker-verification embedding for u2 .*u2\.wav\.pt"):
        write_sv_embeddings(dump, sv_dir)
    np.save(sv_dir / "u2.npy", np.zeros(512, np.float32))
    with pytest.raises(ValueError, match=r"shape \(512,\); v2Pro's sv_emb is \(20480,\)"):
        write_sv_embeddings(dump, sv_dir)
    (sv_dir / "u2.npy").unlink()
    torch.save({"emb": torch.ones(1, 20480)}, sv_dir / "u2.wav.pt")
    with pytest.raises(ValueError, match="holds a dict, not a tensor"):
        write_sv_embeddings(dump, sv_dir)
    second = torch.rand(1, 20480, dtype=torch.float16)  # (1, 20480), as 2-get-sv.py saves it
    torch.save(second, sv_dir / "u2.wav.pt")
    write_sv_embeddings(dump, sv_dir)
    embeddings = read_table(dump / "spembs.scp")
    assert list(embeddings) == ["u0", "u2"]
    np.testing.assert_array_equal(np.load(embeddings["u0"]), first)
    np.testing.assert_array_equal(np.load(embeddings["u2"]), second.float().numpy()[0])

    sf.write(tmp_path / "low.wav", synthesize(16000, seed=0), 16000)
    (tmp_path / "low.scp").write_text(f"low {tmp_path / 'low.wav'}\n")
    assert prepare_main(
        ["features", "--wav_scp", str(tmp_path / "low.scp"), "--dump_dir",
         str(tmp_path / "d2"), "--hubert_dir", str(hubert_dir)]
    ) == 1
    assert "is at 16000 Hz; GPT-SoVITS stage 2 trains on 32 kHz" in capsys.readouterr().err
    assert prepare_main(
        ["features", "--wav_scp", str(wav_scp), "--dump_dir", str(tmp_path / "d3"),
         "--hubert_dir", str(tmp_path)]
    ) == 1
    assert "holds no HuBERT model (config.json missing)" in capsys.readouterr().err
