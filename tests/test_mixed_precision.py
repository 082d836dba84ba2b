"""Mixed precision: autocast keeps the spectrograms in float32 and the
outputs, losses and gradients finite.

What ESPnet does with ``--use_amp true``: its GAN trainer uses CUDA autocast
and a CUDA GradScaler only (202511: ``torch.cuda.amp.autocast(enabled)``;
202609 and later: ``torch.amp.autocast("cuda", enabled=...)`` and
``torch.amp.GradScaler``). Without CUDA both disable themselves with a
warning, so on CPU ``--use_amp true`` trains in float32 and
saves an empty scaler state; ``test_use_amp_on_cpu_trains_in_float32`` proves
it through the plugin's entry point. CPU mixed precision (bfloat16, and
float16 where the CPU autocast supports it) is therefore tested here by
running ``tts: sovits`` (built by the plugin's real GANTTSTask) under
``torch.autocast("cpu")`` in ESPnet's turn order. The CUDA float16 tests with
a GradScaler run only where a GPU is present.
"""

import math

import pytest
import torch
import yaml
from espnet2.train import gan_trainer

from espnet_sovits_disc.discriminators.conv import normalized_conv
from espnet_sovits_disc.losses import (
    SoVITSDiscriminatorLoss,
    SoVITSFeatureLoss,
    SoVITSGeneratorLoss,
)
from espnet_sovits_disc.registry import get_discriminator_class
from espnet_sovits_disc.tasks.gan_tts import GANTTSTask
from tests.ddp_helpers import build_sovits, tiny_batch
from tests.tiny_corpus import run_module, train_args
from tests.signals import SIGNALS

NAMES = ["sovits_mpd", "sovits_mrd", "sovits_svc"]
CPU_DTYPES = [torch.bfloat16, torch.float16]




def signals(length: int, device: str = "cpu") -> torch.Tensor:
    """(6, 1, length): one row per degenerate signal."""
    rows = [make(length) for make in SIGNALS.values()]
    return torch.stack(rows).unsqueeze(1).to(device)


def capture_spectrogram_inputs(discriminator):
    """Record the input of the first convolution of every resolution
    sub-discriminator (the spectrogram it scores)."""
    captured = []
    for sub in discriminator.sub_discriminators():
        if hasattr(sub, "spectrogram"):
            sub.convs[0].register_forward_pre_hook(
                lambda module, args, sub=sub: captured.append((sub, args[0]))
            )
    return captured


def losses(outs_real, outs_fake):
    real, fake = SoVITSDiscriminatorLoss()(outs_fake, outs_real)
    generator = SoVITSGeneratorLoss()(outs_fake)
    feature = SoVITSFeatureLoss()(outs_fake, outs_real)
    return {"d_real": real, "d_fake": fake, "adv": generator, "feat": feature}


def autocast_length(discriminator) -> int:
    """The shortest input: there the resolution discriminators stride their
    time axis down to one column (``dispatch.strides_last_dim_to_one_column``)."""
    return max(discriminator.minimum_length, 512)


def check_autocast_pass(discriminator, device: str, dtype: torch.dtype):
    """One forward/backward under autocast on the degenerate signals (real)
    against scaled, shifted copies (fake); checks everything claimed above."""
    length = autocast_length(discriminator)
    real = signals(length, device)
    fake = (0.5 * real.roll(7, dims=-1)).requires_grad_(True)
    captured = capture_spectrogram_inputs(discriminator)
    discriminator.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device, dtype=dtype):
        outs_real, outs_fake = discriminator.forward_pair(real, fake)
        values = losses(outs_real, outs_fake)
    assert {sub[-1].dtype for sub in outs_fake} == {dtype}, "autocast was not active"
    for sub in outs_real + outs_fake:
        for t in sub:
            assert torch.isfinite(t).all()
    for name, value in values.items():
        assert value.dtype == torch.float32, name
        assert torch.isfinite(value), name
    sum(values.values()).backward()
    assert torch.isfinite(fake.grad).all()
    assert fake.grad.abs().sum() > 0
    for name, p in discriminator.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # The spectrogram fed to the first convolution is float32 and equals the
    # one computed without autocast: of real then fake on the CPU, where
    # forward_pair scores them one after the other for the resolution
    # discriminators, of the concatenated batch on a GPU.
    resolution_subs = [
        s for s in discriminator.sub_discriminators() if hasattr(s, "spectrogram")
    ]
    scored = [torch.cat([real, fake.detach()])]
    if real.device.type == "cpu":
        scored = [real, fake.detach()]
    expected = [(sub, x) for sub in resolution_subs for x in scored]
    assert len(captured) == len(expected)
    for (sub, spectrogram), (expected_sub, x) in zip(captured, expected):
        assert sub is expected_sub
        assert spectrogram.dtype == torch.float32
        with torch.no_grad():
            assert torch.equal(spectrogram, sub.spectrogram(x))
    discriminator.zero_grad(set_to_none=True)
    return values


@pytest.mark.parametrize("use_spectral_norm", [False, True], ids=["weight", "spectral"])
@pytest.mark.parametrize("width", [1, 2])
def test_bfloat16_conv_strided_to_one_column_matches_float32(width, use_spectral_norm):
    """A resolution discriminator's stride-(1, 2) convolution on an input one
    or two columns wide, in bfloat16 and under bfloat16 autocast, against
    float32 on the same bfloat16 values: PyTorch's bfloat16 CPU conv2d alone
    is off here by more than the largest output, or not finite."""

    def build():
        torch.manual_seed(0)
        return normalized_conv(
            dims=2,
            in_channels=32,
            out_channels=32,
            kernel_size=(3, 9),
            stride=(1, 2),
            padding=(1, 4),
            use_spectral_norm=use_spectral_norm,
        ).eval()

    conv = build()
    x = torch.randn(2, 32, 33, width).bfloat16().float()
    x.requires_grad_(True)
    expected = conv(x)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
    # bfloat16 weights and outputs: about 1% of the largest output.
    tolerance = 0.02 * expected.abs().max()
    bfloat16_conv = build().bfloat16()
    for _ in range(3):
        with torch.no_grad():
            y = bfloat16_conv(x.detach().bfloat16())
        assert y.shape == expected.shape == (2, 32, 33, 1)
        assert (y.float() - expected).abs().max() < tolerance
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(x)
        (grad,) = torch.autograd.grad(y.float().square().sum(), x)
        assert y.dtype == torch.bfloat16
        assert (y.float() - expected).abs().max() < tolerance
        assert (grad - expected_grad).abs().max() < 0.02 * expected_grad.abs().max()


@pytest.fixture(scope="module")
def default_discriminators():
    torch.manual_seed(0)
    return {name: get_discriminator_class(name)() for name in NAMES}


# CPU float16 convolutions are slow emulations (tens of seconds for the
# default discriminators on 2 cores): CPU float16 is covered by the model
# test below; the discriminators run in bfloat16 here and float16 on CUDA.
@pytest.mark.parametrize("name", NAMES)
def test_cpu_bfloat16_autocast_float32_spectrograms_finite_losses_gradients(
    default_discriminators, name
):
    discriminator = default_discriminators[name]
    values = check_autocast_pass(discriminator, "cpu", torch.bfloat16)
    with torch.no_grad():
        length = autocast_length(discriminator)
        real = signals(length)
        fake = 0.5 * real.roll(7, dims=-1)
        reference = losses(*discriminator.forward_pair(real, fake))
    # Reduced precision changes the losses by a few percent at most.
    for key, value in values.items():
        expected = reference[key].item()
        assert math.isclose(value.item(), expected, rel_tol=0.1, abs_tol=1e-3), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_float16_autocast_with_grad_scaler(default_discriminators, name):
    """CUDA float16 autocast and a GradScaler, as ESPnet's --use_amp: float32
    spectrograms, finite losses and three finite, unskipped steps."""
    discriminator = default_discriminators[name].cuda()
    try:
        check_autocast_pass(discriminator, "cuda", torch.float16)
        optimizer = torch.optim.AdamW(discriminator.parameters(), lr=2e-4)
        scaler = torch.amp.GradScaler("cuda")
        length = autocast_length(discriminator)
        real = signals(length, "cuda")
        for _ in range(3):
            with torch.autocast(device_type="cuda", dtype=torch.float16):
                fake = 0.5 * real.roll(7, -1)
                outs_real, outs_fake = discriminator.forward_pair(real, fake)
                loss_real, loss_fake = SoVITSDiscriminatorLoss()(outs_fake, outs_real)
            loss = loss_real + loss_fake
            assert torch.isfinite(loss)
            scaler.scale(loss).backward()
            scale_before = scaler.get_scale()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            assert scaler.get_scale() >= scale_before, "a step saw inf/NaN gradients"
        assert all(torch.isfinite(p).all() for p in discriminator.parameters())
    finally:
        discriminator.cpu()


@pytest.mark.slow
@pytest.mark.parametrize("dtype", CPU_DTYPES, ids=["bfloat16", "float16"])
def test_sovits_trains_three_iterations_under_cpu_autocast(prepared_corpus, dtype):
    """ESPnet's turn order (discriminator, then generator), each turn's forward
    under CPU autocast, AdamW as configured: three iterations, every loss and
    every parameter finite, the parameters updated."""
    model, args = build_sovits(prepared_corpus, "periods=[2,3]")
    model.train()
    optimizers = GANTTSTask.build_optimizers(args, model)
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(1)
    for step in range(3):
        batch = tiny_batch(args, [2 + (step % 2) * 2, 3 + (step % 2) * 2])
        turns = (("discriminator", optimizers[1]), ("generator", optimizers[0]))
        for turn, optimizer in turns:
            with torch.autocast("cpu", dtype=dtype):
                retval = model(forward_generator=turn == "generator", **batch)
            loss = retval["loss"]
            assert loss.dtype == torch.float32
            assert torch.isfinite(loss), (step, turn, retval["stats"])
            for key, value in retval["stats"].items():
                assert torch.isfinite(torch.as_tensor(value)).all(), (step, turn, key)
            loss.backward()
            optimizer.step()
            for o in optimizers:
                o.zero_grad(set_to_none=True)
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), name
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, initial[n])]
    assert any(n.startswith("tts.generator.") for n in changed)
    assert any(n.startswith("tts.discriminator.") for n in changed)


def trainer_autocast(enabled: bool):
    """The autocast context ESPnet's GAN trainer wraps each forward pass in,
    called as the installed trainer calls it: ``torch.amp.autocast`` takes
    the device first (ESPnet 202609+), ``torch.cuda.amp.autocast`` does not
    (202511)."""
    if gan_trainer.autocast is torch.amp.autocast:
        return gan_trainer.autocast("cuda", enabled=enabled)
    return gan_trainer.autocast(enabled)


@pytest.mark.slow
def test_use_amp_on_cpu_trains_in_float32(prepared_corpus, tmp_path):
    """``--use_amp true`` through the plugin's entry point on CPU: 3 iterations,
    finite losses; ESPnet's CUDA-only GradScaler disabled itself (an enabled
    one saves its scale, a disabled one an empty state) and the trainer's
    autocast is a no-op on CPU tensors."""
    corpus, config, stats = prepared_corpus
    conf = yaml.safe_load(config.read_text())
    conf.update(num_iters_per_epoch=3, max_epoch=1, use_amp=True)
    amp_config = tmp_path / "amp.yaml"
    amp_config.write_text(yaml.safe_dump(conf))
    proc = run_module(
        "espnet_sovits_disc.bin.gan_tts_train",
        train_args(corpus, amp_config, stats, tmp_path / "exp")
        + ["--ngpu", "0", "--discriminator_type", "sovits_mpd",
           "--discriminator_conf", "periods=[2,3]"],
    )
    assert "The training was finished at 1 epochs" in proc.stderr
    checkpoint = torch.load(tmp_path / "exp" / "checkpoint.pth", weights_only=False)
    assert checkpoint["scaler"] == {}
    train_stats = checkpoint["reporter"]["stats"][1]["train"]
    for key in ("generator_loss", "discriminator_loss"):
        assert math.isfinite(train_stats[key]), key
    for name, p in checkpoint["model"].items():
        assert torch.isfinite(p).all(), name
    with trainer_autocast(enabled=True):
        assert not torch.is_autocast_enabled("cpu")
        x = torch.ones(4, 4)
        assert (x @ x).dtype == torch.float32
