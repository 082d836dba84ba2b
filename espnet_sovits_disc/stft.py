"""The STFT the references use: reflect-padded, not centred, in float32."""

import torch
import torch.nn.functional as F


def reflect_padded_stft(
    x: torch.Tensor, *, n_fft: int, hop_length: int, win_length: int, window: torch.Tensor
) -> torch.Tensor:
    """Reflect-pad by (n_fft - hop_length) // 2 on both sides, then a
    ``center=False`` STFT, in float32 outside autocast (GPT-SoVITS's
    ``mel_processing`` and so-vits-svc-5.0's ``DiscriminatorR``).

    Args:
        x (Tensor): Waveform (B, T); T must exceed the padding.
        n_fft (int): FFT size.
        hop_length (int): Hop between frames.
        win_length (int): Window length (at most n_fft).
        window (Tensor): Window (win_length,), float32, on ``x``'s device.

    Returns:
        Tensor: Complex spectrum (B, n_fft // 2 + 1, frames), complex64.

    """
    padding = (n_fft - hop_length) // 2
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = F.pad(x.float().unsqueeze(1), (padding, padding), mode="reflect")
        return torch.stft(
            x.squeeze(1),
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=False,
            return_complex=True,
        )
