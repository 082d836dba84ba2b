"""Resolution discriminator "R": a Conv2d stack on an STFT magnitude.

This is so-vits-svc-5.0's (UnivNet's) ``DiscriminatorR``.
"""

import torch
from typeguard import typechecked

from espnet_sovits_disc.discriminators.base import SubDiscriminator
from espnet_sovits_disc.stft import reflect_padded_stft

# (n_fft, hop_length, win_length) of so-vits-svc-5.0's configs/base.yaml.
SOVITS_SVC_RESOLUTIONS = (
    (1024, 120, 600),
    (2048, 240, 1200),
    (4096, 480, 2400),
    (512, 50, 240),
)

# (in_channels, out_channels, kernel_size, stride, groups, padding) per conv.
RESOLUTION_LAYERS = (
    (1, 32, (3, 9), (1, 1), 1, (1, 4)),
    (32, 32, (3, 9), (1, 2), 1, (1, 4)),
    (32, 32, (3, 9), (1, 2), 1, (1, 4)),
    (32, 32, (3, 9), (1, 2), 1, (1, 4)),
    (32, 32, (3, 3), (1, 1), 1, (1, 1)),
)
RESOLUTION_POST = (32, 1, (3, 3), (1, 1), 1, (1, 1))

WINDOWS = ("rectangular", "hann")


class ResolutionDiscriminator(SubDiscriminator):
    """Resolution discriminator on a linear STFT magnitude (so-vits-svc-5.0 MRD).

    Its 32-channel convolutions cost as much per item at any batch size, and
    one batched pass over real and fake was slower on the CPU than two
    (benchmarks/README.md), so it does not batch pairs there.
    """

    @typechecked
    def __init__(
        self,
        *,
        n_fft: int = 1024,
        hop_length: int = 120,
        win_length: int = 600,
        window: str = "rectangular",
        lrelu_slope: float = 0.2,
        use_spectral_norm: bool = False,
    ):
        """Initialize ResolutionDiscriminator.

        Args:
            n_fft (int): FFT size; the spectrogram has n_fft // 2 + 1 bins.
            hop_length (int): Hop between frames.
            win_length (int): Window length (at most n_fft).
            window (str): "rectangular" reproduces the reference, which calls
                ``torch.stft`` without a window; "hann" is a departure from the
                reference, offered for experiments.
            lrelu_slope (float): Negative slope of the leaky ReLUs.
            use_spectral_norm (bool): Spectral instead of weight normalization.

        """
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
        if not 0 < hop_length <= n_fft or not 0 < win_length <= n_fft:
            raise ValueError(
                "need 0 < hop_length <= n_fft and 0 < win_length <= n_fft, got "
                f"n_fft={n_fft}, hop_length={hop_length}, win_length={win_length}"
            )
        padding = (n_fft - hop_length) // 2
        super().__init__(
            name=f"r{n_fft}",
            owner=f"ResolutionDiscriminator(n_fft={n_fft})",
            # Reflect padding needs more samples than it pads, and the padded
            # signal must hold at least one frame.
            minimum_length=max(padding + 1, n_fft - 2 * padding),
            length_requirement=(
                f"n_fft={n_fft}, hop_length={hop_length}: reflect padding of "
                f"{padding} samples on both sides"
            ),
            batch_pairs_on_cpu=False,
            lrelu_slope=lrelu_slope,
        )
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.window = window
        self.padding = padding
        self.build_conv_stack(
            dims=2,
            layers=RESOLUTION_LAYERS,
            post=RESOLUTION_POST,
            use_spectral_norm=use_spectral_norm,
        )

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the linear STFT magnitude in float32, outside autocast.

        Args:
            x (Tensor): Waveform tensor (B, 1, T).

        Returns:
            Tensor: Magnitude (B, 1, n_fft // 2 + 1, frames), float32.

        """
        # A window of ones is what torch.stft uses when given none, as the
        # reference does; passing it explicitly avoids torch's warning.
        if self.window == "hann":
            window = torch.hann_window(self.win_length, device=x.device)
        else:
            window = torch.ones(self.win_length, device=x.device)
        spec = reflect_padded_stft(
            x.squeeze(1),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=window,
        )
        # abs() equals sqrt(re^2 + im^2) and has a zero (not NaN) gradient at
        # an all-zero bin, so silence trains without NaNs.
        return spec.abs().unsqueeze(1)

    def conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """The STFT magnitude (B, 1, n_fft // 2 + 1, frames) in the module's dtype.

        The outputs of ``forward`` are one feature map
        (B, 32, n_fft // 2 + 1, frames_l) per conv, then the score
        (B, (n_fft // 2 + 1) * frames_L).
        """
        # The spectrogram is float32; the convolutions run in the module's
        # dtype (or autocast's).
        return self.spectrogram(x).to(self.dtype)
