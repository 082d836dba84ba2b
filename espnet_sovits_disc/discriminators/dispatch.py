"""Which implementation runs where: the convolution algorithms, the ``auto``
policy, and the probes of the private PyTorch entry points the fast paths use.

The fast paths call three PyTorch functions that are not public API and may
change or vanish in any release: ``torch._weight_norm`` (the fused weight
normalization), ``torch.ops.mkldnn._linear_pointwise`` (oneDNN's matrix
product) and ``torch._C._will_engine_execute_node`` (which gradients a
backward pass will use). Each is checked here once, on small inputs against
its public equivalent; where it is missing or computes something else, the
public path runs instead (the reference's numbers, only slower). Nothing
else in the package calls them.

Measurements behind the policy: ``benchmarks/README.md``.
"""

from functools import lru_cache
from typing import Optional

import torch

# "direct": the reference's convolutions, everywhere. "gemm": the period
# discriminators' (k, 1) convolutions as matrix products (gemm.py). "auto":
# gemm where it is faster (``auto_uses_gemm``). With "auto" and "gemm" the
# scale discriminator's wide grouped layers run in polyphase form on the CPU
# (polyphase.py, ``uses_polyphase``).
CONV_ALGORITHMS = ("auto", "direct", "gemm")

# Strided grouped 1-D convolutions with at least this many output channels
# per group run faster in polyphase form on the CPU.
POLYPHASE_MIN_OUT_CHANNELS_PER_GROUP = 16

# Matrix-product backends of the gemm convolutions (``gemm._matmul_nt``).
ONEDNN = "onednn"
TORCH_MM = "mm"


def check_conv_algorithm(conv_algorithm: str) -> None:
    """Refuse an unknown ``conv_algorithm`` with the known ones."""
    if conv_algorithm not in CONV_ALGORITHMS:
        raise ValueError(
            f"unknown conv_algorithm {conv_algorithm!r}; choose one of "
            f"{list(CONV_ALGORITHMS)}"
        )


@lru_cache(maxsize=None)
def cpu_capability() -> str:
    """The SIMD level of PyTorch's CPU kernels: ``AVX2``, ``AVX512``, ...

    ``ATEN_CPU_CAPABILITY=avx2`` in the environment lowers it (that is how the
    tests run the AVX2 policy on an AVX-512 machine).
    """
    return torch.backends.cpu.get_cpu_capability()


def auto_uses_gemm(device: torch.device) -> bool:
    """Whether ``conv_algorithm: auto`` runs weight-normalized (k, 1)
    convolutions on ``device`` as matrix products.

    True for CPU tensors where PyTorch's CPU kernels run AVX2 code (the
    products go to MKL) or AVX-512 code with oneDNN's matrix product
    available. On GPUs nothing was measured, so ``auto`` keeps the
    convolutions there.

    Args:
        device (torch.device): Where the activations are.

    Returns:
        bool: True if ``auto`` means ``gemm`` there.

    """
    if device.type != "cpu":
        return False
    capability = cpu_capability()
    if capability == "AVX2":
        return True
    return capability.startswith("AVX512") and onednn_matmul_works()


def uses_gemm(conv_algorithm: str, use_spectral_norm: bool, device: torch.device) -> bool:
    """Whether a period discriminator runs its (k, 1) convolutions as matrix
    products.

    Args:
        conv_algorithm (str): One of ``CONV_ALGORITHMS``.
        use_spectral_norm (bool): Spectral-normalized convolutions never do.
        device (torch.device): Where the activations are.

    Returns:
        bool: True for "gemm", and for "auto" where ``auto_uses_gemm``.

    """
    if conv_algorithm == "auto":
        return not use_spectral_norm and auto_uses_gemm(device)
    return conv_algorithm == "gemm"


def polyphase_pays_off(stride: int, groups: int, out_channels: int) -> bool:
    """Whether a strided grouped 1-D convolution runs faster in polyphase
    form on the CPU (the scale discriminator's layers with 16 output channels
    per group do; its 4-per-group layer does not).

    Args:
        stride (int): The convolution's stride.
        groups (int): Its channel groups.
        out_channels (int): Its output channels.

    Returns:
        bool: True if the polyphase form pays off.

    """
    return (
        stride > 1
        and groups > 1
        and out_channels // groups >= POLYPHASE_MIN_OUT_CHANNELS_PER_GROUP
    )


def uses_polyphase(conv_algorithm: str, pays_off: bool, device: torch.device) -> bool:
    """Whether a 1-D convolution runs in polyphase form.

    Args:
        conv_algorithm (str): One of ``CONV_ALGORITHMS``.
        pays_off (bool): ``polyphase_pays_off`` for the layer.
        device (torch.device): Where the input is.

    Returns:
        bool: True on the CPU for layers where it pays off, unless
            ``conv_algorithm`` is "direct".

    """
    return pays_off and conv_algorithm != "direct" and device.type == "cpu"


def convolves_in_bfloat16_on_cpu(x: torch.Tensor) -> bool:
    """Whether a convolution of ``x`` runs in bfloat16 on the CPU: ``x`` is
    bfloat16, or float32 under a bfloat16 CPU autocast."""
    if x.device.type != "cpu":
        return False
    if x.dtype == torch.bfloat16:
        return True
    return (
        x.dtype == torch.float32
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
    )


def strides_last_dim_to_one_column(
    x: torch.Tensor, last_stride: int, output_width: int
) -> bool:
    """Whether a 2-D convolution must run unstrided along its last dimension.

    PyTorch's bfloat16 CPU ``conv2d`` (oneDNN, seen with torch 2.11 on
    AVX-512 BF16 / AMX and AVX2 CPUs) returns wrong numbers, often
    non-finite ones, when it strides along the last dimension down to a
    single output column; the resolution discriminators do at their
    shortest inputs. One column needs no stride: the convolution then runs
    with stride 1 there and keeps its first column, the same window.

    Args:
        x (Tensor): Input (B, C, H, W).
        last_stride (int): The convolution's stride along W.
        output_width (int): Its output width.

    Returns:
        bool: True for such a convolution running in bfloat16 on the CPU.

    """
    return last_stride > 1 and output_width == 1 and convolves_in_bfloat16_on_cpu(x)


def matmul_backend(device: torch.device, dtype: torch.dtype) -> str:
    """The matrix product the gemm convolutions use for ``dtype`` operands.

    oneDNN's on CPUs where PyTorch runs AVX-512 kernels, in float32 and
    bfloat16 (it takes transposed operands as they are); ``torch.mm`` /
    ``torch.addmm`` (MKL, cuBLAS) everywhere else and for float64.

    Args:
        device (torch.device): Where the operands are.
        dtype (torch.dtype): The dtype the product runs in.

    Returns:
        str: ``ONEDNN`` or ``TORCH_MM``.

    """
    if (
        device.type == "cpu"
        and dtype in (torch.float32, torch.bfloat16)
        and cpu_capability().startswith("AVX512")
        and onednn_matmul_works()
    ):
        return ONEDNN
    return TORCH_MM


@lru_cache(maxsize=None)
def onednn_matmul_works() -> bool:
    """Whether oneDNN's matrix product (``mkldnn::_linear_pointwise``) is
    there and computes ``a @ b.T + bias`` on transposed operands; checked
    once on small float32 matrices against ``torch.addmm``."""
    if not torch.backends.mkldnn.is_available():
        return False
    a = torch.arange(12.0).view(4, 3).t()
    b = torch.arange(-10.0, 10.0).view(4, 5).t()
    bias = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.5])
    try:
        product = onednn_matmul_nt(a, b, bias)
    except (AttributeError, RuntimeError, TypeError):
        return False
    return product.shape == (3, 5) and torch.equal(product, torch.addmm(bias, a, b.t()))


def onednn_matmul_nt(
    a: torch.Tensor, b: torch.Tensor, bias: Optional[torch.Tensor]
) -> torch.Tensor:
    """``a @ b.T (+ bias)`` through oneDNN's matrix product; call only where
    ``onednn_matmul_works()`` (or to probe it)."""
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


@lru_cache(maxsize=None)
def fused_weight_norm_works() -> bool:
    """Whether ``torch._weight_norm(v, g, 0)`` is there and computes
    ``g * v / ||v||`` (norm over all but dim 0); checked once in float64."""
    v = torch.arange(-6.0, 6.0, dtype=torch.float64).view(3, 2, 2)
    g = torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64).view(3, 1, 1)
    try:
        fused = torch._weight_norm(v, g, 0)
    except (AttributeError, RuntimeError, TypeError):
        return False
    return fused.shape == v.shape and torch.allclose(
        fused, public_weight_norm(v, g), rtol=1e-12, atol=0.0
    )


def public_weight_norm(weight_v: torch.Tensor, weight_g: torch.Tensor) -> torch.Tensor:
    """``weight_g * weight_v / ||weight_v||`` (norm over all but dim 0) with
    public operations."""
    dims = tuple(range(1, weight_v.dim()))
    norm = torch.linalg.vector_norm(weight_v, dim=dims, keepdim=True)
    return weight_v * (weight_g / norm)


def weight_norm(weight_v: torch.Tensor, weight_g: torch.Tensor) -> torch.Tensor:
    """The normalized weight ``weight_g * weight_v / ||weight_v||``.

    The fused kernel where it works (one pass instead of three separate
    operations), the public operations otherwise.

    Args:
        weight_v (Tensor): Direction (C_out, ...).
        weight_g (Tensor): Magnitude (C_out, 1, ...).

    Returns:
        Tensor: The weight, shaped like ``weight_v``.

    """
    if fused_weight_norm_works():
        return torch._weight_norm(weight_v, weight_g, 0)
    return public_weight_norm(weight_v, weight_g)


def will_engine_execute(node) -> bool:
    """Whether the running backward pass will execute autograd ``node``.

    True where PyTorch cannot say (no such query in this release, or a leaf
    under ``torch.autograd.grad``): then the gradient is computed.
    """
    query = getattr(torch._C, "_will_engine_execute_node", None)
    if node is None or query is None:
        return True
    try:
        return bool(query(node))
    except (RuntimeError, TypeError):
        return True
