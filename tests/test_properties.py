"""Property-based tests of the discriminators' input contract.

Valid waveforms (B, 1, T) give finite outputs of the documented shapes for
every batch size, every length from the minimum on (every residue modulo the
periods included) and every floating dtype; invalid inputs give the
documented ``TypeError``/``ValueError`` messages, never a bare PyTorch error.
Silence, square waves, DC and clipped signals give finite outputs and
gradients. The shapes are computed here from the reference architectures'
layer tables written out below (channels, kernels, strides, paddings),
independently of the implementation.
"""

import functools
import re
from typing import List, Tuple

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from espnet_sovits_disc.discriminators import (
    PeriodDiscriminator,
    ResolutionDiscriminator,
    ScaleDiscriminator,
)
from espnet_sovits_disc.registry import get_discriminator_class
from tests.signals import SIGNALS

NAMES = ["sovits_mpd", "sovits_mrd", "sovits_svc"]

# Minimum lengths of the default discriminators and of their sub-discriminators
# (period p: p // 2 + 1 for the reflect padding; resolution: reflect padding of
# (n_fft - hop) // 2 samples needs one more sample than that).
SUB_MINIMUMS = {
    "sovits_mpd": {"s": 1, "p2": 2, "p3": 2, "p5": 3, "p7": 4, "p11": 6},
    "sovits_mrd": {"r1024": 453, "r2048": 905, "r4096": 1809, "r512": 232},
    "sovits_svc": {
        "r1024": 453, "r2048": 905, "r4096": 1809, "r512": 232,
        "p2": 2, "p3": 2, "p5": 3, "p7": 4, "p11": 6, "s": 1,
    },
}

GPT_SOVITS_P_CHANNELS = (32, 128, 512, 1024, 1024)
UNIVNET_P_CHANNELS = (64, 128, 256, 512, 1024)
S_CHANNELS = (16, 64, 256, 1024, 1024, 1024)
S_STRIDES = (1, 4, 4, 4, 4, 1)
R_CHANNELS = (32, 32, 32, 32, 32)
R_TIME_STRIDES = (1, 2, 2, 2, 1)

FLOAT_DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]

SETTINGS = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.lru_cache(maxsize=None)
def default_discriminator(name: str) -> torch.nn.Module:
    """The discriminator ``name`` with its default (reference) configuration."""
    torch.manual_seed(0)
    return get_discriminator_class(name)().eval()


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def expected_shapes(sub: torch.nn.Module, batch: int, length: int) -> List[Tuple]:
    """Feature-map shapes then the score shape of one sub-discriminator."""
    if isinstance(sub, ScaleDiscriminator):
        shapes, t = [], length
        for channels, stride in zip(S_CHANNELS, S_STRIDES):
            t = ceil_div(t, stride)
            shapes.append((batch, channels, t))
        return shapes + [(batch, t)]
    if isinstance(sub, PeriodDiscriminator):
        p = sub.period
        channels = [conv.bias.numel() for conv in sub.convs]
        strides = [3] * (len(channels) - 1) + [1]
        shapes, h = [], ceil_div(length, p)
        for c, stride in zip(channels, strides):
            h = ceil_div(h, stride)
            shapes.append((batch, c, h, p))
        return shapes + [(batch, h * p)]
    if isinstance(sub, ResolutionDiscriminator):
        padding = (sub.n_fft - sub.hop_length) // 2
        frames = (length + 2 * padding - sub.n_fft) // sub.hop_length + 1
        bins = sub.n_fft // 2 + 1
        shapes = []
        for c, stride in zip(R_CHANNELS, R_TIME_STRIDES):
            frames = ceil_div(frames, stride)
            shapes.append((batch, c, bins, frames))
        return shapes + [(batch, bins * frames)]
    raise AssertionError(f"unknown sub-discriminator {type(sub).__name__}")


def assert_valid_outputs(discriminator, outputs, batch: int, length: int) -> None:
    subs = discriminator.sub_discriminators()
    assert len(outputs) == len(subs)
    for sub, sub_outputs in zip(subs, outputs):
        shapes = [tuple(t.shape) for t in sub_outputs]
        assert shapes == expected_shapes(sub, batch, length), sub.name
        for tensor in sub_outputs:
            assert torch.isfinite(tensor).all(), sub.name


def limiting_sub_discriminator(name: str) -> Tuple[str, int]:
    """The sub-discriminator a too-short error must name: the one that needs
    the longest waveform (the first of them in output order), and that
    length, which is the whole discriminator's minimum."""
    minimums = SUB_MINIMUMS[name]
    culprit = max(minimums, key=minimums.get)
    return culprit, minimums[culprit]


def waveform(batch: int, length: int, seed: int, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return (0.5 * torch.randn(batch, 1, length, generator=generator)).to(dtype)


@pytest.mark.parametrize("name", NAMES)
def test_default_minimum_lengths_and_sub_discriminator_names(name):
    discriminator = default_discriminator(name)
    assert discriminator.sub_discriminator_names == list(SUB_MINIMUMS[name])
    assert [d.minimum_length for d in discriminator.sub_discriminators()] == list(
        SUB_MINIMUMS[name].values()
    )
    assert discriminator.minimum_length == max(SUB_MINIMUMS[name].values())


@pytest.mark.parametrize("name", NAMES)
def test_the_minimum_length_gives_documented_shapes(name):
    discriminator = default_discriminator(name)
    minimum = discriminator.minimum_length
    with torch.no_grad():
        outputs = discriminator(waveform(2, minimum, seed=minimum))
    assert_valid_outputs(discriminator, outputs, 2, minimum)


def small_discriminator(name: str) -> torch.nn.Module:
    """``name`` with fewer/smaller sub-discriminators of the same kinds, for
    properties that do not depend on the size."""
    torch.manual_seed(0)
    small_resolutions = [[64, 8, 32], [96, 10, 40], [128, 16, 64]]
    kwargs = {
        "sovits_mpd": {"periods": [2, 3]},
        "sovits_mrd": {"resolutions": small_resolutions},
        "sovits_svc": {
            "resolutions": small_resolutions,
            "periods": [2, 3],
            "period_channels": [4, 4, 4, 4, 4],
        },
    }[name]
    return get_discriminator_class(name)(**kwargs).eval()


PERIODS = (2, 3, 5, 7, 11, 17, 23)


def test_every_residue_modulo_every_period_gives_documented_shapes():
    """23 consecutive lengths from each period's minimum: every residue modulo
    every period of GPT-SoVITS v1/v2/v2Pro and so-vits-svc-5.0."""
    torch.manual_seed(0)
    subs = [PeriodDiscriminator(period=p, channels=(2, 4, 4, 8, 8)) for p in PERIODS]
    with torch.no_grad():
        for sub in subs:
            lengths = range(sub.minimum_length, sub.minimum_length + 23)
            assert {n % sub.period for n in lengths} == set(range(sub.period))
            for length in lengths:
                outputs = sub(waveform(2, length, seed=length))
                shapes = [tuple(t.shape) for t in outputs]
                assert shapes == expected_shapes(sub, 2, length), (sub.name, length)
                assert all(torch.isfinite(t).all() for t in outputs)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_one_sample_below_each_sub_minimum_names_it(name, data):
    minimums = SUB_MINIMUMS[name]
    sub_name = data.draw(st.sampled_from([n for n, m in minimums.items() if m > 1]))
    length = minimums[sub_name] - 1
    culprit, minimum = limiting_sub_discriminator(name)
    batch = data.draw(st.integers(1, 3))
    with pytest.raises(
        ValueError,
        match=rf"waveform of {length} samples is too short for \w+, which needs "
        rf"at least {minimum} samples: its sub-discriminator {culprit} needs them",
    ):
        default_discriminator(name)(waveform(batch, length, seed=length))


@pytest.mark.parametrize("name", NAMES)
@settings(SETTINGS, max_examples=3)
@given(
    batch=st.integers(1, 3),
    extra=st.integers(0, 64),
    seed=st.integers(0, 2**16),
    strided=st.booleans(),
)
def test_valid_waveforms_give_finite_outputs_of_documented_shapes(
    name, batch, extra, seed, strided
):
    discriminator = default_discriminator(name)
    length = discriminator.minimum_length + extra
    x = waveform(batch, 2 * length if strided else length, seed)
    if strided:
        x = x[..., ::2]
    with torch.no_grad():
        outputs = discriminator(x)
    assert_valid_outputs(discriminator, outputs, batch, length)


@SETTINGS
@given(
    period=st.integers(1, 31),
    length=st.integers(1, 200),
    batch=st.integers(1, 4),
    lrelu_slope=st.sampled_from([0.1, 0.2]),
)
@example(period=23, length=12, batch=1, lrelu_slope=0.1)
@example(period=23, length=11, batch=1, lrelu_slope=0.1)
@example(period=1, length=1, batch=1, lrelu_slope=0.1)
def test_period_minimum_is_exactly_p_div_2_plus_1(period, length, batch, lrelu_slope):
    """Every (period, length) pair: the length works iff it is at least
    p // 2 + 1, and otherwise the error says so."""
    torch.manual_seed(period)
    sub = PeriodDiscriminator(
        period=period, channels=(4, 4, 4, 4, 4), lrelu_slope=lrelu_slope
    )
    minimum = period // 2 + 1
    assert sub.minimum_length == minimum
    x = waveform(batch, length, seed=length)
    if length < minimum:
        with pytest.raises(
            ValueError, match=rf"{length} samples .* p{period}, .*at least {minimum}"
        ):
            sub(x)
        return
    with torch.no_grad():
        outputs = sub(x)
    assert [tuple(t.shape) for t in outputs] == expected_shapes(sub, batch, length)
    assert all(torch.isfinite(t).all() for t in outputs)


@SETTINGS
@given(
    n_fft=st.integers(8, 96),
    hop_fraction=st.floats(0.01, 1.0),
    win_fraction=st.floats(0.01, 1.0),
    above=st.integers(0, 40),
)
def test_resolution_minimum_is_the_exact_boundary(
    n_fft, hop_fraction, win_fraction, above
):
    """For any STFT geometry the minimum works, one sample fewer is refused
    with the message, and longer inputs give the documented shapes."""
    hop = max(1, int(n_fft * hop_fraction))
    win = max(1, int(n_fft * win_fraction))
    torch.manual_seed(n_fft)
    sub = ResolutionDiscriminator(n_fft=n_fft, hop_length=hop, win_length=win)
    padding = (n_fft - hop) // 2
    minimum = max(padding + 1, n_fft - 2 * padding)
    assert sub.minimum_length == minimum
    with torch.no_grad():
        for length in (minimum, minimum + above):
            outputs = sub(waveform(2, length, seed=length))
            assert [tuple(t.shape) for t in outputs] == expected_shapes(sub, 2, length)
            assert all(torch.isfinite(t).all() for t in outputs)
    if minimum > 1:
        with pytest.raises(
            ValueError,
            match=rf"{minimum - 1} samples .* r{n_fft}, .*at least {minimum}",
        ):
            sub(waveform(2, minimum - 1, seed=0))


def dtype_cases(dtypes):
    return [
        pytest.param(name, dtype, id=f"{name}-{str(dtype)[6:]}")
        for name in NAMES
        for dtype in dtypes
    ]


@pytest.mark.parametrize(
    "name, dtype",
    dtype_cases(FLOAT_DTYPES),
)
def test_any_float_waveform_into_float32_module_gives_finite_outputs(name, dtype):
    """Waveforms of any floating dtype are cast to the module's dtype."""
    discriminator = small_discriminator(name)
    length = discriminator.minimum_length + 5
    with torch.no_grad():
        outputs = discriminator(waveform(2, length, seed=1, dtype=dtype))
    assert_valid_outputs(
        discriminator, [[t.float() for t in sub] for sub in outputs], 2, length
    )


@pytest.mark.parametrize(
    "name, dtype",
    dtype_cases(FLOAT_DTYPES[1:]),
)
def test_module_converted_to_a_float_dtype_takes_that_dtype(name, dtype):
    """``discriminator.to(dtype)`` with a waveform of that dtype: finite
    outputs of the documented shapes in that dtype."""
    discriminator = small_discriminator(name).to(dtype)
    length = discriminator.minimum_length + 5
    with torch.no_grad():
        outputs = discriminator(waveform(2, length, seed=1, dtype=dtype))
    assert {t.dtype for sub in outputs for t in sub} == {dtype}
    assert_valid_outputs(
        discriminator, [[t.float() for t in sub] for sub in outputs], 2, length
    )


@pytest.mark.parametrize("name", NAMES)
@settings(SETTINGS, max_examples=8)
@given(batch=st.integers(1, 4), extra=st.integers(0, 300), seed=st.integers(0, 99))
def test_small_configurations_give_documented_shapes(name, batch, extra, seed):
    """Random batch sizes and lengths on the same kinds of sub-discriminators
    (fewer periods and resolutions, so many examples stay cheap)."""
    discriminator = small_discriminator(name)
    length = discriminator.minimum_length + extra
    with torch.no_grad():
        outputs = discriminator(waveform(batch, length, seed))
    assert_valid_outputs(discriminator, outputs, batch, length)


NON_TENSORS = st.one_of(
    st.none(),
    st.floats(allow_nan=False),
    st.integers(),
    st.lists(st.floats(-1, 1, width=32), min_size=1, max_size=8),
    st.builds(lambda n: np.zeros((1, 1, n), dtype=np.float32), st.integers(1, 8)),
    st.text(max_size=4),
)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(value=NON_TENSORS)
def test_non_tensors_are_refused_with_type_error(name, value):
    with pytest.raises(
        TypeError,
        match=rf"expects a waveform tensor of shape \(B, 1, T\), "
        rf"got {type(value).__name__}",
    ):
        default_discriminator(name)(value)


NON_FLOAT_DTYPES = [
    torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool,
    torch.complex64,
]


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(dtype=st.sampled_from(NON_FLOAT_DTYPES), batch=st.integers(1, 3))
def test_non_float_dtypes_are_refused_with_type_error(name, dtype, batch):
    discriminator = default_discriminator(name)
    x = torch.zeros(batch, 1, discriminator.minimum_length, dtype=dtype)
    with pytest.raises(
        TypeError,
        match=rf"floating-point waveform of shape \(B, 1, T\), got dtype {dtype}",
    ):
        discriminator(x)


@st.composite
def wrong_shapes(draw):
    """Shapes that are not (B, 1, T) with B, T >= 1."""
    rank = draw(st.integers(0, 5))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=rank, max_size=rank)))
    if rank == 3 and shape[1] == 1 and shape[0] >= 1 and shape[2] >= 1:
        shape = (shape[0], draw(st.sampled_from([0, 2, 3])), shape[2])
    return shape


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(shape=wrong_shapes())
@example(shape=(2, 4096))
@example(shape=(4096,))
@example(shape=(0, 1, 4096))
@example(shape=(2, 1, 0))
def test_wrong_shapes_are_refused_with_value_error(name, shape):
    x = torch.zeros(shape)
    if len(shape) == 3 and shape[1] == 1:
        pattern = r"non-empty waveform of shape \(B, 1, T\), got shape " + re.escape(
            str(shape)
        )
    else:
        pattern = r"expects a waveform of shape \(B, 1, T\), got shape " + re.escape(
            str(shape)
        )
        if len(shape) == 2:
            pattern += r"; for a \(B, T\) batch use x\.unsqueeze\(1\)"
        if len(shape) == 1:
            pattern += r"; for a single \(T,\) waveform use x\.view\(1, 1, -1\)"
    with pytest.raises(ValueError, match=pattern):
        default_discriminator(name)(x)


def test_sixteen_bit_pcm_hint_is_given():
    x = torch.zeros(1, 1, 100, dtype=torch.int16)
    with pytest.raises(TypeError, match=r"x\.float\(\) / 32768"):
        default_discriminator("sovits_mpd")(x)




@pytest.mark.parametrize("name", NAMES)
def test_degenerate_signals_give_finite_outputs_and_gradients(name):
    """Silence, full-scale square waves, DC and clipped signals (one batch row
    each): finite scores, feature maps, input and parameter gradients."""
    discriminator = default_discriminator(name)
    discriminator.zero_grad(set_to_none=True)
    length = max(discriminator.minimum_length, 512)
    x = torch.stack([make(length) for make in SIGNALS.values()]).unsqueeze(1)
    x.requires_grad_(True)
    outputs = discriminator(x)
    assert_valid_outputs(discriminator, outputs, len(SIGNALS), length)
    loss = sum(
        (1 - sub[-1]).square().mean() + sum(f.abs().mean() for f in sub[:-1])
        for sub in outputs
    )
    loss.backward()
    assert torch.isfinite(loss)
    for row, signal_name in enumerate(SIGNALS):
        assert torch.isfinite(x.grad[row]).all(), signal_name
    for parameter_name, parameter in discriminator.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name
    discriminator.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", NAMES)
def test_mono_channel_slice_of_stereo_is_accepted(name):
    """A non-contiguous (B, 1, T) view (one channel of a stereo batch) scores
    exactly as its contiguous copy."""
    discriminator = default_discriminator(name)
    length = discriminator.minimum_length + 7
    interleaved = waveform(2, 2 * length, seed=3).view(2, length, 2)
    view = interleaved[..., 1].unsqueeze(1)
    assert not view.is_contiguous()
    with torch.no_grad():
        outputs = discriminator(view)
        expected = discriminator(view.contiguous())
    for sub_out, sub_exp in zip(outputs, expected):
        for a, b in zip(sub_out, sub_exp):
            assert torch.equal(a, b)
