"""Registration into ESPnet 202511: every discriminator table, both model
choices, idempotence, registration in spawned workers, and the stock task
building ``tts: vits`` with ``discriminator_type: sovits_mpd``."""

import pickle
import subprocess
import sys

import pytest
from espnet2.tasks import gan_tts, tts

import espnet_sovits_disc
from espnet_sovits_disc.discriminators import (
    SoVITSMultiPeriodDiscriminator,
    SoVITSMultiResolutionDiscriminator,
    SoVITSSVCDiscriminator,
)
from espnet_sovits_disc.model import SoVITS
from espnet_sovits_disc.tasks.gan_tts import GANTTSTask
from espnet_sovits_disc.registration import (
    DISCRIMINATOR_TABLES,
    discriminator_tables,
    register,
)
from espnet_sovits_disc.registry import get_discriminator_class
from tests.tiny_corpus import tiny_train_config, write_config

EXPECTED = {
    "sovits_mpd": SoVITSMultiPeriodDiscriminator,
    "sovits_mrd": SoVITSMultiResolutionDiscriminator,
    "sovits_svc": SoVITSSVCDiscriminator,
}


def test_discriminators_in_every_espnet_table():
    espnet_sovits_disc.register()
    assert DISCRIMINATOR_TABLES == (
        "espnet2.gan_tts.vits.vits",
        "espnet2.gan_tts.jets.jets",
        "espnet2.gan_tts.joint.joint_text2wav",
        "espnet2.gan_svs.vits.vits",
        "espnet2.gan_svs.joint.joint_score2wav",
    )
    for module, table in zip(DISCRIMINATOR_TABLES, discriminator_tables()):
        for name, cls in EXPECTED.items():
            assert table[name] is cls, (module, name)
        assert "hifigan_multi_scale_multi_period_discriminator" in table


def test_generator_in_vits_generator_table():
    from espnet2.gan_tts.vits.vits import AVAILABLE_GENERATERS

    from espnet_sovits_disc.generator import SoVITSGenerator

    register()
    assert AVAILABLE_GENERATERS["sovits_vits_generator"] is SoVITSGenerator
    assert AVAILABLE_GENERATERS["vits_generator"].__name__ == "VITSGenerator"


def test_sovits_model_in_both_task_choices():
    register()
    for choices in (gan_tts.tts_choices, tts.tts_choices):
        assert choices.get_class("sovits") is SoVITS
        assert "sovits" in choices.choices()
        assert choices.get_class("vits").__name__ == "VITS"
    parser = gan_tts.GANTTSTask.get_parser()
    assert "sovits" in next(a for a in parser._actions if a.dest == "tts").choices


def test_register_is_idempotent():
    register()
    tables = discriminator_tables() + [
        gan_tts.tts_choices.classes,
        tts.tts_choices.classes,
    ]
    before = [dict(t) for t in tables]
    register()
    espnet_sovits_disc.register()
    assert [dict(t) for t in tables] == before


def test_unknown_discriminator_lists_available_names():
    with pytest.raises(ValueError, match="unknown discriminator_type 'sovits_xx'") as e:
        get_discriminator_class("sovits_xx")
    for name in EXPECTED:
        assert name in str(e.value)


@pytest.mark.slow
def test_lookups_and_constructors_leave_espnet_tables_alone():
    """In a fresh process the pure lookup finds every name without touching
    ESPnet's tables, and building ``SoVITS`` before ``register()`` says what
    to call instead of failing on a bare ``KeyError``."""
    code = (
        "from espnet2.gan_tts.vits import vits\n"
        "from espnet_sovits_disc.registry import get_discriminator_class\n"
        "from espnet_sovits_disc.model import SoVITS\n"
        "before = dict(vits.AVAILABLE_DISCRIMINATORS)\n"
        "assert get_discriminator_class('sovits_svc').__name__ == "
        "'SoVITSSVCDiscriminator'\n"
        "assert get_discriminator_class('hifigan_multi_period_discriminator')"
        ".__name__ == 'HiFiGANMultiPeriodDiscriminator'\n"
        "try:\n"
        "    SoVITS(idim=5, odim=9)\n"
        "except ValueError as error:\n"
        "    print(error)\n"
        "assert vits.AVAILABLE_DISCRIMINATORS == before\n"
        "assert 'sovits_vits_generator' not in vits.AVAILABLE_GENERATERS\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1] == (
        "sovits_mpd not registered in ESPnet: call espnet_sovits_disc.register() "
        "before building the model (the plugin's task, espnet_sovits_disc.run "
        "and its CLIs do so)"
    )


def test_unknown_generator_type_lists_available_names():
    with pytest.raises(
        ValueError,
        match="unknown generator_type 'hifigan'; available: "
        "sovits_vits_generator, vits_generator",
    ):
        SoVITS(idim=5, odim=9, generator_type="hifigan")


@pytest.mark.slow
def test_spawned_worker_registers_in_a_fresh_process():
    """ESPnet's multi-GPU launcher pickles ``cls.main_worker`` into spawned
    processes; unpickling the plugin's task there imports it, which registers."""
    payload = pickle.dumps(GANTTSTask.main_worker).hex()
    code = (
        "import pickle, sys\n"
        "from espnet2.gan_tts.vits import vits\n"
        "assert 'sovits_mpd' not in vits.AVAILABLE_DISCRIMINATORS\n"
        "worker = pickle.loads(bytes.fromhex(sys.argv[1]))\n"
        "assert worker.__self__.__module__ == 'espnet_sovits_disc.tasks.gan_tts'\n"
        "from espnet2.tasks import gan_tts, tts\n"
        "from espnet_sovits_disc.registration import discriminator_tables\n"
        "assert all('sovits_svc' in t for t in discriminator_tables())\n"
        "assert 'sovits' in gan_tts.tts_choices.classes\n"
        "assert 'sovits' in tts.tts_choices.classes\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, payload], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize(
    "discriminator_params, conv_algorithm",
    [({}, "auto"), ({"conv_algorithm": "direct"}, "direct")],
)
def test_stock_task_builds_vits_with_sovits_mpd(
    tmp_path, token_list, discriminator_params, conv_algorithm
):
    """``tts: vits`` + ``discriminator_type: sovits_mpd`` in a stock config;
    ``discriminator_params`` reach the discriminator's constructor."""
    register()
    config = write_config(
        tmp_path / "train.yaml",
        tiny_train_config(
            "vits",
            discriminator_type="sovits_mpd",
            discriminator_params=discriminator_params,
        ),
    )
    args = gan_tts.GANTTSTask.get_parser().parse_args(
        ["--config", str(config), "--token_list", str(token_list)]
    )
    model = gan_tts.GANTTSTask.build_model(args)
    discriminator = model.tts.discriminator
    assert type(model.tts).__name__ == "VITS"
    assert isinstance(discriminator, SoVITSMultiPeriodDiscriminator)
    assert discriminator.sub_discriminator_names == ["s", "p2", "p3", "p5", "p7", "p11"]
    assert sum(p.numel() for p in discriminator.parameters()) == 46_747_132
    periods = discriminator.sub_discriminators()[1:]
    assert [p.conv_algorithm for p in periods] == [conv_algorithm] * 5
