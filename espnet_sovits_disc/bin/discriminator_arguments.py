"""The discriminator options shared by the import and export commands.

``--discriminator_type`` and ``--discriminator_conf`` (JSON) name the
discriminator directly; ``--config`` takes both from an ESPnet training
configuration instead, so that the weights fit the model it trains.
"""

import argparse
import json
from typing import Any, Dict, Optional, Tuple

import yaml
from typeguard import typechecked

from espnet_sovits_disc.pretrained import CheckpointError
from espnet_sovits_disc.pretrained.reading import PathLike
from espnet_sovits_disc.registry import DISCRIMINATORS


def add_discriminator_arguments(
    parser: argparse.ArgumentParser, *, type_help: str, config_help: str
) -> None:
    """Add ``--discriminator_type``, ``--discriminator_conf`` and ``--config``.

    Args:
        parser (ArgumentParser): The command's parser.
        type_help (str): Help of ``--discriminator_type`` (when it is needed).
        config_help (str): Help of ``--config`` (which configuration to pass).

    """
    parser.add_argument(
        "--discriminator_type",
        default=None,
        choices=sorted(DISCRIMINATORS),
        help=type_help,
    )
    parser.add_argument(
        "--discriminator_conf",
        default=None,
        help='its parameters as a JSON object, e.g. \'{"version": "v2Pro"}\'',
    )
    parser.add_argument("--config", default=None, help=config_help)


@typechecked
def parse_discriminator_conf(text: Optional[str]) -> Dict[str, Any]:
    """Parse a ``--discriminator_conf`` JSON object.

    Args:
        text (Optional[str]): JSON text such as ``'{"version": "v2Pro"}'``.

    Returns:
        Dict[str, Any]: The constructor arguments (empty for None).

    Raises:
        CheckpointError: If the text is not a JSON object.

    """
    if text is None:
        return {}
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"--discriminator_conf is not valid JSON ({error}); write e.g. "
            '\'{"version": "v2Pro"}\''
        ) from None
    if not isinstance(conf, dict):
        raise CheckpointError(
            f"--discriminator_conf must be a JSON object, got {text!r}; write e.g. "
            '\'{"version": "v2Pro"}\''
        )
    return conf


@typechecked
def discriminator_from_config(path: PathLike) -> Tuple[str, Dict[str, Any]]:
    """Read the discriminator of an ESPnet GAN-TTS training configuration.

    Importing with the training configuration guarantees that the imported
    file fits the model ESPnet will build: ESPnet's ``init_param`` loading
    keeps the model's own random values for any parameter the file lacks.

    Args:
        path (Union[str, os.PathLike]): YAML configuration with
            ``tts_conf: {discriminator_type, discriminator_params}`` (or the
            plugin trainer's top-level ``discriminator_type`` and
            ``discriminator_conf``).

    Returns:
        Tuple[str, Dict[str, Any]]: The discriminator type and its parameters.

    Raises:
        CheckpointError: If the file cannot be read or names no discriminator.

    """
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as error:
        raise CheckpointError(
            f"cannot read the configuration {str(path)!r}: {error}"
        ) from None
    config = config if isinstance(config, dict) else {}
    tts_conf = config.get("tts_conf") or {}
    if config.get("discriminator_type") is not None:
        found = config["discriminator_type"], config.get("discriminator_conf")
    elif isinstance(tts_conf, dict) and "discriminator_type" in tts_conf:
        found = tts_conf["discriminator_type"], tts_conf.get("discriminator_params")
    else:
        raise CheckpointError(
            f"the configuration {str(path)!r} sets no tts_conf.discriminator_type "
            "(nor a top-level discriminator_type); pass --discriminator_type"
        )
    discriminator_type, conf = found
    if not isinstance(conf, (dict, type(None))):
        raise CheckpointError(
            f"the discriminator parameters in {str(path)!r} are not a mapping: {conf!r}"
        )
    return str(discriminator_type), dict(conf or {})


def resolve_discriminator(
    args: argparse.Namespace,
) -> Tuple[Optional[str], Dict[str, Any]]:
    """Settle the discriminator from the options of
    :func:`add_discriminator_arguments`.

    Args:
        args (Namespace): Parsed arguments with ``config``,
            ``discriminator_type`` and ``discriminator_conf`` (JSON text).

    Returns:
        Tuple[Optional[str], Dict[str, Any]]: The type (None when neither
            option gives one) and its parameters.

    Raises:
        CheckpointError: If ``--config`` is combined with the other two, or
            ``--discriminator_conf`` comes without a type, or either is invalid.

    """
    if args.config is not None:
        if args.discriminator_type is not None or args.discriminator_conf is not None:
            raise CheckpointError(
                "--config sets the discriminator; leave out --discriminator_type "
                "and --discriminator_conf"
            )
        return discriminator_from_config(args.config)
    conf = parse_discriminator_conf(args.discriminator_conf)
    if args.discriminator_conf is not None and args.discriminator_type is None:
        raise CheckpointError("--discriminator_conf needs --discriminator_type as well")
    return args.discriminator_type, conf
