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


# (discriminator, params, its minimum length, the sub-discriminator that sets it)
MINIMUMS = [
    ("sovits_mpd", {}, 6, "p11"),
    ("sovits_mpd", {"version": "v2Pro"}, 12, "p23"),
    ("sovits_mrd", {}, 1809, "r4096"),
    ("sovits_svc", {}, 1809, "r4096"),
]


def too_short_message(cls_name: str, length: int, minimum: int, culprit: str) -> str:
    return (
        rf"waveform of {length} samples is too short for {cls_name}, which needs "
        rf"at least {minimum} samples: its sub-discriminator {culprit} needs them "
    )


@pytest.mark.parametrize(
    "name, params, minimum, culprit", MINIMUMS, ids=["mpd", "mpd_v2pro", "mrd", "svc"]
)
@pytest.mark.parametrize("length", [16, 600, 1808, "minimum - 1", "minimum"])
def test_too_short_names_the_whole_minimum_and_its_sub_discriminator(
    discriminators, name, params, minimum, culprit, length
):
    """The first error already names what the whole discriminator needs
    (not the first sub-discriminator that fails), and that length works."""
    discriminator = (
        discriminators[name] if not params else get_discriminator_class(name)(**params)
    )
    assert discriminator.minimum_length == minimum
    length = {"minimum - 1": minimum - 1, "minimum": minimum}.get(length, length)
    x = torch.zeros(1, 1, length)
    if length < minimum:
        message = too_short_message(type(discriminator).__name__, length, minimum, culprit)
        with pytest.raises(ValueError, match=message):
            discriminator(x)
        with pytest.raises(ValueError, match=message):
            discriminator.forward_pair(x, x)
        return
    with torch.no_grad():
        outputs = discriminator(x)
    assert len(outputs) == len(discriminator.sub_discriminator_names)
    assert all(torch.isfinite(t).all() for sub in outputs for t in sub)


def test_too_short_inside_espnet_joint_text2wav():
    """ESPnet's JointText2Wav trains on a short random segment
    (``segment_size`` frames times the vocoder's upsampling: 4 x 64 = 256
    samples here); with ``sovits_mrd`` its discriminator turn stops with the
    whole discriminator's minimum."""
    from espnet2.gan_tts.joint.joint_text2wav import JointText2Wav

    import espnet_sovits_disc

    espnet_sovits_disc.register()
    torch.manual_seed(0)
    model = JointText2Wav(
        idim=10,
        odim=8,
        segment_size=4,
        sampling_rate=16000,
        text2mel_params=dict(
            adim=16, aheads=2, elayers=1, eunits=16, dlayers=1, dunits=16,
            postnet_layers=0, encoder_type="transformer", decoder_type="transformer",
            duration_predictor_layers=1, duration_predictor_chans=8,
            energy_predictor_layers=1, energy_predictor_chans=8,
            pitch_predictor_layers=1, pitch_predictor_chans=8,
        ),
        vocoder_params=dict(
            out_channels=1, channels=16, upsample_scales=[8, 8],
            upsample_kernel_sizes=[16, 16], resblock_kernel_sizes=[3],
            resblock_dilations=[[1]],
        ),
        discriminator_type="sovits_mrd",
        discriminator_params={},
    )
    batch, tokens, frames = 2, 5, 12
    lengths = torch.full((batch,), tokens)
    # FastSpeech2 appends <eos>: durations, pitch and energy have tokens + 1.
    per_token = dict(
        durations=torch.full((batch, tokens + 1), 2),
        durations_lengths=lengths + 1,
        pitch=torch.randn(batch, tokens + 1, 1),
        pitch_lengths=lengths + 1,
        energy=torch.randn(batch, tokens + 1, 1),
        energy_lengths=lengths + 1,
    )
    with pytest.raises(
        ValueError, match=too_short_message("SoVITSMultiResolutionDiscriminator", 256, 1809, "r4096")
    ):
        model(
            torch.randint(1, 9, (batch, tokens)),
            lengths,
            torch.randn(batch, frames, 8),
            torch.full((batch,), frames),
            torch.randn(batch, frames * 64),
            torch.full((batch,), frames * 64),
            forward_generator=False,
            **per_token,
        )


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
