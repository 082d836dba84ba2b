"""The VITS-style attention encoder of the reference (``attentions.Encoder``).

Each layer: multi-head self-attention over 1x1 convolutions, with relative
position embeddings for keys and values within a window of 4 frames
(shared by the heads), masked scores filled with -1e4, then a residual
connection and a channels-first LayerNorm (eps 1e-5); then a two-layer
convolutional feed-forward block (ReLU, "same" padding) with its residual
connection and LayerNorm. Dropout after the attention weights, inside the
feed-forward block and on both sublayer outputs, as ``torch.nn.Dropout``.
"""

import math
from typing import Optional

import torch
import torch.nn.functional as F
from typeguard import typechecked

from espnet_sovits_disc.gpt_sovits.config import SynthesizerConfig

MASKED_SCORE = -1e4


class LayerNorm(torch.nn.Module):
    """Layer normalization over the channels of (B, C, T) (keys ``gamma``, ``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        """Initialize LayerNorm.

        Args:
            channels (int): Number of channels.
            eps (float): Added to the variance (the reference's 1e-5).

        """
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = torch.nn.Parameter(torch.ones(channels))
        self.beta = torch.nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize ``x`` (B, C, T) over C."""
        normalized = F.layer_norm(
            x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps
        )
        return normalized.transpose(1, -1)


class MultiHeadAttention(torch.nn.Module):
    """Multi-head attention over 1x1 convolutions, optionally with relative
    position embeddings (self-attention only)."""

    def __init__(
        self,
        channels: int,
        out_channels: int,
        heads: int,
        p_dropout: float = 0.0,
        window_size: Optional[int] = None,
    ):
        """Initialize MultiHeadAttention.

        Args:
            channels (int): Channels of queries, keys and values.
            out_channels (int): Channels of the output.
            heads (int): Number of heads (dividing ``channels``).
            p_dropout (float): Dropout of the attention weights.
            window_size (Optional[int]): Relative positions -w..w get
                embeddings (shared by the heads); None: no relative term.

        """
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} is not divisible by heads={heads}")
        self.heads = heads
        self.head_channels = channels // heads
        self.window_size = window_size
        self.conv_q = torch.nn.Conv1d(channels, channels, 1)
        self.conv_k = torch.nn.Conv1d(channels, channels, 1)
        self.conv_v = torch.nn.Conv1d(channels, channels, 1)
        self.conv_o = torch.nn.Conv1d(channels, out_channels, 1)
        self.drop = torch.nn.Dropout(p_dropout)
        if window_size is not None:
            scale = self.head_channels**-0.5
            shape = (1, 2 * window_size + 1, self.head_channels)
            self.emb_rel_k = torch.nn.Parameter(torch.randn(shape) * scale)
            self.emb_rel_v = torch.nn.Parameter(torch.randn(shape) * scale)

    def _relative_embeddings(self, table: torch.Tensor, length: int) -> torch.Tensor:
        """Embeddings of relative positions -(length-1)..(length-1), zero
        beyond the window: (1, 2 * length - 1, head_channels)."""
        window = self.window_size
        pad = max(length - (window + 1), 0)
        start = max((window + 1) - length, 0)
        if pad:
            table = F.pad(table, (0, 0, pad, pad))
        return table[:, start : start + 2 * length - 1]

    @staticmethod
    def _relative_to_absolute(scores: torch.Tensor) -> torch.Tensor:
        """(B, H, L, 2L-1) indexed by relative position to (B, H, L, L)."""
        batch, heads, length, _ = scores.shape
        padded = F.pad(scores, (0, 1)).view(batch, heads, 2 * length * length)
        padded = F.pad(padded, (0, length - 1))
        return padded.view(batch, heads, length + 1, 2 * length - 1)[
            :, :, :length, length - 1 :
        ]

    @staticmethod
    def _absolute_to_relative(weights: torch.Tensor) -> torch.Tensor:
        """(B, H, L, L) to (B, H, L, 2L-1) indexed by relative position."""
        batch, heads, length, _ = weights.shape
        padded = F.pad(weights, (0, length - 1)).view(
            batch, heads, length * (2 * length - 1)
        )
        padded = F.pad(padded, (length, 0))
        return padded.view(batch, heads, length, 2 * length)[:, :, :, 1:]

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Attend from ``x`` to ``context``.

        Args:
            x (Tensor): Queries (B, channels, T_q).
            context (Tensor): Keys and values (B, channels, T_k).
            mask (Optional[Tensor]): 0 where attention is not allowed,
                broadcastable to (B, heads, T_q, T_k).

        Returns:
            Tensor: (B, out_channels, T_q).

        """
        batch, channels, query_frames = x.shape
        key_frames = context.size(2)

        def split(t: torch.Tensor, frames: int) -> torch.Tensor:
            return t.view(batch, self.heads, self.head_channels, frames).transpose(2, 3)

        query = split(self.conv_q(x), query_frames) / math.sqrt(self.head_channels)
        key = split(self.conv_k(context), key_frames)
        value = split(self.conv_v(context), key_frames)
        scores = torch.matmul(query, key.transpose(-2, -1))
        if self.window_size is not None:
            if query_frames != key_frames:
                raise ValueError("relative position attention needs self-attention")
            keys = self._relative_embeddings(self.emb_rel_k, key_frames)
            relative = torch.matmul(query, keys.unsqueeze(0).transpose(-2, -1))
            scores = scores + self._relative_to_absolute(relative)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, MASKED_SCORE)
        weights = self.drop(F.softmax(scores, dim=-1))
        output = torch.matmul(weights, value)
        if self.window_size is not None:
            values = self._relative_embeddings(self.emb_rel_v, key_frames)
            output = output + torch.matmul(
                self._absolute_to_relative(weights), values.unsqueeze(0)
            )
        output = output.transpose(2, 3).contiguous().view(batch, channels, query_frames)
        return self.conv_o(output)


class FeedForward(torch.nn.Module):
    """Two "same"-padded convolutions with a ReLU between, masked."""

    def __init__(
        self, channels: int, filter_channels: int, kernel_size: int, p_dropout: float
    ):
        """Initialize FeedForward.

        Args:
            channels (int): Channels in and out.
            filter_channels (int): Hidden channels.
            kernel_size (int): Kernel size (left pad ``(k-1)//2``, right ``k//2``).
            p_dropout (float): Dropout after the ReLU.

        """
        super().__init__()
        self.padding = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = torch.nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = torch.nn.Conv1d(filter_channels, channels, kernel_size)
        self.drop = torch.nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` (B, channels, T) with mask (B, 1, T)."""
        hidden = torch.relu(self.conv_1(F.pad(x * x_mask, self.padding)))
        hidden = self.drop(hidden)
        return self.conv_2(F.pad(hidden * x_mask, self.padding)) * x_mask


class AttentionEncoder(torch.nn.Module):
    """A stack of self-attention and feed-forward layers (post-LayerNorm)."""

    @typechecked
    def __init__(self, config: SynthesizerConfig, n_layers: int, window_size: int = 4):
        """Initialize AttentionEncoder.

        Args:
            config (SynthesizerConfig): Uses ``hidden_channels``,
                ``filter_channels`` (feed-forward width), ``n_heads``,
                ``kernel_size`` (feed-forward) and ``p_dropout``.
            n_layers (int): Layers.
            window_size (int): Relative-position window.

        """
        super().__init__()
        hidden_channels, p_dropout = config.hidden_channels, config.p_dropout
        self.drop = torch.nn.Dropout(p_dropout)
        self.attn_layers = torch.nn.ModuleList()
        self.norm_layers_1 = torch.nn.ModuleList()
        self.ffn_layers = torch.nn.ModuleList()
        self.norm_layers_2 = torch.nn.ModuleList()
        for _ in range(n_layers):
            self.attn_layers.append(
                MultiHeadAttention(
                    hidden_channels,
                    hidden_channels,
                    config.n_heads,
                    p_dropout=p_dropout,
                    window_size=window_size,
                )
            )
            self.norm_layers_1.append(LayerNorm(hidden_channels))
            self.ffn_layers.append(
                FeedForward(
                    hidden_channels,
                    config.filter_channels,
                    config.kernel_size,
                    p_dropout,
                )
            )
            self.norm_layers_2.append(LayerNorm(hidden_channels))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """Encode ``x`` (B, hidden_channels, T) with mask (B, 1, T)."""
        attention_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for attention, norm_1, feed_forward, norm_2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2
        ):
            x = norm_1(x + self.drop(attention(x, x, attention_mask)))
            x = norm_2(x + self.drop(feed_forward(x, x_mask)))
        return x * x_mask
