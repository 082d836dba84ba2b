"""The losses equal the reference values (golden data) and ESPnet's stock losses.

Golden values: GPT-SoVITS ``module/losses.py`` on the reference
discriminators' outputs (``cases.C.losses``), ``kl_loss`` and
``mel_spectrogram_torch`` (``mel``), compared with the golden tolerances.
Stock equivalence: ESPnet's HiFi-GAN losses compute GPT-SoVITS's with
``loss_type: mse``, no averaging, ``include_final_outputs: true`` and
``lambda_feat_match: 2``.
"""

import numpy as np
import pytest
import torch
from espnet2.gan_tts.hifigan.loss import (
    DiscriminatorAdversarialLoss,
    FeatureMatchLoss,
    GeneratorAdversarialLoss,
)
from espnet2.gan_tts.vits.loss import KLDivergenceLoss

from espnet_sovits_disc.losses import (
    SoVITSDiscriminatorLoss,
    SoVITSFeatureLoss,
    SoVITSGeneratorLoss,
    SoVITSKLLoss,
    SoVITSMelLoss,
    SoVITSMultiResolutionSTFTLoss,
)
from espnet_sovits_disc.mel import LogMelSpectrogram
from espnet_sovits_disc.registry import get_discriminator_class
from tests.golden import (
    CASES,
    assert_close_array,
    golden_arrays,
    golden_json,
    inputs,
    reference_state_dict,
)

STOCK_TOLERANCE = dict(rtol=1e-6, atol=0.0)


@pytest.fixture(scope="module", params=list(CASES))
def case_outputs(request):
    """Golden-weight discriminator outputs (fake, real) of one case."""
    case = request.param
    name, params = CASES[case]
    discriminator = get_discriminator_class(name)(**params).eval()
    discriminator.load_state_dict(reference_state_dict(case))
    real, fake = inputs()
    with torch.no_grad():
        outs_real, outs_fake = discriminator.forward_pair(real, fake)
    return case, outs_fake, outs_real


def values(tensors):
    return [t.item() for t in tensors]


def test_generator_loss_equals_golden(case_outputs):
    case, outs_fake, _ = case_outputs
    expected = golden_json()["cases"][case]["losses"]
    loss = SoVITSGeneratorLoss()
    assert_close_array(
        values(loss.terms(outs_fake)), expected["generator_losses"], case
    )
    assert_close_array(loss(outs_fake).item(), expected["generator_loss"], case)
    assert loss(outs_fake).dtype == torch.float32


def test_discriminator_loss_equals_golden(case_outputs):
    case, outs_fake, outs_real = case_outputs
    expected = golden_json()["cases"][case]["losses"]
    loss = SoVITSDiscriminatorLoss()
    real_terms, fake_terms = loss.terms(outs_fake, outs_real)
    assert_close_array(values(real_terms), expected["discriminator_real_losses"], case)
    assert_close_array(values(fake_terms), expected["discriminator_fake_losses"], case)
    real_loss, fake_loss = loss(outs_fake, outs_real)
    assert_close_array(
        (real_loss + fake_loss).item(), expected["discriminator_loss"], case
    )


def test_feature_loss_times_two_equals_golden(case_outputs):
    case, outs_fake, outs_real = case_outputs
    expected = golden_json()["cases"][case]["losses"]["feature_loss"]
    assert_close_array(
        2.0 * SoVITSFeatureLoss()(outs_fake, outs_real).item(), expected, case
    )


def test_losses_equal_espnet_stock_losses(case_outputs):
    case, outs_fake, outs_real = case_outputs
    for average in (False, True):
        stock_gen = GeneratorAdversarialLoss(
            average_by_discriminators=average, loss_type="mse"
        )
        stock_dis = DiscriminatorAdversarialLoss(
            average_by_discriminators=average, loss_type="mse"
        )
        stock_feat = FeatureMatchLoss(
            average_by_discriminators=average,
            average_by_layers=False,
            include_final_outputs=True,
        )
        gen = SoVITSGeneratorLoss(average_by_discriminators=average)
        dis = SoVITSDiscriminatorLoss(average_by_discriminators=average)
        feat = SoVITSFeatureLoss(average_by_discriminators=average)
        np.testing.assert_allclose(
            gen(outs_fake).item(), stock_gen(outs_fake).item(), **STOCK_TOLERANCE
        )
        np.testing.assert_allclose(
            [t.item() for t in dis(outs_fake, outs_real)],
            [t.item() for t in stock_dis(outs_fake, outs_real)],
            **STOCK_TOLERANCE,
        )
        np.testing.assert_allclose(
            2.0 * feat(outs_fake, outs_real).item(),
            2.0 * stock_feat(outs_fake, outs_real).item(),
            **STOCK_TOLERANCE,
        )


def test_averaged_form_is_sum_over_number_of_discriminators(case_outputs):
    """so-vits-svc-5.0 divides the GPT-SoVITS sums by K."""
    case, outs_fake, outs_real = case_outputs
    expected = golden_json()["cases"][case]["losses"]
    k = len(outs_fake)
    gen = SoVITSGeneratorLoss(average_by_discriminators=True)
    dis = SoVITSDiscriminatorLoss(average_by_discriminators=True)
    feat = SoVITSFeatureLoss(average_by_discriminators=True)
    assert_close_array(gen(outs_fake).item(), expected["generator_loss"] / k, case)
    real_loss, fake_loss = dis(outs_fake, outs_real)
    assert_close_array(
        (real_loss + fake_loss).item(), expected["discriminator_loss"] / k, case
    )
    assert_close_array(
        2.0 * feat(outs_fake, outs_real).item(), expected["feature_loss"] / k, case
    )


def test_adversarial_losses_are_float32_for_half_inputs():
    torch.manual_seed(0)
    scores = [[torch.randn(2, 5, 3), torch.randn(2, 7)] for _ in range(3)]
    half = [[t.half() for t in sub] for sub in scores]
    rounded = [[t.float() for t in sub] for sub in half]
    loss = SoVITSGeneratorLoss()
    assert loss(half).dtype == torch.float32
    assert loss(half).item() == loss(rounded).item()
    real, fake = SoVITSDiscriminatorLoss()(half, half)
    assert real.dtype == fake.dtype == torch.float32
    assert SoVITSFeatureLoss()(half, half).dtype == torch.float32


def test_feature_loss_detaches_real_features():
    real = [
        [torch.randn(2, 4, requires_grad=True), torch.randn(2, 3, requires_grad=True)]
    ]
    fake = [
        [torch.randn(2, 4, requires_grad=True), torch.randn(2, 3, requires_grad=True)]
    ]
    SoVITSFeatureLoss()(fake, real).backward()
    assert all(t.grad is None for t in real[0])
    assert all(t.grad is not None for t in fake[0])


def test_single_score_tensor_and_score_list_forms():
    torch.manual_seed(0)
    a, b = torch.randn(2, 9), torch.randn(2, 4)
    loss = SoVITSGeneratorLoss()
    expected = torch.mean((1 - a) ** 2) + torch.mean((1 - b) ** 2)
    assert torch.allclose(loss([a, b]), expected)
    assert torch.allclose(loss([[a], [torch.zeros(1), b]]), expected)
    assert torch.allclose(loss(a), torch.mean((1 - a) ** 2))


def test_mismatched_discriminator_outputs_are_refused():
    scores = [[torch.zeros(2, 3)]]
    with pytest.raises(ValueError, match="same discriminator"):
        SoVITSDiscriminatorLoss()(scores, scores + scores)
    with pytest.raises(ValueError, match="same discriminator"):
        SoVITSFeatureLoss()(scores, scores + scores)
    with pytest.raises(ValueError, match="no outputs"):
        SoVITSGeneratorLoss()([])


def kl_arrays():
    arrays = golden_arrays()
    return [
        torch.from_numpy(arrays[f"kl.{name}"])
        for name in ("z_p", "logs_q", "m_p", "logs_p", "z_mask")
    ]


def test_kl_loss_equals_golden_and_stock():
    args = kl_arrays()
    ours = SoVITSKLLoss()(*args).item()
    assert_close_array(ours, golden_json()["kl_loss"], "kl_loss")
    np.testing.assert_allclose(
        ours, KLDivergenceLoss()(*args).item(), **STOCK_TOLERANCE
    )
    assert SoVITSKLLoss()(*(t.half() for t in args)).dtype == torch.float32


def mel_params():
    params = golden_json()["mel"]["params"]
    return dict(
        fs=params["sampling_rate"],
        n_fft=params["n_fft"],
        hop_length=params["hop_size"],
        win_length=params["win_size"],
        n_mels=params["num_mels"],
        fmin=params["fmin"],
        fmax=params["fmax"],
    )


def test_mel_defaults_are_gpt_sovits_s2_settings():
    mel = LogMelSpectrogram()
    params = mel_params()
    assert {k: getattr(mel, k) for k in params} == params


def test_log_mel_equals_golden():
    real, fake = inputs()
    arrays = golden_arrays()
    mel = LogMelSpectrogram(**mel_params())
    assert list(mel(real).shape) == golden_json()["mel"]["shape"]
    assert_close_array(mel(real).numpy(), arrays["mel.real"], "mel.real")
    assert_close_array(mel(fake).numpy(), arrays["mel.fake"], "mel.fake")
    assert_close_array(mel(real.squeeze(1)).numpy(), arrays["mel.real"], "(B, T) input")


def test_mel_loss_times_45_equals_golden():
    real, fake = inputs()
    loss = SoVITSMelLoss(**mel_params())
    assert_close_array(
        45.0 * loss(fake, real).item(), golden_json()["mel"]["l1_times_45"], "mel loss"
    )
    half = loss(fake.half(), real.half())
    assert half.dtype == torch.float32
    np.testing.assert_allclose(
        half.item(), loss(fake.half().float(), real.half().float()).item()
    )


def test_mel_caches_constants_per_device_and_is_stateless():
    mel = LogMelSpectrogram(
        fs=16000, n_fft=512, hop_length=128, win_length=512, n_mels=40
    )
    real, _ = inputs()
    mel(real)
    mel(real.double())
    assert list(mel._cache) == [torch.device("cpu")]
    assert mel.state_dict() == {}


def test_mel_rejects_short_and_misshaped_input():
    mel = LogMelSpectrogram()
    with pytest.raises(ValueError, match="too short"):
        mel(torch.zeros(1, 1, 704))
    with pytest.raises(ValueError, match=r"\(B, 1, T\)"):
        mel(torch.zeros(1, 2, 4000))
    with pytest.raises(ValueError, match="hop_length"):
        LogMelSpectrogram(n_fft=512, hop_length=640)


def numpy_stft_magnitude(x, n_fft, hop, win):
    """Independent reference: centred reflect-padded STFT with a periodic Hann."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    left = (n_fft - win) // 2
    window = np.pad(window, (left, n_fft - win - left))
    x = np.pad(x, [(0, 0), (n_fft // 2, n_fft // 2)], mode="reflect")
    frames = 1 + (x.shape[1] - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.fft.rfft(x[:, index] * window, axis=-1)
    return np.sqrt(np.maximum(spec.real**2 + spec.imag**2, 1e-7))


def test_multi_resolution_stft_loss_equals_independent_computation():
    real, fake = inputs()
    y, y_hat = real.squeeze(1).double().numpy(), fake.squeeze(1).double().numpy()
    resolutions = [
        (1024, 120, 600),
        (2048, 240, 1200),
        (4096, 480, 2400),
        (512, 50, 240),
    ]
    sc, mag = [], []
    for n_fft, hop, win in resolutions:
        m, m_hat = (numpy_stft_magnitude(v, n_fft, hop, win) for v in (y, y_hat))
        sc.append(np.linalg.norm(m - m_hat) / np.linalg.norm(m))
        mag.append(np.mean(np.abs(np.log(m) - np.log(m_hat))))
    loss = SoVITSMultiResolutionSTFTLoss()
    assert loss.resolutions == resolutions
    sc_loss, mag_loss = loss(fake, real)
    np.testing.assert_allclose(sc_loss.item(), np.mean(sc), rtol=1e-4)
    np.testing.assert_allclose(mag_loss.item(), np.mean(mag), rtol=1e-4)
    zero_sc, zero_mag = loss(real, real)
    assert zero_sc.item() == 0.0 and zero_mag.item() == 0.0


def test_multi_resolution_stft_loss_rejects_short_input():
    loss = SoVITSMultiResolutionSTFTLoss()
    with pytest.raises(ValueError, match="too short"):
        loss(torch.zeros(1, 1, 2048), torch.zeros(1, 1, 2048))
    with pytest.raises(ValueError, match="win_length"):
        SoVITSMultiResolutionSTFTLoss(resolutions=[(512, 50, 1024)])
