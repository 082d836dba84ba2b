"""Hard test signals for the discriminators: silence, full-scale squares, DC, clipping."""

import torch


def square_wave(length: int, period: int) -> torch.Tensor:
    """A full-scale (±1) square wave of ``length`` samples and ``period`` samples."""
    t = torch.arange(length)
    return torch.where((t // (period // 2)) % 2 == 0, 1.0, -1.0)


SIGNALS = {
    "silence": lambda n: torch.zeros(n),
    "square_full_scale": lambda n: square_wave(n, 64),
    "square_nyquist": lambda n: square_wave(n, 2),
    "dc_plus_one": lambda n: torch.ones(n),
    "dc_minus_one": lambda n: -torch.ones(n),
    "clipped_sine": lambda n: (8 * torch.sin(torch.arange(n) * 0.05)).clamp(-1, 1),
}
"""Signal name -> function of the length returning a (length,) waveform."""
