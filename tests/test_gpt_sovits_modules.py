"""GPT-SoVITS stage 2, module by module, against the reference's golden outputs.

``ssl_proj``, ``quantizer``, ``extract_latent``, ``ref_enc``, ``enc_q``,
``flow``, ``dec`` and ``enc_p`` of v2 and v2Pro, with the golden weights (tests/data/golden_s2/README.md: fill rule,
inputs, definitions), compared with its tolerance: float arrays elementwise
within ``1e-4 max|ref| + 1e-3 |ref|``, whole-array sums within rtol 1e-4,
integer codes exactly. Keys, shapes, parameter counts, dropout positions and
constants are checked directly, and a one-value change of a weight fails the
comparison.
"""

import math

import pytest
import torch

from espnet_sovits_disc.gpt_sovits import (
    CouplingFlow,
    Decoder,
    MelStyleEncoder,
    PosteriorEncoder,
    SemanticQuantizer,
    SynthesizerConfig,
    TextEncoder,
    build_ssl_projection,
    extract_latent,
    project_ssl,
)
from tests.golden_s2 import (
    VERSIONS,
    assert_close,
    assert_sums,
    deviation,
    golden_json,
    golden_state_dict,
    layout,
    tensor,
    y_mask,
)

MANUAL_SEED = golden_json()["manual_seed"]
P_DROPOUT = {
    v: golden_json()["versions"][v]["constructor"]["p_dropout"] for v in VERSIONS
}


def loaded(module: torch.nn.Module, version: str, prefix: str) -> torch.nn.Module:
    module.load_state_dict(golden_state_dict(version, prefix), strict=True)
    return module.eval()


# Each submodule built as SynthesizerTrn builds it for a version.
BUILDERS = {
    "ssl_proj.": lambda version: build_ssl_projection(),
    "quantizer.": lambda version: SemanticQuantizer(),
    "ref_enc.": lambda version: MelStyleEncoder(SynthesizerConfig.for_version(version)),
    "enc_q.": lambda version: PosteriorEncoder(SynthesizerConfig.for_version(version)),
    "flow.": lambda version: CouplingFlow(SynthesizerConfig.for_version(version)),
    "dec.": lambda version: Decoder(SynthesizerConfig.for_version(version)),
    "enc_p.": lambda version: TextEncoder(SynthesizerConfig.for_version(version)),
}


def built(version: str, prefix: str) -> torch.nn.Module:
    """The submodule at ``prefix`` with the golden weights, in eval mode."""
    return loaded(BUILDERS[prefix](version), version, prefix)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("prefix", list(BUILDERS))
def test_keys_shapes_and_sizes_equal_the_reference(version, prefix):
    module = BUILDERS[prefix](version)
    ours = [(key, list(value.shape)) for key, value in module.state_dict().items()]
    assert ours == [(key, list(shape)) for key, shape in layout(version, prefix)]
    parameters = sum(p.numel() for p in module.parameters())
    assert parameters == golden_json()["versions"][version]["n_params"][prefix[:-1]]


def test_quantizer_buffers_are_the_reference_count():
    buffers = sum(b.numel() for b in SemanticQuantizer().buffers())
    assert buffers == golden_json()["versions"]["v2"]["n_buffers"] == 1_573_889


@pytest.mark.parametrize("version", VERSIONS)
def test_ssl_projection_and_quantizer_equal_the_reference(version):
    ssl_proj, quantizer = built(version, "ssl_proj."), built(version, "quantizer.")
    with torch.no_grad():
        projected = project_ssl(ssl_proj, tensor("input.ssl"))
        quantized, codes, commit_loss, selected = quantizer(projected, layers=[0])
        latent = extract_latent(ssl_proj, quantizer, tensor("input.ssl"))
    assert_close(projected, f"{version}.ssl_proj")
    assert_sums(projected, f"{version}.ssl_proj")
    assert torch.equal(codes, tensor(f"{version}.quantizer.codes"))
    assert_close(quantized, f"{version}.quantizer.quantized")
    assert torch.equal(selected[0], quantized)
    assert (
        commit_loss.item()
        == golden_json()["versions"][version]["scalars"]["quantizer.commit_loss_eval"]
    )
    assert torch.equal(latent, tensor(f"{version}.extract_latent"))
    assert torch.equal(quantizer.decode(latent.transpose(0, 1)), quantized)


@pytest.mark.parametrize("version", VERSIONS)
def test_reference_encoder_equals_the_reference(version):
    encoder = built(version, "ref_enc.")
    mask = y_mask()
    with torch.no_grad():
        ge = encoder(tensor("input.y")[:, :704] * mask, mask)
    assert_close(ge, f"{version}.ref_enc.ge")
    assert_sums(ge, f"{version}.ref_enc.ge")


def global_conditioning(version: str) -> torch.Tensor:
    """``ge`` as the reference computes it (v2: ref_enc's output; v2Pro: with
    the speaker embedding added), from the golden data."""
    return tensor(f"{version}.ge" if version == "v2Pro" else f"{version}.ref_enc.ge")


@pytest.mark.parametrize("version", VERSIONS)
def test_posterior_encoder_equals_the_reference(version):
    encoder = built(version, "enc_q.")
    torch.manual_seed(MANUAL_SEED)
    with torch.no_grad():
        outputs = encoder(
            tensor("input.y"), tensor("input.y_lengths"), g=global_conditioning(version)
        )
    for name, output in zip(("z", "m_q", "logs_q", "y_mask"), outputs):
        assert_close(output, f"{version}.enc_q.{name}")
        assert_sums(output, f"{version}.enc_q.{name}")


@pytest.mark.parametrize("version", VERSIONS)
def test_flow_equals_the_reference_both_ways(version):
    flow = built(version, "flow.")
    mask, g = y_mask(), global_conditioning(version)
    with torch.no_grad():
        forward = flow(tensor("input.z_flow"), mask, g=g)
        reverse = flow(tensor("input.z_flow"), mask, g=g, reverse=True)
        round_trip = flow(forward, mask, g=g, reverse=True)
    assert_close(forward, f"{version}.flow.forward")
    assert_close(reverse, f"{version}.flow.reverse")
    torch.testing.assert_close(round_trip, tensor("input.z_flow"), rtol=0, atol=1e-4)


@pytest.mark.parametrize("version", VERSIONS)
def test_decoder_equals_the_reference(version):
    decoder = built(version, "dec.")
    with torch.no_grad():
        waveform = decoder(tensor("input.z_dec"), g=global_conditioning(version))
    assert waveform.shape == (2, 1, 32 * 640)
    assert_close(waveform, f"{version}.dec")
    assert_sums(waveform, f"{version}.dec")


@pytest.mark.parametrize("version", VERSIONS)
def test_text_encoder_equals_the_reference(version):
    encoder = built(version, "enc_p.")
    quantized = torch.nn.functional.interpolate(
        tensor(f"{version}.quantizer.quantized"), size=48, mode="nearest"
    )
    ge = tensor(f"{version}.ge512" if version == "v2Pro" else f"{version}.ref_enc.ge")
    with torch.no_grad():
        outputs = encoder(
            quantized,
            tensor("input.y_lengths"),
            tensor("input.text"),
            tensor("input.text_lengths"),
            ge,
        )
    for name, output in zip(("x", "m_p", "logs_p", "y_mask"), outputs):
        assert_close(output, f"{version}.enc_p.{name}")
        assert_sums(output, f"{version}.enc_p.{name}")


def test_layer_norm_epsilon_is_the_reference_constant():
    """1e-5, which the golden tolerances alone cannot tell from 1e-4."""
    norms = [
        m
        for m in TextEncoder(SynthesizerConfig()).modules()
        if type(m).__name__ == "LayerNorm"
    ]
    assert len(norms) == 2 * (3 + 6 + 3) and {m.eps for m in norms} == {1e-5}


def test_decoder_refuses_kernels_that_do_not_upsample_by_the_rate():
    with pytest.raises(
        ValueError, match=r"\(rate, kernel\) \[\(10, 15\)\] have an odd"
    ):
        Decoder(SynthesizerConfig(upsample_kernel_sizes=[15, 16, 8, 2, 2]))


def test_untrained_flow_is_the_identity():
    """The reference zero-initialises each coupling's last convolution."""
    z, mask = torch.randn(1, 192, 6), torch.ones(1, 1, 6)
    assert torch.equal(
        CouplingFlow(SynthesizerConfig())(z, mask, g=torch.randn(1, 512, 1)), z
    )


def test_a_one_value_change_fails_the_comparison():
    encoder = built("v2", "ref_enc.")
    mask = y_mask()
    with torch.no_grad():
        encoder.slf_attn.w_vs.weight[3, 5] += 0.05
        ge = encoder(tensor("input.y")[:, :704] * mask, mask)
    error, allowance = deviation(ge, "v2.ref_enc.ge")
    assert error > allowance


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("prefix", list(BUILDERS))
def test_dropout_sits_where_the_reference_has_it(version, prefix):
    """Same modules, same probabilities, so that the golden protocol (every
    Dropout's p set to 0 for the training forward) applies unchanged."""
    positions = [
        (prefix + name, module.p)
        for name, module in BUILDERS[prefix](version).named_modules()
        if isinstance(module, torch.nn.Dropout)
    ]
    expected = [
        (name, p)
        for name, p in golden_json()["versions"][version]["dropout_modules_set_to_0"]
        if name.startswith(prefix)
    ]
    assert positions == expected


def test_attention_temperature_is_the_square_root_of_the_width():
    """The reference divides by sqrt(d_model) = sqrt(128), not sqrt(d_k)."""
    encoder = MelStyleEncoder(SynthesizerConfig())
    assert encoder.slf_attn.attention.temperature == math.sqrt(128)


def test_frozen_quantizer_never_changes_its_codebook():
    quantizer = built("v2", "quantizer.")
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}
    quantizer.train()
    quantizer(torch.randn(2, 768, 10))
    assert all(torch.equal(before[k], v) for k, v in quantizer.state_dict().items())


def test_bad_inputs_get_clear_errors():
    ssl_proj, quantizer = built("v2", "ssl_proj."), built("v2", "quantizer.")
    with pytest.raises(ValueError, match="47 frames; ssl_proj has stride 2"):
        project_ssl(ssl_proj, torch.zeros(1, 768, 47))
    with pytest.raises(ValueError, match=r"expected \(batch, 768, frames\)"):
        project_ssl(ssl_proj, torch.zeros(1, 1024, 48))
    with pytest.raises(ValueError, match="quantizer layer 1 requested"):
        quantizer(torch.zeros(1, 768, 4), layers=[1])
    with pytest.raises(ValueError, match=r"expected \(batch, 704, frames\)"):
        MelStyleEncoder(SynthesizerConfig())(torch.zeros(1, 1025, 8))
    with pytest.raises(ValueError, match="unknown semantic_frame_rate '12hz'"):
        build_ssl_projection(semantic_frame_rate="12hz")
