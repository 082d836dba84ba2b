"""Import a GPT-SoVITS / so-vits-svc-5.0 discriminator checkpoint into ESPnet.

Usage::

    python -m espnet_sovits_disc.bin.import_discriminator \\
        --src s2D2333k.pth --dst exp/pretrained/s2D2333k.espnet.pth \\
        --discriminator_type sovits_mpd [--discriminator_conf '{"version": "v2"}'] \\
        [--prefix tts.discriminator.] [--format auto] [--inert_objects]

or, taking the discriminator from the training configuration::

    python -m espnet_sovits_disc.bin.import_discriminator \\
        --src s2D2333k.pth --dst exp/pretrained/s2D2333k.espnet.pth \\
        --config conf/tuning/finetune_gpt_sovits_v2.yaml

The output is an ESPnet state dict for ``--init_param``. The checkpoint is
loaded with ``weights_only=True`` and must cover the discriminator exactly.
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
    IMPORT_FORMATS,
    CheckpointError,
    UnsafeCheckpointError,
    import_discriminator,
)


def get_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_sovits_disc.bin.import_discriminator",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "--src", required=True, help="GPT-SoVITS or so-vits-svc-5.0 checkpoint"
    )
    parser.add_argument("--dst", required=True, help="ESPnet state dict to write")
    add_discriminator_arguments(
        parser,
        type_help="discriminator of the ESPnet model "
        "(tts_conf.discriminator_type); required unless --config is given",
        config_help="ESPnet training configuration (YAML) to take the "
        "discriminator type and parameters from, so that the import fits the "
        "model it trains",
    )
    parser.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help="key prefix of the discriminator in the ESPnet model",
    )
    parser.add_argument(
        "--format",
        default="auto",
        choices=sorted(IMPORT_FORMATS),
        help="where the state dict is in --src: gpt_sovits ('weight', 'model' "
        "or bare), sovits_svc ('model_d'), auto (any of them)",
    )
    parser.add_argument(
        "--inert_objects",
        action="store_true",
        help="read pickled objects other than tensors and containers (e.g. a "
        "GPT-SoVITS HParams config next to the weights) as inert placeholders "
        "instead of refusing the file; their code is still never run",
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return the exit status."""
    args = get_parser().parse_args(argv)
    try:
        discriminator_type, conf = resolve_discriminator(args)
        if discriminator_type is None:
            raise CheckpointError("pass --discriminator_type or --config")
        summary = import_discriminator(
            args.src,
            args.dst,
            discriminator_type,
            conf,
            prefix=args.prefix,
            format=args.format,
            inert_objects=args.inert_objects,
        )
    except UnsafeCheckpointError as error:
        print(
            f"import_discriminator: error: {error}; pass --inert_objects to do so",
            file=sys.stderr,
        )
        return 1
    except (CheckpointError, OSError) as error:
        print(f"import_discriminator: error: {error}", file=sys.stderr)
        return 1
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
