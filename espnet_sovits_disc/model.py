"""``tts: sovits``: ESPnet's VITS trained the GPT-SoVITS way.

The generator, inference and everything ESPnet's tools rely on are
ESPnet's ``VITS``; this subclass changes the defaults to GPT-SoVITS's
discriminator (``sovits_mpd``), losses and weights (adversarial 1, feature
matching 2, mel 45 with the GPT-SoVITS log-mel, KL 1; optionally
so-vits-svc-5.0's multi-resolution STFT loss), scores real and
generated speech in one batched discriminator pass, skips the
discriminator's parameter gradients in the generator turn, and reports every
sub-discriminator's loss terms next to the totals.
"""

import contextlib
import copy
import inspect
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from espnet2.gan_tts.utils import get_segments
from espnet2.gan_tts.vits import vits as espnet_vits
from espnet2.gan_tts.vits.vits import VITS
from espnet2.torch_utils.device_funcs import force_gatherable
from typeguard import typechecked

from espnet_sovits_disc.losses import (
    SoVITSDiscriminatorLoss,
    SoVITSFeatureLoss,
    SoVITSGeneratorLoss,
    SoVITSKLLoss,
    SoVITSMelLoss,
    SoVITSMultiResolutionSTFTLoss,
)
from espnet_sovits_disc.generator import GENERATOR_NAME
from espnet_sovits_disc.registry import DISCRIMINATORS, get_discriminator_class

GPT_SOVITS_MEL_LOSS_PARAMS: Dict[str, Any] = {
    "n_fft": 2048,
    "hop_length": 640,
    "win_length": 2048,
    "n_mels": 128,
    "fmin": 0,
    "fmax": None,
}


def vits_default(name: str) -> Any:
    """Return a copy of the default of one of ``VITS.__init__``'s parameters."""
    return copy.deepcopy(inspect.signature(VITS.__init__).parameters[name].default)


def check_espnet_can_build(generator_type: str, discriminator_type: str) -> None:
    """Check that ESPnet's VITS finds both types in its tables.

    Args:
        generator_type (str): ``vits_generator`` or ``sovits_vits_generator``.
        discriminator_type (str): A plugin or ESPnet discriminator name.

    Raises:
        ValueError: If a name is unknown (the message lists the known ones),
            or is the plugin's but not yet registered in ESPnet (the message
            says to call ``espnet_sovits_disc.register()``).

    """
    get_discriminator_class(discriminator_type)
    generators = {*espnet_vits.AVAILABLE_GENERATERS, GENERATOR_NAME}
    if generator_type not in generators:
        raise ValueError(
            f"unknown generator_type {generator_type!r}; available: "
            f"{', '.join(sorted(generators))}"
        )
    unregistered = [
        name
        for name, table in (
            (generator_type, espnet_vits.AVAILABLE_GENERATERS),
            (discriminator_type, espnet_vits.AVAILABLE_DISCRIMINATORS),
        )
        if name not in table and (name in DISCRIMINATORS or name == GENERATOR_NAME)
    ]
    if unregistered:
        raise ValueError(
            f"{', '.join(unregistered)} not registered in ESPnet: call "
            "espnet_sovits_disc.register() before building the model (the "
            "plugin's task, espnet_sovits_disc.run and its CLIs do so)"
        )


def sub_discriminator_names(discriminator: torch.nn.Module, count: int) -> List[str]:
    """Names for the stats of a discriminator's ``count`` outputs.

    Args:
        discriminator (Module): The (multi-)discriminator.
        count (int): Number of sub-discriminator outputs.

    Returns:
        List[str]: The discriminator's ``sub_discriminator_names`` when it
            has them, else ``"0"``, ``"1"``, ...

    """
    names = getattr(discriminator, "sub_discriminator_names", None)
    if names is None or len(names) != count:
        return [str(i) for i in range(count)]
    return list(names)


def named_terms(
    discriminator: torch.nn.Module, prefix: str, terms: Sequence[torch.Tensor]
) -> Dict[str, float]:
    """Stats ``<prefix>_<name>`` of per-sub-discriminator loss terms."""
    names = sub_discriminator_names(discriminator, len(terms))
    return {f"{prefix}_{n}": t.item() for n, t in zip(names, terms)}


def discriminator_turn_loss(
    discriminator: torch.nn.Module,
    adv_loss: SoVITSDiscriminatorLoss,
    outs_hat: List[List[torch.Tensor]],
    outs: List[List[torch.Tensor]],
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """The discriminator's adversarial loss on generated (``outs_hat``) and
    real (``outs``) scores, in float32, and its stats: the totals and each
    sub-discriminator's real and fake terms.

    Returns:
        Tuple[Tensor, Dict[str, float]]: The loss (scalar) and the stats.

    """
    with torch.autocast(device_type=outs_hat[0][-1].device.type, enabled=False):
        real_terms, fake_terms = adv_loss.terms(outs_hat, outs)
        real_loss = adv_loss.reduce(real_terms)
        fake_loss = adv_loss.reduce(fake_terms)
        loss = real_loss + fake_loss
    stats = dict(
        discriminator_loss=loss.item(),
        discriminator_real_loss=real_loss.item(),
        discriminator_fake_loss=fake_loss.item(),
    )
    stats.update(named_terms(discriminator, "discriminator_real_loss", real_terms))
    stats.update(named_terms(discriminator, "discriminator_fake_loss", fake_terms))
    return loss, stats


@contextlib.contextmanager
def discriminator_without_parameter_grads(
    discriminator: torch.nn.Module, keep: bool = False
) -> Iterator[None]:
    """Run the discriminator in the generator turn without its parameter
    gradients, unless ``keep`` or its gradient checkpointing asks for them.

    Its parameters stop requiring gradients for the forward pass only, so
    the graph leads to the generated waveform alone; the flags are restored
    before anything calls backward.
    """
    keep = keep or getattr(discriminator, "gradient_checkpointing", False)
    frozen = [] if keep else [p for p in discriminator.parameters() if p.requires_grad]
    for parameter in frozen:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)


class SoVITS(VITS):
    """VITS with GPT-SoVITS's discriminator, losses and loss weights.

    Stats: the totals of ESPnet's VITS (``generator_loss``,
    ``generator_mel_loss``, ..., ``discriminator_real_loss``, weighted by the
    lambdas) plus, per sub-discriminator ``<name>`` (``s``, ``p2``, ...; the
    index for discriminators without names), the unweighted reference terms
    ``generator_adv_loss_<name>`` = mean((1 - D(ŷ))²),
    ``generator_feat_match_loss_<name>`` = Σ_l mean|f_l(y) - f_l(ŷ)|,
    ``discriminator_real_loss_<name>`` = mean((1 - D(y))²) and
    ``discriminator_fake_loss_<name>`` = mean(D(ŷ)²).
    """

    @typechecked
    def __init__(
        self,
        idim: int,
        odim: int,
        sampling_rate: int = 32000,
        generator_type: str = "vits_generator",
        generator_params: Optional[Dict[str, Any]] = None,
        discriminator_type: str = "sovits_mpd",
        discriminator_params: Dict[str, Any] = {},
        generator_adv_loss_params: Dict[str, Any] = {
            "average_by_discriminators": False,
        },
        discriminator_adv_loss_params: Dict[str, Any] = {
            "average_by_discriminators": False,
        },
        feat_match_loss_params: Dict[str, Any] = {
            "average_by_discriminators": False,
        },
        mel_loss_params: Dict[str, Any] = GPT_SOVITS_MEL_LOSS_PARAMS,
        stft_loss_params: Dict[str, Any] = {},
        lambda_adv: float = 1.0,
        lambda_mel: float = 45.0,
        lambda_feat_match: float = 2.0,
        lambda_dur: float = 1.0,
        lambda_kl: float = 1.0,
        lambda_stft: float = 0.0,
        cache_generator_outputs: bool = True,
        discriminator_grads_in_generator_turn: bool = False,
        plot_pred_mos: bool = False,
        mos_pred_tool: str = "utmos",
    ):
        """Initialize SoVITS.

        Args:
            idim (int): Vocabulary size.
            odim (int): Dimension of the auxiliary features (linear spectrogram).
            sampling_rate (int): Sampling rate stored for writing waveforms.
            generator_type (str): Generator type: ESPnet's ``vits_generator``
                or ``sovits_vits_generator``, which also takes GPT-SoVITS's
                decoder upsampling kernels (e.g. [16, 16, 8, 2, 2]).
            generator_params (Optional[Dict[str, Any]]): Generator parameters;
                ``None`` takes ESPnet's VITS defaults.
            discriminator_type (str): Name in ESPnet's discriminator table,
                ``sovits_mpd`` (GPT-SoVITS), ``sovits_mrd``, ``sovits_svc`` or
                one of ESPnet's own.
            discriminator_params (Dict[str, Any]): Discriminator parameters;
                ``{}`` is the type's defaults (for ``sovits_mpd`` GPT-SoVITS
                v1/v2's periods [2, 3, 5, 7, 11]).
            generator_adv_loss_params (Dict[str, Any]): Parameters of
                ``SoVITSGeneratorLoss``.
            discriminator_adv_loss_params (Dict[str, Any]): Parameters of
                ``SoVITSDiscriminatorLoss``.
            feat_match_loss_params (Dict[str, Any]): Parameters of
                ``SoVITSFeatureLoss``.
            mel_loss_params (Dict[str, Any]): Parameters of ``SoVITSMelLoss``;
                the default is GPT-SoVITS's s2.json (n_fft 2048, hop 640, win
                2048, 128 mels). ``fs`` defaults to ``sampling_rate`` and must
                equal it.
            stft_loss_params (Dict[str, Any]): Parameters of
                ``SoVITSMultiResolutionSTFTLoss`` (``resolutions``; the default
                is so-vits-svc-5.0's four).
            lambda_adv (float): Weight of the adversarial loss.
            lambda_mel (float): Weight of the mel loss.
            lambda_feat_match (float): Weight of the feature matching loss.
            lambda_dur (float): Weight of the duration loss.
            lambda_kl (float): Weight of the KL divergence loss.
            lambda_stft (float): Weight of the multi-resolution STFT loss
                (spectral convergence + log magnitude); 0 (GPT-SoVITS) leaves
                it out, so-vits-svc-5.0 trains with 9 (``c_stft``).
            cache_generator_outputs (bool): Reuse the generator outputs of the
                first turn of a training step in the second.
            discriminator_grads_in_generator_turn (bool): Also compute the
                discriminator's parameter gradients in the generator turn, as
                ESPnet's VITS does. ESPnet's GAN trainer clears all gradients
                after every turn, so they only enter its ``grad_clip`` norm,
                which is taken over all parameters; ``GANTTSTask`` sets this
                to true when ``grad_clip > 0`` and the config leaves it out.
                False computes only the gradients the generator needs (the
                generator's gradients are the same either way). The
                discriminator's ``gradient_checkpointing`` implies true: its
                recomputation must see the parameters as the forward saw them.
            plot_pred_mos (bool): Report the UTMOS of generated speech.
            mos_pred_tool (str): MOS predictor (``utmos``).

        """
        check_espnet_can_build(generator_type, discriminator_type)
        mel_loss_params = {"fs": sampling_rate, **mel_loss_params}
        if mel_loss_params["fs"] != sampling_rate:
            raise ValueError(
                f"mel_loss_params.fs={mel_loss_params['fs']} differs from "
                f"sampling_rate={sampling_rate}: set both to the sampling rate "
                "of the training data"
            )
        if generator_params is None:
            generator_params = vits_default("generator_params")
        if generator_type == GENERATOR_NAME:
            # ESPnet's VITS fills these in for its own generator type only.
            generator_params = {**generator_params, "vocabs": idim, "aux_channels": odim}
        super().__init__(
            idim=idim,
            odim=odim,
            sampling_rate=sampling_rate,
            generator_type=generator_type,
            generator_params=generator_params,
            discriminator_type=discriminator_type,
            discriminator_params=copy.deepcopy(discriminator_params),
            lambda_adv=lambda_adv,
            lambda_mel=lambda_mel,
            lambda_feat_match=lambda_feat_match,
            lambda_dur=lambda_dur,
            lambda_kl=lambda_kl,
            cache_generator_outputs=cache_generator_outputs,
            plot_pred_mos=plot_pred_mos,
            mos_pred_tool=mos_pred_tool,
        )
        self.generator_adv_loss = SoVITSGeneratorLoss(**generator_adv_loss_params)
        self.discriminator_adv_loss = SoVITSDiscriminatorLoss(
            **discriminator_adv_loss_params
        )
        self.feat_match_loss = SoVITSFeatureLoss(**feat_match_loss_params)
        self.mel_loss = SoVITSMelLoss(**mel_loss_params)
        self.kl_loss = SoVITSKLLoss()
        self.lambda_stft = lambda_stft
        self.stft_loss = (
            SoVITSMultiResolutionSTFTLoss(**stft_loss_params) if lambda_stft > 0 else None
        )
        self.discriminator_grads_in_generator_turn = (
            discriminator_grads_in_generator_turn
        )

    def _generator_outputs(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        feats: torch.Tensor,
        feats_lengths: torch.Tensor,
        sids: Optional[torch.Tensor],
        spembs: Optional[torch.Tensor],
        lids: Optional[torch.Tensor],
    ) -> Tuple[Any, ...]:
        """Run the generator, or reuse the outputs of this step's other turn.

        In training with ``cache_generator_outputs``, the first turn of a step
        keeps the outputs for the second, which uses and drops them; nothing
        is kept in evaluation.

        Returns:
            Tuple: The outputs of ``VITSGenerator.forward``.

        """
        if self.cache_generator_outputs and self._cache is not None:
            outs, self._cache = self._cache, None
            return outs
        outs = self.generator(
            text=text,
            text_lengths=text_lengths,
            feats=feats.transpose(1, 2),
            feats_lengths=feats_lengths,
            sids=sids,
            spembs=spembs,
            lids=lids,
        )
        if self.training and self.cache_generator_outputs:
            self._cache = outs
        return outs

    def _generator_turn_discriminator(self) -> contextlib.AbstractContextManager:
        """See ``discriminator_without_parameter_grads`` and ``__init__``."""
        return discriminator_without_parameter_grads(
            self.discriminator, keep=self.discriminator_grads_in_generator_turn
        )

    def _real_segments(
        self, speech: torch.Tensor, start_idxs: torch.Tensor
    ) -> torch.Tensor:
        """Cut the real waveform (B, T_wav) where the generator's segments start.

        Returns:
            Tensor: Real segments (B, 1, segment_size * upsample_factor).

        """
        upsample = self.generator.upsample_factor
        return get_segments(
            x=speech.unsqueeze(1),
            start_idxs=start_idxs * upsample,
            segment_size=self.generator.segment_size * upsample,
        )

    def _forward_generator(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        feats: torch.Tensor,
        feats_lengths: torch.Tensor,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        sids: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        lids: Optional[torch.Tensor] = None,
    ) -> Dict[str, Any]:
        """Perform the generator turn.

        Args:
            text (Tensor): Text index tensor (B, T_text).
            text_lengths (Tensor): Text length tensor (B,).
            feats (Tensor): Feature tensor (B, T_feats, aux_channels).
            feats_lengths (Tensor): Feature length tensor (B,).
            speech (Tensor): Speech waveform tensor (B, T_wav).
            speech_lengths (Tensor): Speech length tensor (B,).
            sids (Optional[Tensor]): Speaker index tensor (B,) or (B, 1).
            spembs (Optional[Tensor]): Speaker embedding tensor (B, spk_embed_dim).
            lids (Optional[Tensor]): Language index tensor (B,) or (B, 1).

        Returns:
            Dict[str, Any]: ``loss`` (scalar), ``stats``, ``weight`` and
                ``optim_idx`` 0.

        """
        outs = self._generator_outputs(
            text, text_lengths, feats, feats_lengths, sids, spembs, lids
        )
        speech_hat_, dur_nll, _, start_idxs, _, z_mask, outs_ = outs
        _, z_p, m_p, logs_p, _, logs_q = outs_
        speech_ = self._real_segments(speech, start_idxs)

        with self._generator_turn_discriminator():
            p_hat = self.discriminator(speech_hat_)
        with torch.no_grad():
            p = self.discriminator(speech_)

        with torch.autocast(device_type=speech_hat_.device.type, enabled=False):
            adv_terms = self.generator_adv_loss.terms(p_hat)
            feat_terms = self.feat_match_loss.terms(p_hat, p)
            mel_loss = self.mel_loss(speech_hat_, speech_) * self.lambda_mel
            kl_loss = self.kl_loss(z_p, logs_q, m_p, logs_p, z_mask) * self.lambda_kl
            dur_loss = torch.sum(dur_nll.float()) * self.lambda_dur
            adv_loss = self.generator_adv_loss.reduce(adv_terms) * self.lambda_adv
            feat_match_loss = (
                self.feat_match_loss.reduce(feat_terms) * self.lambda_feat_match
            )
            loss = mel_loss + kl_loss + dur_loss + adv_loss + feat_match_loss
            if self.stft_loss is not None:
                spectral_convergence, log_magnitude = self.stft_loss(
                    speech_hat_, speech_
                )
                stft_loss = (spectral_convergence + log_magnitude) * self.lambda_stft
                loss = loss + stft_loss

        stats = dict(
            generator_loss=loss.item(),
            generator_mel_loss=mel_loss.item(),
            generator_kl_loss=kl_loss.item(),
            generator_dur_loss=dur_loss.item(),
            generator_adv_loss=adv_loss.item(),
            generator_feat_match_loss=feat_match_loss.item(),
        )
        if self.stft_loss is not None:
            stats["generator_stft_loss"] = stft_loss.item()
        stats.update(named_terms(self.discriminator, "generator_adv_loss", adv_terms))
        stats.update(named_terms(self.discriminator, "generator_feat_match_loss", feat_terms))
        if self.plot_pred_mos:
            with torch.no_grad():
                pmos = self.predictor(speech_hat_.squeeze(1), self.fs).mean()
            stats["generator_predicted_mos"] = pmos.item()

        loss, stats, weight = force_gatherable((loss, stats, text.size(0)), loss.device)
        return {"loss": loss, "stats": stats, "weight": weight, "optim_idx": 0}

    def _forward_discrminator(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        feats: torch.Tensor,
        feats_lengths: torch.Tensor,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        sids: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        lids: Optional[torch.Tensor] = None,
    ) -> Dict[str, Any]:
        """Perform the discriminator turn (the name is ESPnet's, typo included).

        Real and generated segments go through the discriminator in one
        batched ``forward_pair`` call when the discriminator has one.

        Args:
            text (Tensor): Text index tensor (B, T_text).
            text_lengths (Tensor): Text length tensor (B,).
            feats (Tensor): Feature tensor (B, T_feats, aux_channels).
            feats_lengths (Tensor): Feature length tensor (B,).
            speech (Tensor): Speech waveform tensor (B, T_wav).
            speech_lengths (Tensor): Speech length tensor (B,).
            sids (Optional[Tensor]): Speaker index tensor (B,) or (B, 1).
            spembs (Optional[Tensor]): Speaker embedding tensor (B, spk_embed_dim).
            lids (Optional[Tensor]): Language index tensor (B,) or (B, 1).

        Returns:
            Dict[str, Any]: ``loss`` (scalar), ``stats``, ``weight`` and
                ``optim_idx`` 1.

        """
        outs = self._generator_outputs(
            text, text_lengths, feats, feats_lengths, sids, spembs, lids
        )
        speech_hat_, _, _, start_idxs, *_ = outs
        speech_ = self._real_segments(speech, start_idxs)

        if hasattr(self.discriminator, "forward_pair"):
            p, p_hat = self.discriminator.forward_pair(speech_, speech_hat_.detach())
        else:
            p_hat = self.discriminator(speech_hat_.detach())
            p = self.discriminator(speech_)

        loss, stats = discriminator_turn_loss(
            self.discriminator, self.discriminator_adv_loss, p_hat, p
        )
        loss, stats, weight = force_gatherable((loss, stats, text.size(0)), loss.device)
        return {"loss": loss, "stats": stats, "weight": weight, "optim_idx": 1}
