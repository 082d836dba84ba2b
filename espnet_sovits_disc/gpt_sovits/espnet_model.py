"""ESPnet's GAN-TTS model wrapper, passing on the HuBERT features.

``ESPnetGANTTSModel.forward`` hands its TTS model a fixed set of data keys;
``tts: gpt_sovits`` also needs ``ssl_feats``. This subclass passes them (and
the speaker-verification embedding ``spembs``) on and leaves everything else
to ESPnet: the plugin's task builds it for ``tts: gpt_sovits``.
"""

from typing import Any, Dict, Optional

import torch
from espnet2.gan_tts.espnet_model import ESPnetGANTTSModel


class SSLGANTTSModel(ESPnetGANTTSModel):
    """``ESPnetGANTTSModel`` whose TTS model also gets ``ssl_feats``."""

    def forward(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        ssl_feats: Optional[torch.Tensor] = None,
        ssl_feats_lengths: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        forward_generator: bool = True,
        **kwargs: Any,
    ) -> Dict[str, Any]:
        """Return the generator's or the discriminator's loss.

        Args:
            text (Tensor): Phoneme ids (B, T_text).
            text_lengths (Tensor): (B,).
            speech (Tensor): Waveforms (B, T_wav).
            speech_lengths (Tensor): (B,).
            ssl_feats (Optional[Tensor]): HuBERT features (B, T_ssl, 768).
            ssl_feats_lengths (Optional[Tensor]): (B,).
            spembs (Optional[Tensor]): Speaker-verification embeddings (B, D).
            forward_generator (bool): The generator's turn, else the
                discriminator's.
            **kwargs (Any): Other data keys (``utt_id``, ...; ignored).

        Returns:
            Dict[str, Any]: ``loss``, ``stats``, ``weight``, ``optim_idx``.

        """
        return self.tts(
            text=text,
            text_lengths=text_lengths,
            speech=speech,
            speech_lengths=speech_lengths,
            ssl_feats=ssl_feats,
            ssl_feats_lengths=ssl_feats_lengths,
            spembs=spembs,
            forward_generator=forward_generator,
        )
