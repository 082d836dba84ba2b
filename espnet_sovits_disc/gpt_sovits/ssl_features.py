"""HuBERT features and training audio as GPT-SoVITS's feature script makes them.

``prepare_datasets/2-get-hubert-wav32k.py`` reads each utterance at 32 kHz,
skips it when its peak exceeds 2.2, rescales it to ``x / peak * 0.95 * 0.5 +
0.5 * x`` (in int16 units: the training audio it writes), feeds the same
rescaling at the scale 1145.14, resampled to 16 kHz, to chinese-hubert-base
(``HubertModel``, no feature-extractor normalisation) and keeps its last
hidden state (50 Hz, 768 channels).
"""

from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import torch

PEAK = 0.95
MIX = 0.5
HUBERT_SCALE = 1145.14
MAX_PEAK = 2.2
SPEECH_RATE = 32000
HUBERT_RATE = 16000


def rescaled(audio: np.ndarray, scale: float) -> np.ndarray:
    """``audio / peak * (0.95 * 0.5 * scale) + 0.5 * scale * audio``."""
    peak = np.abs(audio).max()
    return audio / peak * (PEAK * MIX * scale) + (1.0 - MIX) * scale * audio


class HuBERTFeatures:
    """chinese-hubert-base from a local directory, applied as GPT-SoVITS does."""

    def __init__(self, model_dir: Union[str, Path], device: str = "cpu"):
        """Load ``transformers``' ``HubertModel`` from ``model_dir`` (no download).

        Args:
            model_dir (Union[str, Path]): The downloaded chinese-hubert-base
                (``config.json`` and weights).
            device (str): Torch device.

        Raises:
            FileNotFoundError: If ``model_dir`` holds no model (the message
                says where to get it).

        """
        from transformers import HubertModel

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{model_dir} holds no HuBERT model (config.json missing): download "
                "GPT-SoVITS's chinese-hubert-base (the pretrained_models/"
                "chinese-hubert-base folder of lj1995/GPT-SoVITS on Hugging Face) "
                "and pass its directory"
            )
        self.model = HubertModel.from_pretrained(model_dir, local_files_only=True)
        self.model.eval().to(device)
        self.device = device

    @torch.no_grad()
    def __call__(self, audio: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """Training audio and HuBERT features of one 32 kHz utterance.

        Args:
            audio (ndarray): Waveform (T,) at 32 kHz in [-1, 1].

        Returns:
            Optional[Tuple[ndarray, ndarray]]: The rescaled waveform (T,) as
                float32 in [-1, 1] and the features (frames, 768), or
                ``None`` when the reference would skip it (peak above 2.2).

        """
        import librosa

        audio = np.asarray(audio, dtype=np.float32)
        if np.abs(audio).max() > MAX_PEAK or not np.abs(audio).max() > 0:
            return None
        speech = rescaled(audio, 32768.0).astype(np.int16).astype(np.float32) / 32768.0
        hubert_input = librosa.resample(
            rescaled(audio, HUBERT_SCALE), orig_sr=SPEECH_RATE, target_sr=HUBERT_RATE
        )
        inputs = torch.from_numpy(np.asarray(hubert_input, dtype=np.float32))
        hidden = self.model(inputs[None].to(self.device)).last_hidden_state[0]
        return speech, hidden.float().cpu().numpy()
