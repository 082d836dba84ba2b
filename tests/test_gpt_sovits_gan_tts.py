"""``tts: gpt_sovits``: GPT-SoVITS's stage-2 step in ESPnet's GAN-TTS task.

Against tests/data/golden_s2: the batch as the reference loader and collate
make it (spectrogram per utterance, center=False; HuBERT features aligned and
padded to an even frame count) and the step's losses (mel 45 x L1 on the
128-mel log-mel, KL, commitment) on the golden training forward. Through
ESPnet's real task: the model wrapper that passes ``ssl_feats``, the
spectrogram size as ``odim``, the frozen ``ssl_proj``/quantizer, the
generator optimizer's ``text_low_lr_rate`` groups, both turns of a step with
per-sub-discriminator stats, inference, and the clear errors.
"""

import numpy as np
import pytest
import torch

from espnet_sovits_disc.gpt_sovits import SynthesizerConfig
from espnet_sovits_disc.gpt_sovits.batch import aligned_ssl, even_frames, spectrogram_and_ssl
from espnet_sovits_disc.gpt_sovits.espnet_model import SSLGANTTSModel
from espnet_sovits_disc.gpt_sovits.gan_tts import GPTSoVITS, slice_frames
from espnet_sovits_disc.gpt_sovits.symbols import inventory, inventory_ids
from espnet_sovits_disc.tasks.gan_tts import GANTTSTask
from tests.golden_s2 import (
    VERSIONS,
    assert_close,
    golden_json,
    golden_model,
    tensor,
    training_forward,
)
from tests.gpt_sovits_corpus import (
    TINY_SYNTHESIZER,
    build_gpt_sovits_model,
    gpt_sovits_train_config,
)
from tests.tiny_corpus import synthesize, write_config

HOP = 640


def y_wav_lengths() -> torch.Tensor:
    return tensor("input.y_lengths") * HOP


def test_symbols_are_the_reference_inventory():
    symbols = inventory("v2")
    assert len(symbols) == SynthesizerConfig.for_version("v2").n_symbols == 732
    assert len(set(symbols)) == 732
    ids = inventory_ids("v2")
    # symbols2.py: sorted base set, then "[" "]", Korean, Cantonese.
    assert (ids["!"], ids["AA1"], ids["SP"], ids["UNK"], ids["_"]) == (0, 7, 77, 86, 95)
    assert symbols[322:324] == ("[", "]")
    assert symbols[-1] == "Yz" and all(s.startswith("Y") for s in symbols[-379:])


@pytest.mark.parametrize("version", VERSIONS)
def test_step_losses_equal_the_reference(version):
    """s2_train.py's mel (45 x L1 of the 128-mel log-mels), KL and commitment
    terms on the golden training forward."""
    model = GPTSoVITS(idim=732, version=version)
    model.generator = golden_model(version)
    with torch.no_grad():
        outs = training_forward(version)
        losses = model.step_losses(outs, tensor("input.y"))
    scalars = golden_json()["versions"][version]["scalars"]
    assert losses["mel"].item() == pytest.approx(scalars["loss.mel"], rel=1e-4)
    assert losses["kl"].item() == pytest.approx(scalars["loss.kl"], rel=1e-4)
    assert losses["commit"].item() == scalars["train.kl_ssl"]
    starts = outs[2]
    mel_real = slice_frames(model.spectrogram.log_mel(tensor("input.y")), starts, 32)
    assert_close(mel_real, f"{version}.loss.y_mel")
    speech_real = slice_frames(tensor("input.y_wav"), starts * HOP, 32 * HOP)
    assert_close(speech_real[0].flatten()[:64], f"{version}.loss.y_wav_slice.head")


def test_batch_is_collated_as_the_reference_loader():
    """Per-utterance spectrograms (center=False, reflect padding) equal the
    golden ``input.y``; features one frame short get a replicated frame;
    both are zero-padded to 2 * (max_frames // 2 + 1) frames."""
    model = GPTSoVITS(idim=732, generator_params=TINY_SYNTHESIZER)
    frames = tensor("input.y_lengths")
    ssl = tensor("input.ssl").transpose(1, 2)
    spec, lengths, ssl_batch = spectrogram_and_ssl(
        model.spectrogram, tensor("input.y_wav")[:, 0], y_wav_lengths(), ssl, frames - 1
    )
    assert torch.equal(lengths, frames)
    assert spec.shape == (2, 1025, even_frames(48)) == (2, 1025, 50)
    assert_close(spec[:, :, :48], "input.y")
    assert not spec[:, :, 48:].any()
    for b, n in enumerate(frames.tolist()):
        assert torch.equal(ssl_batch[b, :, : n - 1], tensor("input.ssl")[b, :, : n - 1])
        assert torch.equal(ssl_batch[b, :, n - 1], ssl_batch[b, :, n - 2])
        assert not ssl_batch[b, :, n:].any()


def test_ssl_alignment_rules():
    ssl = torch.randn(768, 10)
    assert torch.equal(aligned_ssl(ssl, 10), ssl)
    assert torch.equal(aligned_ssl(ssl, 9), ssl[:, :9])
    assert torch.equal(aligned_ssl(ssl, 11)[:, 10], ssl[:, 9])
    with pytest.raises(ValueError, match="ssl_feats has 10 frames for a waveform of 12"):
        aligned_ssl(ssl, 12)
    with pytest.raises(ValueError, match="at 50 Hz"):
        aligned_ssl(ssl, 8)
    assert [even_frames(n) for n in (47, 48, 49)] == [48, 50, 50]


def build(tmp_path, version="v2", *extra):
    config = write_config(tmp_path / "train.yaml", gpt_sovits_train_config(version))
    return build_gpt_sovits_model(config, tmp_path / "exp", *extra)


@pytest.mark.parametrize("version, periods", [("v2", 5), ("v2Pro", 7)])
def test_task_builds_the_model_and_its_optimizers(tmp_path, version, periods):
    args, model = build(tmp_path, version)
    assert isinstance(model, SSLGANTTSModel) and isinstance(model.tts, GPTSoVITS)
    assert model.feats_extract is None and args.odim == 1025
    assert len(model.tts.discriminator.sub_discriminators()) == 1 + periods
    generator = model.tts.generator
    assert generator.uses_speaker_verification == (version == "v2Pro")
    frozen = list(generator.ssl_proj.parameters()) + list(generator.quantizer.parameters())
    assert frozen and not any(p.requires_grad for p in frozen)

    optim_g, optim_d = GANTTSTask.build_optimizers(args, model)
    assert [g["lr"] for g in optim_g.param_groups] == pytest.approx([2e-4] + [8e-5] * 3)
    grouped = [p for g in optim_g.param_groups for p in g["params"]]
    trainable = [p for p in generator.parameters() if p.requires_grad]
    assert len(grouped) == len({id(p) for p in grouped}) == len(trainable)
    enc_p = generator.enc_p
    low = {id(p) for part in (enc_p.text_embedding, enc_p.encoder_text, enc_p.mrte) for p in part.parameters()}
    assert {id(p) for g in optim_g.param_groups[1:] for p in g["params"]} == low
    assert {id(p) for g in optim_d.param_groups for p in g["params"]} == {
        id(p) for p in model.tts.discriminator.parameters()
    }
    assert optim_g.defaults["betas"] == (0.8, 0.99) and optim_g.defaults["eps"] == 1e-9


def tiny_batch(version: str):
    lengths = torch.tensor([32000, 28800])
    speech = torch.stack(
        [torch.from_numpy(np.pad(synthesize(n, seed=i, fs=32000), (0, 32000 - n)))
         for i, n in enumerate(lengths.tolist())]
    )
    frames = lengths // HOP
    generator = torch.Generator().manual_seed(0)
    batch = dict(
        text=torch.randint(1, 732, (2, 12), generator=generator),
        text_lengths=torch.tensor([12, 9]),
        speech=speech,
        speech_lengths=lengths,
        ssl_feats=torch.randn(2, 50, 768, generator=generator),
        ssl_feats_lengths=frames - 1,
    )
    if version == "v2Pro":
        batch["spembs"] = torch.randn(2, 20480, generator=generator)
    return batch


@pytest.mark.parametrize("version", VERSIONS)
def test_a_step_in_the_reference_order_with_per_period_stats(tmp_path, version):
    """Generator forward once (cached for the other turn), discriminator turn,
    generator turn; the discriminator's parameters get no gradient in the
    generator turn, the frozen parts none at all."""
    _, model = build(tmp_path, version)
    model.train()
    batch = tiny_batch(version)
    torch.manual_seed(0)
    d_out = model(**batch, forward_generator=False)
    assert d_out["optim_idx"] == 1 and model.tts._cache is not None
    names = model.tts.discriminator.sub_discriminator_names
    for name in names:
        assert f"discriminator_real_loss_{name}" in d_out["stats"]
    g_out = model(**batch, forward_generator=True)
    assert g_out["optim_idx"] == 0 and model.tts._cache is None
    stats = g_out["stats"]
    parts = ("mel", "kl", "commit", "adv", "feat_match")
    total = sum(stats[f"generator_{p}_loss"] for p in parts)
    assert stats["generator_loss"].item() == pytest.approx(total.item(), rel=1e-5)
    for name in names:
        assert f"generator_feat_match_loss_{name}" in stats
    g_out["loss"].backward()
    assert all(p.grad is None for p in model.tts.discriminator.parameters())
    assert all(p.grad is None for p in model.tts.generator.ssl_proj.parameters())
    assert model.tts.generator.dec.conv_post.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("version", VERSIONS)
def test_inference_renders_the_codes_of_the_features(tmp_path, version):
    _, model = build(tmp_path, version)
    model.eval()
    batch = tiny_batch(version)
    item = dict(
        text=batch["text"][0],
        speech=batch["speech"][1, :28800],
        ssl_feats=batch["ssl_feats"][0, :49],
    )
    if version == "v2Pro":
        item["spembs"] = batch["spembs"][1]
    wav = model.tts.inference(**item, noise_scale=0.0)["wav"]
    assert wav.shape == (48 * HOP,) and torch.isfinite(wav).all()
    again = model.tts.inference(**item, noise_scale=0.0)["wav"]
    assert torch.equal(wav, again)


def test_clear_errors(tmp_path, token_list):
    with pytest.raises(ValueError, match="has 58 entries; GPT-SoVITS v2's text embedding has 732 symbols: use the token list .*symbols_v2.txt"):
        GPTSoVITS(idim=58, generator_params=TINY_SYNTHESIZER)
    with pytest.raises(ValueError, match="odim=513 .* must equal n_fft // 2 \\+ 1 = 1025"):
        GPTSoVITS(idim=732, odim=513, generator_params=TINY_SYNTHESIZER)
    with pytest.raises(ValueError, match="upsamples by 640 but hop_length is 320"):
        GPTSoVITS(
            idim=732,
            generator_params=TINY_SYNTHESIZER,
            spectrogram_params={"n_fft": 2048, "hop_length": 320, "win_length": 2048},
        )
    with pytest.raises(ValueError, match="discriminator_params.version='v2Pro' but the generator is 'v2'"):
        GPTSoVITS(
            idim=732,
            generator_params=TINY_SYNTHESIZER,
            discriminator_params={"version": "v2Pro"},
        )
    _, model = build(tmp_path)
    batch = tiny_batch("v2")
    del batch["ssl_feats"], batch["ssl_feats_lengths"]
    with pytest.raises(ValueError, match="needs the ssl_feats data key"):
        model(**batch)
    args, model = build(tmp_path, "v2", "--sharded_ddp", "true")
    with pytest.raises(ValueError, match="does not support --sharded_ddp"):
        GANTTSTask.build_optimizers(args, model)
