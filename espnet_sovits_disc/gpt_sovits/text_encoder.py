"""``enc_p``: the reference's TextEncoder with MRTE.

The (upsampled) quantized SSL features go through a 1x1 convolution and an
attention encoder, the phoneme ids through an embedding and another; MRTE
(multi-reference timbre encoder) lets the SSL frames attend to the phonemes
and adds ``ge``; a last attention encoder and a 1x1 projection give the
prior's mean and log standard deviation.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from typeguard import typechecked

from espnet_sovits_disc.gpt_sovits.attention import AttentionEncoder, MultiHeadAttention
from espnet_sovits_disc.gpt_sovits.posterior import sequence_mask

# Phoneme symbols of GPT-SoVITS v2 (``text/symbols2.py``): the embedding's rows.
V2_SYMBOLS = 732


class MRTE(torch.nn.Module):
    """Cross-attention from the SSL frames to the phonemes, plus ``ge``.

    Its widths are fixed in the reference (content 192, hidden 512, 4 heads),
    whatever the model's ``hidden_channels``.
    """

    def __init__(
        self,
        content_channels: int = 192,
        hidden_channels: int = 512,
        out_channels: int = 192,
        heads: int = 4,
    ):
        """Initialize MRTE.

        Args:
            content_channels (int): Channels of the SSL and text encodings.
            hidden_channels (int): Width of the attention (and of ``ge``).
            out_channels (int): Channels of the output.
            heads (int): Attention heads.

        """
        super().__init__()
        self.cross_attention = MultiHeadAttention(
            hidden_channels, hidden_channels, heads
        )
        self.c_pre = torch.nn.Conv1d(content_channels, hidden_channels, 1)
        self.text_pre = torch.nn.Conv1d(content_channels, hidden_channels, 1)
        self.c_post = torch.nn.Conv1d(hidden_channels, out_channels, 1)

    def forward(
        self,
        ssl: torch.Tensor,
        ssl_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        ge: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """Mix timbre and text into the SSL encoding.

        Args:
            ssl (Tensor): SSL encoding (B, content_channels, T).
            ssl_mask (Tensor): (B, 1, T).
            text (Tensor): Text encoding (B, content_channels, T_text).
            text_mask (Tensor): (B, 1, T_text).
            ge (Optional[Tensor]): Global conditioning (B, hidden_channels, 1).

        Returns:
            Tensor: (B, out_channels, T).

        """
        attention_mask = text_mask.unsqueeze(2) * ssl_mask.unsqueeze(-1)
        content = self.c_pre(ssl * ssl_mask)
        phonemes = self.text_pre(text * text_mask)
        x = self.cross_attention(
            content * ssl_mask, phonemes * text_mask, attention_mask
        )
        x = x + content + (0 if ge is None else ge)
        return self.c_post(x * ssl_mask)


class TextEncoder(torch.nn.Module):
    """Quantized SSL features, phonemes and ``ge`` to the prior (``enc_p``)."""

    @typechecked
    def __init__(
        self,
        *,
        ssl_dim: int = 768,
        out_channels: int = 192,
        hidden_channels: int = 192,
        filter_channels: int = 768,
        heads: int = 2,
        n_layers: int = 6,
        kernel_size: int = 3,
        p_dropout: float = 0.1,
        symbols: int = V2_SYMBOLS,
    ):
        """Initialize TextEncoder (defaults: GPT-SoVITS s2.json).

        Args:
            ssl_dim (int): Channels of the quantized SSL features.
            out_channels (int): Channels of the prior (``inter_channels``).
            hidden_channels (int): Model width (MRTE needs 192).
            filter_channels (int): Feed-forward width.
            heads (int): Attention heads.
            n_layers (int): Layers of the text encoder; the SSL encoder and
                the last encoder have half as many.
            kernel_size (int): Feed-forward kernel size.
            p_dropout (float): Dropout probability (v2: 0.1, v2Pro: 0).
            symbols (int): Phoneme vocabulary size.

        """
        super().__init__()
        self.ssl_dim = ssl_dim
        self.out_channels = out_channels
        encoder = dict(
            hidden_channels=hidden_channels,
            filter_channels=filter_channels,
            heads=heads,
            kernel_size=kernel_size,
            p_dropout=p_dropout,
        )
        self.ssl_proj = torch.nn.Conv1d(ssl_dim, hidden_channels, 1)
        self.encoder_ssl = AttentionEncoder(n_layers=n_layers // 2, **encoder)
        self.encoder_text = AttentionEncoder(n_layers=n_layers, **encoder)
        self.text_embedding = torch.nn.Embedding(symbols, hidden_channels)
        self.mrte = MRTE()
        self.encoder2 = AttentionEncoder(n_layers=n_layers // 2, **encoder)
        self.proj = torch.nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self,
        quantized: torch.Tensor,
        y_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        ge: Optional[torch.Tensor],
        speed: float = 1.0,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode.

        Args:
            quantized (Tensor): Quantized SSL features at the spectrogram's
                frame rate (B, ssl_dim, T).
            y_lengths (Tensor): Frames per item (B,).
            text (Tensor): Phoneme ids (B, T_text), int64.
            text_lengths (Tensor): Phonemes per item (B,).
            ge (Optional[Tensor]): Global conditioning (B, 512, 1).
            speed (float): Speaking rate: other than 1, the encoding is
                resampled (linearly) to ``int(T / speed) + 1`` frames.

        Returns:
            Tuple[Tensor, Tensor, Tensor, Tensor]: The encoding ``x``, the
                prior's mean and log standard deviation (B, out_channels, T')
                and the mask (B, 1, T'); T' = T unless ``speed`` changes it.

        Raises:
            ValueError: If the features or the ids have the wrong shape.

        """
        if quantized.dim() != 3 or quantized.size(1) != self.ssl_dim:
            raise ValueError(
                f"quantized SSL features have shape {tuple(quantized.shape)}; "
                f"expected (batch, {self.ssl_dim}, frames)"
            )
        if text.dim() != 2 or text.size(0) != quantized.size(0):
            raise ValueError(
                f"phoneme ids have shape {tuple(text.shape)}; expected "
                f"({quantized.size(0)}, phonemes)"
            )
        y_mask = sequence_mask(y_lengths, quantized.size(2))[:, None].to(
            quantized.dtype
        )
        x = self.ssl_proj(quantized * y_mask) * y_mask
        x = self.encoder_ssl(x * y_mask, y_mask)
        text_mask = sequence_mask(text_lengths, text.size(1))[:, None].to(x.dtype)
        phonemes = self.text_embedding(text).transpose(1, 2)
        phonemes = self.encoder_text(phonemes * text_mask, text_mask)
        x = self.mrte(x, y_mask, phonemes, text_mask, ge)
        x = self.encoder2(x * y_mask, y_mask)
        if speed != 1:
            x = F.interpolate(x, size=int(x.shape[-1] / speed) + 1, mode="linear")
            y_mask = F.interpolate(y_mask, size=x.shape[-1], mode="nearest")
        m, logs = torch.split(self.proj(x) * y_mask, self.out_channels, dim=1)
        return x, m, logs, y_mask
