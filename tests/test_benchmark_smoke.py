"""Smoke test: the benchmark's quick mode runs and produces its table (no timing asserts)."""

import importlib.util
from pathlib import Path

import pytest
import torch

from espnet_sovits_disc.discriminators import ScaleDiscriminator

BENCHMARK = (
    Path(__file__).resolve().parent.parent / "benchmarks" / "bench_discriminators.py"
)


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_discriminators", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_mode_writes_the_table(tmp_path):
    benchmark = _load_benchmark()
    markdown = tmp_path / "table.md"
    lines = benchmark.main(
        [
            "--quick",
            "--segment",
            "2048",
            "--batch-size",
            "1",
            "--discriminators",
            "sovits_mrd",
            "--markdown",
            str(markdown),
        ]
    )
    text = markdown.read_text()
    assert text.splitlines() == lines
    assert "| discriminator | implementation | D turn ms" in text
    rows = [
        line
        for line in lines
        if line.startswith("| sovits") or line.startswith("| espnet")
    ]
    labels = {tuple(cell.strip() for cell in row.split("|")[1:3]) for row in rows}
    assert labels == {
        ("sovits_mrd", "pair fp32"),
        ("sovits_mrd", "separate fp32"),
        ("sovits_mrd", "pair bf16"),
        ("sovits_mrd", "pair fp32 checkpointing"),
        ("sovits_mrd", "separate fp32 discriminator-grads"),
    }
    assert not any("failed" in row for row in rows)
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        d_turn_ms, g_turn_ms = cells[2], cells[7]
        float(g_turn_ms)
        if cells[1].endswith("discriminator-grads"):
            assert d_turn_ms == "n/a"  # a generator turn only
        else:
            float(d_turn_ms)
    assert any(line.startswith("- fp32:") for line in lines)
    assert any("pair vs separate fp32" in line for line in lines)
    assert any(
        "G without vs with the discriminator's parameter gradients" in line
        for line in lines
    )


def test_conv_flop_counts():
    """The analytical count matches a hand count of the scale discriminator."""
    benchmark = _load_benchmark()
    scale_only = torch.nn.ModuleList([ScaleDiscriminator()])
    # (out_channels, in_channels per group x kernel, output length) per conv
    layers = [
        (16, 15, 256),
        (64, 164, 64),
        (256, 164, 16),
        (1024, 164, 4),
        (1024, 164, 1),
        (1024, 5120, 1),
        (1, 3072, 1),
    ]
    expected = sum(
        2.0 * out * per_output * length for out, per_output, length in layers
    )
    count = benchmark.count_conv_flops(_Stack(scale_only), 256)
    assert count.forward == expected
    assert count.input_grad_d == expected - 2.0 * 16 * 15 * 256
    assert count.d_turn(2) == 4 * (2 * count.forward + count.input_grad_d)
    espnet = benchmark.count_conv_flops(benchmark.espnet_vits_discriminator(), 2048)
    assert espnet.forward > espnet.input_grad_d > 0


class _Stack(torch.nn.Module):
    """A minimal discriminator: the given sub-discriminators side by side."""

    def __init__(self, subs):
        super().__init__()
        self.subs = subs

    def forward(self, x):
        return [sub(x) for sub in self.subs]
