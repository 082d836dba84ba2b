"""GPT-SoVITS's stage-2 generator, ``SynthesizerTrn``, assembled.

``build_synthesizer(version)`` gives the model that GPT-SoVITS's
``s2_train.py`` builds from ``configs/s2.json`` (v2) or
``configs/s2v2Pro.json`` (v2Pro, v2ProPlus), or v1's: the same submodules
under the same names (``enc_p``, ``dec``, ``enc_q``, ``flow``, ``ref_enc``,
``ssl_proj``, ``quantizer`` and, for v2Pro, ``sv_emb``, ``ge_to512``,
``prelu``), so its state dict has the reference's keys and shapes, and the
reference's ``forward``, ``extract_latent`` and ``decode``.
"""

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from typeguard import typechecked

from espnet_sovits_disc.gpt_sovits.config import SynthesizerConfig
from espnet_sovits_disc.gpt_sovits.decoder import Decoder
from espnet_sovits_disc.gpt_sovits.flow import CouplingFlow
from espnet_sovits_disc.gpt_sovits.posterior import PosteriorEncoder, sequence_mask
from espnet_sovits_disc.gpt_sovits.semantic import (
    SemanticQuantizer,
    build_ssl_projection,
    extract_latent,
    project_ssl,
)
from espnet_sovits_disc.gpt_sovits.style import MelStyleEncoder
from espnet_sovits_disc.gpt_sovits.text_encoder import TextEncoder

SV_EMBEDDING_SIZE = 20480


class SynthesizerTrn(torch.nn.Module):
    """The GPT-SoVITS stage-2 generator (see :func:`build_synthesizer`)."""

    @typechecked
    def __init__(self, config: Optional[SynthesizerConfig] = None):
        """Initialize SynthesizerTrn.

        Args:
            config (Optional[SynthesizerConfig]): The hyper-parameters; None:
                v2's (s2.json). See :func:`build_synthesizer` for a version's.

        """
        super().__init__()
        config = SynthesizerConfig() if config is None else config
        self.config = config
        self.version = config.version
        self.segment_size = config.segment_size
        self.semantic_frame_rate = config.semantic_frame_rate
        self.uses_speaker_verification = config.uses_speaker_verification
        self.enc_p = TextEncoder(config)
        self.dec = Decoder(config)
        self.enc_q = PosteriorEncoder(config)
        self.flow = CouplingFlow(config)
        self.ref_enc = MelStyleEncoder(config)
        self.ssl_proj = build_ssl_projection(
            semantic_frame_rate=config.semantic_frame_rate
        )
        self.quantizer = SemanticQuantizer()
        if self.uses_speaker_verification:
            self.sv_emb = torch.nn.Linear(SV_EMBEDDING_SIZE, config.gin_channels)
            self.ge_to512 = torch.nn.Linear(config.gin_channels, 512)
            self.prelu = torch.nn.PReLU(num_parameters=config.gin_channels)

    def global_conditioning(
        self,
        refer: torch.Tensor,
        refer_mask: torch.Tensor,
        sv_emb: Optional[torch.Tensor],
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``ge`` for the flow, the posterior and the decoder, and the one
        MRTE takes (``ge_to512(ge)`` for v2Pro, ``ge`` itself for v2).

        Args:
            refer (Tensor): Reference linear spectrogram (B, spec_channels, T).
            refer_mask (Tensor): Its mask (B, 1, T).
            sv_emb (Optional[Tensor]): Speaker-verification embedding
                (B, 20480); required for v2Pro and v2ProPlus.

        Returns:
            Tuple[Tensor, Tensor]: (B, gin_channels, 1) and (B, 512, 1).

        Raises:
            ValueError: If ``sv_emb`` is missing or misshaped for v2Pro.

        """
        bins = self.config.reference_bins
        ge = self.ref_enc(refer[:, :bins] * refer_mask, refer_mask)
        if not self.uses_speaker_verification:
            return ge, ge
        if sv_emb is None or sv_emb.shape != (refer.size(0), SV_EMBEDDING_SIZE):
            got = "none" if sv_emb is None else f"shape {tuple(sv_emb.shape)}"
            raise ValueError(
                f"GPT-SoVITS {self.version} needs sv_emb, the speaker-verification "
                f"embedding of shape ({refer.size(0)}, {SV_EMBEDDING_SIZE}); got {got}"
            )
        ge = self.prelu(ge + self.sv_emb(sv_emb).unsqueeze(-1))
        return ge, self.ge_to512(ge.transpose(2, 1)).transpose(2, 1)

    def _upsampled(self, quantized: torch.Tensor) -> torch.Tensor:
        if self.semantic_frame_rate == "25hz":
            return F.interpolate(
                quantized, size=quantized.shape[-1] * 2, mode="nearest"
            )
        return quantized

    def forward(
        self,
        ssl: torch.Tensor,
        y: torch.Tensor,
        y_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        sv_emb: Optional[torch.Tensor] = None,
    ) -> Tuple[Any, ...]:
        """The training forward, as the reference returns it.

        Draws two random tensors, in the reference's order: the posterior's
        ``randn_like`` and the slice starts' ``torch.rand(B)``.

        Args:
            ssl (Tensor): HuBERT features (B, 768, T) at 50 Hz.
            y (Tensor): Linear spectrogram (B, spec_channels, T).
            y_lengths (Tensor): Frames per item (B,).
            text (Tensor): Phoneme ids (B, T_text).
            text_lengths (Tensor): Phonemes per item (B,).
            sv_emb (Optional[Tensor]): (B, 20480), for v2Pro and v2ProPlus.

        Returns:
            Tuple: ``o`` (B, 1, segment_size * hop), the commitment loss (0),
                the slice starts (B,), ``y_mask`` twice (B, 1, T),
                ``(z, z_p, m_p, logs_p, m_q, logs_q)`` (B, inter_channels, T)
                and the upsampled quantized features (B, 768, T).

        Raises:
            ValueError: On mismatched frame counts, an odd SSL frame count,
                an utterance shorter than ``segment_size`` or a missing ``sv_emb``.

        """
        if ssl.dim() != 3 or y.dim() != 3 or ssl.size(2) != y.size(2):
            raise ValueError(
                f"ssl {tuple(ssl.shape)} and y {tuple(y.shape)} must be (batch, "
                "channels, frames) with the same frames (50 Hz features, hop 640 "
                "at 32 kHz)"
            )
        short = y_lengths < self.segment_size
        if short.any():
            raise ValueError(
                f"y_lengths {y_lengths.tolist()}: every utterance needs at least "
                f"segment_size={self.segment_size} frames for the decoder's slice"
            )
        y_mask = sequence_mask(y_lengths, y.size(2))[:, None].to(y.dtype)
        ge, mrte_ge = self.global_conditioning(y, y_mask, sv_emb)
        self.ssl_proj.eval()
        self.quantizer.eval()
        with torch.autocast(device_type=ssl.device.type, enabled=False):
            projected = project_ssl(self.ssl_proj, ssl)
            quantized, _, commit_loss, _ = self.quantizer(projected, layers=[0])
        quantized = self._upsampled(quantized)
        _, m_p, logs_p, _ = self.enc_p(
            quantized, y_lengths, text, text_lengths, mrte_ge
        )
        z, m_q, logs_q, y_mask = self.enc_q(y, y_lengths, g=ge)
        z_p = self.flow(z, y_mask, g=ge)
        starts = (
            torch.rand(z.size(0)).to(z.device) * (y_lengths - self.segment_size + 1)
        ).long()
        segments = torch.stack(
            [
                z[b, :, start : start + self.segment_size]
                for b, start in enumerate(starts.tolist())
            ]
        )
        o = self.dec(segments, g=ge)
        return (
            o,
            commit_loss,
            starts,
            y_mask,
            y_mask,
            (z, z_p, m_p, logs_p, m_q, logs_q),
            quantized,
        )

    def extract_latent(self, ssl: torch.Tensor) -> torch.Tensor:
        """Semantic codes (B, 1, T / 2) of HuBERT features (B, 768, T)."""
        return extract_latent(self.ssl_proj, self.quantizer, ssl)

    @torch.no_grad()
    def decode(
        self,
        codes: torch.Tensor,
        text: torch.Tensor,
        refer: torch.Tensor,
        noise_scale: float = 0.5,
        speed: float = 1.0,
        sv_emb: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Synthesize from semantic codes, phonemes and a reference spectrogram.

        Args:
            codes (Tensor): Semantic codes (1, 1, T_codes), as
                ``extract_latent(...).transpose(0, 1)`` gives them.
            text (Tensor): Phoneme ids (1, T_text).
            refer (Tensor): Reference linear spectrogram (1, spec_channels, T_ref).
            noise_scale (float): Scale of the prior's noise (one ``randn_like``).
            speed (float): Speaking rate.
            sv_emb (Optional[Tensor]): (1, 20480), for v2Pro and v2ProPlus.

        Returns:
            Tensor: Waveform (1, 1, samples).

        """
        refer_mask = torch.ones(
            refer.size(0), 1, refer.size(2), dtype=refer.dtype, device=refer.device
        )
        ge, mrte_ge = self.global_conditioning(refer, refer_mask, sv_emb)
        frames = codes.size(2) * 2
        y_lengths = torch.full(
            (codes.size(1),), frames, dtype=torch.long, device=codes.device
        )
        text_lengths = torch.full(
            (text.size(0),), text.size(-1), dtype=torch.long, device=text.device
        )
        quantized = self._upsampled(self.quantizer.decode(codes))
        _, m_p, logs_p, y_mask = self.enc_p(
            quantized, y_lengths, text, text_lengths, mrte_ge, speed=speed
        )
        z_p = m_p + torch.randn_like(m_p) * torch.exp(logs_p) * noise_scale
        z = self.flow(z_p, y_mask, g=ge, reverse=True)
        return self.dec(z * y_mask, g=ge)


@typechecked
def build_synthesizer(version: str = "v2", **overrides: Any) -> SynthesizerTrn:
    """Build GPT-SoVITS's SynthesizerTrn with a version's hyper-parameters.

    Args:
        version (str): ``v1``, ``v2``, ``v2Pro`` or ``v2ProPlus``.
        **overrides (Any): :class:`SynthesizerConfig` fields replacing the
            version's.

    Returns:
        SynthesizerTrn: The model (random initialization).

    Raises:
        ValueError: If the version is unknown.

    """
    return SynthesizerTrn(SynthesizerConfig.for_version(version, **overrides))
