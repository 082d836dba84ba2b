"""ESPnet's GAN-TTS task with the plugin registered and a discriminator switch.

Adds two top-level options (also accepted as keys of the ``--config`` YAML):

- ``--discriminator_type NAME`` sets ``tts_conf.discriminator_type``. When it
  changes the type the model would otherwise use, the discriminator
  parameters are reset to the new type's defaults (``{}``), since the old
  type's parameters rarely fit the new one.
- ``--discriminator_conf`` (a dict, or ``key=value`` like ``--tts_conf``)
  replaces ``tts_conf.discriminator_params``.

With ``grad_clip > 0``, a model that can skip the discriminator's gradients
in the generator turn (``tts: sovits``) keeps them unless the config says
otherwise, because ESPnet clips the norm of all parameters' gradients.

All of this is applied to ``args.tts_conf`` when the model is built, so the saved
``config.yaml`` holds the discriminator actually trained and ESPnet's
inference tools rebuild the same model. Importing this module registers the
plugin in ESPnet, so processes spawned by ESPnet's multi-GPU launcher (which
import this module to unpickle the task) register too.
"""

import argparse
import inspect
from typing import Any, Dict, List, Optional, Tuple

import torch
from espnet2.tasks import gan_tts as espnet_gan_tts
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str_or_none

from espnet_sovits_disc.gpt_sovits.espnet_model import SSLGANTTSModel
from espnet_sovits_disc.gpt_sovits.gan_tts import GPTSoVITS
from espnet_sovits_disc.registration import register
from espnet_sovits_disc.registry import get_discriminator_class

register()


def model_default(tts_class: type, name: str) -> Any:
    """Return the default of ``name`` in ``tts_class.__init__``, or ``None``."""
    parameter = inspect.signature(tts_class.__init__).parameters.get(name)
    return None if parameter is None else parameter.default


def apply_discriminator_options(
    tts_class: type,
    tts_conf: Dict[str, Any],
    discriminator_type: Optional[str],
    discriminator_conf: Optional[Dict[str, Any]],
) -> Dict[str, Any]:
    """Return ``tts_conf`` with the discriminator options applied.

    Args:
        tts_class (type): The TTS model class (e.g. ESPnet's ``VITS``).
        tts_conf (Dict[str, Any]): Its keyword arguments (``--tts_conf``).
        discriminator_type (Optional[str]): ``--discriminator_type``.
        discriminator_conf (Optional[Dict[str, Any]]): ``--discriminator_conf``.

    Returns:
        Dict[str, Any]: A new ``tts_conf``.

    Raises:
        ValueError: If a discriminator type is unknown (the message lists the
            available ones) or the model has no discriminator.

    """
    tts_conf = dict(tts_conf)
    if discriminator_type is None and discriminator_conf is None:
        if "discriminator_type" in tts_conf:
            get_discriminator_class(tts_conf["discriminator_type"])
        return tts_conf
    current = tts_conf.get(
        "discriminator_type", model_default(tts_class, "discriminator_type")
    )
    if current is None:
        raise ValueError(
            f"tts {tts_class.__name__} has no discriminator: drop "
            "--discriminator_type and --discriminator_conf"
        )
    if discriminator_type is not None:
        get_discriminator_class(discriminator_type)
        tts_conf["discriminator_type"] = discriminator_type
        if discriminator_type != current:
            tts_conf["discriminator_params"] = {}
    if discriminator_conf is not None:
        tts_conf["discriminator_params"] = dict(discriminator_conf)
    get_discriminator_class(tts_conf.get("discriminator_type", current))
    return tts_conf


def apply_grad_clip(
    tts_class: type, tts_conf: Dict[str, Any], grad_clip: float
) -> Dict[str, Any]:
    """Return ``tts_conf`` keeping the generator turn's discriminator gradients
    when gradients are clipped.

    ESPnet's GAN trainer clips the norm of all parameters' gradients, the
    discriminator's included, so with ``grad_clip > 0`` skipping them would
    change the generator's updates; an explicit setting in ``tts_conf`` wins.

    Args:
        tts_class (type): The TTS model class.
        tts_conf (Dict[str, Any]): Its keyword arguments (``--tts_conf``).
        grad_clip (float): ``--grad_clip``.

    Returns:
        Dict[str, Any]: A new ``tts_conf``.

    """
    tts_conf = dict(tts_conf)
    option = "discriminator_grads_in_generator_turn"
    has_option = option in inspect.signature(tts_class.__init__).parameters
    if has_option and grad_clip > 0 and option not in tts_conf:
        tts_conf[option] = True
    return tts_conf


class GANTTSTask(espnet_gan_tts.GANTTSTask):
    """ESPnet's GAN-TTS task plus ``--discriminator_type``/``--discriminator_conf``."""

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        """Add ESPnet's GAN-TTS arguments and the discriminator switch."""
        super().add_task_arguments(parser)
        group = parser.add_argument_group(
            description="Discriminator selection (espnet_sovits_disc)"
        )
        group.add_argument(
            "--discriminator_type",
            type=str_or_none,
            default=None,
            help="Discriminator of the GAN-TTS model, e.g. sovits_mpd, "
            "sovits_mrd, sovits_svc or an ESPnet one; overrides "
            "tts_conf.discriminator_type. A different type than the model's "
            "resets the discriminator parameters to the type's defaults.",
        )
        group.add_argument(
            "--discriminator_conf",
            action=NestedDictAction,
            default=None,
            help="Discriminator parameters; replace tts_conf.discriminator_params.",
        )

    @classmethod
    def optional_data_names(
        cls, train: bool = True, inference: bool = False
    ) -> Tuple[str, ...]:
        """ESPnet's optional data keys plus ``ssl_feats`` (``tts: gpt_sovits``)."""
        return (*super().optional_data_names(train, inference), "ssl_feats")

    @classmethod
    def build_model(cls, args: argparse.Namespace):
        """Apply the discriminator and ``grad_clip`` options to
        ``args.tts_conf``, then build.

        ``tts: gpt_sovits`` computes its spectrograms itself: ``odim`` is its
        spectrogram size (ESPnet then builds no feature extractor) and the
        model is wrapped in ``SSLGANTTSModel``, which passes ``ssl_feats`` on.
        """
        tts_class = espnet_gan_tts.tts_choices.get_class(args.tts)
        if issubclass(tts_class, GPTSoVITS) and args.odim is None:
            n_fft = args.tts_conf.get("spectrogram_params", {}).get("n_fft", 2048)
            args.odim = n_fft // 2 + 1
        args.tts_conf = apply_discriminator_options(
            tts_class,
            args.tts_conf,
            getattr(args, "discriminator_type", None),
            getattr(args, "discriminator_conf", None),
        )
        args.tts_conf = apply_grad_clip(
            tts_class, args.tts_conf, getattr(args, "grad_clip", -1.0)
        )
        model = super().build_model(args)
        if isinstance(model.tts, GPTSoVITS):
            model = SSLGANTTSModel(
                feats_extract=model.feats_extract,
                normalize=model.normalize,
                pitch_extract=model.pitch_extract,
                pitch_normalize=model.pitch_normalize,
                energy_extract=model.energy_extract,
                energy_normalize=model.energy_normalize,
                tts=model.tts,
            )
        return model

    @classmethod
    def build_optimizers(
        cls, args: argparse.Namespace, model: torch.nn.Module
    ) -> List[torch.optim.Optimizer]:
        """ESPnet's two optimizers; for ``tts: gpt_sovits`` the generator's
        has ``s2_train.py``'s groups (``text_low_lr_rate``)."""
        if not isinstance(model.tts, GPTSoVITS):
            return super().build_optimizers(args, model)
        if args.sharded_ddp:
            raise ValueError(
                "tts gpt_sovits does not support --sharded_ddp: its generator's "
                "optimizer has per-part learning rates; use DDP"
            )
        optimizers = super().build_optimizers(args, model)
        generator_optimizer = type(optimizers[0])
        lr = optimizers[0].defaults["lr"]
        groups = model.tts.generator_parameter_groups(lr)
        return [generator_optimizer(groups, **args.optim_conf), optimizers[1]]
