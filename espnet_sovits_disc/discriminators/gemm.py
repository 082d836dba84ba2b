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
Which matrix product runs (oneDNN's or ``torch.mm``) is decided in
``dispatch.py``; how this compares with the convolutions is in
benchmarks/README.md.

The backward pass keeps only the input (N, H, C_in), not its im2col matrix,
and rebuilds the matrix for the weight gradient, so the saved activations are
those of the convolution.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from espnet_sovits_disc.discriminators.dispatch import (
    ONEDNN,
    matmul_backend,
    onednn_matmul_nt,
    will_engine_execute,
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
    backend: Optional[str] = None,
) -> torch.Tensor:
    """``a @ b.T (+ bias)`` in the autocast dtype, on the fastest product.

    The operands are cast to ``autocast_dtype`` first, as autocast does for
    ``addmm`` (float64 stays float64), whether or not autocast is active and
    whichever product runs, so the result's dtype is the same on every CPU.

    Args:
        a (Tensor): (M, K), contiguous or transposed.
        b (Tensor): (N, K), contiguous or transposed.
        bias (Optional[Tensor]): (N,) or None.
        autocast_dtype (Optional[torch.dtype]): The autocast dtype of the
            pass, or None outside autocast.
        backend (Optional[str]): ``dispatch.ONEDNN`` or ``dispatch.TORCH_MM``;
            None lets ``dispatch.matmul_backend`` choose.

    Returns:
        Tensor: (M, N).

    """
    dtype = a.dtype
    if autocast_dtype is not None and dtype != torch.float64:
        dtype = autocast_dtype
    a, b = a.to(dtype), b.to(dtype)
    bias = None if bias is None else bias.to(dtype)
    if backend is None:
        backend = matmul_backend(a.device, dtype)
    if backend == ONEDNN:
        return onednn_matmul_nt(a, b, bias)
    return torch.mm(a, b.t()) if bias is None else torch.addmm(bias, a, b.t())


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
    return will_engine_execute(ctx.next_functions[index][0])


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
