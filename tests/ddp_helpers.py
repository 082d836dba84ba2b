"""Spawn-picklable workers and helpers for the multi-process tests.

``torch.multiprocessing.spawn`` pickles the worker by module and name, so the
workers live here (an importable module) rather than in the test modules.
Every process group is gloo on 127.0.0.1 with a free port.
"""

import os
import socket
from pathlib import Path
from typing import Callable, Dict, List

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from tests.tiny_corpus import (
    TEXTS,
    synthesize,
)

from espnet_sovits_disc.discriminators import (
    SoVITSMultiPeriodDiscriminator,
    SoVITSMultiResolutionDiscriminator,
    SoVITSSVCDiscriminator,
)

SMALL_RESOLUTIONS = [[64, 8, 32], [96, 10, 40], [128, 16, 64]]

SMALL_DISCRIMINATORS: Dict[str, Callable[[], torch.nn.Module]] = {
    "sovits_mpd": lambda: SoVITSMultiPeriodDiscriminator(periods=[2, 3, 5]),
    "sovits_mrd": lambda: SoVITSMultiResolutionDiscriminator(
        resolutions=SMALL_RESOLUTIONS
    ),
    "sovits_svc": lambda: SoVITSSVCDiscriminator(
        resolutions=SMALL_RESOLUTIONS,
        periods=[2, 3],
        period_channels=[4, 8, 8, 8, 8],
    ),
}

WORLD_SIZE = 2
BATCH = 4
LENGTH = 512
ITERATIONS = 2
LR = 0.05


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(worker: Callable, *args) -> None:
    """Run ``worker(rank, WORLD_SIZE, port, *args)`` in WORLD_SIZE processes."""
    port = free_port()
    torch.multiprocessing.spawn(
        worker, args=(WORLD_SIZE, port, *args), nprocs=WORLD_SIZE, join=True
    )


def init_gloo(rank: int, world_size: int, port: int) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)


class GANPair(torch.nn.Module):
    """A one-convolution generator and a discriminator, with ESPnet's two turns.

    Like ESPnet's GAN models (and the whole model the GAN trainer wraps in
    DDP), one ``forward`` computes the loss of one turn: the discriminator
    turn on (real, fake.detach()), the generator turn adversarial plus
    feature-matching loss with the real outputs under ``no_grad``.
    """

    def __init__(self, discriminator: torch.nn.Module):
        super().__init__()
        self.generator = torch.nn.Conv1d(1, 1, 9, padding=4)
        self.discriminator = discriminator

    def forward(
        self, noise: torch.Tensor, real: torch.Tensor, turn: str
    ) -> torch.Tensor:
        fake = torch.tanh(self.generator(noise))
        if turn == "discriminator":
            outs_real, outs_fake = self.discriminator.forward_pair(real, fake.detach())
            return sum(
                torch.mean((1 - r[-1]) ** 2) + torch.mean(f[-1] ** 2)
                for r, f in zip(outs_real, outs_fake)
            )
        outs_fake = self.discriminator(fake)
        with torch.no_grad():
            outs_real = self.discriminator(real)
        adversarial = sum(torch.mean((1 - f[-1]) ** 2) for f in outs_fake)
        feature = sum(
            torch.mean(torch.abs(a - b))
            for r, f in zip(outs_real, outs_fake)
            for a, b in zip(r[:-1], f[:-1])
        )
        return adversarial + 2 * feature


def gan_batch() -> Dict[str, torch.Tensor]:
    """The whole batch: noise (generator input) and real waveforms (B, 1, T)."""
    generator = torch.Generator().manual_seed(1234)
    t = torch.arange(LENGTH, dtype=torch.float32)
    freqs = 0.02 + 0.1 * torch.rand(BATCH, 1, 1, generator=generator)
    real = 0.5 * torch.sin(freqs * t) + 0.05 * torch.randn(
        BATCH, 1, LENGTH, generator=generator
    )
    noise = torch.randn(BATCH, 1, LENGTH, generator=generator)
    return {"noise": noise, "real": real}


TURNS = ("discriminator", "generator")


def run_gan_pair(
    model: torch.nn.Module, noise: torch.Tensor, real: torch.Tensor
) -> List[Dict[str, Dict[str, torch.Tensor]]]:
    """ITERATIONS steps of both turns (D then G) with SGD.

    Returns, per turn, the parameters before the turn and the gradients the
    step used (names of the inner ``GANPair``).
    """
    inner = model.module if isinstance(model, DDP) else model
    optimizers = {
        "discriminator": torch.optim.SGD(inner.discriminator.parameters(), lr=LR),
        "generator": torch.optim.SGD(inner.generator.parameters(), lr=LR),
    }
    records = []
    for _ in range(ITERATIONS):
        for turn in TURNS:
            params = {n: p.detach().clone() for n, p in inner.named_parameters()}
            model(noise, real, turn).backward()
            grads = {
                n: p.grad.detach().clone()
                for n, p in inner.named_parameters()
                if p.grad is not None
            }
            records.append({"turn": turn, "params": params, "grads": grads})
            optimizers[turn].step()
            for optimizer in optimizers.values():
                optimizer.zero_grad(set_to_none=True)
    return records


def turn_gradients(
    name: str,
    params: Dict[str, torch.Tensor],
    turn: str,
    rows: slice = slice(None),
) -> Dict[str, torch.Tensor]:
    """Gradients of one turn in this process, from the given parameters, on
    the given rows of the whole batch."""
    model = build_gan_pair(name)
    model.load_state_dict(params)
    batch = gan_batch()
    model(batch["noise"][rows], batch["real"][rows], turn).backward()
    return {
        n: p.grad.detach().clone()
        for n, p in model.named_parameters()
        if p.grad is not None
    }


def build_gan_pair(name: str) -> GANPair:
    torch.manual_seed(0)
    return GANPair(SMALL_DISCRIMINATORS[name]())


def gan_pair_worker(
    rank: int, world_size: int, port: int, names: List[str], out_dir: str
) -> None:
    """Train each discriminator's GANPair under DDP on this rank's half batch,
    with ``find_unused_parameters=True`` (key ``name``) and, for the first
    name, without it (key ``name:strict``: the error text); save the records."""
    init_gloo(rank, world_size, port)
    batch = gan_batch()
    rows = slice(rank * BATCH // world_size, (rank + 1) * BATCH // world_size)
    runs = [(name, name, True) for name in names]
    runs.append((f"{names[0]}:strict", names[0], False))
    results = {}
    try:
        for key, name, find_unused_parameters in runs:
            model = DDP(
                build_gan_pair(name), find_unused_parameters=find_unused_parameters
            )
            try:
                results[key] = run_gan_pair(
                    model, batch["noise"][rows], batch["real"][rows]
                )
            except RuntimeError as e:
                results[key] = f"{type(e).__name__}: {e}"
            dist.barrier()
    finally:
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        dist.destroy_process_group()


def build_sovits(
    prepared, discriminator_conf: str, discriminator_type: str = "sovits_mpd"
):
    """``tts: sovits`` built by the plugin's GANTTSTask from the tiny config,
    and the parsed arguments."""
    from espnet_sovits_disc.tasks.gan_tts import GANTTSTask

    corpus, config, _ = prepared
    parser = GANTTSTask.get_parser()
    args = parser.parse_args(
        [
            "--config", str(config),
            "--token_list", str(corpus.token_list),
            "--token_type", "char",
            "--cleaner", "none",
            "--g2p", "none",
            "--use_preprocessor", "true",
            "--discriminator_type", discriminator_type,
            "--discriminator_conf", discriminator_conf,
        ]
    )
    torch.manual_seed(0)
    model = GANTTSTask.build_model(args)
    return model, args


def tiny_batch(args, indices):
    """A batch of tiny-corpus utterances through ESPnet's preprocessing and
    collation of the task."""
    from espnet_sovits_disc.tasks.gan_tts import GANTTSTask

    preprocess = GANTTSTask.build_preprocess_fn(args, train=True)
    collate = GANTTSTask.build_collate_fn(args, train=True)
    items = []
    for i in indices:
        speech = synthesize(int(16000 * (0.5 + 0.03 * len(TEXTS[i]))), seed=i)
        data = preprocess(f"utt{i}", {"text": TEXTS[i], "speech": speech})
        items.append((f"utt{i}", data))
    return collate(items)[1]


def sovits_worker(
    rank: int, world_size: int, port: int, prepared, out_dir: str
) -> None:
    """``tts: sovits`` (built by the plugin's GANTTSTask) in DDP as ESPnet
    wraps it (``find_unused_parameters=True``): 2 iterations of the
    discriminator then the generator turn on this rank's half of a batch of 4,
    AdamW from the config; saves the parameters after every step and which
    parameters got gradients in each turn."""
    from espnet_sovits_disc.tasks.gan_tts import GANTTSTask

    init_gloo(rank, world_size, port)
    records = []
    try:
        model, args = build_sovits(
            prepared, "resolutions=[[64,8,32],[128,16,64]]", "sovits_mrd"
        )
        inner = model
        model = DDP(model, find_unused_parameters=True)
        optimizers = GANTTSTask.build_optimizers(args, inner)
        batch = tiny_batch(args, [2 + 2 * rank, 3 + 2 * rank])
        torch.manual_seed(10 + rank)
        for _ in range(ITERATIONS):
            turns = (("discriminator", optimizers[1]), ("generator", optimizers[0]))
            for turn, optimizer in turns:
                retval = model(forward_generator=turn == "generator", **batch)
                retval["loss"].backward()
                with_grad = sorted(
                    n for n, p in inner.named_parameters() if p.grad is not None
                )
                optimizer.step()
                for o in optimizers:
                    o.zero_grad(set_to_none=True)
                records.append(
                    {
                        "turn": turn,
                        "loss": retval["loss"].item(),
                        "with_grad": with_grad,
                        "params": {
                            n: p.detach().clone() for n, p in inner.named_parameters()
                        },
                    }
                )
    except RuntimeError as e:
        records = f"{type(e).__name__}: {e}"
    finally:
        torch.save(records, Path(out_dir) / f"sovits_rank{rank}.pt")
        dist.destroy_process_group()
