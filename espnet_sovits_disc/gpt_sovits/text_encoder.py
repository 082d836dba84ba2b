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
from espnet_sovits_disc.gpt_sovits.config import SynthesizerConfig
from espnet_sovits_disc.gpt_sovits.semantic import SSL_DIM
from espnet_sovits_disc.gpt_sovits.posterior import sequence_mask


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
    def __init__(self, config: SynthesizerConfig):
        """Initialize TextEncoder.

        Args:
            config (SynthesizerConfig): Uses ``inter_channels`` (the prior),
                ``n_symbols`` (the phoneme embedding), ``hidden_channels``
                (MRTE needs 192), ``n_layers`` (the text encoder; the SSL
                encoder and the last one have half as many) and, in the
                encoders, ``filter_channels``, ``n_heads``, ``kernel_size``
                and ``p_dropout``.

        """
        super().__init__()
        hidden_channels, layers = config.hidden_channels, config.n_layers
        self.ssl_dim = SSL_DIM
        self.out_channels = config.inter_channels
        self.ssl_proj = torch.nn.Conv1d(SSL_DIM, hidden_channels, 1)
        self.encoder_ssl = AttentionEncoder(config, n_layers=layers // 2)
        self.encoder_text = AttentionEncoder(config, n_layers=layers)
        self.text_embedding = torch.nn.Embedding(config.n_symbols, hidden_channels)
        self.mrte = MRTE()
        self.encoder2 = AttentionEncoder(config, n_layers=layers // 2)
        self.proj = torch.nn.Conv1d(hidden_channels, 2 * self.out_channels, 1)

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
