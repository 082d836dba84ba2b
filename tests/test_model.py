"""``tts: sovits``: defaults, loss arithmetic, per-sub-discriminator stats,
the generator-output cache in both turn orders, and evaluation mode.

The expected values are recomputed independently from the same generator
outputs (same seed) with ESPnet's stock loss modules, which with
``loss_type: mse``, no averaging and the final outputs included compute
GPT-SoVITS's losses (tests/test_losses.py checks that on the golden data),
and separate discriminator passes.
"""

import copy
import inspect

import numpy as np
import pytest
import torch
from espnet2.gan_tts.hifigan.loss import (
    DiscriminatorAdversarialLoss,
    FeatureMatchLoss,
    GeneratorAdversarialLoss,
)
from espnet2.gan_tts.utils import get_segments
from espnet2.gan_tts.vits import VITS
from espnet2.gan_tts.vits.loss import KLDivergenceLoss

import espnet_sovits_disc
from espnet_sovits_disc.discriminators import SoVITSMultiPeriodDiscriminator
from espnet_sovits_disc.losses import (
    SoVITSDiscriminatorLoss,
    SoVITSFeatureLoss,
    SoVITSGeneratorLoss,
    SoVITSKLLoss,
    SoVITSMelLoss,
)
from espnet_sovits_disc.model import SoVITS
from tests.tiny_corpus import HOP_LENGTH, TINY_GENERATOR_PARAMS, TINY_MEL_LOSS_PARAMS

# SoVITS builds its generator and discriminator from ESPnet's tables.
espnet_sovits_disc.register()

NAMES = ["s", "p2", "p3", "p5", "p7", "p11"]
ODIM = 257


def tiny_sovits(**kwargs) -> SoVITS:
    return SoVITS(
        idim=12,
        odim=ODIM,
        sampling_rate=TINY_MEL_LOSS_PARAMS["fs"],
        generator_params=copy.deepcopy(TINY_GENERATOR_PARAMS),
        mel_loss_params=dict(TINY_MEL_LOSS_PARAMS),
        **kwargs,
    )


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tiny_sovits()


def batch():
    generator = torch.Generator().manual_seed(1)
    frames = torch.tensor([40, 34])
    return dict(
        text=torch.randint(2, 12, (2, 9), generator=generator),
        text_lengths=torch.tensor([9, 7]),
        feats=torch.randn(2, 40, ODIM, generator=generator),
        feats_lengths=frames,
        speech=0.1 * torch.randn(2, 40 * HOP_LENGTH, generator=generator),
        speech_lengths=frames * HOP_LENGTH,
    )


def generator_outputs(model, data, seed):
    torch.manual_seed(seed)
    return model.generator(
        text=data["text"],
        text_lengths=data["text_lengths"],
        feats=data["feats"].transpose(1, 2),
        feats_lengths=data["feats_lengths"],
    )


def real_segments(model, data, start_idxs):
    upsample = model.generator.upsample_factor
    return get_segments(
        data["speech"].unsqueeze(1),
        start_idxs * upsample,
        model.generator.segment_size * upsample,
    )


def test_defaults_are_gpt_sovits():
    defaults = {
        name: p.default
        for name, p in inspect.signature(SoVITS.__init__).parameters.items()
    }
    assert issubclass(SoVITS, VITS)
    assert defaults["discriminator_type"] == "sovits_mpd"
    assert defaults["discriminator_params"] == {}
    assert (
        defaults["lambda_adv"],
        defaults["lambda_feat_match"],
        defaults["lambda_mel"],
        defaults["lambda_kl"],
        defaults["lambda_dur"],
    ) == (1.0, 2.0, 45.0, 1.0, 1.0)
    assert defaults["sampling_rate"] == 32000
    assert defaults["mel_loss_params"] == {
        "n_fft": 2048,
        "hop_length": 640,
        "win_length": 2048,
        "n_mels": 128,
        "fmin": 0,
        "fmax": None,
    }
    for name in (
        "generator_adv_loss_params",
        "discriminator_adv_loss_params",
        "feat_match_loss_params",
    ):
        assert defaults[name] == {"average_by_discriminators": False}


def test_built_modules(model):
    assert isinstance(model.discriminator, SoVITSMultiPeriodDiscriminator)
    assert model.discriminator.sub_discriminator_names == NAMES
    assert isinstance(model.generator_adv_loss, SoVITSGeneratorLoss)
    assert isinstance(model.discriminator_adv_loss, SoVITSDiscriminatorLoss)
    assert isinstance(model.feat_match_loss, SoVITSFeatureLoss)
    assert isinstance(model.mel_loss, SoVITSMelLoss)
    assert isinstance(model.kl_loss, SoVITSKLLoss)
    assert model.mel_loss.mel.fs == TINY_MEL_LOSS_PARAMS["fs"]
    assert not model.generator_adv_loss.average_by_discriminators


def test_discriminator_turn_equals_separate_passes_and_stock_loss(model):
    data = batch()
    model.train()
    model._cache = None
    torch.manual_seed(5)
    out = model(**data, forward_generator=False)
    model._cache = None
    assert out["optim_idx"] == 1

    outs = generator_outputs(model, data, seed=5)
    speech_hat, start_idxs = outs[0], outs[3]
    with torch.no_grad():
        p_hat = model.discriminator(speech_hat)
        p = model.discriminator(real_segments(model, data, start_idxs))
    real, fake = DiscriminatorAdversarialLoss(
        average_by_discriminators=False, loss_type="mse"
    )(p_hat, p)
    stats = out["stats"]
    np.testing.assert_allclose(out["loss"].item(), (real + fake).item(), rtol=1e-5)
    np.testing.assert_allclose(
        stats["discriminator_real_loss"].item(), real.item(), rtol=1e-5
    )
    np.testing.assert_allclose(
        stats["discriminator_fake_loss"].item(), fake.item(), rtol=1e-5
    )
    for name, score_hat, score in zip(NAMES, p_hat, p):
        np.testing.assert_allclose(
            stats[f"discriminator_fake_loss_{name}"].item(),
            torch.mean(score_hat[-1] ** 2).item(),
            rtol=1e-5,
        )
        np.testing.assert_allclose(
            stats[f"discriminator_real_loss_{name}"].item(),
            torch.mean((1 - score[-1]) ** 2).item(),
            rtol=1e-5,
        )


def test_generator_turn_applies_gpt_sovits_weights(model):
    data = batch()
    model.train()
    model._cache = None
    torch.manual_seed(7)
    out = model(**data, forward_generator=True)
    model._cache = None
    assert out["optim_idx"] == 0

    outs = generator_outputs(model, data, seed=7)
    speech_hat, dur_nll, _, start_idxs, _, z_mask, (_, z_p, m_p, logs_p, _, logs_q) = (
        outs
    )
    speech = real_segments(model, data, start_idxs)
    with torch.no_grad():
        p_hat = model.discriminator(speech_hat)
        p = model.discriminator(speech)
        adv = GeneratorAdversarialLoss(average_by_discriminators=False)(p_hat)
        feat = FeatureMatchLoss(
            average_by_discriminators=False,
            average_by_layers=False,
            include_final_outputs=True,
        )(p_hat, p)
        mel = SoVITSMelLoss(**TINY_MEL_LOSS_PARAMS)(speech_hat, speech)
        kl = KLDivergenceLoss()(z_p, logs_q, m_p, logs_p, z_mask)
        dur = dur_nll.sum()
    expected = {
        "generator_adv_loss": adv.item(),
        "generator_feat_match_loss": 2.0 * feat.item(),
        "generator_mel_loss": 45.0 * mel.item(),
        "generator_kl_loss": kl.item(),
        "generator_dur_loss": dur.item(),
    }
    expected["generator_loss"] = sum(expected.values())
    stats = out["stats"]
    for key, value in expected.items():
        np.testing.assert_allclose(stats[key].item(), value, rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(
        out["loss"].item(), expected["generator_loss"], rtol=1e-5
    )
    for name, score_hat in zip(NAMES, p_hat):
        np.testing.assert_allclose(
            stats[f"generator_adv_loss_{name}"].item(),
            torch.mean((1 - score_hat[-1]) ** 2).item(),
            rtol=1e-5,
        )
    np.testing.assert_allclose(
        sum(stats[f"generator_feat_match_loss_{n}"].item() for n in NAMES),
        feat.item(),
        rtol=1e-5,
    )


@pytest.mark.parametrize("generator_first", [False, True])
def test_cache_runs_generator_once_per_step_in_both_orders(model, generator_first):
    data = batch()
    calls = []
    handle = model.generator.register_forward_hook(lambda *args: calls.append(1))
    try:
        model.train()
        model._cache = None
        order = [True, False] if generator_first else [False, True]
        for forward_generator in order:
            model(**data, forward_generator=forward_generator)
        assert len(calls) == 1
        assert model._cache is None
    finally:
        handle.remove()


def test_generator_turn_leaves_discriminator_gradients_of_fake_only(model):
    """The real segment goes through the discriminator without a graph."""
    data = batch()
    model.train()
    model._cache = None
    model.zero_grad(set_to_none=True)
    torch.manual_seed(3)
    model(**data, forward_generator=True)["loss"].backward()
    model._cache = None
    assert all(p.grad is not None for p in model.generator.decoder.parameters())
    model.zero_grad(set_to_none=True)
    out = model(**data, forward_generator=False)
    out["loss"].backward()
    model._cache = None
    assert all(p.grad is None for p in model.generator.parameters())
    assert any(p.grad is not None for p in model.discriminator.parameters())
    model.zero_grad(set_to_none=True)


def generator_turn_gradients(model, seed=3):
    """Run a generator turn's backward; return the gradients by parameter name."""
    model.train()
    model._cache = None
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    model(**batch(), forward_generator=True)["loss"].backward()
    model._cache = None
    grads = {
        name: p.grad.clone()
        for name, p in model.named_parameters()
        if p.grad is not None
    }
    model.zero_grad(set_to_none=True)
    return grads


def test_generator_turn_skips_only_the_discriminator_parameter_gradients(model):
    """The default computes no discriminator gradient in the generator turn
    and exactly the generator gradients of ESPnet's way, which computes both."""
    assert model.discriminator_grads_in_generator_turn is False
    skipped = generator_turn_gradients(model)
    model.discriminator_grads_in_generator_turn = True
    try:
        computed = generator_turn_gradients(model)
    finally:
        model.discriminator_grads_in_generator_turn = False

    discriminator_names = {
        f"discriminator.{name}" for name, _ in model.discriminator.named_parameters()
    }
    assert not discriminator_names & set(skipped)
    assert discriminator_names <= set(computed)
    assert set(skipped) == set(computed) - discriminator_names
    assert len(skipped) > 0
    for name, grad in skipped.items():
        assert torch.equal(grad, computed[name]), name
    assert all(p.requires_grad for p in model.discriminator.parameters())


def test_generator_turn_restores_the_flags_after_an_error_and_keeps_frozen_ones():
    torch.manual_seed(0)
    sovits = tiny_sovits()
    fixed = sovits.discriminator.discriminators[0].conv_post.bias
    fixed.requires_grad_(False)
    with pytest.raises(RuntimeError, match="inside"):
        with sovits._generator_turn_discriminator():
            assert not any(p.requires_grad for p in sovits.discriminator.parameters())
            raise RuntimeError("inside the generator turn")
    assert not fixed.requires_grad
    others = [p for p in sovits.discriminator.parameters() if p is not fixed]
    assert len(others) > 0 and all(p.requires_grad for p in others)


def test_gradient_checkpointing_keeps_discriminator_gradients_in_generator_turn():
    """Checkpointed sub-discriminators recompute with the parameters as the
    forward saw them, so the generator turn keeps their gradients."""
    torch.manual_seed(0)
    sovits = tiny_sovits(discriminator_params={"gradient_checkpointing": True})
    grads = generator_turn_gradients(sovits)
    assert all(
        f"discriminator.{name}" in grads
        for name, _ in sovits.discriminator.named_parameters()
    )


def test_eval_mode_keeps_nothing_and_reports_the_same_stats(model):
    data = batch()
    model.eval()
    try:
        with torch.no_grad():
            out_d = model(**data, forward_generator=False)
            assert model._cache is None
            out_g = model(**data, forward_generator=True)
            assert model._cache is None
    finally:
        model.train()
    assert {f"discriminator_fake_loss_{n}" for n in NAMES} <= set(out_d["stats"])
    assert {f"generator_adv_loss_{n}" for n in NAMES} <= set(out_g["stats"])
    assert all(np.isfinite(v.item()) for v in out_g["stats"].values())


def test_mel_loss_takes_the_sampling_rate():
    mel_params = {k: v for k, v in TINY_MEL_LOSS_PARAMS.items() if k != "fs"}
    model = SoVITS(
        idim=12,
        odim=ODIM,
        sampling_rate=22050,
        generator_params=copy.deepcopy(TINY_GENERATOR_PARAMS),
        discriminator_type="hifigan_period_discriminator",
        mel_loss_params=mel_params,
    )
    assert model.mel_loss.mel.fs == 22050
    with pytest.raises(
        ValueError, match="mel_loss_params.fs=16000 differs from sampling_rate=22050"
    ):
        SoVITS(
            idim=12,
            odim=ODIM,
            sampling_rate=22050,
            mel_loss_params=TINY_MEL_LOSS_PARAMS,
        )


def test_averaged_losses_and_unnamed_discriminator():
    torch.manual_seed(0)
    model = tiny_sovits(
        discriminator_type="hifigan_multi_period_discriminator",
        discriminator_params={"periods": [2, 3]},
        discriminator_adv_loss_params={"average_by_discriminators": True},
    )
    assert model.discriminator_adv_loss.average_by_discriminators
    out = model(**batch(), forward_generator=False)
    model._cache = None
    stats = out["stats"]
    terms = [stats[f"discriminator_real_loss_{i}"].item() for i in range(2)]
    np.testing.assert_allclose(
        stats["discriminator_real_loss"].item(), np.mean(terms), rtol=1e-5
    )


def test_inference_noise_scales_are_used(model):
    model.eval()
    text = torch.tensor([3, 4, 5, 6, 7])
    try:
        waves = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            waves.append(
                model.inference(text, noise_scale=0.0, noise_scale_dur=0.0)["wav"]
            )
        torch.manual_seed(0)
        noisy = model.inference(text, noise_scale=0.667, noise_scale_dur=0.8)["wav"]
    finally:
        model.train()
    assert torch.equal(waves[0], waves[1])
    assert not (noisy.shape == waves[0].shape and torch.equal(noisy, waves[0]))
    assert waves[0].numel() % model.generator.upsample_factor == 0


def test_stft_loss_term_is_added_with_its_weight():
    """lambda_stft > 0 adds so-vits-svc-5.0's 9 * (sc + mag) to the generator loss."""
    from espnet_sovits_disc.losses import SoVITSMultiResolutionSTFTLoss

    resolutions = [[512, 50, 240], [1024, 120, 600]]
    torch.manual_seed(0)
    model = tiny_sovits(
        lambda_stft=9.0, stft_loss_params={"resolutions": resolutions}
    ).train()
    data = batch()
    torch.manual_seed(7)
    out = model(**data, forward_generator=True)
    model._cache = None
    outs = generator_outputs(model, data, seed=7)
    speech_hat, start_idxs = outs[0], outs[3]
    speech = real_segments(model, data, start_idxs)
    with torch.no_grad():
        sc, mag = SoVITSMultiResolutionSTFTLoss(resolutions=resolutions)(speech_hat, speech)
    stats = out["stats"]
    np.testing.assert_allclose(
        stats["generator_stft_loss"].item(), 9.0 * (sc + mag).item(), rtol=1e-5
    )
    parts = ["mel", "kl", "dur", "adv", "feat_match", "stft"]
    np.testing.assert_allclose(
        stats["generator_loss"].item(),
        sum(stats[f"generator_{p}_loss"].item() for p in parts),
        rtol=1e-5,
    )
    assert "generator_stft_loss" not in tiny_sovits()(**data, forward_generator=True)["stats"]
