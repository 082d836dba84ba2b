"""The period discriminators' two convolution algorithms compute the same numbers.

"direct" runs (k, 1) convolutions on (B, C, H, p) as the references do;
"gemm" runs one matrix product per layer on time-major activations. The
golden tests (test_discriminators.py) run both against the references; these
tests pin the rest: gradients, autocast, the custom backward and the choice
that "auto" makes.
"""

import pytest
import torch
import torch.nn.functional as F

from espnet_sovits_disc.discriminators import (
    PeriodDiscriminator,
    SoVITSMultiPeriodDiscriminator,
    SoVITSSVCDiscriminator,
)
from espnet_sovits_disc.discriminators import dispatch
from espnet_sovits_disc.discriminators.dispatch import auto_uses_gemm
from espnet_sovits_disc.discriminators.gemm import (
    _col2im,
    _im2col,
    _matmul_nt,
    time_major_conv,
)
from espnet_sovits_disc.discriminators.period import UNIVNET_PERIOD_CHANNELS
from tests.numerics import relative_difference


def outputs_and_gradients(discriminator, x, conv_algorithm):
    """Outputs, waveform gradient and parameter gradients with one algorithm."""
    for module in discriminator.modules():
        if isinstance(module, PeriodDiscriminator):
            module.conv_algorithm = conv_algorithm
    discriminator.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(True)
    outputs = discriminator(x)
    loss = sum(t.float().square().mean() for sub in outputs for t in sub)
    loss.backward()
    flat = [t.detach() for sub in outputs for t in sub]
    grads = [p.grad for p in discriminator.parameters()]
    return flat, x.grad, grads


DISCRIMINATORS = [
    lambda: SoVITSMultiPeriodDiscriminator(periods=[2, 3, 7]),
    lambda: SoVITSSVCDiscriminator(resolutions=[[512, 50, 240]], periods=[5, 11]),
]


@pytest.mark.parametrize("make_discriminator", DISCRIMINATORS, ids=["mpd", "svc"])
@pytest.mark.parametrize("length", [2310, 2311, 2417])
def test_gemm_equals_direct_in_float64(make_discriminator, length):
    """The same math: in float64 the two agree to float64 rounding."""
    torch.manual_seed(length)
    discriminator = make_discriminator().double()
    x = 0.3 * torch.randn(2, 1, length, dtype=torch.float64)
    direct = outputs_and_gradients(discriminator, x, "direct")
    gemm = outputs_and_gradients(discriminator, x, "gemm")
    for a, b in zip(gemm[0], direct[0]):
        assert a.shape == b.shape and a.dtype == b.dtype == torch.float64
        assert relative_difference(a, b) < 1e-10
    assert relative_difference(gemm[1], direct[1]) < 1e-10
    assert max(relative_difference(a, b) for a, b in zip(gemm[2], direct[2])) < 1e-10


@pytest.mark.parametrize("make_discriminator", DISCRIMINATORS, ids=["mpd", "svc"])
def test_gemm_in_float32_is_within_1e_4_of_float64(make_discriminator):
    """Every float32 output and gradient is within 1e-4 (relative to its
    largest value) of the float64 result (measured: at most about 4e-6; the
    direct oneDNN path was up to 5e-3 off on some parameter gradients)."""
    torch.manual_seed(2311)
    discriminator = make_discriminator()
    x = 0.3 * torch.randn(2, 1, 2311)
    gemm = outputs_and_gradients(discriminator, x, "gemm")
    exact = outputs_and_gradients(discriminator.double(), x.double(), "direct")
    pairs = list(zip(gemm[0], exact[0])) + [(gemm[1], exact[1])]
    pairs += list(zip(gemm[2], exact[2]))
    worst = max(relative_difference(a.double(), b) for a, b in pairs)
    assert worst < 1e-4, f"float32 gemm is {worst:.1e} off the float64 result"


@pytest.mark.parametrize(
    "stride, padding, kernel", [(3, 2, 5), (1, 2, 5), (1, 1, 3), (2, 0, 4)]
)
def test_time_major_conv_is_conv1d_and_its_backward_passes_gradcheck(
    stride, padding, kernel
):
    torch.manual_seed(0)
    x = torch.randn(3, 17, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 4, kernel, 1, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    ours = time_major_conv(x, weight, bias, stride, padding)
    reference = F.conv1d(
        x.transpose(1, 2), weight.squeeze(-1), bias, stride=stride, padding=padding
    ).transpose(1, 2)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda *args: time_major_conv(*args, stride, padding), (x, weight, bias)
    )


@pytest.mark.parametrize("engine_query", [True, False], ids=["query", "no_query"])
def test_time_major_conv_partial_gradients_equal_conv1d(monkeypatch, engine_query):
    """``torch.autograd.grad`` for one input only (the generator's turn asks
    for the waveform's gradient alone) gives that input's gradient, with and
    without PyTorch's private engine query (``no_query``: a release without
    ``torch._C._will_engine_execute_node``)."""
    if not engine_query:
        monkeypatch.delattr(torch._C, "_will_engine_execute_node", raising=False)
    torch.manual_seed(0)
    x = torch.randn(3, 17, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 4, 5, 1, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)

    def ours():
        return time_major_conv(x, weight * 1.0, bias, 3, 2).square().sum()

    def reference():
        y = F.conv1d(x.transpose(1, 2), weight.squeeze(-1) * 1.0, bias, 3, 2)
        return y.square().sum()

    for wanted in ([x], [weight], [bias], [x, bias]):
        got = torch.autograd.grad(ours(), wanted)
        expected = torch.autograd.grad(reference(), wanted)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


MATMUL_BACKENDS = [
    dispatch.TORCH_MM,
    pytest.param(
        dispatch.ONEDNN,
        marks=pytest.mark.skipif(
            not dispatch.onednn_matmul_works(),
            reason="this PyTorch has no working oneDNN matrix product",
        ),
    ),
]


@pytest.mark.parametrize("backend", MATMUL_BACKENDS)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("transposed", [False, True], ids=["contiguous", "strided"])
def test_matmul_nt_equals_the_float64_product(backend, with_bias, transposed):
    """``a @ b.T (+ bias)`` on each matrix product (oneDNN's, which ``auto``
    uses on AVX-512 CPUs, and ``torch.mm``, used elsewhere), whichever CPU
    runs the test, for contiguous and transposed operands as the backward
    pass hands them over: float64 exact, float32 within 1e-5 and the
    bfloat16 autocast dtype within 2e-2 of the float64 product, with the
    result in the autocast dtype on every backend."""
    torch.manual_seed(3)
    a = torch.randn(96, 160, dtype=torch.float64)
    b = torch.randn(48, 160, dtype=torch.float64)
    if transposed:
        a, b = a.t().contiguous().t(), b.t().contiguous().t()
        assert not a.is_contiguous() and not b.is_contiguous()
    bias = torch.randn(48, dtype=torch.float64) if with_bias else None
    exact = a @ b.t() + (0 if bias is None else bias)
    float64 = _matmul_nt(a, b, bias, None, dispatch.TORCH_MM)
    torch.testing.assert_close(float64, exact, rtol=0, atol=1e-12)
    assert _matmul_nt(a, b, bias, torch.bfloat16).dtype == torch.float64
    single = [t if t is None else t.float() for t in (a, b, bias)]
    got = _matmul_nt(*single, None, backend)
    assert got.dtype == torch.float32
    assert relative_difference(got.double(), exact) < 1e-5
    half = _matmul_nt(*single, torch.bfloat16, backend)
    assert half.dtype == torch.bfloat16
    assert relative_difference(half.double(), exact) < 2e-2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = _matmul_nt(*single, torch.bfloat16, backend)
    assert torch.equal(under_autocast, half)


def test_matmul_backend_policy():
    """oneDNN's product only for float32/bfloat16 CPU operands on AVX-512
    kernels where it works; ``torch.mm`` for float64, on AVX2 and on CUDA."""
    onednn_here = (
        dispatch.cpu_capability().startswith("AVX512") and dispatch.onednn_matmul_works()
    )
    cpu = torch.device("cpu")
    for dtype in (torch.float32, torch.bfloat16):
        expected = dispatch.ONEDNN if onednn_here else dispatch.TORCH_MM
        assert dispatch.matmul_backend(cpu, dtype) == expected
    assert dispatch.matmul_backend(cpu, torch.float64) == dispatch.TORCH_MM
    cuda = torch.device("cuda")
    assert dispatch.matmul_backend(cuda, torch.float32) == dispatch.TORCH_MM


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("stride, padding, kernel", [(3, 2, 5), (1, 2, 5), (2, 0, 4)])
def test_col2im_is_the_adjoint_of_im2col(dtype, stride, padding, kernel):
    """<im2col(x), g> == <x, col2im(g)> in float64, and float32 and bfloat16
    windows sum to the float64 result within their rounding."""
    torch.manual_seed(kernel)
    x = torch.randn(3, 23, 4, dtype=torch.float64)
    cols = _im2col(x, kernel, stride, padding)
    grad_cols = torch.randn_like(cols)
    exact = _col2im(grad_cols, x.shape, kernel, stride, padding)
    torch.testing.assert_close(
        (cols * grad_cols).sum(), (x * exact).sum(), rtol=1e-12, atol=1e-12
    )
    got = _col2im(grad_cols.to(dtype), x.shape, kernel, stride, padding)
    assert got.dtype == dtype and got.shape == x.shape
    tolerance = 1e-6 if dtype == torch.float32 else 2e-2
    assert relative_difference(got.double(), exact) < tolerance


def test_gemm_under_bfloat16_autocast_is_close_and_keeps_float32_gradients():
    torch.manual_seed(1)
    discriminator = PeriodDiscriminator(period=3, channels=UNIVNET_PERIOD_CHANNELS)
    x = 0.3 * torch.randn(2, 1, 3000)
    reference = outputs_and_gradients(discriminator, x, "direct")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs, x_grad, grads = outputs_and_gradients(discriminator, x, "gemm")
    assert outputs[-1].dtype == torch.bfloat16
    assert relative_difference(outputs[-1].float(), reference[0][-1]) < 3e-2
    assert x_grad.dtype == torch.float32 and torch.isfinite(x_grad).all()
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert relative_difference(x_grad, reference[1]) < 5e-2


def test_feature_maps_are_views_in_the_reference_layout():
    discriminator = PeriodDiscriminator(period=5, conv_algorithm="gemm")
    outputs = discriminator(torch.randn(2, 1, 1000))
    shapes = [tuple(t.shape) for t in outputs]
    assert shapes == [
        (2, 32, 67, 5),
        (2, 128, 23, 5),
        (2, 512, 8, 5),
        (2, 1024, 3, 5),
        (2, 1024, 3, 5),
        (2, 15),
    ]


def test_auto_picks_gemm_only_for_weight_normalized_cpu_tensors_on_x86_simd():
    x = torch.randn(1, 1, 100)
    capability = torch.backends.cpu.get_cpu_capability()
    assert capability == dispatch.cpu_capability()
    onednn_matmul = torch.backends.mkldnn.is_available() and hasattr(
        torch.ops.mkldnn, "_linear_pointwise"
    )
    expected = capability == "AVX2" or (
        capability.startswith("AVX512") and onednn_matmul
    )
    auto = PeriodDiscriminator(period=2)
    assert auto._uses_gemm(x) == expected == auto_uses_gemm(x.device)
    assert not auto_uses_gemm(torch.device("cuda"))
    assert not PeriodDiscriminator(period=2, use_spectral_norm=True)._uses_gemm(x)
    assert PeriodDiscriminator(period=2, conv_algorithm="gemm")._uses_gemm(x)
    assert not PeriodDiscriminator(period=2, conv_algorithm="direct")._uses_gemm(x)


def test_bad_conv_algorithm_settings_are_refused():
    with pytest.raises(ValueError, match=r"unknown conv_algorithm 'fft'; choose one"):
        SoVITSMultiPeriodDiscriminator(conv_algorithm="fft")
    with pytest.raises(ValueError, match="needs weight-normalized convolutions"):
        PeriodDiscriminator(period=2, use_spectral_norm=True, conv_algorithm="gemm")
