"""Gradient checkpointing recomputes activations but must not change any number.

The recomputation runs the same kernels on the same shapes, so on the CPU
the outputs and gradients are bitwise identical; the test demands exact
equality.
"""

import pytest
import torch

from espnet_sovits_disc.discriminators import (
    SoVITSMultiPeriodDiscriminator,
    SoVITSMultiResolutionDiscriminator,
    SoVITSSVCDiscriminator,
)

LENGTH = 2048  # above the 1808 samples the 4096-point resolution needs

# (class, waveform length): short inputs keep the test fast.
DISCRIMINATORS = {
    "sovits_mpd": (SoVITSMultiPeriodDiscriminator, 1024),
    "sovits_mrd": (SoVITSMultiResolutionDiscriminator, LENGTH),
    "sovits_svc": (SoVITSSVCDiscriminator, LENGTH),
}


def _turn_gradients(discriminator, real, fake):
    """Gradients of a D loss plus a feature-matching G loss.

    Returns the outputs, the parameter gradients by name and the gradient
    with respect to the fake waveform.
    """
    discriminator.zero_grad(set_to_none=True)
    fake = fake.clone().requires_grad_(True)
    outs_real, outs_fake = discriminator.forward_pair(real, fake)
    loss = 0.0
    for sub_real, sub_fake in zip(outs_real, outs_fake):
        loss = (
            loss + torch.mean((1 - sub_real[-1]) ** 2) + torch.mean(sub_fake[-1] ** 2)
        )
        for fmap_real, fmap_fake in zip(sub_real[:-1], sub_fake[:-1]):
            loss = loss + torch.mean(torch.abs(fmap_real - fmap_fake))
    loss.backward()
    grads = {name: p.grad for name, p in discriminator.named_parameters()}
    return outs_real + outs_fake, grads, fake.grad


@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
def test_checkpointing_gives_identical_outputs_and_gradients(name):
    torch.manual_seed(0)
    discriminator_class, length = DISCRIMINATORS[name]
    plain = discriminator_class()
    checkpointed = discriminator_class(gradient_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    real = 0.3 * torch.randn(1, 1, length)
    fake = 0.3 * torch.randn(1, 1, length)

    outs, grads, fake_grad = _turn_gradients(plain, real, fake)
    outs_ckpt, grads_ckpt, fake_grad_ckpt = _turn_gradients(checkpointed, real, fake)

    for sub, sub_ckpt in zip(outs, outs_ckpt):
        for tensor, tensor_ckpt in zip(sub, sub_ckpt):
            assert torch.equal(tensor, tensor_ckpt)
    assert grads.keys() == grads_ckpt.keys()
    for key, grad in grads.items():
        assert grad is not None, key
        assert torch.equal(grad, grads_ckpt[key]), key
    assert torch.equal(fake_grad, fake_grad_ckpt)


def test_checkpointing_keeps_the_graph_smaller():
    """With checkpointing, the autograd graph saves only sub-discriminator inputs."""
    torch.manual_seed(0)
    saved = {}
    for flag in (False, True):
        discriminator = SoVITSMultiPeriodDiscriminator(gradient_checkpointing=flag)
        sizes = []

        def pack(tensor, sizes=sizes):
            sizes.append(tensor.numel() * tensor.element_size())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            discriminator(0.3 * torch.randn(1, 1, 1024))
        saved[flag] = sum(sizes)
    assert saved[True] < 0.5 * saved[False]


def test_no_checkpointing_in_eval_or_without_grad():
    discriminator = SoVITSMultiResolutionDiscriminator(gradient_checkpointing=True)
    x = 0.3 * torch.randn(1, 1, LENGTH)
    with torch.no_grad():
        expected = discriminator(x)
    discriminator.eval()
    actual = discriminator(x)
    for sub, sub_expected in zip(actual, expected):
        for tensor, tensor_expected in zip(sub, sub_expected):
            assert torch.equal(tensor, tensor_expected)
