"""``ref_enc``: GPT-SoVITS's MelStyleEncoder.

It summarises a reference spectrogram (every linear bin for v1, the lowest
704 from v2 on) into one conditioning vector ``ge`` (B, gin_channels, 1): two
position-wise linear layers with Mish, two gated convolutions with residual
connections, one masked multi-head self-attention with a residual
connection, a linear layer, and the mean over the valid frames. Dropout
(0.1 at six places) sits where the reference has it, as
``torch.nn.Dropout`` modules.
"""

import math
from typing import Optional

import torch
from typeguard import typechecked

from espnet_sovits_disc.gpt_sovits.config import SynthesizerConfig

# The reference's fixed MelStyleEncoder sizes: 128 channels, kernel 5,
# 2 heads, dropout 0.1.
STYLE_HIDDEN_CHANNELS = 128
STYLE_KERNEL_SIZE = 5
STYLE_HEADS = 2
STYLE_DROPOUT = 0.1


class Linear(torch.nn.Module):
    """A linear layer under the attribute ``fc`` (the reference's key names)."""

    def __init__(self, in_features: int, out_features: int):
        """Initialize Linear.

        Args:
            in_features (int): Input size.
            out_features (int): Output size.

        """
        super().__init__()
        self.fc = torch.nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to the last dimension of ``x`` (..., in_features)."""
        return self.fc(x)


class Convolution(torch.nn.Module):
    """A same-length Conv1d under the attribute ``conv`` (reference key names)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        """Initialize Convolution.

        Args:
            in_channels (int): Input channels.
            out_channels (int): Output channels.
            kernel_size (int): Odd kernel size; padding keeps the length.

        """
        super().__init__()
        self.conv = torch.nn.Conv1d(
            in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``x`` (B, in_channels, T) into (B, out_channels, T)."""
        return self.conv(x)


class GatedConvolution(torch.nn.Module):
    """``x + dropout(a * sigmoid(b))`` where ``[a, b]`` is a convolution of ``x``."""

    def __init__(self, channels: int, kernel_size: int, dropout: float):
        """Initialize GatedConvolution.

        Args:
            channels (int): Input and output channels.
            kernel_size (int): Odd kernel size.
            dropout (float): Dropout probability of the gated branch.

        """
        super().__init__()
        self.channels = channels
        self.conv1 = Convolution(channels, 2 * channels, kernel_size)
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` (B, channels, T)."""
        value, gate = torch.split(self.conv1(x), self.channels, dim=1)
        return x + self.dropout(value * torch.sigmoid(gate))


class ScaledDotProduct(torch.nn.Module):
    """Softmax attention with a fixed temperature and dropout on the weights."""

    def __init__(self, temperature: float, dropout: float):
        """Initialize ScaledDotProduct.

        Args:
            temperature (float): Divisor of the dot products.
            dropout (float): Dropout probability of the attention weights.

        """
        super().__init__()
        self.temperature = temperature
        self.dropout = torch.nn.Dropout(dropout)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        padding: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """Attend.

        Args:
            query (Tensor): (N, T, d).
            key (Tensor): (N, T, d).
            value (Tensor): (N, T, d).
            padding (Optional[Tensor]): True at keys to ignore (N, T, T).

        Returns:
            Tensor: (N, T, d).

        """
        scores = torch.bmm(query, key.transpose(1, 2)) / self.temperature
        if padding is not None:
            scores = scores.masked_fill(padding, -math.inf)
        return torch.bmm(self.dropout(torch.softmax(scores, dim=2)), value)


class SelfAttention(torch.nn.Module):
    """Multi-head self-attention with a residual connection.

    The temperature is ``sqrt(channels)``, not the usual ``sqrt(channels /
    heads)``: the reference's constant.
    """

    def __init__(self, channels: int, heads: int, dropout: float):
        """Initialize SelfAttention.

        Args:
            channels (int): Model width, split evenly among the heads.
            heads (int): Number of heads.
            dropout (float): Dropout of the attention weights and the output.

        """
        super().__init__()
        self.heads = heads
        self.w_qs = torch.nn.Linear(channels, channels)
        self.w_ks = torch.nn.Linear(channels, channels)
        self.w_vs = torch.nn.Linear(channels, channels)
        self.attention = ScaledDotProduct(math.sqrt(channels), dropout)
        self.fc = torch.nn.Linear(channels, channels)
        self.dropout = torch.nn.Dropout(dropout)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, channels = x.shape
        per_head = channels // self.heads
        heads = x.view(batch, frames, self.heads, per_head).permute(2, 0, 1, 3)
        return heads.reshape(self.heads * batch, frames, per_head)

    def forward(self, x: torch.Tensor, padding: Optional[torch.Tensor]) -> torch.Tensor:
        """Attend over the frames of ``x``.

        Args:
            x (Tensor): (B, T, channels).
            padding (Optional[Tensor]): True at padded frames (B, T).

        Returns:
            Tensor: (B, T, channels).

        """
        batch, frames, channels = x.shape
        key_padding = None
        if padding is not None:
            key_padding = (
                padding[:, None, :].expand(-1, frames, -1).repeat(self.heads, 1, 1)
            )
        attended = self.attention(
            self._split_heads(self.w_qs(x)),
            self._split_heads(self.w_ks(x)),
            self._split_heads(self.w_vs(x)),
            key_padding,
        )
        merged = attended.view(self.heads, batch, frames, -1).permute(1, 2, 0, 3)
        merged = merged.reshape(batch, frames, channels)
        return self.dropout(self.fc(merged)) + x


class MelStyleEncoder(torch.nn.Module):
    """The reference encoder of GPT-SoVITS's SynthesizerTrn (``ref_enc``)."""

    @typechecked
    def __init__(self, config: SynthesizerConfig):
        """Initialize MelStyleEncoder.

        Its widths are the reference's constants (128 hidden, kernel 5,
        2 heads, dropout 0.1 whatever the model's ``p_dropout``).

        Args:
            config (SynthesizerConfig): Uses ``reference_bins`` (input bins)
                and ``gin_channels`` (size of ``ge``).

        """
        super().__init__()
        in_channels, hidden_channels = config.reference_bins, STYLE_HIDDEN_CHANNELS
        kernel_size, heads, dropout = STYLE_KERNEL_SIZE, STYLE_HEADS, STYLE_DROPOUT
        self.in_channels = in_channels
        self.spectral = torch.nn.Sequential(
            Linear(in_channels, hidden_channels),
            torch.nn.Mish(),
            torch.nn.Dropout(dropout),
            Linear(hidden_channels, hidden_channels),
            torch.nn.Mish(),
            torch.nn.Dropout(dropout),
        )
        self.temporal = torch.nn.Sequential(
            GatedConvolution(hidden_channels, kernel_size, dropout),
            GatedConvolution(hidden_channels, kernel_size, dropout),
        )
        self.slf_attn = SelfAttention(hidden_channels, heads, dropout)
        self.fc = Linear(hidden_channels, config.gin_channels)

    def forward(
        self, spec: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Encode a reference spectrogram.

        Args:
            spec (Tensor): Spectrogram (B, in_channels, T), zero where padded.
            mask (Optional[Tensor]): 1 at valid frames, 0 at padding (B, 1, T);
                None: every frame is valid.

        Returns:
            Tensor: ``ge`` (B, out_channels, 1), the mean over valid frames.

        Raises:
            ValueError: If ``spec`` or ``mask`` has the wrong shape.

        """
        if spec.dim() != 3 or spec.size(1) != self.in_channels:
            raise ValueError(
                f"reference spectrogram has shape {tuple(spec.shape)}; expected "
                f"(batch, {self.in_channels}, frames): the lowest "
                f"{self.in_channels} linear bins"
            )
        padding = None
        if mask is not None:
            if mask.shape != (spec.size(0), 1, spec.size(2)):
                raise ValueError(
                    f"mask has shape {tuple(mask.shape)}; expected "
                    f"{(spec.size(0), 1, spec.size(2))}"
                )
            padding = (mask.int() == 0).squeeze(1)
        x = self.spectral(spec.transpose(1, 2))
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        if padding is not None:
            x = x.masked_fill(padding.unsqueeze(-1), 0)
        x = self.fc(self.slf_attn(x, padding))
        return self._mean_over_valid_frames(x, padding).unsqueeze(-1)

    @staticmethod
    def _mean_over_valid_frames(
        x: torch.Tensor, padding: Optional[torch.Tensor]
    ) -> torch.Tensor:
        if padding is None:
            return x.mean(dim=1)
        valid = (~padding).sum(dim=1)[:, None, None]
        x = x.masked_fill(padding.unsqueeze(-1), 0)
        return (x.float() / valid).sum(dim=1).to(x.dtype)
