"""``sovits_vits_generator``: ESPnet's VITS generator with GPT-SoVITS's kernels."""

import copy

import pytest
import torch

import espnet_sovits_disc
from espnet_sovits_disc.generator import SoVITSGenerator
from espnet_sovits_disc.model import SoVITS
from tests.tiny_corpus import HOP_LENGTH, TINY_GENERATOR_PARAMS, TINY_MEL_LOSS_PARAMS

# SoVITS builds its generator and discriminator from ESPnet's tables.
espnet_sovits_disc.register()


def test_s2_kernels_upsample_by_the_hop():
    """s2.json: scales [10, 8, 2, 2, 2], kernels [16, 16, 8, 2, 2] -> hop 640."""
    generator = SoVITSGenerator(vocabs=10, aux_channels=1025, hidden_channels=16)
    layers = [stage[-1] for stage in generator.decoder.upsamples]
    assert [layer.kernel_size[0] for layer in layers] == [16, 16, 8, 2, 2]
    assert [layer.stride[0] for layer in layers] == [10, 8, 2, 2, 2]
    assert [layer.padding[0] for layer in layers] == [3, 4, 3, 0, 0]
    assert all(hasattr(layer, "weight_g") for layer in layers)
    latent = torch.randn(2, 16, 7)
    with torch.no_grad():
        assert generator.decoder(latent).shape == (2, 1, 7 * 640)


def test_bad_kernel_is_refused():
    with pytest.raises(ValueError, match="kernel 15 for scale 10"):
        SoVITSGenerator(vocabs=10, decoder_upsample_kernel_sizes=[15, 16, 8, 2, 2])
    with pytest.raises(ValueError, match="one kernel per"):
        SoVITSGenerator(vocabs=10, decoder_upsample_kernel_sizes=[16, 16])


def test_sovits_model_builds_and_trains_one_step_with_it():
    params = copy.deepcopy(TINY_GENERATOR_PARAMS)
    params.update(decoder_upsample_scales=[8, 4, 4], decoder_upsample_kernel_sizes=[12, 6, 4])
    torch.manual_seed(0)
    model = SoVITS(
        idim=12,
        odim=257,
        sampling_rate=TINY_MEL_LOSS_PARAMS["fs"],
        generator_type="sovits_vits_generator",
        generator_params=params,
        mel_loss_params=dict(TINY_MEL_LOSS_PARAMS),
        discriminator_params={"periods": [2, 3]},
    )
    assert [s[-1].kernel_size[0] for s in model.generator.decoder.upsamples] == [12, 6, 4]
    frames = torch.tensor([40, 34])
    out = model(
        text=torch.randint(2, 12, (2, 9)),
        text_lengths=torch.tensor([9, 7]),
        feats=torch.randn(2, 40, 257),
        feats_lengths=frames,
        speech=0.1 * torch.randn(2, 40 * HOP_LENGTH),
        speech_lengths=frames * HOP_LENGTH,
        forward_generator=True,
    )
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    decoder = dict(model.generator.decoder.named_parameters())
    missing = [name for name, p in decoder.items() if p.grad is None]
    assert decoder and not missing, f"decoder parameters without a gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in decoder.values())
