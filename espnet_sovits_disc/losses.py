"""GPT-SoVITS and so-vits-svc-5.0 GAN-TTS losses in ESPnet's conventions.

Discriminator outputs are ESPnet's ``List[List[Tensor]]``: one inner list
per sub-discriminator, ``[fmap_0, ..., fmap_{N-1}, score]``. The losses are
unweighted (the model applies the lambdas) and computed in float32 whatever
the dtype of the inputs (fp16 under ``--use_amp``).

With ``average_by_discriminators=False`` (the default) they are GPT-SoVITS's
``module/losses.py`` sums over the K sub-discriminators; with ``True`` they
are so-vits-svc-5.0's averages (divided by K). Each adversarial and feature
loss has ``terms(...)``, the per-sub-discriminator values, and ``reduce``,
which turns them into the loss ``forward`` returns.
"""

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from typeguard import typechecked

from espnet_sovits_disc.discriminators.resolution import SOVITS_SVC_RESOLUTIONS
from espnet_sovits_disc.mel import LogMelSpectrogram

Outputs = Union[List[List[torch.Tensor]], List[torch.Tensor], torch.Tensor]


def final_scores(outputs: Outputs) -> List[torch.Tensor]:
    """Return each sub-discriminator's score from discriminator outputs.

    Args:
        outputs (Union[List[List[Tensor]], List[Tensor], Tensor]): Outputs of
            a multi-discriminator (last element of each inner list is the
            score), a list of scores, or a single score tensor.

    Returns:
        List[Tensor]: One score tensor per sub-discriminator.

    """
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [o[-1] if isinstance(o, (list, tuple)) else o for o in outputs]


class _Reduction(torch.nn.Module):
    """Sum (GPT-SoVITS) or mean (so-vits-svc-5.0) over sub-discriminators."""

    def __init__(self, average_by_discriminators: bool):
        super().__init__()
        self.average_by_discriminators = average_by_discriminators

    def reduce(self, terms: Sequence[torch.Tensor]) -> torch.Tensor:
        """Combine per-sub-discriminator terms into the loss.

        Args:
            terms (Sequence[Tensor]): Scalar terms, one per sub-discriminator.

        Returns:
            Tensor: Their sum, or their mean if ``average_by_discriminators``.

        """
        if len(terms) == 0:
            raise ValueError("the discriminator returned no outputs")
        total = torch.stack(list(terms)).sum()
        if self.average_by_discriminators:
            total = total / len(terms)
        return total


class SoVITSGeneratorLoss(_Reduction):
    """Least-squares generator adversarial loss, Σ_k mean((1 - D_k(ŷ))²)."""

    @typechecked
    def __init__(self, *, average_by_discriminators: bool = False):
        """Initialize SoVITSGeneratorLoss.

        Args:
            average_by_discriminators (bool): Divide by the number of
                sub-discriminators K (so-vits-svc-5.0) instead of summing
                (GPT-SoVITS).

        """
        super().__init__(average_by_discriminators)

    def terms(self, outputs_hat: Outputs) -> List[torch.Tensor]:
        """Calculate the per-sub-discriminator terms.

        Args:
            outputs_hat (Union[List[List[Tensor]], List[Tensor], Tensor]):
                Discriminator outputs for generated speech; scores (B, N_k).

        Returns:
            List[Tensor]: K float32 scalars mean((1 - D_k(ŷ))²).

        """
        return [torch.mean((1.0 - s.float()) ** 2) for s in final_scores(outputs_hat)]

    def forward(self, outputs_hat: Outputs) -> torch.Tensor:
        """Calculate the generator adversarial loss.

        Args:
            outputs_hat (Union[List[List[Tensor]], List[Tensor], Tensor]):
                Discriminator outputs for generated speech.

        Returns:
            Tensor: Float32 scalar loss.

        """
        return self.reduce(self.terms(outputs_hat))


class SoVITSDiscriminatorLoss(_Reduction):
    """Least-squares discriminator loss: real Σ_k mean((1 - D_k(y))²) and
    fake Σ_k mean(D_k(ŷ)²)."""

    @typechecked
    def __init__(self, *, average_by_discriminators: bool = False):
        """Initialize SoVITSDiscriminatorLoss.

        Args:
            average_by_discriminators (bool): Divide each of the real and the
                fake loss by the number of sub-discriminators K
                (so-vits-svc-5.0) instead of summing (GPT-SoVITS).

        """
        super().__init__(average_by_discriminators)

    def terms(
        self, outputs_hat: Outputs, outputs: Outputs
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Calculate the per-sub-discriminator terms.

        Args:
            outputs_hat (Union[List[List[Tensor]], List[Tensor], Tensor]):
                Discriminator outputs for generated speech.
            outputs (Union[List[List[Tensor]], List[Tensor], Tensor]):
                Discriminator outputs for real speech.

        Returns:
            Tuple[List[Tensor], List[Tensor]]: The K float32 real terms
                mean((1 - D_k(y))²) and the K fake terms mean(D_k(ŷ)²).

        """
        scores_hat, scores = final_scores(outputs_hat), final_scores(outputs)
        if len(scores_hat) != len(scores):
            raise ValueError(
                f"{len(scores_hat)} generated and {len(scores)} real "
                "sub-discriminator outputs; pass outputs of the same discriminator"
            )
        real = [torch.mean((1.0 - s.float()) ** 2) for s in scores]
        fake = [torch.mean(s.float() ** 2) for s in scores_hat]
        return real, fake

    def forward(
        self, outputs_hat: Outputs, outputs: Outputs
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Calculate the discriminator loss.

        Args:
            outputs_hat (Union[List[List[Tensor]], List[Tensor], Tensor]):
                Discriminator outputs for generated speech.
            outputs (Union[List[List[Tensor]], List[Tensor], Tensor]):
                Discriminator outputs for real speech.

        Returns:
            Tuple[Tensor, Tensor]: Float32 scalar real loss and fake loss.

        """
        real, fake = self.terms(outputs_hat, outputs)
        return self.reduce(real), self.reduce(fake)


class SoVITSFeatureLoss(_Reduction):
    """Feature matching loss Σ_k Σ_l mean|f_kl(y) - f_kl(ŷ)|, real detached.

    Every element of each inner list counts, the final output included, as in
    GPT-SoVITS and so-vits-svc-5.0. The factor 2 of both references is the
    model's ``lambda_feat_match``.
    """

    @typechecked
    def __init__(self, *, average_by_discriminators: bool = False):
        """Initialize SoVITSFeatureLoss.

        Args:
            average_by_discriminators (bool): Divide by the number of
                sub-discriminators K (so-vits-svc-5.0) instead of summing
                (GPT-SoVITS).

        """
        super().__init__(average_by_discriminators)

    def terms(
        self,
        feats_hat: List[List[torch.Tensor]],
        feats: List[List[torch.Tensor]],
    ) -> List[torch.Tensor]:
        """Calculate the per-sub-discriminator terms.

        Args:
            feats_hat (List[List[Tensor]]): Discriminator outputs for generated
                speech, ``[fmap_0, ..., score]`` per sub-discriminator.
            feats (List[List[Tensor]]): The same for real speech (detached here).

        Returns:
            List[Tensor]: K float32 scalars Σ_l mean|f_kl(y) - f_kl(ŷ)|.

        """
        if len(feats_hat) != len(feats):
            raise ValueError(
                f"{len(feats_hat)} generated and {len(feats)} real "
                "sub-discriminator outputs; pass outputs of the same discriminator"
            )
        terms = []
        for k, (layers_hat, layers) in enumerate(zip(feats_hat, feats)):
            if not isinstance(layers_hat, (list, tuple)) or len(layers_hat) != len(
                layers
            ):
                raise ValueError(
                    f"sub-discriminator {k}: feature matching needs lists of "
                    "feature maps of equal length for generated and real speech"
                )
            terms.append(
                torch.stack(
                    [
                        torch.mean(torch.abs(f.detach().float() - f_hat.float()))
                        for f_hat, f in zip(layers_hat, layers)
                    ]
                ).sum()
            )
        return terms

    def forward(
        self,
        feats_hat: List[List[torch.Tensor]],
        feats: List[List[torch.Tensor]],
    ) -> torch.Tensor:
        """Calculate the feature matching loss.

        Args:
            feats_hat (List[List[Tensor]]): Discriminator outputs for generated
                speech.
            feats (List[List[Tensor]]): Discriminator outputs for real speech.

        Returns:
            Tensor: Float32 scalar loss.

        """
        return self.reduce(self.terms(feats_hat, feats))


class SoVITSKLLoss(torch.nn.Module):
    """VITS / GPT-SoVITS KL divergence of the prior and the posterior.

    ``kl = logs_p - logs_q - 0.5 + 0.5 (z_p - m_p)² exp(-2 logs_p)``,
    averaged over the valid frames: ``sum(kl * z_mask) / sum(z_mask)``.
    """

    def forward(
        self,
        z_p: torch.Tensor,
        logs_q: torch.Tensor,
        m_p: torch.Tensor,
        logs_p: torch.Tensor,
        z_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Calculate the KL divergence loss.

        Args:
            z_p (Tensor): Flow-transformed posterior sample (B, H, T_feats).
            logs_q (Tensor): Posterior log standard deviation (B, H, T_feats).
            m_p (Tensor): Expanded prior mean (B, H, T_feats).
            logs_p (Tensor): Expanded prior log standard deviation (B, H, T_feats).
            z_mask (Tensor): Mask of valid frames (B, 1, T_feats).

        Returns:
            Tensor: Float32 scalar loss.

        """
        z_p, logs_q, m_p, logs_p, z_mask = (
            t.float() for t in (z_p, logs_q, m_p, logs_p, z_mask)
        )
        kl = logs_p - logs_q - 0.5
        kl = kl + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
        return torch.sum(kl * z_mask) / torch.sum(z_mask)


class SoVITSMelLoss(torch.nn.Module):
    """GPT-SoVITS mel loss: L1 between log-mel spectrograms (``mel.py``)."""

    @typechecked
    def __init__(
        self,
        *,
        fs: int = 32000,
        n_fft: int = 2048,
        hop_length: int = 640,
        win_length: Optional[int] = 2048,
        n_mels: int = 128,
        fmin: float = 0.0,
        fmax: Optional[float] = None,
    ):
        """Initialize SoVITSMelLoss.

        The defaults are GPT-SoVITS's ``s2.json`` data settings; set ``fs`` to
        the sampling rate of your data.

        Args:
            fs (int): Sampling rate.
            n_fft (int): FFT size.
            hop_length (int): Hop size in samples.
            win_length (Optional[int]): Hann window length; ``None`` is n_fft.
            n_mels (int): Number of mel bins.
            fmin (float): Lowest filterbank frequency in Hz.
            fmax (Optional[float]): Highest filterbank frequency; ``None`` is fs / 2.

        """
        super().__init__()
        self.mel = LogMelSpectrogram(
            fs=fs,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            n_mels=n_mels,
            fmin=fmin,
            fmax=fmax,
        )

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Calculate the mel loss.

        Args:
            y_hat (Tensor): Generated waveform (B, 1, T) or (B, T).
            y (Tensor): Real waveform (B, 1, T) or (B, T).

        Returns:
            Tensor: Float32 scalar mean |mel(y_hat) - mel(y)|.

        """
        if y_hat.shape != y.shape:
            raise ValueError(
                f"generated {tuple(y_hat.shape)} and real {tuple(y.shape)} "
                "waveforms differ in shape"
            )
        return F.l1_loss(self.mel(y_hat), self.mel(y))


class SoVITSMultiResolutionSTFTLoss(torch.nn.Module):
    """so-vits-svc-5.0 multi-resolution STFT loss.

    For each resolution: magnitude ``sqrt(clamp(re² + im², 1e-7))`` of a
    centred (reflect-padded) STFT with a Hann window, spectral convergence
    ``||Y - Ŷ||_F / ||Y||_F`` over the whole batch and log-magnitude
    ``mean|log Y - log Ŷ|``; both averaged over the resolutions.
    so-vits-svc-5.0 trains with ``9 * (sc + mag)`` (``c_stft``).
    """

    @typechecked
    def __init__(
        self,
        *,
        resolutions: Sequence[Sequence[int]] = SOVITS_SVC_RESOLUTIONS,
    ):
        """Initialize SoVITSMultiResolutionSTFTLoss.

        Args:
            resolutions (Sequence[Sequence[int]]): (n_fft, hop_length,
                win_length) triples; the default is so-vits-svc-5.0's four
                MRD resolutions.

        """
        super().__init__()
        self.resolutions = []
        for resolution in resolutions:
            if len(resolution) != 3 or not 0 < resolution[2] <= resolution[0]:
                raise ValueError(
                    "each resolution is [n_fft, hop_length, win_length] with "
                    f"0 < win_length <= n_fft, got {list(resolution)}"
                )
            self.resolutions.append(tuple(int(v) for v in resolution))
        if not self.resolutions:
            raise ValueError("give at least one resolution")

    def _magnitude(
        self, x: torch.Tensor, n_fft: int, hop_length: int, win_length: int
    ) -> torch.Tensor:
        window = torch.hann_window(win_length, device=x.device)
        spec = torch.stft(
            x,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=1e-7))

    def forward(
        self, y_hat: torch.Tensor, y: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Calculate the multi-resolution STFT loss.

        Args:
            y_hat (Tensor): Generated waveform (B, 1, T) or (B, T).
            y (Tensor): Real waveform (B, 1, T) or (B, T); T must exceed
                n_fft // 2 of every resolution (reflect padding).

        Returns:
            Tuple[Tensor, Tensor]: Float32 spectral convergence loss and
                log STFT magnitude loss, each averaged over the resolutions.

        """
        if y_hat.shape != y.shape:
            raise ValueError(
                f"generated {tuple(y_hat.shape)} and real {tuple(y.shape)} "
                "waveforms differ in shape"
            )
        if y.dim() == 3 and y.size(1) == 1:
            y_hat, y = y_hat.squeeze(1), y.squeeze(1)
        if y.dim() != 2:
            raise ValueError(
                f"expected waveforms (B, 1, T) or (B, T), got {tuple(y.shape)}"
            )
        longest = max(n_fft for n_fft, _, _ in self.resolutions)
        if y.size(-1) <= longest // 2:
            raise ValueError(
                f"waveforms of {y.size(-1)} samples are too short for an STFT "
                f"with n_fft={longest} (reflect padding of {longest // 2}); "
                f"use segments longer than {longest // 2} samples"
            )
        sc_loss, mag_loss = 0.0, 0.0
        with torch.autocast(device_type=y.device.type, enabled=False):
            y_hat, y = y_hat.float(), y.float()
            for n_fft, hop_length, win_length in self.resolutions:
                mag_hat = self._magnitude(y_hat, n_fft, hop_length, win_length)
                mag = self._magnitude(y, n_fft, hop_length, win_length)
                sc_loss = sc_loss + torch.linalg.norm(
                    mag - mag_hat
                ) / torch.linalg.norm(mag)
                mag_loss = mag_loss + F.l1_loss(torch.log(mag_hat), torch.log(mag))
        count = len(self.resolutions)
        return sc_loss / count, mag_loss / count
