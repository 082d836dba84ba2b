"""Resolution discriminator "R": a Conv2d stack on an STFT magnitude.

This is so-vits-svc-5.0's (UnivNet's) ``DiscriminatorR``.
"""

from typing import List

import torch
from typeguard import typechecked

from espnet_sovits_disc.discriminators.conv import (
    conv_stack_outputs,
    normalized_conv,
)
from espnet_sovits_disc.discriminators.inputs import check_length, check_waveform
from espnet_sovits_disc.stft import reflect_padded_stft

# (n_fft, hop_length, win_length) of so-vits-svc-5.0's configs/base.yaml.
SOVITS_SVC_RESOLUTIONS = (
    (1024, 120, 600),
    (2048, 240, 1200),
    (4096, 480, 2400),
    (512, 50, 240),
)

# (in_channels, out_channels, kernel_size, stride, padding) per conv.
RESOLUTION_LAYERS = (
    (1, 32, (3, 9), (1, 1), (1, 4)),
    (32, 32, (3, 9), (1, 2), (1, 4)),
    (32, 32, (3, 9), (1, 2), (1, 4)),
    (32, 32, (3, 9), (1, 2), (1, 4)),
    (32, 32, (3, 3), (1, 1), (1, 1)),
)

WINDOWS = ("rectangular", "hann")


class ResolutionDiscriminator(torch.nn.Module):
    """Resolution discriminator on a linear STFT magnitude (so-vits-svc-5.0 MRD)."""

    # Its 32-channel convolutions cost as much per item at any batch size, and
    # one batched pass over real and fake was slower on the CPU than two
    # (0.87-0.96x, benchmarks/README.md).
    batch_pairs_on_cpu = False

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
        super().__init__()
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
        if not 0 < hop_length <= n_fft or not 0 < win_length <= n_fft:
            raise ValueError(
                "need 0 < hop_length <= n_fft and 0 < win_length <= n_fft, got "
                f"n_fft={n_fft}, hop_length={hop_length}, win_length={win_length}"
            )
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.window = window
        self.name = f"r{n_fft}"
        self.padding = (n_fft - hop_length) // 2
        # Reflect padding needs more samples than it pads, and the padded
        # signal must hold at least one frame.
        self.minimum_length = max(self.padding + 1, n_fft - 2 * self.padding)
        self.length_requirement = (
            f"n_fft={n_fft}, hop_length={hop_length}: reflect padding of "
            f"{self.padding} samples on both sides"
        )
        self.lrelu_slope = lrelu_slope
        self.convs = torch.nn.ModuleList(
            normalized_conv(
                dims=2,
                in_channels=in_channels,
                out_channels=out_channels,
                kernel_size=kernel_size,
                stride=stride,
                padding=padding,
                use_spectral_norm=use_spectral_norm,
            )
            for in_channels, out_channels, kernel_size, stride, padding in (
                RESOLUTION_LAYERS
            )
        )
        self.conv_post = normalized_conv(
            dims=2,
            in_channels=RESOLUTION_LAYERS[-1][1],
            out_channels=1,
            kernel_size=(3, 3),
            padding=(1, 1),
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

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Calculate forward propagation.

        Args:
            x (Tensor): Waveform tensor (B, 1, T).

        Returns:
            List[Tensor]: One feature map (B, 32, n_fft // 2 + 1, frames_l) per
                conv, the output of the conv after its leaky ReLU, then the
                score (B, (n_fft // 2 + 1) * frames_L).

        """
        check_waveform(
            x, owner=f"ResolutionDiscriminator(n_fft={self.n_fft})"
        )
        check_length(
            x,
            minimum=self.minimum_length,
            owner=self.name,
            reason=self.length_requirement,
        )
        # The spectrogram is float32; the convolutions run in the module's
        # dtype (or autocast's).
        x = self.spectrogram(x).to(self.conv_post.bias.dtype)
        return conv_stack_outputs(self.convs, self.conv_post, x, self.lrelu_slope)
