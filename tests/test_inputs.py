"""Bad input gets clear errors; silence and autocast give finite results."""

import numpy as np
import pytest
import torch

from espnet_sovits_disc.registry import get_discriminator_class

NAMES = ["sovits_mpd", "sovits_mrd", "sovits_svc"]


@pytest.fixture(scope="module")
def discriminators():
    torch.manual_seed(0)
    return {name: get_discriminator_class(name)() for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "bad, error, pattern",
    [
        (np.zeros((1, 1, 4096), dtype=np.float32), TypeError, r"\(B, 1, T\).*ndarray"),
        (torch.zeros(1, 1, 4096, dtype=torch.int16), TypeError, r"floating-point.*int16"),
        (torch.zeros(1, 4096), ValueError, r"\(B, 1, T\).*\(1, 4096\).*unsqueeze\(1\)"),
        (torch.zeros(4096), ValueError, r"\(B, 1, T\).*view\(1, 1, -1\)"),
        (torch.zeros(1, 2, 4096), ValueError, r"\(B, 1, T\), got shape \(1, 2, 4096\)"),
        (torch.zeros(0, 1, 4096), ValueError, r"non-empty"),
    ],
)
def test_bad_waveforms_are_refused_clearly(discriminators, name, bad, error, pattern):
    with pytest.raises(error, match=pattern):
        discriminators[name](bad)


@pytest.mark.parametrize(
    "name, length, culprit, minimum",
    [
        ("sovits_mrd", 1808, "r4096", 1809),
        ("sovits_svc", 1000, "r4096", 1809),
        ("sovits_mpd", 5, "p11", 6),
    ],
)
def test_too_short_names_minimum_and_sub_discriminator(
    discriminators, name, length, culprit, minimum
):
    discriminator = discriminators[name]
    assert discriminator.minimum_length == minimum
    with pytest.raises(ValueError, match=rf"{length} samples.*{culprit}.*at least {minimum}"):
        discriminator(torch.zeros(1, 1, length))
    outputs = discriminator(torch.zeros(1, 1, minimum))
    assert all(torch.isfinite(t).all() for sub in outputs for t in sub)


def test_forward_pair_refuses_mismatched_shapes(discriminators):
    with pytest.raises(ValueError, match=r"same shape.*\(1, 1, 4096\) and \(1, 1, 4000\)"):
        discriminators["sovits_mpd"].forward_pair(
            torch.zeros(1, 1, 4096), torch.zeros(1, 1, 4000)
        )


@pytest.mark.parametrize("name", NAMES)
def test_silence_gives_finite_outputs_and_gradients(discriminators, name):
    discriminator = discriminators[name]
    discriminator.zero_grad()
    x = torch.zeros(2, 1, 4096, requires_grad=True)
    outputs = discriminator(x)
    loss = sum(sub[-1].square().mean() + sum(f.abs().mean() for f in sub[:-1]) for sub in outputs)
    loss.backward()
    assert all(torch.isfinite(t).all() for sub in outputs for t in sub)
    assert torch.isfinite(x.grad).all()
    for parameter_name, parameter in discriminator.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_autocast_keeps_stft_in_float32(discriminators, name):
    discriminator = discriminators[name]
    x = torch.randn(1, 1, 4096)
    with torch.no_grad():
        reference = discriminator(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs = discriminator(x)
            for sub in discriminator.sub_discriminators():
                if hasattr(sub, "spectrogram"):
                    assert sub.spectrogram(x).dtype == torch.float32
    for sub_ref, sub_out in zip(reference, outputs):
        score, expected = sub_out[-1].float(), sub_ref[-1]
        assert torch.isfinite(score).all()
        # bfloat16 keeps 8 bits of mantissa: scores agree to a few percent of
        # their range after several convolutions.
        scale = expected.abs().max().clamp_min(1e-3)
        assert (score - expected).abs().max() / scale < 0.1
