"""The non-causal WaveNet stack (the reference's ``modules.WN``) that the
posterior encoder and every coupling layer of the flow use.

Layer ``i`` is a weight-normalized dilated convolution (dilation
``dilation_rate ** i``) into ``tanh(a) * sigmoid(b)`` gated units, with the
slice ``i`` of one weight-normalized 1x1 projection of the global
conditioning ``g`` added before the gate; a weight-normalized 1x1
convolution splits the result into a residual (every layer but the last)
and a skip output, and the skip outputs are summed.
"""

from typing import Optional

import torch
from typeguard import typechecked

from espnet_sovits_disc.discriminators.conv import WeightNormConv
from espnet_sovits_disc.gpt_sovits.config import SynthesizerConfig

# The reference's fixed kernel size and dilation rate for enc_q and flow.
KERNEL_SIZE = 5
DILATION_RATE = 1


class WaveNet(torch.nn.Module):
    """Gated dilated convolutions with residual and skip connections."""

    @typechecked
    def __init__(self, config: SynthesizerConfig, n_layers: int):
        """Initialize WaveNet.

        Args:
            config (SynthesizerConfig): Uses ``hidden_channels`` (input,
                residual path and output) and ``gin_channels``.
            n_layers (int): Number of layers (enc_q 16, each coupling 4).

        """
        super().__init__()
        hidden_channels, gin_channels = config.hidden_channels, config.gin_channels
        kernel_size = KERNEL_SIZE
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.in_layers = torch.nn.ModuleList()
        self.res_skip_layers = torch.nn.ModuleList()
        self.drop = torch.nn.Dropout(0.0)  # where the reference has it, at p = 0
        if gin_channels:
            self.cond_layer = WeightNormConv(
                dims=1,
                in_channels=gin_channels,
                out_channels=2 * hidden_channels * n_layers,
                kernel_size=1,
            )
        for layer in range(n_layers):
            dilation = DILATION_RATE**layer
            self.in_layers.append(
                WeightNormConv(
                    dims=1,
                    in_channels=hidden_channels,
                    out_channels=2 * hidden_channels,
                    kernel_size=kernel_size,
                    dilation=dilation,
                    padding=(kernel_size * dilation - dilation) // 2,
                )
            )
            last = layer == n_layers - 1
            self.res_skip_layers.append(
                WeightNormConv(
                    dims=1,
                    in_channels=hidden_channels,
                    out_channels=hidden_channels if last else 2 * hidden_channels,
                    kernel_size=1,
                )
            )

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Run the stack.

        Args:
            x (Tensor): Input (B, hidden_channels, T).
            x_mask (Tensor): 1 at valid frames (B, 1, T).
            g (Optional[Tensor]): Global conditioning (B, gin_channels, 1).

        Returns:
            Tensor: The summed skip outputs, masked (B, hidden_channels, T).

        """
        channels = self.hidden_channels
        conditioning = self.cond_layer(g) if g is not None else None
        output = torch.zeros_like(x)
        for layer, (in_layer, res_skip_layer) in enumerate(
            zip(self.in_layers, self.res_skip_layers)
        ):
            pre_gate = in_layer(x)
            if conditioning is not None:
                offset = layer * 2 * channels
                pre_gate = pre_gate + conditioning[:, offset : offset + 2 * channels]
            units = torch.tanh(pre_gate[:, :channels]) * torch.sigmoid(
                pre_gate[:, channels:]
            )
            res_skip = res_skip_layer(self.drop(units))
            if layer < self.n_layers - 1:
                x = (x + res_skip[:, :channels]) * x_mask
                output = output + res_skip[:, channels:]
            else:
                output = output + res_skip
        return output * x_mask
