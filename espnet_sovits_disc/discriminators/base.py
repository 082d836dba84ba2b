"""The sub-discriminator contract: what the multi-discriminators rely on.

S (``scale.py``), P (``period.py``) and R (``resolution.py``) are
``SubDiscriminator``s: a conv stack built from a layer table, run on an
input prepared from the waveform (the waveform itself, folded by a period,
or an STFT magnitude). Called on its own, a sub-discriminator checks its
waveform; inside a multi-discriminator, the multi-discriminator checks it
once and calls ``run``.
"""

from typing import List, Sequence, Tuple

import torch

from espnet_sovits_disc.discriminators.conv import (
    IntOrPair,
    conv_stack_outputs,
    normalized_conv,
)
from espnet_sovits_disc.discriminators.inputs import check_length, check_waveform

# (in_channels, out_channels, kernel_size, stride, groups, padding) of one conv.
ConvLayer = Tuple[int, int, IntOrPair, IntOrPair, int, IntOrPair]


class SubDiscriminator(torch.nn.Module):
    """One sub-discriminator: (B, 1, T) -> ``[fmap_0, ..., fmap_{N-1}, score]``.

    Instance attributes every sub-discriminator has:

    - ``name``: ``s``, ``p<period>`` or ``r<n_fft>``, in stats and errors;
    - ``minimum_length``: the shortest waveform (samples) it accepts, and
      ``length_requirement``: why (for error messages);
    - ``batch_pairs_on_cpu``: whether ``forward_pair`` of a multi-discriminator
      scores real and fake in one batched pass on the CPU (a GPU always does);
    - ``convs`` (each followed by a leaky ReLU of ``lrelu_slope``) and
      ``conv_post``.

    Subclasses implement ``conv_input`` and may override ``run``.
    """

    def __init__(
        self,
        *,
        name: str,
        owner: str,
        minimum_length: int,
        length_requirement: str,
        batch_pairs_on_cpu: bool,
        lrelu_slope: float,
    ):
        """Initialize the contract's attributes.

        Args:
            name (str): Short name, e.g. ``p2``.
            owner (str): How error messages name the module, e.g.
                ``PeriodDiscriminator(period=2)``.
            minimum_length (int): Shortest waveform accepted, in samples.
            length_requirement (str): Why, for error messages.
            batch_pairs_on_cpu (bool): Batch real and fake on the CPU.
            lrelu_slope (float): Negative slope of the leaky ReLUs.

        """
        super().__init__()
        self.name = name
        self.owner = owner
        self.minimum_length = minimum_length
        self.length_requirement = length_requirement
        self.batch_pairs_on_cpu = batch_pairs_on_cpu
        self.lrelu_slope = lrelu_slope

    def build_conv_stack(
        self,
        *,
        dims: int,
        layers: Sequence[ConvLayer],
        post: ConvLayer,
        use_spectral_norm: bool,
        conv_algorithm: str = "auto",
    ) -> None:
        """Build ``convs`` from a layer table and ``conv_post``.

        Args:
            dims (int): 1 for ``Conv1d``, 2 for ``Conv2d``.
            layers (Sequence[ConvLayer]): (in, out, kernel, stride, groups,
                padding) of each conv followed by a leaky ReLU.
            post (ConvLayer): The same for ``conv_post``.
            use_spectral_norm (bool): Spectral instead of weight normalization.
            conv_algorithm (str): Passed to the weight-normalized convs.

        """

        def conv(layer: ConvLayer) -> torch.nn.Module:
            in_channels, out_channels, kernel_size, stride, groups, padding = layer
            return normalized_conv(
                dims=dims,
                in_channels=in_channels,
                out_channels=out_channels,
                kernel_size=kernel_size,
                stride=stride,
                groups=groups,
                padding=padding,
                use_spectral_norm=use_spectral_norm,
                conv_algorithm=conv_algorithm,
            )

        self.convs = torch.nn.ModuleList(conv(layer) for layer in layers)
        self.conv_post = conv(post)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the module's parameters."""
        return self.conv_post.bias.dtype

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Check the waveform, then score it.

        Args:
            x (Tensor): Waveform tensor (B, 1, T).

        Returns:
            List[Tensor]: The feature maps, then the score (B, N).

        """
        check_waveform(x, owner=self.owner)
        check_length(
            x,
            minimum=self.minimum_length,
            owner=self.name,
            reason=self.length_requirement,
        )
        return self.run(x)

    def run(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Score a waveform that has been checked.

        Args:
            x (Tensor): Waveform tensor (B, 1, T), at least ``minimum_length``.

        Returns:
            List[Tensor]: The output of each conv after its leaky ReLU, then
                the flattened ``conv_post`` output (B, N).

        """
        return conv_stack_outputs(
            self.convs, self.conv_post, self.conv_input(x), self.lrelu_slope
        )

    def conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """The conv stack's input in the module's dtype.

        Args:
            x (Tensor): Waveform tensor (B, 1, T).

        Returns:
            Tensor: (B, C, T') or (B, C, H, W).

        """
        raise NotImplementedError
