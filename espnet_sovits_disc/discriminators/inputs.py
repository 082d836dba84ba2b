"""Validation of the waveform every discriminator takes, with actionable errors."""

import torch


def check_waveform(x: object, *, owner: str) -> None:
    """Check that ``x`` is a floating waveform tensor of shape (B, 1, T).

    Args:
        x (object): The value passed to a discriminator.
        owner (str): Name of the discriminator, used in the message.

    Raises:
        TypeError: If ``x`` is not a tensor or not of a floating dtype.
        ValueError: If ``x`` is not of shape (B, 1, T) with B >= 1 and T >= 1.

    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{owner} expects a waveform tensor of shape (B, 1, T), "
            f"got {type(x).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{owner} expects a floating-point waveform of shape (B, 1, T), got "
            f"dtype {x.dtype}; convert it first, e.g. x.float() (int16 PCM: "
            "x.float() / 32768)"
        )
    if x.dim() != 3 or x.size(1) != 1:
        hint = ""
        if x.dim() == 2:
            hint = "; for a (B, T) batch use x.unsqueeze(1)"
        elif x.dim() == 1:
            hint = "; for a single (T,) waveform use x.view(1, 1, -1)"
        raise ValueError(
            f"{owner} expects a waveform of shape (B, 1, T), "
            f"got shape {tuple(x.shape)}{hint}"
        )
    if x.size(0) == 0 or x.size(2) == 0:
        raise ValueError(
            f"{owner} expects a non-empty waveform of shape (B, 1, T), "
            f"got shape {tuple(x.shape)}"
        )


def check_length(x: torch.Tensor, *, minimum: int, owner: str, reason: str) -> None:
    """Check that the waveform (B, 1, T) has at least ``minimum`` samples.

    Args:
        x (Tensor): Waveform tensor (B, 1, T).
        minimum (int): The smallest T the sub-discriminator accepts.
        owner (str): Which sub-discriminator needs it, used in the message.
        reason (str): Why it needs it, used in the message.

    Raises:
        ValueError: If T < minimum.

    """
    length = x.size(-1)
    if length < minimum:
        raise ValueError(
            f"waveform of {length} samples is too short for sub-discriminator "
            f"{owner}, which needs at least {minimum} samples ({reason}); "
            "use longer segments (e.g. a larger segment_size) or remove that "
            "sub-discriminator"
        )


def check_pair(real: torch.Tensor, fake: torch.Tensor, *, owner: str) -> None:
    """Check that real and fake waveforms can be scored in one batched pass.

    Args:
        real (Tensor): Real waveform (B, 1, T).
        fake (Tensor): Generated waveform (B, 1, T).
        owner (str): Name of the discriminator, used in the message.

    Raises:
        ValueError: If the shapes or devices differ. Different floating
            dtypes are fine (under autocast the generated waveform is often
            half precision while the real one is float32).

    """
    check_waveform(real, owner=owner)
    check_waveform(fake, owner=owner)
    if real.shape != fake.shape:
        raise ValueError(
            f"{owner}.forward_pair needs real and fake waveforms of the same "
            f"shape, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    if real.device != fake.device:
        raise ValueError(
            f"{owner}.forward_pair needs real and fake waveforms on the same "
            f"device, got {real.device} and {fake.device}"
        )
