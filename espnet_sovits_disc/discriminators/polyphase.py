"""Strided grouped 1-D convolutions as stride-1 convolutions on polyphase inputs.

The scale discriminator's grouped layers (kernel 41, stride 4, 4 input
channels per group) are a poor fit for oneDNN's CPU kernels, which block
channels by 8 (AVX2) or 16 (AVX-512): in float32 they ran at 18-41 GFLOP/s,
a fifth of the machine's matrix-product rate. Splitting the input into its
``stride`` phases gives the same convolution with stride 1:

    y[o, t] = sum_{c, k} w[o, c, k] x[c, s t + k]
            = sum_{c, r, j} w[o, c, s j + r] x[c, s (t + j) + r]

with ``k = s j + r``: a stride-1 convolution of ``ceil(k / s)`` taps over
``C * s`` channels (channel ``c * s + r`` holds phase ``r`` of channel
``c``, so every group stays contiguous and gets ``s`` times its input
channels), with the kernel zero-padded to a multiple of ``s``. The products
are those of the convolution, plus the zero taps; the sums run in another
order, so float32 results agree to float32 rounding.

Which layers run this way, and when, is decided in ``dispatch.py``
(``polyphase_pays_off``); the measurements behind it are in
benchmarks/README.md.
"""

import torch
import torch.nn.functional as F

def polyphase_conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    stride: int,
    padding: int,
    groups: int,
) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, stride, padding, groups=groups)`` with stride 1.

    Args:
        x (Tensor): Input (B, C_in, T).
        weight (Tensor): Kernel (C_out, C_in / groups, k).
        bias (Tensor): Bias (C_out,).
        stride (int): Stride.
        padding (int): Zero padding on both ends.
        groups (int): Number of channel groups.

    Returns:
        Tensor: Output (B, C_out, T') with T' = (T + 2 * padding - k) // stride + 1.

    """
    batch, channels, length = x.shape
    out_channels, in_per_group, kernel = weight.shape
    out_length = (length + 2 * padding - kernel) // stride + 1
    taps = -(-kernel // stride)
    phase_length = out_length + taps - 1
    # Right padding (or cropping, when negative) to exactly stride * phase_length.
    right = stride * phase_length - length - padding
    phases = (
        F.pad(x, (padding, right))
        .view(batch, channels, phase_length, stride)
        .transpose(2, 3)
        .reshape(batch, channels * stride, phase_length)
    )
    phase_weight = (
        F.pad(weight, (0, taps * stride - kernel))
        .view(out_channels, in_per_group, taps, stride)
        .transpose(2, 3)
        .reshape(out_channels, in_per_group * stride, taps)
    )
    return F.conv1d(phases, phase_weight, bias, groups=groups)
