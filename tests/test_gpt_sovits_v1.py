"""GPT-SoVITS v1 (``s2G488k.pth``): v2's model but for what the version decides.

The reference builds v1 from the same s2.json; ``version == "v1"`` changes two
things only: the text embedding has a row per symbol of the v1 inventory (322)
and ``ref_enc`` reads every linear bin (1025) instead of the lowest 704. The
golden data covers v2; these tests tie v1 to it: the layout is v2's but for
those two entries, and a v1 model holding v2's golden weights (the embedding
rows of the same symbols, zero weights on the upper bins) gives v2's outputs
on the same phonemes within the golden tolerance, in training and in decode.
"""

import pytest
import torch

from espnet_sovits_disc.gpt_sovits import SynthesizerConfig, build_synthesizer
from espnet_sovits_disc.gpt_sovits.config import VERSIONS
from espnet_sovits_disc.gpt_sovits.gan_tts import GPTSoVITS
from espnet_sovits_disc.gpt_sovits.phonemes import phoneme_ids
from espnet_sovits_disc.gpt_sovits.symbols import inventory, inventory_file, inventory_ids
from tests.golden_s2 import golden_json, golden_model, tensor, y_mask

EMBEDDING = "enc_p.text_embedding.weight"
REFERENCE_INPUT = "ref_enc.spectral.0.fc.weight"


def test_v1_inventory_is_the_reference_symbol_set():
    """text/symbols.py: the sorted set of its symbols, all of them in v2's."""
    symbols = inventory("v1")
    assert len(symbols) == 322 and list(symbols) == sorted(set(symbols))
    assert set(symbols) <= set(inventory("v2"))
    assert symbols[0] == "!" and "_" in symbols and "UNK" in symbols
    assert inventory_file("v2Pro") == inventory_file("v2") != inventory_file("v1")


def test_every_version_has_its_token_list_and_an_unknown_one_is_refused():
    assert {version: inventory_file(version).name for version in VERSIONS} == {
        "v1": "symbols_v1.txt",
        "v2": "symbols_v2.txt",
        "v2Pro": "symbols_v2.txt",
        "v2ProPlus": "symbols_v2.txt",
    }
    with pytest.raises(ValueError, match="unknown GPT-SoVITS version 'v3'; choose one of"):
        inventory_file("v3")


def test_v1_layout_is_v2s_but_the_embedding_and_the_reference_input():
    v1 = {k: list(v.shape) for k, v in build_synthesizer("v1").state_dict().items()}
    v2 = dict(golden_json()["versions"]["v2"]["state_dict"])
    assert list(v1) == list(v2)
    assert {k for k in v1 if v1[k] != v2[k]} == {EMBEDDING, REFERENCE_INPUT}
    assert v1[EMBEDDING] == [322, 192] and v1[REFERENCE_INPUT] == [128, 1025]
    total = sum(p.numel() for p in build_synthesizer("v1").parameters())
    v2_total = golden_json()["versions"]["v2"]["n_params"]["total"]
    assert total == v2_total - (732 - 322) * 192 + (1025 - 704) * 128 == 51_272_448


def v1_holding_v2_weights() -> torch.nn.Module:
    """v1 with the golden v2 weights: embedding rows of the same symbols, the
    reference encoder's input weights zero on bins 704 and up."""
    v2 = golden_model("v2")
    weights = dict(v2.state_dict())
    rows = [inventory_ids("v2")[symbol] for symbol in inventory("v1")]
    weights[EMBEDDING] = weights[EMBEDDING][rows]
    upper = torch.zeros(128, 1025 - 704)
    weights[REFERENCE_INPUT] = torch.cat([weights[REFERENCE_INPUT], upper], dim=1)
    model = build_synthesizer("v1")
    model.load_state_dict(weights, strict=True)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def same_phonemes():
    """Phonemes of both inventories: v1 ids and the v2 ids of the same symbols."""
    v1_symbols = inventory("v1")
    count = tensor("input.text").numel()
    v1_ids = torch.tensor([(7 * i + 3) % len(v1_symbols) for i in range(count)])
    v2_ids = torch.tensor([inventory_ids("v2")[v1_symbols[i]] for i in v1_ids.tolist()])
    shape = tensor("input.text").shape
    return v1_ids.reshape(shape), v2_ids.reshape(shape)


def assert_within_golden_tolerance(actual, expected, name):
    """The golden README's rule, v2's output as the reference."""
    allowance = 1e-4 * expected.abs().max() + 1e-3 * expected.abs()
    error = (actual - expected).abs()
    worst = int(torch.argmax(error / allowance))
    assert error.flatten()[worst] <= allowance.flatten()[worst], (
        f"{name}: |v1 - v2| = {error.flatten()[worst]:.3g} > "
        f"{allowance.flatten()[worst]:.3g}"
    )


def test_v1_training_forward_is_v2s_on_the_same_phonemes():
    v1_text, v2_text = same_phonemes()
    inputs = [tensor("input.ssl"), tensor("input.y"), tensor("input.y_lengths")]
    lengths = tensor("input.text_lengths")
    outputs = {}
    for version, model, text in (
        ("v1", v1_holding_v2_weights(), v1_text),
        ("v2", golden_model("v2"), v2_text),
    ):
        torch.manual_seed(golden_json()["manual_seed"])
        with torch.no_grad():
            outputs[version] = model.train()(*inputs, text, lengths)
    (o1, _, starts1, _, _, latents1, _), (o2, _, starts2, _, _, latents2, _) = (
        outputs["v1"],
        outputs["v2"],
    )
    assert torch.equal(starts1, starts2)
    assert_within_golden_tolerance(o1, o2, "y_hat")
    names = ("z", "z_p", "m_p", "logs_p", "m_q", "logs_q")
    for name, a, b in zip(names, latents1, latents2):
        assert_within_golden_tolerance(a, b, name)


def test_v1_decode_is_v2s_on_the_same_phonemes():
    v1_text, v2_text = same_phonemes()
    waveforms = {}
    for version, model, text in (
        ("v1", v1_holding_v2_weights(), v1_text),
        ("v2", golden_model("v2"), v2_text),
    ):
        model.eval()
        codes = model.extract_latent(tensor("input.ssl")[:1, :, :48]).transpose(0, 1)
        torch.manual_seed(golden_json()["manual_seed"])
        waveforms[version] = model.decode(
            codes, text[:1], tensor("input.y")[:1, :, :48], noise_scale=0.5
        )
    assert_within_golden_tolerance(waveforms["v1"], waveforms["v2"], "decode.ns05")


def test_v1_reference_encoder_reads_every_bin():
    """Bins 704 and up change v1's ``ge``, never v2's."""
    raised = tensor("input.y").clone()
    raised[:, 704:] += 1.0
    for version, model in (("v1", build_synthesizer("v1")), ("v2", golden_model("v2"))):
        model.eval()
        with torch.no_grad():
            ge, _ = model.global_conditioning(tensor("input.y"), y_mask(), None)
            ge_raised, _ = model.global_conditioning(raised, y_mask(), None)
        assert torch.equal(ge, ge_raised) == (version == "v2"), version


def test_v1_phoneme_ids_index_its_inventory():
    """cleaner.py: the v1 inventory's ids; a phone of v2's only becomes UNK."""
    phones = ["HH", "AH0", "L", "OW1", " ", ",", "W", "ER1", "L", "D", "."]
    v1, v2 = inventory_ids("v1"), inventory_ids("v2")
    kept = [p for p in phones if p != " "]
    assert phoneme_ids(phones, "v1") == [v1[p] for p in kept]
    assert phoneme_ids(phones, "v2") == [v2[p] for p in kept]
    v2_only = next(s for s in inventory("v2") if s not in v1)
    assert phoneme_ids(["HH", v2_only], "v1") == [v1["HH"], v1["UNK"]]


def test_tts_gpt_sovits_v1_builds_with_its_inventory_and_discriminator():
    config = SynthesizerConfig.for_version("v1")
    model = GPTSoVITS(idim=config.n_symbols, version="v1")
    assert model.generator.enc_p.text_embedding.num_embeddings == 322
    periods = [d.period for d in model.discriminator.discriminators[1:]]
    assert periods == [2, 3, 5, 7, 11]
    with pytest.raises(ValueError, match="has 322 symbols: use the token list .*symbols_v1.txt"):
        GPTSoVITS(idim=732, version="v1")
