"""``tts: gpt_sovits``: GPT-SoVITS's stage-2 model trained by ESPnet.

The generator is GPT-SoVITS's ``SynthesizerTrn`` (:mod:`.synthesizer`), the
discriminator ``sovits_mpd`` of the same version, the losses and weights
those of ``s2_train.py``: adversarial 1, feature matching 2, mel 45 (L1
between the log-mel of the real spectrogram's slice and of the generated
waveform), KL 1 and the quantizer's commitment term 1. ``ssl_proj`` and the
quantizer are frozen, as the reference's ``freeze_quantizer`` leaves them.

With ESPnet's GAN trainer at ``generator_first: false`` and
``cache_generator_outputs: true`` (the recipes' settings) a step runs in the
reference's order: generator forward, discriminator step on (y, ŷ.detach()),
the discriminator again on (y, ŷ), generator step.
"""

from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from espnet2.gan_tts.abs_gan_tts import AbsGANTTS
from espnet2.torch_utils.device_funcs import force_gatherable
from typeguard import typechecked

from espnet_sovits_disc.gpt_sovits.batch import spectrogram_and_ssl
from espnet_sovits_disc.gpt_sovits.config import SynthesizerConfig
from espnet_sovits_disc.gpt_sovits.symbols import inventory_file
from espnet_sovits_disc.gpt_sovits.synthesizer import SynthesizerTrn
from espnet_sovits_disc.losses import (
    SoVITSDiscriminatorLoss,
    SoVITSFeatureLoss,
    SoVITSGeneratorLoss,
    SoVITSKLLoss,
)
from espnet_sovits_disc.mel import LogMelSpectrogram
from espnet_sovits_disc.model import (
    discriminator_turn_loss,
    discriminator_without_parameter_grads,
    named_terms,
)
from espnet_sovits_disc.registry import get_discriminator_class

# The enc_p parts that s2_train.py trains at ``text_low_lr_rate`` times the
# learning rate.
LOW_LEARNING_RATE_PARTS = ("text_embedding", "encoder_text", "mrte")


def slice_frames(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """Cut ``size`` steps from each item of (B, C, T) at ``starts`` (B,)."""
    return torch.stack(
        [x[b, :, start : start + size] for b, start in enumerate(starts.tolist())]
    )


class GPTSoVITS(AbsGANTTS):
    """GPT-SoVITS stage 2: ``SynthesizerTrn`` and its multi-period discriminator.

    Data: ``text`` (GPT-SoVITS phoneme ids), ``speech`` (32 kHz),
    ``ssl_feats`` (HuBERT features (frames, 768) at 50 Hz) and, for v2Pro
    and v2ProPlus, ``spembs`` (the speaker-verification embedding, 20480).

    Stats: ``generator_loss`` and its weighted parts (``generator_mel_loss``,
    ``generator_kl_loss``, ``generator_commit_loss``, ``generator_adv_loss``,
    ``generator_feat_match_loss``), ``discriminator_loss`` with its real and
    fake parts, and every sub-discriminator's unweighted terms as
    ``tts: sovits`` reports them.
    """

    @typechecked
    def __init__(
        self,
        idim: int,
        odim: Optional[int] = None,
        version: str = "v2",
        sampling_rate: int = 32000,
        generator_params: Dict[str, Any] = {},
        discriminator_type: str = "sovits_mpd",
        discriminator_params: Optional[Dict[str, Any]] = None,
        spectrogram_params: Dict[str, Any] = {
            "n_fft": 2048,
            "hop_length": 640,
            "win_length": 2048,
            "n_mels": 128,
            "fmin": 0.0,
            "fmax": None,
        },
        lambda_adv: float = 1.0,
        lambda_feat_match: float = 2.0,
        lambda_mel: float = 45.0,
        lambda_kl: float = 1.0,
        lambda_commit: float = 1.0,
        text_low_lr_rate: float = 0.4,
        cache_generator_outputs: bool = True,
    ):
        """Initialize GPTSoVITS.

        Args:
            idim (int): Vocabulary size: the version's GPT-SoVITS phoneme
                inventory (322 symbols for v1, 732 from v2 on).
            odim (Optional[int]): Linear spectrogram bins (n_fft // 2 + 1);
                ``None`` takes them from ``spectrogram_params``.
            version (str): ``v1``, ``v2``, ``v2Pro`` or ``v2ProPlus``.
            sampling_rate (int): Sampling rate of ``speech`` (32000).
            generator_params (Dict[str, Any]): ``SynthesizerConfig`` fields
                replacing the version's (s2.json / s2v2Pro.json).
            discriminator_type (str): Discriminator name (``sovits_mpd``).
            discriminator_params (Optional[Dict[str, Any]]): Its parameters;
                ``None`` is ``{"version": version}`` (v2Pro adds periods 17, 23).
            spectrogram_params (Dict[str, Any]): ``LogMelSpectrogram``
                settings of the linear spectrogram fed to the generator and
                of the mel loss (s2.json's ``data``).
            lambda_adv (float): Weight of the adversarial loss.
            lambda_feat_match (float): Weight of the feature matching loss.
            lambda_mel (float): Weight of the mel loss (``c_mel``).
            lambda_kl (float): Weight of the KL loss (``c_kl``).
            lambda_commit (float): Weight of the quantizer's commitment loss.
            text_low_lr_rate (float): Learning-rate factor of ``enc_p``'s
                text embedding, text encoder and MRTE.
            cache_generator_outputs (bool): Reuse the generator outputs of a
                step's first turn in the second.

        Raises:
            ValueError: On a vocabulary, spectrogram size, sampling rate or
                discriminator version that does not fit the generator.

        """
        super().__init__()
        config = SynthesizerConfig.for_version(version, **generator_params)
        self.spectrogram = LogMelSpectrogram(fs=sampling_rate, **spectrogram_params)
        bins = self.spectrogram.n_fft // 2 + 1
        hop = 1
        for rate in config.upsample_rates:
            hop *= rate
        problems = []
        if idim != config.n_symbols:
            problems.append(
                f"the token list has {idim} entries; GPT-SoVITS {version}'s text "
                f"embedding has {config.n_symbols} symbols: use the token list "
                f"{inventory_file(version)}"
            )
        if config.spec_channels != bins or (odim is not None and odim != bins):
            problems.append(
                f"odim={odim} and spec_channels={config.spec_channels} must equal "
                f"n_fft // 2 + 1 = {bins}"
            )
        if hop != self.spectrogram.hop_length:
            problems.append(
                f"the decoder upsamples by {hop} but hop_length is "
                f"{self.spectrogram.hop_length}"
            )
        if problems:
            raise ValueError("tts gpt_sovits: " + "; ".join(problems))
        if discriminator_params is None:
            discriminator_params = (
                {"version": version} if discriminator_type == "sovits_mpd" else {}
            )
        discriminator_version = discriminator_params.get("version", version)
        if discriminator_type == "sovits_mpd" and discriminator_version != version:
            raise ValueError(
                f"discriminator_params.version={discriminator_version!r} but the "
                f"generator is {version!r}: GPT-SoVITS trains each version with "
                "its own discriminator; drop the discriminator's version"
            )
        self.generator = SynthesizerTrn(config)
        self.generator.ssl_proj.requires_grad_(False)
        self.generator.quantizer.requires_grad_(False)
        self.discriminator = get_discriminator_class(discriminator_type)(
            **discriminator_params
        )
        self.version = version
        self.fs = sampling_rate
        self.generator_adv_loss = SoVITSGeneratorLoss()
        self.discriminator_adv_loss = SoVITSDiscriminatorLoss()
        self.feat_match_loss = SoVITSFeatureLoss()
        self.kl_loss = SoVITSKLLoss()
        self.lambda_adv = lambda_adv
        self.lambda_feat_match = lambda_feat_match
        self.lambda_mel = lambda_mel
        self.lambda_kl = lambda_kl
        self.lambda_commit = lambda_commit
        self.text_low_lr_rate = text_low_lr_rate
        self.cache_generator_outputs = cache_generator_outputs
        self._cache: Optional[Tuple[Any, ...]] = None

    @property
    def require_raw_speech(self) -> bool:
        """The model computes its spectrograms from the waveform."""
        return True

    @property
    def require_vocoder(self) -> bool:
        """The generator outputs waveforms."""
        return False

    def generator_parameter_groups(self, lr: float) -> List[Dict[str, Any]]:
        """The generator's optimizer groups as ``s2_train.py`` builds them.

        Args:
            lr (float): The learning rate.

        Returns:
            List[Dict[str, Any]]: The trainable parameters outside the
                low-rate parts at ``lr``, then ``enc_p``'s text embedding,
                text encoder and MRTE at ``lr * text_low_lr_rate``.

        """
        low = [getattr(self.generator.enc_p, name) for name in LOW_LEARNING_RATE_PARTS]
        low_ids = {id(p) for part in low for p in part.parameters()}
        base = [
            p
            for p in self.generator.parameters()
            if p.requires_grad and id(p) not in low_ids
        ]
        groups = [{"params": base, "lr": lr}]
        groups += [
            {"params": list(part.parameters()), "lr": lr * self.text_low_lr_rate}
            for part in low
        ]
        return groups

    def _sv_emb(self, spembs: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        return spembs if self.generator.uses_speaker_verification else None

    def _generator_outputs(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        ssl_feats: torch.Tensor,
        ssl_feats_lengths: torch.Tensor,
        spembs: Optional[torch.Tensor],
    ) -> Tuple[Any, ...]:
        """The generator's training forward and the spectrogram, or this
        step's other turn's (see ``cache_generator_outputs``)."""
        if self.cache_generator_outputs and self._cache is not None:
            outs, self._cache = self._cache, None
            return outs
        spec, spec_lengths, ssl = spectrogram_and_ssl(
            self.spectrogram, speech, speech_lengths, ssl_feats, ssl_feats_lengths
        )
        outs = (
            self.generator(
                ssl, spec, spec_lengths, text, text_lengths, self._sv_emb(spembs)
            ),
            spec,
        )
        if self.training and self.cache_generator_outputs:
            self._cache = outs
        return outs

    def forward(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        ssl_feats: Optional[torch.Tensor] = None,
        ssl_feats_lengths: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        forward_generator: bool = True,
        **kwargs: Any,
    ) -> Dict[str, Any]:
        """Perform the generator or the discriminator turn.

        Args:
            text (Tensor): Phoneme ids (B, T_text).
            text_lengths (Tensor): Phonemes per item (B,).
            speech (Tensor): Waveforms (B, T_wav) at 32 kHz.
            speech_lengths (Tensor): Samples per item (B,).
            ssl_feats (Tensor): HuBERT features (B, T_ssl, 768) at 50 Hz.
            ssl_feats_lengths (Tensor): Frames per item (B,).
            spembs (Optional[Tensor]): Speaker-verification embeddings
                (B, 20480), for v2Pro and v2ProPlus.
            forward_generator (bool): The generator's turn, else the
                discriminator's.
            **kwargs (Any): Other data ESPnet passes (ignored).

        Returns:
            Dict[str, Any]: ``loss``, ``stats``, ``weight`` and ``optim_idx``
                (0 generator, 1 discriminator).

        Raises:
            ValueError: Without ``ssl_feats`` (the message names the data key).

        """
        if ssl_feats is None or ssl_feats_lengths is None:
            raise ValueError(
                "tts gpt_sovits needs the ssl_feats data key (HuBERT features): "
                "add `--train_data_path_and_name_and_type <dir>/ssl_feats.scp,"
                "ssl_feats,npy` (and the same for validation) and train with "
                "espnet_sovits_disc's GAN-TTS task"
            )
        (outs, spec) = self._generator_outputs(
            text, text_lengths, speech, speech_lengths, ssl_feats, ssl_feats_lengths, spembs
        )
        speech_hat, _, starts, *_ = outs
        segment = self.generator.segment_size
        hop = self.spectrogram.hop_length
        speech_real = slice_frames(speech.unsqueeze(1), starts * hop, segment * hop)
        if forward_generator:
            return self._generator_turn(outs, spec, speech_real, text.size(0))
        return self._discriminator_turn(speech_hat, speech_real, text.size(0))

    def step_losses(
        self, outs: Tuple[Any, ...], spec: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """The discriminator-free generator losses of ``s2_train.py``.

        Args:
            outs (Tuple): The generator's training-forward outputs.
            spec (Tensor): The linear spectrogram it ran on (B, bins, T).

        Returns:
            Dict[str, Tensor]: Weighted ``mel``, ``kl`` and ``commit`` losses.

        """
        speech_hat, commit_loss, starts, _, z_mask, stats, _ = outs
        _, z_p, m_p, logs_p, _, logs_q = stats
        with torch.autocast(device_type=speech_hat.device.type, enabled=False):
            mel_real = slice_frames(
                self.spectrogram.log_mel(spec), starts, self.generator.segment_size
            )
            mel_hat = self.spectrogram(speech_hat.squeeze(1))
            return {
                "mel": F.l1_loss(mel_real, mel_hat) * self.lambda_mel,
                "kl": self.kl_loss(z_p, logs_q, m_p, logs_p, z_mask) * self.lambda_kl,
                "commit": commit_loss.float() * self.lambda_commit,
            }

    def _generator_turn(
        self,
        outs: Tuple[Any, ...],
        spec: torch.Tensor,
        speech_real: torch.Tensor,
        batch_size: int,
    ) -> Dict[str, Any]:
        speech_hat = outs[0]
        with discriminator_without_parameter_grads(self.discriminator):
            p_hat = self.discriminator(speech_hat)
        with torch.no_grad():
            p = self.discriminator(speech_real)
        losses = self.step_losses(outs, spec)
        with torch.autocast(device_type=speech_hat.device.type, enabled=False):
            adv_terms = self.generator_adv_loss.terms(p_hat)
            feat_terms = self.feat_match_loss.terms(p_hat, p)
            losses["adv"] = self.generator_adv_loss.reduce(adv_terms) * self.lambda_adv
            losses["feat_match"] = (
                self.feat_match_loss.reduce(feat_terms) * self.lambda_feat_match
            )
            loss = sum(losses.values())
        stats = {"generator_loss": loss.item()}
        stats.update({f"generator_{k}_loss": v.item() for k, v in losses.items()})
        stats.update(named_terms(self.discriminator, "generator_adv_loss", adv_terms))
        stats.update(
            named_terms(self.discriminator, "generator_feat_match_loss", feat_terms)
        )
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return {"loss": loss, "stats": stats, "weight": weight, "optim_idx": 0}

    def _discriminator_turn(
        self, speech_hat: torch.Tensor, speech_real: torch.Tensor, batch_size: int
    ) -> Dict[str, Any]:
        p, p_hat = self.discriminator.forward_pair(speech_real, speech_hat.detach())
        loss, stats = discriminator_turn_loss(
            self.discriminator, self.discriminator_adv_loss, p_hat, p
        )
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return {"loss": loss, "stats": stats, "weight": weight, "optim_idx": 1}

    @torch.no_grad()
    def inference(
        self,
        text: torch.Tensor,
        speech: torch.Tensor,
        ssl_feats: torch.Tensor,
        spembs: Optional[torch.Tensor] = None,
        noise_scale: float = 0.5,
        speed: float = 1.0,
        **kwargs: Any,
    ) -> Dict[str, torch.Tensor]:
        """Synthesize text with a reference utterance's voice and semantic codes.

        Args:
            text (Tensor): Phoneme ids (T_text,).
            speech (Tensor): Reference waveform (T_wav,) at 32 kHz: its
                spectrogram gives the timbre (``refer``).
            ssl_feats (Tensor): HuBERT features (T_ssl, 768) whose semantic
                codes are rendered (an odd last frame is dropped, as
                ssl_proj's stride does).
            spembs (Optional[Tensor]): Speaker-verification embedding
                (20480,), for v2Pro and v2ProPlus.
            noise_scale (float): Scale of the prior's noise.
            speed (float): Speaking rate.
            **kwargs (Any): Other inputs of ESPnet's inference (ignored).

        Returns:
            Dict[str, Tensor]: ``wav`` (T_out,).

        """
        refer = self.spectrogram.linear(speech.view(1, -1))
        ssl = ssl_feats.transpose(0, 1)[None].float()
        ssl = ssl[:, :, : ssl.size(2) - ssl.size(2) % 2]
        codes = self.generator.extract_latent(ssl).transpose(0, 1)
        sv_emb = None if spembs is None else self._sv_emb(spembs.view(1, -1))
        wav = self.generator.decode(
            codes,
            text.view(1, -1),
            refer,
            noise_scale=noise_scale,
            speed=speed,
            sv_emb=sv_emb,
        )
        return {"wav": wav.view(-1)}
