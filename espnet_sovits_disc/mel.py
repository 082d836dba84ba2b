"""The GPT-SoVITS spectrograms: log-mel (``mel_spectrogram_torch``) and the
linear one its data loader feeds the generator (``spectrogram_torch``).

Reflect-pad the waveform by ``(n_fft - hop_length) // 2`` on both sides, take
an STFT with ``center=False`` and a Hann window, the magnitude
``sqrt(re^2 + im^2 + 1e-8)``, a librosa (Slaney) mel filterbank and
``log(clamp(x, min=1e-5))``. Computed in float32 outside autocast, whatever
the input dtype.
"""

from typing import Dict, Optional, Tuple

import librosa
import torch
from typeguard import typechecked

from espnet_sovits_disc.stft import reflect_padded_stft

MAGNITUDE_EPS = 1e-8
LOG_CLAMP = 1e-5


class LogMelSpectrogram(torch.nn.Module):
    """GPT-SoVITS log-mel spectrogram of a waveform.

    The filterbank and the window are not parameters or buffers (they never
    appear in a state dict); they are built on first use and cached per
    device.
    """

    @typechecked
    def __init__(
        self,
        *,
        fs: int = 32000,
        n_fft: int = 2048,
        hop_length: int = 640,
        win_length: Optional[int] = 2048,
        n_mels: int = 128,
        fmin: float = 0.0,
        fmax: Optional[float] = None,
    ):
        """Initialize LogMelSpectrogram.

        The defaults are GPT-SoVITS's ``s2.json`` data settings.

        Args:
            fs (int): Sampling rate of the waveform.
            n_fft (int): FFT size.
            hop_length (int): Hop size in samples.
            win_length (Optional[int]): Hann window length; ``None`` is n_fft.
            n_mels (int): Number of mel bins.
            fmin (float): Lowest filterbank frequency in Hz.
            fmax (Optional[float]): Highest filterbank frequency in Hz;
                ``None`` is fs / 2.

        """
        super().__init__()
        win_length = n_fft if win_length is None else win_length
        if not 0 < hop_length <= n_fft:
            raise ValueError(
                f"hop_length must be in (0, n_fft={n_fft}], got {hop_length}"
            )
        if not 0 < win_length <= n_fft:
            raise ValueError(
                f"win_length must be in (0, n_fft={n_fft}], got {win_length}"
            )
        nyquist = fs / 2
        if fmax is not None and not fmin < fmax <= nyquist:
            raise ValueError(
                f"need fmin < fmax <= fs / 2 = {nyquist}, got fmin={fmin}, "
                f"fmax={fmax}"
            )
        self.fs = fs
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.n_mels = n_mels
        self.fmin = fmin
        self.fmax = fmax
        self._cache: Dict[torch.device, Tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def padding(self) -> int:
        """Reflect padding applied to each side of the waveform."""
        return (self.n_fft - self.hop_length) // 2

    def _constants(self, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        if device not in self._cache:
            filterbank = librosa.filters.mel(
                sr=self.fs,
                n_fft=self.n_fft,
                n_mels=self.n_mels,
                fmin=self.fmin,
                fmax=self.fmax,
            )
            self._cache[device] = (
                torch.from_numpy(filterbank).to(device=device, dtype=torch.float32),
                torch.hann_window(self.win_length, device=device),
            )
        return self._cache[device]

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """Calculate the linear magnitude spectrogram (``spectrogram_torch``).

        Args:
            x (Tensor): Waveform (B, 1, T) or (B, T), T > padding.

        Returns:
            Tensor: Float32 magnitude (B, n_fft // 2 + 1, T_frames) with
                T_frames = (T + 2 * padding - n_fft) // hop_length + 1.

        """
        if x.dim() == 3 and x.size(1) == 1:
            x = x.squeeze(1)
        if x.dim() != 2:
            raise ValueError(
                "expected a waveform of shape (B, 1, T) or (B, T), got "
                f"{tuple(x.shape)}"
            )
        if x.size(1) <= self.padding:
            raise ValueError(
                f"waveform of {x.size(1)} samples is too short for the "
                f"spectrogram (n_fft={self.n_fft}, hop_length={self.hop_length} "
                f"reflect-pads {self.padding} samples); use segments longer "
                f"than {self.padding} samples"
            )
        _, window = self._constants(x.device)
        spec = reflect_padded_stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=window,
        )
        with torch.autocast(device_type=x.device.type, enabled=False):
            return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + MAGNITUDE_EPS)

    def log_mel(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Turn a linear magnitude spectrogram into the log-mel one
        (``spec_to_mel_torch``).

        Args:
            magnitude (Tensor): (B, n_fft // 2 + 1, T_frames).

        Returns:
            Tensor: Float32 log-mel spectrogram (B, n_mels, T_frames).

        """
        bins = self.n_fft // 2 + 1
        if magnitude.dim() != 3 or magnitude.size(1) != bins:
            raise ValueError(
                f"expected a linear spectrogram of shape (B, {bins}, frames) for "
                f"n_fft={self.n_fft}, got {tuple(magnitude.shape)}"
            )
        filterbank, _ = self._constants(magnitude.device)
        with torch.autocast(device_type=magnitude.device.type, enabled=False):
            mel = torch.matmul(filterbank, magnitude.float())
            return torch.log(torch.clamp(mel, min=LOG_CLAMP))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Calculate the log-mel spectrogram (``mel_spectrogram_torch``).

        Args:
            x (Tensor): Waveform (B, 1, T) or (B, T), T > padding.

        Returns:
            Tensor: Float32 log-mel spectrogram (B, n_mels, T_frames) with
                T_frames = (T + 2 * padding - n_fft) // hop_length + 1.

        """
        return self.log_mel(self.linear(x))
