"""Numerical comparison shared by the tests."""

import torch


def relative_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest ``|expected|``.

    Args:
        actual (Tensor): The values under test.
        expected (Tensor): The reference values (same shape).

    Returns:
        float: ``max|actual - expected| / max|expected|`` (the denominator
            clamped at 1e-30, so that an all-zero reference stays finite).

    """
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-30))
