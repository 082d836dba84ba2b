"""Weight-normalized and spectral-normalized convolutions with reference key names.

GPT-SoVITS and so-vits-svc-5.0 wrap every convolution in the old-style
``torch.nn.utils.weight_norm``, so their state dicts hold ``bias``,
``weight_g`` and ``weight_v`` per convolution, in that order. The module here
keeps exactly those parameter names (and also loads the
``parametrizations.weight.original0/original1`` names of PyTorch's newer
weight-norm API), computes ``weight = weight_g * weight_v / ||weight_v||``
once per call, and avoids the deprecated hook-based implementation.

The normalization is ``dispatch.weight_norm``: PyTorch's fused kernel (behind
both of its weight-norm APIs) where it works, the same formula in public
operations otherwise.

Unless ``conv_algorithm`` is "direct", strided grouped 1-D convolutions with
at least 16 output channels per group (the scale discriminator's) run on the
CPU as stride-1 convolutions on the input's polyphase components
(``polyphase.py``; ``dispatch.py`` decides).
"""

from typing import Iterable, List, Tuple, Union

import torch
import torch.nn.functional as F
from typeguard import typechecked

from espnet_sovits_disc.discriminators.dispatch import (
    check_conv_algorithm,
    polyphase_pays_off,
    strides_last_dim_to_one_column,
    uses_polyphase,
    weight_norm,
)
from espnet_sovits_disc.discriminators.polyphase import polyphase_conv1d

IntOrPair = Union[int, Tuple[int, int]]

_NEW_API_NAMES = {
    "parametrizations.weight.original0": "weight_g",
    "parametrizations.weight.original1": "weight_v",
}


class WeightNormalized(torch.nn.Module):
    """Holds a convolution's ``bias``, ``weight_g`` and ``weight_v`` (in the
    order ``torch.nn.utils.weight_norm`` leaves them), accepting the newer
    API's names on load."""

    def _take_weights(self, initial: torch.nn.Module) -> None:
        """Take ``initial``'s bias and weight (``weight_g`` = its norm over all
        dimensions but the first, as ``weight_norm`` starts)."""
        self.bias = torch.nn.Parameter(initial.bias.detach())
        weight = initial.weight.detach()
        self.weight_g = torch.nn.Parameter(_norm_except_dim0(weight))
        self.weight_v = torch.nn.Parameter(weight.clone())
        self._register_load_state_dict_pre_hook(_rename_new_api_keys)

    def normalized_weight(self) -> torch.Tensor:
        """Return the normalized weight ``weight_g * weight_v / ||weight_v||``."""
        return weight_norm(self.weight_v, self.weight_g)


class WeightNormConv(WeightNormalized):
    """A 1-D or 2-D convolution with weight normalization over dim 0.

    Initialization follows ``torch.nn.ConvNd`` followed by
    ``torch.nn.utils.weight_norm`` (so ``weight_g`` starts as the norm of the
    initial weight), which is what the reference trainers start from.
    ``polyphase_pays_off`` is true for the strided grouped 1-D layers that
    run in polyphase form on CPU tensors unless ``conv_algorithm`` is
    "direct" (``dispatch.uses_polyphase``).
    """

    @typechecked
    def __init__(
        self,
        *,
        dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: IntOrPair = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        conv_algorithm: str = "auto",
    ):
        """Initialize WeightNormConv.

        Args:
            dims (int): 1 for ``conv1d`` on (B, C, T), 2 for ``conv2d`` on (B, C, H, W).
            in_channels (int): Number of input channels.
            out_channels (int): Number of output channels.
            kernel_size (Union[int, Tuple[int, int]]): Kernel size.
            stride (Union[int, Tuple[int, int]]): Stride.
            padding (Union[int, Tuple[int, int]]): Zero padding on both sides.
            dilation (Union[int, Tuple[int, int]]): Spacing of the kernel taps.
            groups (int): Number of channel groups.
            conv_algorithm (str): "direct" runs ``F.conv1d``/``F.conv2d``
                always; "auto" or "gemm" also the polyphase form where it pays
                off on the CPU.

        """
        super().__init__()
        check_conv_algorithm(conv_algorithm)
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims}")
        conv_class = torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d
        initial = conv_class(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
        )
        self._conv = F.conv1d if dims == 1 else conv2d
        self.stride = initial.stride
        self.padding = initial.padding
        self.dilation = initial.dilation
        self.groups = groups
        self.conv_algorithm = conv_algorithm
        self.polyphase_pays_off = (
            dims == 1
            and max(self.dilation) == 1
            and polyphase_pays_off(self.stride[0], groups, out_channels)
        )
        self._take_weights(initial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the convolution.

        Args:
            x (Tensor): Input tensor (B, in_channels, T) or (B, in_channels, H, W).

        Returns:
            Tensor: Output tensor (B, out_channels, T') or (B, out_channels, H', W').

        """
        if uses_polyphase(self.conv_algorithm, self.polyphase_pays_off, x.device):
            return polyphase_conv1d(
                x,
                self.normalized_weight(),
                self.bias,
                stride=self.stride[0],
                padding=self.padding[0],
                groups=self.groups,
            )
        return self._conv(
            x,
            self.normalized_weight(),
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
        )

    def extra_repr(self) -> str:
        out_channels, in_per_group, *kernel = self.weight_v.shape
        return (
            f"{in_per_group * self.groups}, {out_channels}, "
            f"kernel_size={tuple(kernel)}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}"
        )


class WeightNormConvTranspose1d(WeightNormalized):
    """A 1-D transposed convolution with weight normalization over dim 0.

    As ``torch.nn.utils.weight_norm(ConvTranspose1d(...))``: dim 0 of a
    transposed convolution's weight is its input channels, so ``weight_g``
    is (in_channels, 1, 1). Keys ``bias``, ``weight_g``, ``weight_v``; the
    newer API's names are accepted on load.
    """

    @typechecked
    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ):
        """Initialize WeightNormConvTranspose1d.

        Args:
            in_channels (int): Number of input channels.
            out_channels (int): Number of output channels.
            kernel_size (int): Kernel size.
            stride (int): Upsampling factor.
            padding (int): Samples removed from both ends of the output.

        """
        super().__init__()
        initial = torch.nn.ConvTranspose1d(
            in_channels, out_channels, kernel_size, stride, padding=padding
        )
        self.stride = stride
        self.padding = padding
        self._take_weights(initial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample ``x`` (B, in_channels, T) to (B, out_channels, T')."""
        return F.conv_transpose1d(
            x, self.normalized_weight(), self.bias, stride=self.stride, padding=self.padding
        )


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    stride: Tuple[int, int],
    padding: Tuple[int, int],
    dilation: Tuple[int, int],
    groups: int,
) -> torch.Tensor:
    """``F.conv2d``, unstrided along W where it would stride down to one column
    in bfloat16 on the CPU (``dispatch.strides_last_dim_to_one_column``).

    Args:
        x (Tensor): Input (B, C_in, H, W).
        weight (Tensor): Kernel (C_out, C_in / groups, kH, kW).
        bias (Tensor): Bias (C_out,).
        stride (Tuple[int, int]): Stride.
        padding (Tuple[int, int]): Zero padding on both sides.
        dilation (Tuple[int, int]): Spacing of the kernel taps.
        groups (int): Number of channel groups.

    Returns:
        Tensor: Output (B, C_out, H', W').

    """
    span = dilation[1] * (weight.size(-1) - 1) + 1
    output_width = (x.size(-1) + 2 * padding[1] - span) // stride[1] + 1
    if not strides_last_dim_to_one_column(x, stride[1], output_width):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    unstrided = (stride[0], 1)
    return F.conv2d(x, weight, bias, unstrided, padding, dilation, groups)[..., :1]


class SafeConv2d(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` (same parameters and keys) whose convolution is
    ``conv2d`` above; the spectral-normalized 2-D convolutions use it."""

    def _conv_forward(self, x, weight, bias):
        return conv2d(
            x, weight, bias, self.stride, self.padding, self.dilation, self.groups
        )


def _norm_except_dim0(weight: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(1, weight.dim()))
    return torch.linalg.vector_norm(weight, dim=dims, keepdim=True)


def _rename_new_api_keys(state_dict, prefix, *args, **kwargs):
    for new_name, old_name in _NEW_API_NAMES.items():
        if prefix + new_name in state_dict:
            state_dict[prefix + old_name] = state_dict.pop(prefix + new_name)


@typechecked
def normalized_conv(
    *,
    dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    groups: int = 1,
    use_spectral_norm: bool = False,
    conv_algorithm: str = "auto",
) -> torch.nn.Module:
    """Build a weight-normalized (default) or spectral-normalized convolution.

    Args:
        dims (int): 1 or 2 (``conv1d`` or ``conv2d``).
        in_channels (int): Number of input channels.
        out_channels (int): Number of output channels.
        kernel_size (Union[int, Tuple[int, int]]): Kernel size.
        stride (Union[int, Tuple[int, int]]): Stride.
        padding (Union[int, Tuple[int, int]]): Zero padding on both sides.
        groups (int): Number of channel groups.
        use_spectral_norm (bool): Use ``torch.nn.utils.spectral_norm`` (keys
            ``weight_orig``, ``weight_u``, ``weight_v``) as the references do
            when this flag is set, instead of weight normalization.
        conv_algorithm (str): For weight-normalized convolutions, see
            ``WeightNormConv``; spectral-normalized ones run as ``ConvNd``.

    Returns:
        Module: The convolution.

    """
    if not use_spectral_norm:
        return WeightNormConv(
            dims=dims,
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            groups=groups,
            conv_algorithm=conv_algorithm,
        )
    conv_class = torch.nn.Conv1d if dims == 1 else SafeConv2d
    conv = conv_class(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=padding,
        groups=groups,
    )
    return torch.nn.utils.spectral_norm(conv)


def conv_stack_outputs(
    convs: Iterable[torch.nn.Module],
    conv_post: torch.nn.Module,
    x: torch.Tensor,
    lrelu_slope: float,
) -> List[torch.Tensor]:
    """Run a discriminator's conv stack and return ESPnet's output format.

    Args:
        convs (Iterable[Module]): The convolutions, each followed by a leaky ReLU.
        conv_post (Module): The final convolution, without activation.
        x (Tensor): Input (B, C, T) or (B, C, H, W).
        lrelu_slope (float): Negative slope of the leaky ReLUs.

    Returns:
        List[Tensor]: The output of each conv after its leaky ReLU (the
            feature maps), then the flattened ``conv_post`` output (B, N), the
            score.

    """
    feature_maps = []
    for conv in convs:
        x = F.leaky_relu(conv(x), lrelu_slope)
        feature_maps.append(x)
    return feature_maps + [torch.flatten(conv_post(x), 1, -1)]
