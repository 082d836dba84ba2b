"""Strided grouped convolutions in polyphase form compute the convolution.

The scale discriminator's golden tests (test_discriminators.py) run the
polyphase path on the CPU against the references; these tests pin the
function itself on every geometry it can meet (strides that do not divide
the length or the kernel, inputs shorter than the kernel), its gradients,
and which layers take it.
"""

import pytest
import torch
import torch.nn.functional as F

from espnet_sovits_disc.discriminators import ScaleDiscriminator
from espnet_sovits_disc.discriminators.dispatch import polyphase_pays_off, uses_polyphase
from espnet_sovits_disc.discriminators.polyphase import polyphase_conv1d
from espnet_sovits_disc.discriminators.scale import SCALE_LAYERS
from tests.numerics import relative_difference


# (in_channels, out_channels, kernel, stride, padding, groups)
GEOMETRIES = [
    (16, 64, 41, 4, 20, 4),
    (64, 256, 41, 4, 20, 16),
    (8, 32, 5, 3, 2, 2),
    (6, 12, 7, 2, 0, 3),
    (4, 8, 3, 4, 1, 1),
]


# Every geometry with lengths from one sample up, where the padded input
# covers the kernel (otherwise no convolution has an output).
CASES = [
    (geometry, length)
    for geometry in GEOMETRIES
    for length in (1, 2, 40, 41, 203, 1000)
    if length + 2 * geometry[4] >= geometry[2]
]


@pytest.mark.parametrize("geometry, length", CASES, ids=str)
def test_polyphase_equals_conv1d_in_float64(geometry, length):
    """Outputs and the gradients of input, weight and bias agree with
    ``F.conv1d`` to float64 rounding."""
    in_channels, out_channels, kernel, stride, padding, groups = geometry
    torch.manual_seed(length + kernel)
    double = torch.float64
    x = torch.randn(3, in_channels, length, dtype=double)
    weight = torch.randn(out_channels, in_channels // groups, kernel, dtype=double)
    bias = torch.randn(out_channels, dtype=double)
    results = []
    for conv in (polyphase_conv1d, _reference_conv1d):
        inputs = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
        y = conv(*inputs, stride=stride, padding=padding, groups=groups)
        ramp = torch.linspace(-1, 1, y.numel(), dtype=double).view_as(y)
        (y * ramp).sum().backward()
        results.append([y.detach()] + [t.grad for t in inputs])
    for name, actual, expected in zip(
        ("output", "input grad", "weight grad", "bias grad"), *results
    ):
        assert actual.shape == expected.shape, name
        assert relative_difference(actual, expected) < 1e-12, name


def _reference_conv1d(x, weight, bias, stride, padding, groups):
    return F.conv1d(x, weight, bias, stride=stride, padding=padding, groups=groups)


def test_scale_discriminator_takes_polyphase_for_its_wide_grouped_layers():
    """Only the strided grouped layers with >= 16 output channels per group."""
    discriminator = ScaleDiscriminator()
    taken = [conv.polyphase_pays_off for conv in discriminator.convs]
    assert taken == [False, True, True, True, False, False]
    assert not discriminator.conv_post.polyphase_pays_off
    cpu = torch.device("cpu")
    used = [
        uses_polyphase(conv.conv_algorithm, conv.polyphase_pays_off, cpu)
        for conv in discriminator.convs
    ]
    assert used == taken
    direct = ScaleDiscriminator(conv_algorithm="direct")
    assert not any(
        uses_polyphase(conv.conv_algorithm, conv.polyphase_pays_off, cpu)
        for conv in direct.convs
    )
    assert not uses_polyphase("auto", True, torch.device("cuda"))
    expected = [
        polyphase_pays_off(stride, groups, out_channels)
        for _, out_channels, _, stride, groups, _ in SCALE_LAYERS
    ]
    assert taken == expected


@pytest.mark.parametrize(
    "stride, groups, out_channels, expected",
    [(4, 4, 64, True), (4, 256, 1024, False), (1, 4, 64, False), (4, 1, 64, False)],
)
def test_polyphase_rule(stride, groups, out_channels, expected):
    assert polyphase_pays_off(stride, groups, out_channels) is expected


def test_scale_discriminator_float32_polyphase_is_as_close_to_float64_as_direct():
    """In float32 both paths are within 1e-5 of the float64 result (outputs
    and waveform gradient), and the polyphase path is no further from it
    than twice the direct one: the polyphase sums change rounding only."""
    torch.manual_seed(0)
    state = ScaleDiscriminator().state_dict()
    x = 0.3 * torch.randn(2, 1, 4096, dtype=torch.float64)

    def run(dtype, polyphase):
        algorithm = "auto" if polyphase else "direct"
        discriminator = ScaleDiscriminator(conv_algorithm=algorithm).to(dtype)
        discriminator.load_state_dict(state)
        wave = x.to(dtype).detach().requires_grad_(True)
        outputs = discriminator(wave)
        sum(t.square().mean() for t in outputs).backward()
        return [t.detach().double() for t in outputs] + [wave.grad.double()]

    exact = run(torch.float64, polyphase=False)
    worst = {
        polyphase: max(
            relative_difference(a, b)
            for a, b in zip(run(torch.float32, polyphase), exact)
        )
        for polyphase in (True, False)
    }
    assert worst[True] < 1e-5, worst
    assert worst[False] < 1e-5, worst
    assert worst[True] < 2 * worst[False], worst
