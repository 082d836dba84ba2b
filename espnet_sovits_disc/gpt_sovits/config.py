"""The hyper-parameters of GPT-SoVITS's SynthesizerTrn, one typed record.

The defaults are ``configs/s2.json`` (v2) with what ``s2_train.py`` derives
from its ``data`` section (``spec_channels = filter_length // 2 + 1``,
``segment_size // hop_length``); :meth:`SynthesizerConfig.for_version` applies
the differences of ``s2v2Pro.json`` and ``s2v2ProPlus.json``. v1 trains with
s2.json too; its model differs in what the version itself decides: the v1
phoneme inventory and a reference encoder on every linear bin. Every module
of :mod:`espnet_sovits_disc.gpt_sovits` is built from one of these.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List

from espnet_sovits_disc.gpt_sovits.symbols import inventory

VERSION_DIFFERENCES: Dict[str, Dict[str, Any]] = {
    "v1": {},
    "v2": {},
    "v2Pro": {"gin_channels": 1024, "p_dropout": 0.0},
    "v2ProPlus": {
        "gin_channels": 1024,
        "p_dropout": 0.0,
        "upsample_initial_channel": 768,
        "upsample_kernel_sizes": [20, 16, 8, 2, 2],
    },
}
"""Version -> its hyper-parameters that differ from v2's."""

VERSIONS = tuple(VERSION_DIFFERENCES)
"""The GPT-SoVITS versions this package builds."""

SPEAKER_VERIFICATION_VERSIONS = ("v2Pro", "v2ProPlus")

# From v2 on, the reference encoder reads the lowest 704 of the 1025 bins.
V2_REFERENCE_BINS = 704


@dataclass(frozen=True)
class SynthesizerConfig:
    """SynthesizerTrn's hyper-parameters (field names as in s2.json).

    Attributes:
        version (str): ``v1``, ``v2``, ``v2Pro`` or ``v2ProPlus``.
        spec_channels (int): Linear spectrogram bins (n_fft // 2 + 1).
        segment_size (int): Frames of the training slice fed to the decoder.
        inter_channels (int): Channels of the latent ``z``.
        hidden_channels (int): Width of the encoders (MRTE needs 192).
        filter_channels (int): Feed-forward width of the text encoder.
        n_heads (int): Its attention heads.
        n_layers (int): Its text-encoder layers (SSL and last encoder: half).
        kernel_size (int): Its feed-forward kernel size.
        p_dropout (float): Its dropout (v2 0.1, v2Pro 0).
        resblock_kernel_sizes (List[int]): Decoder residual-block kernels.
        resblock_dilation_sizes (List[List[int]]): Their dilations.
        upsample_rates (List[int]): Decoder upsampling factors (product: hop).
        upsample_initial_channel (int): Decoder width (v2ProPlus 768).
        upsample_kernel_sizes (List[int]): Decoder upsampling kernels.
        gin_channels (int): Size of ``ge`` (v2 512, v2Pro 1024).
        semantic_frame_rate (str): ``25hz`` (ssl_proj stride 2) or ``50hz``.

    """

    version: str = "v2"
    spec_channels: int = 1025
    segment_size: int = 32
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.1
    resblock_kernel_sizes: List[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: List[List[int]] = field(
        default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    )
    upsample_rates: List[int] = field(default_factory=lambda: [10, 8, 2, 2, 2])
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: List[int] = field(default_factory=lambda: [16, 16, 8, 2, 2])
    gin_channels: int = 512
    semantic_frame_rate: str = "25hz"

    def __post_init__(self):
        """Refuse an unknown version."""
        if self.version not in VERSIONS:
            raise ValueError(
                f"unknown GPT-SoVITS version {self.version!r}; choose one of "
                f"{sorted(VERSIONS)}"
            )

    @classmethod
    def for_version(cls, version: str = "v2", **overrides: Any) -> "SynthesizerConfig":
        """A version's hyper-parameters, with ``overrides`` replacing some.

        Args:
            version (str): ``v1``, ``v2``, ``v2Pro`` or ``v2ProPlus``.
            **overrides (Any): Fields to replace.

        Returns:
            SynthesizerConfig: The configuration.

        Raises:
            ValueError: If the version is unknown.
            TypeError: If an override names no field.

        """
        differences = VERSION_DIFFERENCES.get(version, {})
        return cls(version=version, **{**differences, **overrides})

    @property
    def n_symbols(self) -> int:
        """Rows of ``enc_p.text_embedding``: the version's phoneme inventory."""
        return len(inventory(self.version))

    @property
    def reference_bins(self) -> int:
        """Linear bins ``ref_enc`` reads: all for v1, the lowest 704 after."""
        return self.spec_channels if self.version == "v1" else V2_REFERENCE_BINS

    @property
    def uses_speaker_verification(self) -> bool:
        """Whether the version has ``sv_emb``, ``ge_to512`` and ``prelu``."""
        return self.version in SPEAKER_VERIFICATION_VERSIONS
