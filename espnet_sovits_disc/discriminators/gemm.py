"""(k, 1) convolutions as matrix products on time-major activations.

A period discriminator slides (k, 1) kernels along the folded time axis of a
(B, C, H, p) activation: each of the B * p columns is convolved on its own,
like a 1-D convolution over B * p sequences. Stored time-major, as
(B * p, H, C), each such convolution is a single matrix product: the k
shifted input rows side by side (im2col, a (B * p * H', C * k) matrix) times
the (C * k, C_out) weight, plus the bias. The output (B * p, H', C_out) is
already time-major for the next layer, so the stack needs no layout changes
between layers.

The numbers are those of the convolution up to float32 summation order.
The products run through MKL on AVX2 CPUs and through oneDNN's matrix
product on AVX-512 CPUs (``_matmul_nt``). Against oneDNN's (k, 1)
convolutions on (B, C, H, p) tensors this ran the ``sovits_mpd``
discriminator turn 1.16 to 1.30 times faster on an AVX2 CPU, and 0.97 to
1.1 times as fast (float32) and 1.15 to 1.3 times faster (bfloat16 autocast)
on two AVX-512 CPUs (see benchmarks/README.md); ``conv_algorithm: auto`` uses it
on both.

The backward pass keeps only the input (N, H, C_in), not its im2col matrix,
and rebuilds the matrix for the weight gradient, so the saved activations are
those of the convolution.
"""

from functools import lru_cache
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

CONV_ALGORITHMS = ("auto", "direct", "gemm")


def auto_uses_gemm(device: torch.device) -> bool:
    """Whether ``conv_algorithm: auto`` runs weight-normalized (k, 1)
    convolutions on ``device`` as matrix products.

    True for CPU tensors where PyTorch's CPU kernels run AVX2 code (no
    AVX-512; the products go to MKL, which beat oneDNN's (k, 1) convolutions
    by 1.2 to 2 times on every large period-discriminator layer) or AVX-512
    code with oneDNN's matrix product available (there oneDNN's products ran
    the ``sovits_mpd`` discriminator turn 0.97 to 1.1 times as fast in
    float32 and 1.15 to 1.3 times faster in bfloat16 than its (k, 1)
    convolutions).
    On GPUs nothing was measured, so ``auto`` keeps the convolutions there.
    """
    if device.type != "cpu":
        return False
    return _cpu_runs_avx2_kernels() or _cpu_has_onednn_avx512_matmul()


@lru_cache(maxsize=None)
def _cpu_runs_avx2_kernels() -> bool:
    return torch.backends.cpu.get_cpu_capability() == "AVX2"


def check_conv_algorithm(conv_algorithm: str) -> None:
    """Refuse an unknown ``conv_algorithm`` with the known ones."""
    if conv_algorithm not in CONV_ALGORITHMS:
        raise ValueError(
            f"unknown conv_algorithm {conv_algorithm!r}; choose one of "
            f"{list(CONV_ALGORITHMS)}"
        )


def time_major_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    stride: int,
    padding: int,
) -> torch.Tensor:
    """Convolve time-major sequences with a (k, 1) kernel as one matrix product.

    Args:
        x (Tensor): Input (N, H, C_in), time-major.
        weight (Tensor): Kernel (C_out, C_in, k, 1) or (C_out, C_in, k).
        bias (Tensor): Bias (C_out,).
        stride (int): Stride along H.
        padding (int): Zero padding on both ends of H.

    Returns:
        Tensor: Output (N, H', C_out) with H' = (H + 2 * padding - k) // stride + 1.

    """
    return _TimeMajorConv.apply(x, weight, bias, stride, padding)


def _im2col(x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """(N, H, C) -> (N * H', C * kernel): each output row's input window."""
    windows = F.pad(x, (0, 0, padding, padding)).unfold(1, kernel, stride)
    return windows.reshape(-1, x.size(2) * kernel)


def _autocast_state(device_type: str) -> Optional[torch.dtype]:
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


class _TimeMajorConv(torch.autograd.Function):
    """``time_major_conv`` with a backward that saves the input, not im2col."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride: int, padding: int):
        out_channels, in_channels, kernel = weight.shape[:3]
        ctx.autocast_dtype = _autocast_state(x.device.type)
        matrix = weight.reshape(out_channels, in_channels * kernel)
        if ctx.autocast_dtype is not None and matrix.dtype == torch.float32:
            # Cast once; the backward reuses the cast matrix.
            matrix = matrix.to(ctx.autocast_dtype)
        ctx.save_for_backward(x, matrix)
        ctx.geometry = (kernel, stride, padding)
        ctx.weight_shape = weight.shape
        cols = _im2col(x, kernel, stride, padding)
        y = _matmul_nt(cols, matrix, bias, ctx.autocast_dtype)
        return y.view(x.size(0), -1, out_channels)

    @staticmethod
    def backward(ctx, grad_y):
        x, matrix = ctx.saved_tensors
        kernel, stride, padding = ctx.geometry
        grad_x = grad_weight = grad_bias = None
        with torch.autocast(
            x.device.type,
            dtype=ctx.autocast_dtype,
            enabled=ctx.autocast_dtype is not None,
        ):
            grad_rows = grad_y.reshape(-1, grad_y.size(2))
            if _engine_needs(ctx, 1):
                cols = _im2col(x, kernel, stride, padding)
                grad_weight = _matmul_nt(
                    grad_rows.t(), cols.t(), None, ctx.autocast_dtype
                ).view(ctx.weight_shape)
            if _engine_needs(ctx, 2):
                grad_bias = grad_rows.sum(0)
            if _engine_needs(ctx, 0):
                grad_cols = _matmul_nt(grad_rows, matrix.t(), None, ctx.autocast_dtype)
                grad_x = _col2im(grad_cols, x.shape, kernel, stride, padding)
        return grad_x, grad_weight, grad_bias, None, None


def _matmul_nt(
    a: torch.Tensor,
    b: torch.Tensor,
    bias: Optional[torch.Tensor],
    autocast_dtype: Optional[torch.dtype],
) -> torch.Tensor:
    """``a @ b.T (+ bias)`` with the fastest matrix product for the operands.

    On CPUs where PyTorch runs AVX-512 kernels, float32 and bfloat16 products
    go to oneDNN's matrix product, which takes the transposed (strided)
    operands as they are and ran 1.2 to 2.2 times faster in float32 than
    MKL's (which runs AVX2 code on AMD CPUs); elsewhere ``torch.addmm`` /
    ``torch.mm`` (MKL, cuBLAS). Under autocast the operands are cast to the
    autocast dtype first, as autocast does for ``addmm`` (float64 stays).
    """
    autocast_applies = autocast_dtype is not None and a.dtype != torch.float64
    dtype = autocast_dtype if autocast_applies else a.dtype
    if not _uses_onednn_matmul(a.device, dtype):
        return torch.mm(a, b.t()) if bias is None else torch.addmm(bias, a, b.t())
    a, b = a.to(dtype), b.to(dtype)
    bias = None if bias is None else bias.to(dtype)
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


def _uses_onednn_matmul(device: torch.device, dtype: torch.dtype) -> bool:
    return (
        device.type == "cpu"
        and dtype in (torch.float32, torch.bfloat16)
        and _cpu_has_onednn_avx512_matmul()
    )


@lru_cache(maxsize=None)
def _cpu_has_onednn_avx512_matmul() -> bool:
    """Whether PyTorch runs AVX-512 CPU kernels and oneDNN's matrix product
    (``mkldnn::_linear_pointwise``, an internal operator) is there and
    computes ``a @ b.T + bias`` on transposed operands, checked once on
    small float32 matrices against ``torch.addmm``."""
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        a = torch.arange(12.0).view(4, 3).t()
        b = torch.arange(-10.0, 10.0).view(4, 5).t()
        bias = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.5])
        product = torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")
    except (AttributeError, RuntimeError):
        return False
    return torch.equal(product, torch.addmm(bias, a, b.t()))


def _engine_needs(ctx, index: int) -> bool:
    """Whether this backward pass uses the gradient of input ``index``.

    ``needs_input_grad`` only says that the input requires a gradient; a
    ``torch.autograd.grad(loss, waveform)`` call (the generator's side of a
    GAN turn) needs none of the weight gradients, which cost as much as the
    input gradients. The engine knows which nodes it will run; it cannot
    tell for a leaf (a bias parameter) under ``torch.autograd.grad``, which
    then gets its (cheap) gradient, as does every input on a PyTorch without
    this engine query.
    """
    if not ctx.needs_input_grad[index]:
        return False
    node = ctx.next_functions[index][0]
    will_execute = getattr(torch._C, "_will_engine_execute_node", None)
    if node is None or will_execute is None:
        return True
    try:
        return will_execute(node)
    except RuntimeError:
        return True


def _col2im(
    grad_cols: torch.Tensor,
    shape: Tuple[int, int, int],
    kernel: int,
    stride: int,
    padding: int,
) -> torch.Tensor:
    """Sum each window's gradient back onto the input (the adjoint of ``_im2col``).

    One strided addition per kernel tap; about twice as fast on the CPU as
    the generic ``unfold`` backward for these shapes. Half-precision windows
    are first copied tap-major: strided bfloat16 additions with the taps
    interleaved ran about 4 times slower than float32 ones.
    """
    batch, length, channels = shape
    windows = grad_cols.view(batch, -1, channels, kernel).permute(3, 0, 1, 2)
    if grad_cols.dtype in (torch.bfloat16, torch.float16):
        windows = windows.contiguous()
    last = stride * (windows.size(2) - 1) + 1
    padded = grad_cols.new_zeros(batch, length + 2 * padding, channels)
    for tap in range(kernel):
        padded[:, tap : tap + last : stride].add_(windows[tap])
    return padded[:, padding : padding + length]
