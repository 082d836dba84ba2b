"""Export the discriminator of an ESPnet checkpoint to GPT-SoVITS or so-vits-svc-5.0.

Usage::

    python -m espnet_sovits_disc.bin.export_discriminator \\
        --src exp/tts_train/valid.total_count.best.pth --dst s2D_espnet.pth \\
        --format gpt_sovits [--prefix tts.discriminator.] \\
        [--discriminator_type sovits_mpd [--discriminator_conf '{"version": "v2"}']
         | --config exp/<tag>/config.yaml]

Without ``--discriminator_type`` or ``--config`` the discriminator is inferred
from the tensors when they match a published layout.

``--src`` is an ESPnet model file or training ``checkpoint.pth``.
``gpt_sovits`` writes ``{"weight": state_dict}`` (use as GPT-SoVITS
``pretrained_s2D``); ``sovits_svc`` writes ``{"model_d": state_dict}``, the
discriminator entry of a so-vits-svc-5.0 training checkpoint.
"""

import argparse
import sys
from typing import List, Optional

from espnet_sovits_disc.bin.discriminator_arguments import (
    add_discriminator_arguments,
    resolve_discriminator,
)
from espnet_sovits_disc.pretrained import (
    DEFAULT_PREFIX,
    EXPORT_FORMATS,
    CheckpointError,
    export_discriminator,
)


def get_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_sovits_disc.bin.export_discriminator",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "--src", required=True, help="ESPnet model file or checkpoint.pth"
    )
    parser.add_argument("--dst", required=True, help="reference checkpoint to write")
    parser.add_argument(
        "--format",
        required=True,
        choices=sorted(EXPORT_FORMATS),
        help="gpt_sovits: {'weight': sd} (sovits_mpd); sovits_svc: {'model_d': sd}",
    )
    add_discriminator_arguments(
        parser,
        type_help="discriminator of the ESPnet model (default: from --config, "
        "or inferred from the tensors when they match a published layout)",
        config_help="ESPnet training configuration (YAML, e.g. "
        "exp/<tag>/config.yaml) to take the discriminator type and parameters from",
    )
    parser.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help="key prefix of the discriminator in the ESPnet model",
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return the exit status."""
    args = get_parser().parse_args(argv)
    try:
        discriminator_type, conf = resolve_discriminator(args)
        summary = export_discriminator(
            args.src,
            args.dst,
            format=args.format,
            discriminator_type=discriminator_type,
            discriminator_conf=conf,
            prefix=args.prefix,
        )
    except (CheckpointError, OSError) as error:
        print(f"export_discriminator: error: {error}", file=sys.stderr)
        return 1
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
