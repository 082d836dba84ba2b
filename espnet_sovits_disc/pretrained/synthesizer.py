"""GPT-SoVITS stage-2 generators (``SynthesizerTrn``) into ESPnet and back out.

Files read:

* published pretrained generators (``s2G488k.pth``, ``s2G2333k.pth``,
  ``s2Gv2Pro.pth``, ``s2Gv2ProPlus.pth``): ``{"weight": state_dict, ...}``;
* exported inference files ``SoVITS_weights*/<name>_e<epoch>_s<step>.pth``:
  ``{"weight": float16 state_dict without enc_q, "config": HParams, "info"}``,
  v2Pro / v2ProPlus ones with ``05`` / ``06`` written over the zip's ``PK``;
* training checkpoints ``G_<step>.pth``: ``{"model": state_dict, ...}``;
* a bare state dict.

Reading is weights-only: the version header is put back to ``PK`` in memory,
a pickled ``HParams`` config is read as inert data (:func:`plain_data`) and
nothing in the file is run. The version is read from the weights (``sv_emb``
marks v2Pro, a 768-channel first upsampling v2ProPlus, 322 text symbols v1)
and checked against the header and the configured version.

Import writes ``tts.generator.<reference key>`` -> float32 for ``--init_param``
(optionally with the matching ``s2D*.pth`` under ``tts.discriminator.``);
export writes GPT-SoVITS's SoVITS_weights layout, which its inference loads.
"""

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from typeguard import typechecked

from espnet_sovits_disc.gpt_sovits.config import VERSIONS, SynthesizerConfig
from espnet_sovits_disc.gpt_sovits.symbols import inventory
from espnet_sovits_disc.gpt_sovits.synthesizer import SynthesizerTrn
from espnet_sovits_disc.pretrained.errors import CheckpointError
from espnet_sovits_disc.pretrained.reading import (
    PathLike,
    plain_data,
    read_checkpoint,
    read_checkpoint_bytes,
)
from espnet_sovits_disc.pretrained.state_dict import (
    DEFAULT_PREFIX,
    StateDict,
    canonicalize,
    find_espnet_submodule,
    find_state_dict,
    normalize_prefix,
)
from espnet_sovits_disc.pretrained.transfer import (
    load_reference_state_dict,
    refuse_overwriting_source,
    save_atomically,
)

GENERATOR_PREFIX = "tts.generator."
"""Where ``tts: gpt_sovits`` keeps SynthesizerTrn in ESPnet's model."""

ZIP_MAGIC = b"PK"

VERSION_HEADERS = {
    b"00": "v1",
    b"01": "v2",
    b"02": "v3",
    b"03": "v3 LoRA",
    b"04": "v4 LoRA",
    b"05": "v2Pro",
    b"06": "v2ProPlus",
}
"""GPT-SoVITS's two-byte version marks (``process_ckpt.head2version``)."""

EXPORT_HEADERS = {"v2Pro": b"05", "v2ProPlus": b"06"}
"""The versions GPT-SoVITS writes with a mark; v2 files stay plain zips."""

POSTERIOR_ENCODER = "enc_q."

SPEAKER_VERIFICATION_KEY = "sv_emb.weight"


@dataclass(frozen=True)
class SynthesizerFile:
    """A GPT-SoVITS generator file as read.

    Attributes:
        state_dict (Dict[str, Tensor]): Canonical weights (old weight-norm
            names, float32).
        entry (str): Where they were (``weight``, ``model`` or ``top level``).
        header_version (Optional[str]): The version mark, ``None`` for a
            plain zip.
        config (Optional[Dict[str, Any]]): The pickled config as plain data.
        info (Optional[str]): The ``info`` entry (``<e>epoch_<s>iteration``).
        upcast (int): Tensors upcast from 16 bits.

    """

    state_dict: StateDict
    entry: str
    header_version: Optional[str]
    config: Optional[Dict[str, Any]]
    info: Optional[str]
    upcast: int


@typechecked
def read_synthesizer_file(path: PathLike) -> SynthesizerFile:
    """Read a GPT-SoVITS generator file safely.

    Args:
        path (Union[str, os.PathLike]): ``s2G*.pth``, an exported
            ``SoVITS_weights*`` file, ``G_<step>.pth`` or a bare state dict.

    Returns:
        SynthesizerFile: Its weights, version mark, config and info.

    Raises:
        CheckpointError: If the file is missing, unreadable or holds no
            state dict.

    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist or is not a file")
    data = path.read_bytes()
    header = data[:2]
    header_version = None
    if header != ZIP_MAGIC:
        if header not in VERSION_HEADERS:
            raise CheckpointError(
                f"{str(path)!r} starts with {header!r}: neither a PyTorch zip "
                "(PK) nor a GPT-SoVITS version mark (00-06); it is not a "
                "GPT-SoVITS generator file"
            )
        header_version = VERSION_HEADERS[header]
        data = ZIP_MAGIC + data[2:]
    checkpoint = plain_data(read_checkpoint_bytes(data, str(path), inert_objects=True))
    found, entry = find_state_dict(checkpoint, format="gpt_sovits")
    state_dict, upcast, _ = canonicalize(found)
    config = checkpoint.get("config") if isinstance(checkpoint, dict) else None
    info = checkpoint.get("info") if isinstance(checkpoint, dict) else None
    return SynthesizerFile(
        state_dict=state_dict,
        entry=entry,
        header_version=header_version,
        config=config if isinstance(config, dict) else None,
        info=info if isinstance(info, str) else None,
        upcast=upcast,
    )


def version_of_weights(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The GPT-SoVITS version a generator's weights belong to.

    Args:
        state_dict (Mapping[str, Tensor]): Canonical generator weights.

    Returns:
        str: ``v1``, ``v2``, ``v2Pro``, ``v2ProPlus`` or ``v3/v4`` (no text
            embedding: GPT-SoVITS's own rule for its v3/v4 models).

    """
    embedding = state_dict.get("enc_p.text_embedding.weight")
    if embedding is None:
        return "v3/v4"
    if embedding.shape[0] == len(inventory("v1")):
        return "v1"
    if SPEAKER_VERIFICATION_KEY not in state_dict:
        return "v2"
    first_upsampling = state_dict.get("dec.ups.0.weight_v")
    if first_upsampling is not None and first_upsampling.shape[0] == 768:
        return "v2ProPlus"
    return "v2Pro"


def checked_version(
    weights_version: str,
    header_version: Optional[str],
    configured: Optional[str],
    source: str,
) -> str:
    """The version of a file, checked against its mark and the configuration.

    Raises:
        CheckpointError: If the version is not one ``tts: gpt_sovits`` builds,
            or the mark or the configured version say otherwise.

    """
    if weights_version not in VERSIONS:
        raise CheckpointError(
            f"{source} holds a GPT-SoVITS {weights_version} generator (no text "
            "embedding: a flow-matching model); tts gpt_sovits builds "
            f"{', '.join(VERSIONS)}: start from s2G488k.pth (v1), "
            "s2G2333k.pth (v2), s2Gv2Pro.pth or s2Gv2ProPlus.pth"
        )
    if header_version is not None and header_version != weights_version:
        raise CheckpointError(
            f"{source} is marked {header_version} but its weights are "
            f"{weights_version}; the file is inconsistent: export it again"
        )
    if configured is not None and configured != weights_version:
        raise CheckpointError(
            f"{source} holds a {weights_version} generator but the configuration "
            f"says version {configured!r}: set tts_conf.version to "
            f"{weights_version!r} (and use the {weights_version} discriminator), "
            "or import the matching file"
        )
    return weights_version


def generator_layout(config: SynthesizerConfig) -> Dict[str, torch.Size]:
    """Key -> shape of SynthesizerTrn for ``config``, in the reference order."""
    with torch.device("meta"):
        model = SynthesizerTrn(config)
    return {key: value.shape for key, value in model.state_dict().items()}


def layout_problems(
    state_dict: Mapping[str, torch.Tensor],
    layout: Mapping[str, torch.Size],
    optional_prefix: Optional[str] = None,
) -> Tuple[List[str], List[str], List[str]]:
    """Missing keys, unexpected keys and shape mismatches of ``state_dict``.

    Keys under ``optional_prefix`` may be missing (all of them or none).
    """
    missing = [
        k
        for k in layout
        if k not in state_dict
        and not (optional_prefix and k.startswith(optional_prefix))
    ]
    unexpected = [k for k in state_dict if k not in layout]
    mismatched = [
        f"{k}: {tuple(state_dict[k].shape)} vs {tuple(shape)}"
        for k, shape in layout.items()
        if k in state_dict and state_dict[k].shape != shape
    ]
    return missing, unexpected, mismatched


def raise_on_layout_problems(
    problems: Tuple[List[str], List[str], List[str]], source: str, version: str
) -> None:
    missing, unexpected, mismatched = problems
    parts = []
    for label, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("with other shapes", mismatched),
    ):
        if keys:
            shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
            parts.append(f"{len(keys)} {label}: {shown}")
    if parts:
        raise CheckpointError(
            f"{source} does not fit a {version} SynthesizerTrn with the configured "
            f"generator_params: {'; '.join(parts)}; use the generator_params the "
            "weights were trained with"
        )


@dataclass
class SynthesizerSummary:
    """What an import or export wrote.

    Attributes:
        src (str): The file read.
        dst (str): The file written.
        version (str): The generator's version.
        num_tensors (int): Generator tensors written.
        num_elements (int): Their values.
        posterior_encoder (str): ``"included"``, ``"re-initialised"`` (left
            to ESPnet's initialisation) or ``"dropped"`` (export).
        discriminator_tensors (int): Discriminator tensors written (import).
        upcast (int): Tensors upcast from 16 bits.

    """

    src: str
    dst: str
    version: str
    num_tensors: int
    num_elements: int
    posterior_encoder: str
    discriminator_tensors: int = 0
    upcast: int = 0

    def describe(self) -> str:
        """A one-line human-readable summary."""
        extra = (
            f", {self.discriminator_tensors} discriminator tensors"
            if self.discriminator_tensors
            else ""
        )
        return (
            f"wrote {self.dst}: {self.num_tensors} generator tensors "
            f"({self.num_elements:,} values) of GPT-SoVITS {self.version}, enc_q "
            f"{self.posterior_encoder}{extra}, from {self.src}"
        )


@typechecked
def import_synthesizer(
    src: PathLike,
    dst: PathLike,
    *,
    version: Optional[str] = None,
    generator_params: Mapping[str, Any] = {},
    discriminator_src: Optional[PathLike] = None,
    reinit_enc_q: bool = False,
    prefix: str = GENERATOR_PREFIX,
    discriminator_prefix: str = DEFAULT_PREFIX,
) -> SynthesizerSummary:
    """Convert a GPT-SoVITS generator (and discriminator) into an ESPnet file.

    The written file maps ``prefix + reference key`` to float32 tensors (and
    ``discriminator_prefix + key`` for ``discriminator_src``), which ESPnet
    training takes as ``--init_param dst``.

    Args:
        src (Union[str, os.PathLike]): The generator file.
        dst (Union[str, os.PathLike]): Output file (parent folders are made).
        version (Optional[str]): ``tts_conf.version`` of the ESPnet config;
            ``None`` accepts the file's.
        generator_params (Mapping[str, Any]): ``tts_conf.generator_params``.
        discriminator_src (Optional[Union[str, os.PathLike]]): The matching
            ``s2D*.pth`` / ``D_<step>.pth``.
        reinit_enc_q (bool): Accept a file without ``enc_q`` (an exported
            inference file) and leave ``enc_q`` to ESPnet's initialisation.
        prefix (str): Key prefix of the generator in the ESPnet model.
        discriminator_prefix (str): Key prefix of the discriminator.

    Returns:
        SynthesizerSummary: What was written.

    Raises:
        CheckpointError: If a file is unsafe, unreadable, of another version
            or layout, or lacks ``enc_q`` without ``reinit_enc_q``.

    """
    refuse_overwriting_source(src, dst)
    read = read_synthesizer_file(src)
    source = repr(str(src))
    version = checked_version(
        version_of_weights(read.state_dict), read.header_version, version, source
    )
    layout = generator_layout(SynthesizerConfig.for_version(version, **generator_params))
    has_enc_q = any(k.startswith(POSTERIOR_ENCODER) for k in read.state_dict)
    if not has_enc_q and not reinit_enc_q:
        raise CheckpointError(
            f"{source} has no enc_q (the posterior encoder): it is an inference-only "
            "export, and fine-tuning needs enc_q. Import the pretrained s2G*.pth "
            "or a G_<step>.pth training checkpoint, or pass reinit_enc_q=True "
            "(--reinit_enc_q) to start enc_q from ESPnet's initialisation"
        )
    raise_on_layout_problems(
        layout_problems(read.state_dict, layout, None if has_enc_q else POSTERIOR_ENCODER),
        source,
        version,
    )
    prefix = normalize_prefix(prefix)
    written = {prefix + k: read.state_dict[k] for k in layout if k in read.state_dict}
    discriminator_tensors = 0
    if discriminator_src is not None:
        discriminator, _ = load_reference_state_dict(
            discriminator_src, "sovits_mpd", {"version": version}, format="gpt_sovits"
        )
        discriminator_prefix = normalize_prefix(discriminator_prefix)
        written.update({discriminator_prefix + k: v for k, v in discriminator.items()})
        discriminator_tensors = len(discriminator)
    save_atomically(written, dst)
    generator_tensors = len(written) - discriminator_tensors
    return SynthesizerSummary(
        src=str(src),
        dst=str(dst),
        version=version,
        num_tensors=generator_tensors,
        num_elements=sum(
            t.numel() for k, t in written.items() if k.startswith(prefix)
        ),
        posterior_encoder="included" if has_enc_q else "re-initialised",
        discriminator_tensors=discriminator_tensors,
        upcast=read.upcast,
    )


def gpt_sovits_config(
    config: SynthesizerConfig, spectrogram_params: Mapping[str, Any], sampling_rate: int
) -> Dict[str, Any]:
    """The ``config`` entry GPT-SoVITS's inference reads, as plain data.

    ``SynthesizerTrn(hps.data.filter_length // 2 + 1, hps.train.segment_size
    // hps.data.hop_length, n_speakers=hps.data.n_speakers, **hps.model)``.
    """
    hop = spectrogram_params.get("hop_length", 640)
    model = {
        k: v for k, v in asdict(config).items() if k not in ("spec_channels", "segment_size")
    }
    model.update(resblock="1", n_layers_q=3, use_spectral_norm=False, freeze_quantizer=True)
    return {
        "train": {"segment_size": config.segment_size * hop},
        "data": {
            "max_wav_value": 32768.0,
            "sampling_rate": sampling_rate,
            "filter_length": spectrogram_params.get("n_fft", 2048),
            "hop_length": hop,
            "win_length": spectrogram_params.get("win_length", 2048),
            "n_mel_channels": spectrogram_params.get("n_mels", 128),
            "mel_fmin": spectrogram_params.get("fmin", 0.0),
            "mel_fmax": spectrogram_params.get("fmax", None),
            "n_speakers": 300,
        },
        "model": model,
        "version": config.version,
    }


@typechecked
def export_synthesizer(
    src: PathLike,
    dst: PathLike,
    *,
    version: Optional[str] = None,
    generator_params: Mapping[str, Any] = {},
    spectrogram_params: Mapping[str, Any] = {},
    sampling_rate: int = 32000,
    epoch: int = 0,
    iteration: int = 0,
    prefix: str = GENERATOR_PREFIX,
) -> SynthesizerSummary:
    """Write an ESPnet-trained generator as GPT-SoVITS's SoVITS_weights file.

    The file is what ``process_ckpt.savee`` writes: ``weight`` (float16,
    without ``enc_q``, old weight-norm names, the reference's key order),
    ``config`` (plain nested dicts with the fields its inference reads) and
    ``info`` (``<epoch>epoch_<iteration>iteration``); v2Pro / v2ProPlus files
    start with ``05`` / ``06`` instead of ``PK``.

    Args:
        src (Union[str, os.PathLike]): ESPnet model file or ``checkpoint.pth``.
        dst (Union[str, os.PathLike]): Output file (parent folders are made).
        version (Optional[str]): ``tts_conf.version``; ``None`` takes the
            weights' version.
        generator_params (Mapping[str, Any]): ``tts_conf.generator_params``.
        spectrogram_params (Mapping[str, Any]): ``tts_conf.spectrogram_params``.
        sampling_rate (int): ``tts_conf.sampling_rate``.
        epoch (int): Epoch written into ``info``.
        iteration (int): Iteration written into ``info``.
        prefix (str): Key prefix of the generator in the ESPnet model.

    Returns:
        SynthesizerSummary: What was written.

    Raises:
        CheckpointError: If the file is unsafe, unreadable or its generator
            does not fit the version and parameters.

    """
    refuse_overwriting_source(src, dst)
    found, _ = find_espnet_submodule(read_checkpoint(src), prefix, "generator")
    state_dict, upcast, _ = canonicalize(found)
    source = repr(str(src))
    version = checked_version(version_of_weights(state_dict), None, version, source)
    config = SynthesizerConfig.for_version(version, **generator_params)
    layout = generator_layout(config)
    raise_on_layout_problems(
        layout_problems(state_dict, layout, POSTERIOR_ENCODER), source, version
    )
    weight = {
        k: state_dict[k].half() for k in layout if not k.startswith(POSTERIOR_ENCODER)
    }
    exported = {
        "weight": weight,
        "config": gpt_sovits_config(config, spectrogram_params, sampling_rate),
        "info": f"{epoch}epoch_{iteration}iteration",
    }
    buffer = io.BytesIO()
    torch.save(exported, buffer)
    data = buffer.getvalue()
    if version in EXPORT_HEADERS:
        data = EXPORT_HEADERS[version] + data[2:]
    save_atomically(data, dst)
    return SynthesizerSummary(
        src=str(src),
        dst=str(dst),
        version=version,
        num_tensors=len(weight),
        num_elements=sum(t.numel() for t in weight.values()),
        posterior_encoder="dropped",
        upcast=upcast,
    )
