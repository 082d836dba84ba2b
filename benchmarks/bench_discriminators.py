"""Benchmark the SoVITS-family discriminators' training turns.

Measures, side by side in one run and interleaved (every round runs every
case once, so load changes on a shared machine hit all cases alike; each
case runs its turns once untimed and then once timed, as a training step
follows the previous one, so the cost of switching from another case's
working set, up to a quarter of a CPU turn, is not timed), the median over
rounds of:

* the discriminator turn: real and fake forward, LSGAN discriminator loss in
  float32, backward into the discriminator's parameters;
* the generator turn: fake forward with gradient, real forward without,
  LSGAN generator loss plus feature matching in float32, gradient with
  respect to the fake waveform (what the generator needs from the
  discriminator);

for ``forward_pair`` (real and fake in one batched pass) against a
separate-pass implementation of the same math (two calls, as the reference
trainers do), in float32 and bfloat16 autocast on the CPU, and on a CUDA GPU
also float16/bfloat16 autocast, channels-last and ``torch.compile``. For the
discriminators with period sub-discriminators, the convolution algorithm that
``conv_algorithm: auto`` does not pick on this machine ("direct" (k, 1)
convolutions or "gemm" matrix products) runs too, paired and separately. ESPnet's
stock VITS discriminator (``HiFiGANMultiScaleMultiPeriodDiscriminator`` with
the ``train_vits.yaml`` settings, which ESPnet calls once per waveform) is the
baseline.

Reported per case: milliseconds per turn, segments per second (training
segments per turn; each is scored real and fake), achieved GFLOP/s from an
analytical count of the convolution FLOPs (the STFTs of the resolution
discriminator are not counted), the share of the same run's best matrix
product rate of that precision, and the peak activation memory of each turn
(CUDA: max allocated; CPU: bytes in use by glibc malloc, sampled).

Usage::

    python benchmarks/bench_discriminators.py --batch-size 2 \\
        --markdown benchmarks/results_cpu.md
    python benchmarks/bench_discriminators.py --quick --segment 4096
"""

import argparse
import ctypes
import inspect
import math
import platform
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from espnet_sovits_disc.discriminators import (
    SoVITSMultiPeriodDiscriminator,
    SoVITSMultiResolutionDiscriminator,
    SoVITSSVCDiscriminator,
)
from espnet_sovits_disc.discriminators.conv import WeightNormConv
from espnet_sovits_disc.discriminators.dispatch import auto_uses_gemm
from espnet_sovits_disc.discriminators.gemm import _matmul_nt
from espnet_sovits_disc.discriminators.period import PeriodDiscriminator

GPT_SOVITS_SEGMENT = 20480
DISCRIMINATORS = (
    "sovits_mpd_v2",
    "sovits_mpd_v2Pro",
    "sovits_mrd",
    "sovits_svc",
    "espnet_vits",
)
Outputs = List[List[torch.Tensor]]
GENERATOR_TURN_ONLY = "discriminator-grads"


def espnet_vits_discriminator() -> torch.nn.Module:
    """ESPnet's VITS discriminator with the ``train_vits.yaml`` settings.

    Returns:
        Module: ``HiFiGANMultiScaleMultiPeriodDiscriminator`` built from the
            ``discriminator_params`` defaults of ESPnet's ``VITS`` class, which
            are the settings of ``egs2/ljspeech/tts1/conf/tuning/train_vits.yaml``.

    """
    from espnet2.gan_tts.hifigan import HiFiGANMultiScaleMultiPeriodDiscriminator
    from espnet2.gan_tts.vits import VITS

    params = inspect.signature(VITS.__init__).parameters["discriminator_params"].default
    return HiFiGANMultiScaleMultiPeriodDiscriminator(**params)


def build_discriminator(
    name: str, gradient_checkpointing: bool = False
) -> torch.nn.Module:
    """Build a discriminator by its benchmark name (see ``DISCRIMINATORS``)."""
    if name == "sovits_mpd_v2":
        return SoVITSMultiPeriodDiscriminator(
            version="v2", gradient_checkpointing=gradient_checkpointing
        )
    if name == "sovits_mpd_v2Pro":
        return SoVITSMultiPeriodDiscriminator(
            version="v2Pro", gradient_checkpointing=gradient_checkpointing
        )
    if name == "sovits_mrd":
        return SoVITSMultiResolutionDiscriminator(
            gradient_checkpointing=gradient_checkpointing
        )
    if name == "sovits_svc":
        return SoVITSSVCDiscriminator(gradient_checkpointing=gradient_checkpointing)
    if name == "espnet_vits":
        return espnet_vits_discriminator()
    raise ValueError(f"unknown discriminator {name!r}; choose from {DISCRIMINATORS}")


@dataclass
class ConvFlops:
    """Analytical convolution FLOPs of one forward pass on one segment.

    ``forward`` is the forward FLOPs (2 per multiply-add); the weight gradient
    costs as much, and so does each input gradient. ``input_grad_d`` counts
    only the convolutions whose input depends on the parameters, i.e. the
    input gradients the discriminator turn needs (the first convolution of a
    waveform stack needs none).
    """

    forward: float
    input_grad_d: float

    def d_turn(self, batch: int) -> float:
        """FLOPs of a discriminator turn: 2B segments forward, weight and input grads."""
        return 2 * batch * (2 * self.forward + self.input_grad_d)

    def g_turn(self, batch: int, weight_grads: bool = False) -> float:
        """FLOPs of a generator turn: 2B segments forward, B input grads, and
        with ``weight_grads`` the weight gradients of the B fake segments."""
        return (3 + weight_grads) * batch * self.forward


def count_conv_flops(module: torch.nn.Module, segment: int) -> ConvFlops:
    """Count the convolution FLOPs of ``module`` on one (1, 1, segment) waveform.

    Args:
        module (Module): A discriminator mapping (B, 1, T) to ``List[List[Tensor]]``.
        segment (int): Waveform length T.

    Returns:
        ConvFlops: Forward FLOPs and the discriminator turn's input-gradient FLOPs.

    """
    totals = {"forward": 0.0, "input_grad_d": 0.0}

    def hook(conv, inputs, output):
        if isinstance(conv, WeightNormConv):
            per_output = math.prod(conv.weight_v.shape[1:])
        else:
            per_output = conv.in_channels // conv.groups * math.prod(conv.kernel_size)
        flops = 2.0 * output.numel() * per_output
        totals["forward"] += flops
        if inputs[0].requires_grad:
            totals["input_grad_d"] += flops

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if isinstance(m, (WeightNormConv, torch.nn.modules.conv._ConvNd))
    ]
    # The hooks see the convolution modules' own forward, i.e. "direct".
    set_conv_algorithm(module, "direct")
    try:
        with torch.enable_grad():
            module(torch.zeros(1, 1, segment, device=_device_of(module)))
    finally:
        set_conv_algorithm(module, "auto")
        for handle in handles:
            handle.remove()
    return ConvFlops(**totals)


def period_discriminators(module: torch.nn.Module) -> List[PeriodDiscriminator]:
    return [m for m in module.modules() if isinstance(m, PeriodDiscriminator)]


def set_conv_algorithm(module: torch.nn.Module, conv_algorithm: str) -> None:
    """Switch every period sub-discriminator's ``conv_algorithm`` parameter."""
    for period_discriminator in period_discriminators(module):
        period_discriminator.conv_algorithm = conv_algorithm


def auto_conv_algorithm(device: torch.device) -> str:
    """The period convolution algorithm that ``auto`` runs on ``device``."""
    return "gemm" if auto_uses_gemm(device) else "direct"


def other_conv_algorithm(device: torch.device) -> str:
    """The period convolution algorithm that ``auto`` does not pick here."""
    return "direct" if auto_conv_algorithm(device) == "gemm" else "gemm"


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def discriminator_loss(outs_real: Outputs, outs_fake: Outputs) -> torch.Tensor:
    """LSGAN discriminator loss in float32 (GPT-SoVITS ``discriminator_loss``)."""
    loss = 0.0
    for real, fake in zip(outs_real, outs_fake):
        loss = (
            loss
            + torch.mean((1 - real[-1].float()) ** 2)
            + torch.mean(fake[-1].float() ** 2)
        )
    return loss


def generator_loss(outs_real: Outputs, outs_fake: Outputs) -> torch.Tensor:
    """LSGAN generator loss plus 2 x feature matching, in float32."""
    loss = 0.0
    for real, fake in zip(outs_real, outs_fake):
        loss = loss + torch.mean((1 - fake[-1].float()) ** 2)
        for fmap_real, fmap_fake in zip(real[:-1], fake[:-1]):
            loss = loss + 2 * torch.mean(
                torch.abs(fmap_real.detach().float() - fmap_fake.float())
            )
    return loss


@dataclass
class Case:
    """One benchmarked configuration of one discriminator."""

    discriminator: str
    implementation: str  # "pair" or "separate"
    precision: str  # "fp32", "bf16", "fp16"
    # "", "checkpointing", "channels-last", "compile", "direct", "gemm" or
    # "discriminator-grads" (a generator turn only, the way ESPnet's VITS runs it)
    variant: str = ""
    module: Optional[torch.nn.Module] = None
    forward: Optional[Callable[[torch.Tensor], Outputs]] = None
    score: Optional[Callable[[torch.Tensor, torch.Tensor], Tuple[Outputs, Outputs]]] = (
        None
    )
    d_times: List[float] = field(default_factory=list)
    g_times: List[float] = field(default_factory=list)
    d_cpu: List[float] = field(default_factory=list)
    g_cpu: List[float] = field(default_factory=list)
    d_peak: Optional[float] = None
    g_peak: Optional[float] = None
    error: Optional[str] = None

    @property
    def turns(self) -> Tuple[str, ...]:
        """The turns this case times: "d" and "g", or "g" alone."""
        return ("g",) if self.variant == GENERATOR_TURN_ONLY else ("d", "g")

    @property
    def label(self) -> str:
        return f"{self.implementation} {self.precision}" + (
            f" {self.variant}" if self.variant else ""
        )


def make_calls(module: torch.nn.Module, implementation: str, compile_: bool = False):
    """Return ``(forward, score)`` callables of a case.

    Args:
        module (Module): The discriminator.
        implementation (str): "pair" scores with ``forward_pair``; "separate"
            calls the module on real and on fake.
        compile_ (bool): Wrap the calls in ``torch.compile``.

    Returns:
        Tuple: ``forward(x) -> outputs`` and ``score(real, fake) -> (outs_real, outs_fake)``.

    """
    forward = torch.compile(module) if compile_ else module
    if implementation == "pair":
        pair = torch.compile(module.forward_pair) if compile_ else module.forward_pair
        return forward, pair

    def separate(real, fake):
        return forward(real), forward(fake)

    return forward, separate


def autocast(device: torch.device, precision: str):
    """The autocast context of a precision ("fp32" disables autocast)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(
        device_type=device.type, dtype=dtype, enabled=dtype is not None
    )


def d_turn(
    case: Case, real: torch.Tensor, fake: torch.Tensor, device: torch.device
) -> None:
    """Discriminator turn: score real and (detached) fake, loss, backward.

    As in ESPnet's GAN trainer, the model's forward returns only the loss, so
    the outputs (feature maps included) are released before the backward.
    """
    d_loss(case, real, fake, device).backward()


def d_loss(case: Case, real: torch.Tensor, fake: torch.Tensor, device: torch.device):
    """The discriminator turn's forward: scores of real and fake, then the loss."""
    with autocast(device, case.precision):
        outs_real, outs_fake = case.score(real, fake)
    return discriminator_loss(outs_real, outs_fake)


def g_turn(
    case: Case, real: torch.Tensor, fake: torch.Tensor, device: torch.device
) -> None:
    """Generator turn: fake with gradient, real without; gradient w.r.t. fake.

    The ``discriminator-grads`` case calls ``backward()`` with the
    discriminator's parameters requiring gradients, as ESPnet's VITS does,
    which computes their gradients too; ``tts: sovits`` computes only the
    gradient with respect to the fake waveform, as the other cases do.
    """
    fake = fake.detach().requires_grad_(True)
    with autocast(device, case.precision):
        if case.implementation == "pair":
            outs_real, outs_fake = case.score(real, fake)
        else:
            with torch.no_grad():
                outs_real = case.forward(real)
            outs_fake = case.forward(fake)
    loss = generator_loss(outs_real, outs_fake)
    if case.variant == GENERATOR_TURN_ONLY:
        loss.backward()
    else:
        torch.autograd.grad(loss, fake)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> Tuple[float, float]:
    """Run ``fn``; return its wall-clock seconds and this process's CPU seconds.

    On a shared CPU the wall clock includes time spent waiting for other
    processes; the CPU time (all threads) counts only the work done here, so
    ratios of CPU times are far less noisy. On a GPU only the wall clock matters.
    """
    synchronize(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    synchronize(device)
    return time.perf_counter() - start, time.process_time() - start_cpu


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
        ).split()
    ]


def _glibc_in_use() -> Optional[Callable[[], int]]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None

    def in_use() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    return in_use


class PeakMemory:
    """Peak bytes allocated above the level at entry, while the block runs.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: bytes in use by glibc
    malloc (arena plus mmapped chunks, which is where PyTorch's CPU allocator
    gets its memory), sampled by a thread every 0.2 ms; ``peak`` is None
    without glibc.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.peak: Optional[float] = None
        self._in_use = _glibc_in_use() if device.type == "cpu" else None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        elif self._in_use is not None:
            self._base = self._in_use()
            self._max = self._base
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._max = max(self._max, self._in_use())
            time.sleep(0.0002)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
        elif self._in_use is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._max, self._in_use()) - self._base


MATMUL_SIZES = (1024, 2048)


def matmul_rates(device: torch.device, precision: str, quick: bool) -> Dict[str, float]:
    """Best-of-three GFLOP/s of square matrix products of the given precision.

    Keys ending in " cpu" hold GFLOP per CPU-second of this process instead
    of per wall-clock second.

    Three implementations are tried per size: ``torch.mm`` (MKL/cuBLAS), a
    1x1 convolution in channels-last layout (oneDNN/cuDNN), which is the same
    matrix product and on some CPUs runs faster than MKL, and the product the
    gemm convolutions use (``a @ b.T``; oneDNN's matrix product on AVX-512
    CPUs, ``torch.mm`` elsewhere).
    """
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
        precision
    ]
    rates = {}
    for n in (256,) if quick else MATMUL_SIZES:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        x = a.view(1, n, n, 1).contiguous(memory_format=torch.channels_last)
        w = b.view(n, n, 1, 1)
        for name, fn in (
            ("mm", lambda: torch.mm(a, b)),
            ("conv1x1", lambda: F.conv2d(x, w)),
            ("gemm-product", lambda: _matmul_nt(a, b, None, None)),
        ):
            fn()
            runs = [timed(fn, device) for _ in range(3)]
            rates[f"{name} {n}"] = 2 * n**3 / min(wall for wall, _ in runs) / 1e9
            rates[f"{name} {n} cpu"] = 2 * n**3 / min(cpu for _, cpu in runs) / 1e9
    return rates


def build_cases(
    names: Sequence[str],
    device: torch.device,
    quick: bool,
    compile_: bool,
    precisions: Sequence[str] = ("fp32", "fp16", "bf16"),
) -> List[Case]:
    """The cases to run: every discriminator in each relevant configuration
    whose precision is in ``precisions`` (fp16 runs on a GPU only)."""
    cases = []
    for name in names:
        module = build_discriminator(name).to(device)
        has_pair = hasattr(module, "forward_pair")
        configs = [("separate", "fp32", "")]
        if has_pair:
            configs.insert(0, ("pair", "fp32", ""))
        if device.type == "cpu":
            configs += [(impl, "bf16", "") for impl, _, _ in list(configs)]
        else:
            for impl in [c[0] for c in configs]:
                configs += [(impl, "fp16", ""), (impl, "bf16", "")]
            if has_pair:
                configs += [("pair", "fp16", "channels-last")]
                if compile_:
                    configs += [
                        ("pair", "fp32", "compile"),
                        ("pair", "fp16", "compile"),
                    ]
        if has_pair:
            configs.append(("pair", "fp32", "checkpointing"))
        if period_discriminators(module):
            other = other_conv_algorithm(device)
            configs += [("pair", "fp32", other), ("separate", "fp32", other)]
        configs.append(("separate", "fp32", GENERATOR_TURN_ONLY))
        if quick:
            configs = [
                (impl, precision, variant)
                for impl, precision, variant in configs
                if variant in ("", "checkpointing", GENERATOR_TURN_ONLY)
                and not (has_pair and impl == "separate" and precision != "fp32")
            ]
        configs = [config for config in configs if config[1] in precisions]
        for implementation, precision, variant in configs:
            case_module = module
            if variant == "channels-last":
                case_module = build_discriminator(name).to(device)
                case_module.load_state_dict(module.state_dict())
                case_module = case_module.to(memory_format=torch.channels_last)
            case = Case(name, implementation, precision, variant, case_module)
            case.forward, case.score = make_calls(
                case_module, implementation, variant == "compile"
            )
            cases.append(case)
    return cases


def configure(case: Case) -> None:
    """Set the shared module's switches for a case.

    The checkpointing, direct and gemm cases share their module with the
    plain ones and set its ``gradient_checkpointing`` flag and its period
    sub-discriminators' ``conv_algorithm`` (the constructor parameters of the
    same names) for their own turns only.
    """
    if hasattr(case.module, "gradient_checkpointing"):
        case.module.gradient_checkpointing = case.variant == "checkpointing"
    algorithm = case.variant if case.variant in ("direct", "gemm") else "auto"
    set_conv_algorithm(case.module, algorithm)


def run_case(case: Case, turn: str, real, fake, device) -> Tuple[float, float]:
    """Time one turn of a case (wall-clock and CPU seconds)."""
    fn = d_turn if turn == "d" else g_turn
    case.module.zero_grad(set_to_none=False)
    configure(case)
    return timed(lambda: fn(case, real, fake, device), device)


def check_numbers(
    cases: List[Case], real, fake, device
) -> Dict[Tuple[str, str], float]:
    """Relative max difference of every case's scores against pair/separate fp32.

    Returns:
        Dict: (discriminator, label) -> max |score - score_fp32| / max |score_fp32|.

    """
    reference: Dict[str, List[torch.Tensor]] = {}
    differences = {}
    with torch.no_grad():
        for case in cases:
            if case.precision != "fp32" or case.variant:
                continue
            if case.discriminator not in reference:
                configure(case)
                outs_real, outs_fake = case.score(real, fake)
                reference[case.discriminator] = [
                    t[-1].float() for t in outs_real + outs_fake
                ]
        for case in cases:
            configure(case)
            with autocast(device, case.precision):
                outs_real, outs_fake = case.score(real, fake)
            scores = [t[-1].float() for t in outs_real + outs_fake]
            expected = reference[case.discriminator]
            worst = 0.0
            for actual, wanted in zip(scores, expected):
                scale = wanted.abs().max().clamp_min(1e-12)
                worst = max(worst, float((actual - wanted).abs().max() / scale))
            differences[(case.discriminator, case.label)] = worst
    return differences


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        flags = []
    features = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return (
        f"{model}, {torch.get_num_threads()} threads, {'/'.join(features) or 'no'} "
        f"features, torch {torch.__version__}"
    )


def _median(values: List[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def _fmt(value: Optional[float], spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def make_report(
    cases: List[Case],
    flops: Dict[str, ConvFlops],
    ceilings: Dict[str, Dict[str, List[float]]],
    differences: Dict[Tuple[str, str], float],
    args: argparse.Namespace,
    device: torch.device,
) -> List[str]:
    """Format the results as Markdown lines (a table and the derived ratios).

    "% ceiling" is the turn's GFLOP/s over the best matrix-product GFLOP/s of
    its precision, both from wall-clock medians, and after the slash the same
    from CPU-time medians (GFLOP per CPU-second of this process, which a
    shared machine disturbs far less).
    """
    best: Dict[str, Tuple[float, Optional[float]]] = {}
    lines = [
        f"Machine: {machine_description(device)}.",
        f"Period convolutions: `conv_algorithm: auto` runs "
        f"{auto_conv_algorithm(device)} "
        "here (the plain rows).",
        f"Segment {args.segment} samples, batch {args.batch_size} "
        f"(each turn scores {args.batch_size} real and {args.batch_size} fake "
        f"segments), medians of {args.repeats} interleaved rounds.",
        "",
        "Matrix-product ceiling (median over rounds; GFLOP/s, and GFLOP per "
        "CPU-second of this process):",
        "",
    ]
    for precision, rates in ceilings.items():
        medians = {name: statistics.median(values) for name, values in rates.items()}
        wall = {k: v for k, v in medians.items() if not k.endswith(" cpu")}
        cpu = {k: v for k, v in medians.items() if k.endswith(" cpu")}
        best[precision] = (max(wall.values()), max(cpu.values()) if cpu else None)
        listed = ", ".join(f"{name} {rate:.0f}" for name, rate in wall.items())
        lines.append(
            f"- {precision}: {listed}; best {best[precision][0]:.0f} GFLOP/s, "
            f"{_fmt(best[precision][1], '.0f')} GFLOP per CPU-s"
        )
    lines += [
        "",
        "| discriminator | implementation | D turn ms | D CPU ms | D seg/s | D GFLOP/s "
        "| D % ceiling (wall/CPU) | G turn ms | G CPU ms | G seg/s | G GFLOP/s "
        "| D peak MiB | G peak MiB | max score diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        if case.error:
            lines.append(
                f"| {case.discriminator} | {case.label} | failed: {case.error} |"
                + " |" * 11
            )
            continue
        d_time, g_time = _median(case.d_times), _median(case.g_times)
        d_cpu, g_cpu = _median(case.d_cpu), _median(case.g_cpu)
        count = flops[case.discriminator]
        d_flops = count.d_turn(args.batch_size)
        g_flops = count.g_turn(
            args.batch_size, weight_grads=case.variant == GENERATOR_TURN_ONLY
        )
        d_rate = d_flops / d_time / 1e9 if d_time else None
        g_rate = g_flops / g_time / 1e9 if g_time else None
        ceiling_wall, ceiling_cpu = best.get(case.precision, (None, None))
        share = 100 * d_rate / ceiling_wall if d_rate and ceiling_wall else None
        share_cpu = (
            100 * d_flops / d_cpu / 1e9 / ceiling_cpu if d_cpu and ceiling_cpu else None
        )
        shares = (
            "n/a"
            if share is None and share_cpu is None
            else f"{_fmt(share, '.0f')}/{_fmt(share_cpu, '.0f')}"
        )
        lines.append(
            f"| {case.discriminator} | {case.label} "
            f"| {_fmt(d_time and 1e3 * d_time, '.0f')} "
            f"| {_fmt(d_cpu and 1e3 * d_cpu, '.0f')} "
            f"| {_fmt(d_time and args.batch_size / d_time, '.2f')} "
            f"| {_fmt(d_rate, '.1f')} | {shares} "
            f"| {_fmt(g_time and 1e3 * g_time, '.0f')} "
            f"| {_fmt(g_cpu and 1e3 * g_cpu, '.0f')} "
            f"| {_fmt(g_time and args.batch_size / g_time, '.2f')} "
            f"| {_fmt(g_rate, '.1f')} "
            f"| {_fmt(case.d_peak and case.d_peak / 2**20, '.0f')} "
            f"| {_fmt(case.g_peak and case.g_peak / 2**20, '.0f')} "
            f"| {_fmt(differences.get((case.discriminator, case.label)), '.1e')} |"
        )
    lines += [
        "",
        "Speed-ups (ratios of the medians above: wall clock / CPU time) and memory:",
        "",
    ]
    for name in dict.fromkeys(case.discriminator for case in cases):
        by_label = {
            c.label: c for c in cases if c.discriminator == name and not c.error
        }
        lines.append(f"- {name}: " + ("; ".join(_ratios(by_label)) or "none"))
    return lines


RATIOS = (
    ("pair fp32", "separate fp32", "pair vs separate fp32"),
    ("pair bf16", "pair fp32", "bf16 vs fp32 (pair)"),
    ("separate bf16", "separate fp32", "bf16 vs fp32 (separate)"),
    ("pair bf16", "separate fp32", "pair bf16 vs separate fp32"),
    ("pair fp16", "separate fp32", "pair fp16 vs separate fp32"),
    (
        "pair fp16 channels-last",
        "separate fp32",
        "pair fp16 channels-last vs separate fp32",
    ),
    ("pair fp16 compile", "separate fp32", "pair fp16 compile vs separate fp32"),
    ("pair fp32 checkpointing", "pair fp32", "checkpointing vs not"),
    ("pair fp32", "pair fp32 direct", "auto (gemm) vs direct, pair fp32"),
    ("pair fp32 gemm", "pair fp32", "gemm vs auto (direct), pair fp32"),
    ("pair fp32", "separate fp32 direct", "pair auto vs separate direct fp32"),
    (
        "separate fp32",
        f"separate fp32 {GENERATOR_TURN_ONLY}",
        "without vs with the discriminator's parameter gradients (ESPnet's VITS)",
    ),
)


def _ratios(by_label: Dict[str, Case]) -> List[str]:
    parts = []
    for turn in ("d", "g"):
        for fast, slow, what in RATIOS:
            a, b = by_label.get(fast), by_label.get(slow)
            if a is None or b is None or turn not in a.turns or turn not in b.turns:
                continue
            if not getattr(a, f"{turn}_times"):
                continue
            wall = _median(getattr(b, f"{turn}_times")) / _median(
                getattr(a, f"{turn}_times")
            )
            cpu_a, cpu_b = _median(getattr(a, f"{turn}_cpu")), _median(
                getattr(b, f"{turn}_cpu")
            )
            cpu = f"{cpu_b / cpu_a:.2f}x" if cpu_a else "n/a"
            parts.append(f"{turn.upper()} {what} {wall:.2f}x / {cpu}")
    plain, checkpointed = by_label.get("pair fp32"), by_label.get(
        "pair fp32 checkpointing"
    )
    if plain and checkpointed and plain.d_peak and checkpointed.d_peak is not None:
        saving = 100 * (1 - checkpointed.d_peak / plain.d_peak)
        parts.append(
            f"checkpointing cuts the D turn's peak activation memory by {saving:.0f}%"
        )
    return parts


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="segments per turn (default 2 on CPU, 16 on GPU)",
    )
    parser.add_argument(
        "--segment",
        type=int,
        default=GPT_SOVITS_SEGMENT,
        help="waveform samples per segment (GPT-SoVITS: 20480)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="untimed rounds first (every case already runs its turns once "
        "untimed before timing them in each round)",
    )
    parser.add_argument(
        "--discriminators",
        nargs="+",
        default=list(DISCRIMINATORS),
        choices=DISCRIMINATORS,
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "fp16", "bf16"],
        choices=["fp32", "fp16", "bf16"],
        help="precisions to run (fp32 always runs as the reference for the "
        "score differences; fp16 only on a GPU). On a CPU without bfloat16 "
        "instructions (no avx512_bf16 or AMX) bf16 runs emulated and very slowly",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads"
    )
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="skip the torch.compile cases on a GPU",
    )
    parser.add_argument("--markdown", default=None, help="also write the table here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 round, no warm-up, few cases, no ceiling sizes",
    )
    args = parser.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = 2 if args.device == "cpu" else 16
    if "fp32" not in args.precisions:
        args.precisions.insert(0, "fp32")
    if args.quick:
        args.repeats, args.warmup = 1, 0
    return args


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    """Run the benchmark; print the table and return its Markdown lines."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    cases = build_cases(
        args.discriminators,
        device,
        args.quick,
        not args.no_compile,
        args.precisions,
    )
    modules = {case.discriminator: case.module for case in cases if not case.variant}
    flops = {
        name: count_conv_flops(modules[name], args.segment)
        for name in args.discriminators
    }
    real = 0.3 * torch.randn(args.batch_size, 1, args.segment, device=device)
    fake = 0.3 * torch.randn(args.batch_size, 1, args.segment, device=device)
    precisions = sorted(
        {c.precision for c in cases}, key=["fp32", "bf16", "fp16"].index
    )
    ceilings: Dict[str, Dict[str, List[float]]] = {p: {} for p in precisions}
    for round_index in range(args.warmup + args.repeats):
        timed_round = round_index >= args.warmup
        for precision in precisions:
            for name, rate in matmul_rates(device, precision, args.quick).items():
                if timed_round:
                    ceilings[precision].setdefault(name, []).append(rate)
        for case in cases:
            if case.error:
                continue
            try:
                for turn in case.turns:
                    run_case(case, turn, real, fake, device)
                for turn in case.turns:
                    wall, cpu = run_case(case, turn, real, fake, device)
                    if timed_round:
                        getattr(case, f"{turn}_times").append(wall)
                        getattr(case, f"{turn}_cpu").append(cpu)
            except RuntimeError as error:
                case.error = str(error).splitlines()[0][:80]
    for case in cases:
        if case.error:
            continue
        for turn in case.turns:
            with PeakMemory(device) as peak:
                run_case(case, turn, real, fake, device)
            setattr(case, f"{turn}_peak", peak.peak)
    differences = check_numbers([c for c in cases if not c.error], real, fake, device)
    lines = make_report(cases, flops, ceilings, differences, args, device)
    print("\n".join(lines))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")
    return lines


if __name__ == "__main__":
    main()
