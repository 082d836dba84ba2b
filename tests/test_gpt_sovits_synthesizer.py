"""GPT-SoVITS's SynthesizerTrn as a whole against tests/data/golden_s2.

Full-size v2 and v2Pro with the golden weights: the state-dict layout (776 /
781 keys) and parameter counts, the training forward under the golden
protocol (every Dropout's p set to 0, the seed right before the call; the
two random draws in the reference's order), ``extract_latent`` and
``decode`` with noise 0 and 0.5, v2Pro's speaker conditioning, the step's KL loss and generated log-mel, within the README's tolerances (float
arrays elementwise, sums rtol 1e-4, integers exactly).
"""

import pytest
import torch

from espnet_sovits_disc.gpt_sovits import SynthesizerConfig, build_synthesizer
from espnet_sovits_disc.losses import SoVITSKLLoss
from espnet_sovits_disc.mel import LogMelSpectrogram
from tests.golden_s2 import (
    VERSIONS,
    assert_close,
    assert_sums,
    golden_arrays,
    golden_json,
    golden_model,
    tensor,
    training_forward,
    y_mask,
)

def compare(actual: torch.Tensor, name: str) -> None:
    if name in golden_arrays():
        assert_close(actual, name)
    else:
        assert_close(actual[0].flatten()[:64], f"{name}.head")
    assert_sums(actual, name)


@pytest.mark.parametrize("version", VERSIONS)
def test_layout_and_sizes_equal_the_reference(version):
    model = build_synthesizer(version)
    reference = golden_json()["versions"][version]
    ours = [(key, list(value.shape)) for key, value in model.state_dict().items()]
    assert ours == [(key, list(shape)) for key, shape in reference["state_dict"]]
    assert len(ours) == {"v2": 776, "v2Pro": 781}[version]
    assert sum(p.numel() for p in model.parameters()) == reference["n_params"]["total"]


@pytest.mark.parametrize("version", VERSIONS)
def test_training_forward_equals_the_reference(version):
    model = golden_model(version)
    o, commit_loss, starts, x_mask, z_mask, latents, quantized = training_forward(version)
    assert torch.equal(starts, tensor(f"{version}.train.ids_slice"))
    compare(o, f"{version}.train.y_hat")
    for name, mask in (("x_mask", x_mask), ("z_mask", z_mask)):
        compare(mask, f"{version}.train.{name}")
    for name, latent in zip(("z", "z_p", "m_p", "logs_p", "m_q", "logs_q"), latents):
        compare(latent, f"{version}.train.{name}")
    compare(quantized, f"{version}.train.quantized")
    assert (
        commit_loss.item()
        == golden_json()["versions"][version]["scalars"]["train.kl_ssl"]
    )
    assert not model.ssl_proj.training and not model.quantizer.training


def test_v2pro_speaker_conditioning_equals_the_reference():
    """sv_emb, ``ge = prelu(ref_enc.ge + sv_emb)`` and ``ge_to512(ge)``."""
    model = golden_model("v2Pro").eval()
    with torch.no_grad():
        projected = model.sv_emb(tensor("input.sv_emb"))
        ge, mrte_ge = model.global_conditioning(
            tensor("input.y"), y_mask(), tensor("input.sv_emb")
        )
    for actual, name in ((projected, "sv_emb"), (ge, "ge"), (mrte_ge, "ge512")):
        assert_close(actual, f"v2Pro.{name}")
        assert_sums(actual, f"v2Pro.{name}")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("noise_scale, name", [(0.0, "ns0"), (0.5, "ns05")])
def test_decode_equals_the_reference(version, noise_scale, name):
    model = golden_model(version).eval()
    codes = model.extract_latent(tensor("input.ssl")[:1, :, :48]).transpose(0, 1)
    assert torch.equal(codes, tensor(f"{version}.decode.codes"))
    sv_emb = tensor("input.sv_emb")[:1] if version == "v2Pro" else None
    torch.manual_seed(golden_json()["manual_seed"])
    waveform = model.decode(
        codes,
        tensor("input.text")[:1, :20],
        tensor("input.y")[:1, :, :48],
        noise_scale=noise_scale,
        sv_emb=sv_emb,
    )
    compare(waveform, f"{version}.decode.{name}")


def test_clear_errors():
    model = golden_model("v2Pro")
    args = (
        tensor("input.y"),
        tensor("input.y_lengths"),
        tensor("input.text"),
        tensor("input.text_lengths"),
    )
    with pytest.raises(ValueError, match=r"v2Pro needs sv_emb.*\(2, 20480\); got none"):
        model(tensor("input.ssl"), *args)
    with pytest.raises(ValueError, match="same frames"):
        model(tensor("input.ssl")[:, :, :46], *args, sv_emb=tensor("input.sv_emb"))
    with pytest.raises(ValueError, match="at least segment_size=32 frames"):
        model(
            tensor("input.ssl"),
            args[0],
            torch.tensor([48, 20]),
            *args[2:],
            sv_emb=tensor("input.sv_emb"),
        )
    with pytest.raises(ValueError, match="47 frames; ssl_proj has stride 2"):
        model.extract_latent(torch.zeros(1, 768, 47))
    with pytest.raises(ValueError, match="unknown GPT-SoVITS version 'v3'"):
        build_synthesizer("v3")


@pytest.mark.parametrize("version", VERSIONS)
def test_config_is_the_reference_constructor(version):
    """Every hyper-parameter s2_train.py passes (golden.json's constructor)."""
    config = SynthesizerConfig.for_version(version)
    constructor = golden_json()["versions"][version]["constructor"]
    ours = {
        name: getattr(config, name) for name in constructor if hasattr(config, name)
    }
    ignored = {
        "n_speakers",
        "resblock",
        "n_layers_q",
        "use_spectral_norm",
        "freeze_quantizer",
    }
    assert set(constructor) - set(ours) == ignored
    assert ours == {k: v for k, v in constructor.items() if k not in ignored}


def test_v2proplus_sizes():
    """s2v2ProPlus.json: decoder width 768 and first kernel 20."""
    model = build_synthesizer("v2ProPlus")
    assert model.dec.ups[0].weight_v.shape == (768, 384, 20)
    assert model.uses_speaker_verification


@pytest.mark.parametrize("version", VERSIONS)
def test_training_step_losses_equal_the_reference(version):
    """KL and the generated log-mel of s2_train.py's step on the forward above,
    with the plugin's GPT-SoVITS losses."""
    with torch.no_grad():
        o, _, _, _, z_mask, (_, z_p, m_p, logs_p, _, logs_q), _ = training_forward(version)
    scalars = golden_json()["versions"][version]["scalars"]
    kl = SoVITSKLLoss()(z_p, logs_q, m_p, logs_p, z_mask)
    assert kl.item() == pytest.approx(scalars["loss.kl"], rel=1e-4)
    compare(LogMelSpectrogram()(o.squeeze(1)), f"{version}.loss.y_hat_mel")
