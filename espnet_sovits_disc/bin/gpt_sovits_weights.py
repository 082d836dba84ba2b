"""GPT-SoVITS stage-2 weights into ESPnet (``import``) and back out (``export``).

Usage::

    # s2G2333k.pth + s2D2333k.pth -> an --init_param file for tts: gpt_sovits
    python -m espnet_sovits_disc.bin.gpt_sovits_weights import \\
        --src s2G2333k.pth --discriminator_src s2D2333k.pth \\
        --dst exp/pretrained/gpt_sovits_v2.pth --config conf/tuning/finetune_gpt_sovits_v2.yaml

    # an ESPnet-trained model -> SoVITS_weights/<name>.pth for GPT-SoVITS's inference
    python -m espnet_sovits_disc.bin.gpt_sovits_weights export \\
        --src exp/tts_finetune_gpt_sovits_v2/latest.pth \\
        --config exp/tts_finetune_gpt_sovits_v2/config.yaml --dst my_voice_e8_s800.pth \\
        --epoch 8 --iteration 800

``--config`` (an ESPnet training configuration) gives ``tts_conf.version``,
``generator_params``, ``spectrogram_params`` and ``sampling_rate``, so the
weights are checked against the model they initialise or came from.
"""

import argparse
import sys
from typing import Any, Dict, List, Optional

import yaml

from espnet_sovits_disc.gpt_sovits.config import VERSIONS
from espnet_sovits_disc.pretrained.errors import CheckpointError
from espnet_sovits_disc.pretrained.synthesizer import (
    GENERATOR_PREFIX,
    export_synthesizer,
    import_synthesizer,
)


def read_tts_conf(path: Optional[str]) -> Dict[str, Any]:
    """``tts_conf`` of an ESPnet ``tts: gpt_sovits`` configuration ({} for none).

    Raises:
        CheckpointError: If the configuration trains another model.

    """
    if path is None:
        return {}
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    if config.get("tts") != "gpt_sovits":
        raise CheckpointError(
            f"{path} trains tts {config.get('tts')!r}, not gpt_sovits: pass the "
            "configuration of a tts: gpt_sovits model"
        )
    return config.get("tts_conf") or {}


def get_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_sovits_disc.bin.gpt_sovits_weights",
        description=__doc__.splitlines()[0],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("import", "GPT-SoVITS generator file -> ESPnet --init_param file"),
        ("export", "ESPnet model file -> GPT-SoVITS SoVITS_weights file"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--src", required=True)
        command.add_argument("--dst", required=True)
        command.add_argument(
            "--config", default=None, help="ESPnet tts: gpt_sovits training configuration"
        )
        command.add_argument(
            "--version",
            default=None,
            choices=VERSIONS,
            help="generator version (default: the config's, else the file's)",
        )
        command.add_argument("--prefix", default=GENERATOR_PREFIX)
    importing = commands.choices["import"]
    importing.add_argument(
        "--discriminator_src", default=None, help="the matching s2D*.pth / D_<step>.pth"
    )
    importing.add_argument(
        "--reinit_enc_q",
        action="store_true",
        help="accept an inference-only file (no enc_q) and leave enc_q to "
        "ESPnet's initialisation",
    )
    exporting = commands.choices["export"]
    exporting.add_argument("--epoch", type=int, default=0)
    exporting.add_argument("--iteration", type=int, default=0)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return the exit status."""
    args = get_parser().parse_args(argv)
    try:
        tts_conf = read_tts_conf(args.config)
        version = args.version or tts_conf.get("version")
        if args.version and tts_conf.get("version", args.version) != args.version:
            raise CheckpointError(
                f"--version {args.version} but {args.config} says "
                f"{tts_conf['version']}; drop one of them"
            )
        common = dict(
            version=version,
            generator_params=tts_conf.get("generator_params") or {},
            prefix=args.prefix,
        )
        if args.command == "import":
            summary = import_synthesizer(
                args.src,
                args.dst,
                discriminator_src=args.discriminator_src,
                reinit_enc_q=args.reinit_enc_q,
                **common,
            )
        else:
            summary = export_synthesizer(
                args.src,
                args.dst,
                spectrogram_params=tts_conf.get("spectrogram_params") or {},
                sampling_rate=tts_conf.get("sampling_rate", 32000),
                epoch=args.epoch,
                iteration=args.iteration,
                **common,
            )
    except (CheckpointError, OSError) as error:
        print(f"gpt_sovits_weights {args.command}: error: {error}", file=sys.stderr)
        return 1
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
