"""The CPU-dependent contracts hold on both kinds of CPU these tests run on.

CI runs on AVX-512 (Zen 4) machines in some sessions and on AVX2-only
(Zen 3) machines in others, and ``conv_algorithm: auto`` picks another
matrix product on each (``dispatch.py``). The tests of the convolution
algorithms and the golden tests run here a second time in a subprocess with
PyTorch's CPU kernels held at AVX2 (``ATEN_CPU_CAPABILITY=avx2``), so an
AVX-512 machine also checks the AVX2 policy. The other direction needs no
subprocess: the golden tests and the matrix-product tests force oneDNN's
product on every CPU.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

pytestmark = pytest.mark.slow


def test_conv_algorithm_and_golden_tests_pass_with_avx2_kernels():
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "AVX2", probe.stdout + probe.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(TESTS / "test_conv_algorithms.py"),
            str(TESTS / "test_discriminators.py"),
            "-k",
            "not public and not gemm-onednn and not gemm-mm",
        ],
        env=env,
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
    )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
