"""A training batch as GPT-SoVITS's data loader and collate make it.

``TextAudioSpeakerLoader`` computes each utterance's linear spectrogram on
its own waveform (reflect padding, ``center=False``), pads the HuBERT
features by one replicated frame when they are one frame short of it, and
``TextAudioSpeakerCollate`` zero-pads spectrograms and features to the same
even frame count ``2 * (max_frames // 2 + 1)`` (ssl_proj has stride 2).
"""

from typing import Tuple

import torch
import torch.nn.functional as F

from espnet_sovits_disc.mel import LogMelSpectrogram


def aligned_ssl(ssl: torch.Tensor, frames: int) -> torch.Tensor:
    """Fit one utterance's HuBERT features to its spectrogram's frames.

    Args:
        ssl (Tensor): Features (768, T_ssl) at 50 Hz.
        frames (int): Spectrogram frames of the utterance.

    Returns:
        Tensor: (768, frames): one replicated frame added when one is missing
            (the reference loader's rule), the frame past the spectrogram's
            end dropped when there is one too many.

    Raises:
        ValueError: If the counts differ by more than one frame.

    """
    if ssl.size(1) == frames - 1:
        return F.pad(ssl[None].float(), (0, 1), mode="replicate")[0].to(ssl.dtype)
    if ssl.size(1) in (frames, frames + 1):
        return ssl[:, :frames]
    raise ValueError(
        f"ssl_feats has {ssl.size(1)} frames for a waveform of {frames} "
        "spectrogram frames (hop 640 at 32 kHz): extract the HuBERT features "
        "at 50 Hz from the same 32 kHz audio (resampled to 16 kHz)"
    )


def even_frames(frames: int) -> int:
    """The reference collate's padded length, ``2 * (frames // 2 + 1)``."""
    return 2 * (frames // 2 + 1)


def spectrogram_and_ssl(
    spectrogram: LogMelSpectrogram,
    speech: torch.Tensor,
    speech_lengths: torch.Tensor,
    ssl_feats: torch.Tensor,
    ssl_feats_lengths: torch.Tensor,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear spectrograms and HuBERT features of a batch, collated.

    Args:
        spectrogram (LogMelSpectrogram): The GPT-SoVITS spectrogram settings.
        speech (Tensor): Padded waveforms (B, T_wav).
        speech_lengths (Tensor): Samples per item (B,).
        ssl_feats (Tensor): Padded HuBERT features (B, T_ssl, 768), as
            ESPnet's collate stacks ``(frames, 768)`` arrays.
        ssl_feats_lengths (Tensor): Frames per item (B,).

    Returns:
        Tuple[Tensor, Tensor, Tensor]: Spectrograms (B, n_fft // 2 + 1, T),
            their frames (B,) and features (B, 768, T), T even, zero-padded.

    Raises:
        ValueError: If an item's waveform is too short for the spectrogram
            or its features do not fit it.

    """
    specs = [
        spectrogram.linear(speech[i : i + 1, : int(length)])[0]
        for i, length in enumerate(speech_lengths.tolist())
    ]
    ssls = [
        aligned_ssl(ssl_feats[i, : int(length)].transpose(0, 1), spec.size(1))
        for i, (length, spec) in enumerate(zip(ssl_feats_lengths.tolist(), specs))
    ]
    frames = even_frames(max(spec.size(1) for spec in specs))
    spec_batch = torch.stack([F.pad(s, (0, frames - s.size(1))) for s in specs])
    ssl_batch = torch.stack([F.pad(s.float(), (0, frames - s.size(1))) for s in ssls])
    lengths = torch.tensor([s.size(1) for s in specs], device=speech.device)
    return spec_batch, lengths, ssl_batch
