"""GPT-SoVITS's stage-2 generator (``SynthesizerTrn``), rebuilt module by module.

Every module keeps the reference's state-dict keys, shapes, constants and
``torch.nn.Dropout`` positions, so published weights load and the golden
outputs (tests/data/golden_s2) are reproduced.

* :mod:`.config`: :class:`SynthesizerConfig`, the hyper-parameters of all of them.
* :mod:`.semantic`: ``ssl_proj`` and the frozen one-codebook ``quantizer``
  that turn HuBERT features into semantic codes and back.
* :mod:`.style`: ``ref_enc``, the MelStyleEncoder that summarises a reference
  spectrogram into the global conditioning vector.
* :mod:`.wavenet`: the WaveNet stack of ``enc_q`` and ``flow``.
* :mod:`.posterior`: ``enc_q``, spectrogram to the posterior latent.
* :mod:`.flow`: ``flow``, the mean-only coupling flow.
* :mod:`.decoder`: ``dec``, the HiFi-GAN generator.
* :mod:`.attention`: the relative-position attention encoder.
* :mod:`.text_encoder`: ``enc_p``, the TextEncoder with MRTE.
* :mod:`.synthesizer`: ``SynthesizerTrn`` and :func:`build_synthesizer`.
"""

from espnet_sovits_disc.gpt_sovits.config import SynthesizerConfig
from espnet_sovits_disc.gpt_sovits.decoder import Decoder
from espnet_sovits_disc.gpt_sovits.flow import CouplingFlow
from espnet_sovits_disc.gpt_sovits.posterior import PosteriorEncoder
from espnet_sovits_disc.gpt_sovits.semantic import (
    SemanticQuantizer,
    build_ssl_projection,
    extract_latent,
    project_ssl,
)
from espnet_sovits_disc.gpt_sovits.style import MelStyleEncoder
from espnet_sovits_disc.gpt_sovits.synthesizer import SynthesizerTrn, build_synthesizer
from espnet_sovits_disc.gpt_sovits.text_encoder import TextEncoder
from espnet_sovits_disc.gpt_sovits.wavenet import WaveNet

__all__ = [
    "SynthesizerConfig",
    "SynthesizerTrn",
    "build_synthesizer",
    "CouplingFlow",
    "Decoder",
    "MelStyleEncoder",
    "PosteriorEncoder",
    "SemanticQuantizer",
    "TextEncoder",
    "build_ssl_projection",
    "extract_latent",
    "project_ssl",
    "WaveNet",
]
