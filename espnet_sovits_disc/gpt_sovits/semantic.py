"""HuBERT features to semantic codes and back: ``ssl_proj`` and ``quantizer``.

GPT-SoVITS (``SynthesizerTrn``, 25 Hz semantic rate) projects the 50 Hz,
768-dimensional HuBERT features with ``Conv1d(768, 768, 2, stride=2)`` and
quantizes every 25 Hz frame to the nearest of 1024 codebook entries (a
residual vector quantizer with one codebook). Stage 2 trains with the
quantizer frozen (``freeze_quantizer``: the projection and the codebook stay
in evaluation mode, the codebook is never updated), which is the only way
this module runs: the quantized value is the codebook entry itself and the
commitment loss is 0.
"""

from typing import List, Optional, Tuple

import torch
from typeguard import typechecked


# Channels of the HuBERT features (chinese-hubert-base).
SSL_DIM = 768


class Codebook(torch.nn.Module):
    """One codebook, with the buffers of the reference's ``EuclideanCodebook``.

    ``embed`` (entries, dim) holds the entries; ``inited``, ``cluster_size``
    and ``embed_avg`` are the reference's k-means and moving-average state,
    kept so that its checkpoints load and round-trip unchanged.
    """

    def __init__(self, *, entries: int, dim: int):
        """Initialize Codebook.

        Args:
            entries (int): Number of codebook entries.
            dim (int): Dimension of each entry.

        """
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(entries))
        self.register_buffer("embed", torch.zeros(entries, dim))
        self.register_buffer("embed_avg", torch.zeros(entries, dim))

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest entry (squared Euclidean distance) per row.

        Args:
            x (Tensor): Vectors (N, dim).

        Returns:
            Tensor: Indices (N,), int64.

        """
        embed = self.embed.t()
        similarity = -(
            x.pow(2).sum(1, keepdim=True)
            - 2 * x @ embed
            + embed.pow(2).sum(0, keepdim=True)
        )
        return similarity.max(dim=-1).indices


class CodebookLayer(torch.nn.Module):
    """One stage of the residual quantizer (the reference's ``VectorQuantization``)."""

    def __init__(self, *, entries: int, dim: int):
        """Initialize CodebookLayer.

        Args:
            entries (int): Number of codebook entries.
            dim (int): Dimension of each entry.

        """
        super().__init__()
        self._codebook = Codebook(entries=entries, dim=dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes of a sequence.

        Args:
            x (Tensor): Features (B, dim, T).

        Returns:
            Tensor: Codes (B, T), int64.

        """
        batch, dim, frames = x.shape
        rows = x.transpose(1, 2).reshape(batch * frames, dim)
        return self._codebook.nearest(rows).view(batch, frames)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook entries of codes.

        Args:
            codes (Tensor): Codes (B, T).

        Returns:
            Tensor: Features (B, dim, T).

        """
        return torch.nn.functional.embedding(codes, self._codebook.embed).transpose(
            1, 2
        )


class ResidualCodebooks(torch.nn.Module):
    """The stages of the residual quantizer (the reference's ``vq``)."""

    def __init__(self, *, stages: int, entries: int, dim: int):
        """Initialize ResidualCodebooks.

        Args:
            stages (int): Number of codebooks.
            entries (int): Entries per codebook.
            dim (int): Dimension of each entry.

        """
        super().__init__()
        self.layers = torch.nn.ModuleList(
            CodebookLayer(entries=entries, dim=dim) for _ in range(stages)
        )


class SemanticQuantizer(torch.nn.Module):
    """The frozen residual vector quantizer of GPT-SoVITS stage 2."""

    @typechecked
    def __init__(self, *, dim: int = SSL_DIM, stages: int = 1, entries: int = 1024):
        """Initialize SemanticQuantizer.

        Args:
            dim (int): Feature dimension (HuBERT's 768).
            stages (int): Number of residual codebooks (GPT-SoVITS: 1).
            entries (int): Entries per codebook (GPT-SoVITS: 1024).

        """
        super().__init__()
        self.dim = dim
        self.vq = ResidualCodebooks(stages=stages, entries=entries, dim=dim)

    def _check_features(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.size(1) != self.dim:
            raise ValueError(
                f"quantizer input has shape {tuple(x.shape)}; expected "
                f"(batch, {self.dim}, frames): the projected SSL features"
            )

    def forward(
        self, x: torch.Tensor, layers: Optional[List[int]] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """Quantize features through every stage.

        Args:
            x (Tensor): Projected SSL features (B, dim, T).
            layers (Optional[List[int]]): Stages whose own quantized output to
                return as well.

        Returns:
            Tuple[Tensor, Tensor, Tensor, List[Tensor]]: The quantized
                features (B, dim, T), the codes (stages, B, T), the commitment
                loss (a scalar, 0 for the frozen codebook) and the quantized
                output of each stage in ``layers`` (B, dim, T).

        Raises:
            ValueError: If ``x`` is not (B, dim, T) or a layer index is out of range.

        """
        self._check_features(x)
        stages = len(self.vq.layers)
        if layers and max(layers) >= stages:
            raise ValueError(
                f"quantizer layer {max(layers)} requested, but it has {stages} "
                f"stage(s): use indices below {stages}"
            )
        residual = x
        quantized = torch.zeros_like(x)
        codes, selected = [], []
        for index, layer in enumerate(self.vq.layers):
            stage_codes = layer.encode(residual)
            stage = layer.decode(stage_codes)
            residual = residual - stage
            quantized = quantized + stage
            codes.append(stage_codes)
            if layers and index in layers:
                selected.append(stage)
        commit_loss = x.new_zeros(())
        return quantized, torch.stack(codes), commit_loss, selected

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Features of codes: the sum of each stage's entries.

        Args:
            codes (Tensor): Codes (stages used, B, T), int64.

        Returns:
            Tensor: Quantized features (B, dim, T).

        Raises:
            ValueError: If ``codes`` is not (stages, B, T) or has too many stages.

        """
        if codes.dim() != 3 or codes.size(0) > len(self.vq.layers):
            raise ValueError(
                f"codes have shape {tuple(codes.shape)}; expected (stages, batch, "
                f"frames) with at most {len(self.vq.layers)} stage(s)"
            )
        stages = [layer.decode(c) for layer, c in zip(self.vq.layers, codes)]
        return torch.stack(stages).sum(0)


SEMANTIC_STRIDES = {"25hz": 2, "50hz": 1}
"""Semantic frame rate -> SSL frames (50 Hz HuBERT) per code."""


@typechecked
def build_ssl_projection(
    *, ssl_dim: int = SSL_DIM, semantic_frame_rate: str = "25hz"
) -> torch.nn.Conv1d:
    """The reference's ``ssl_proj``: SSL features to the semantic frame rate.

    Args:
        ssl_dim (int): HuBERT feature dimension.
        semantic_frame_rate (str): ``25hz`` (v2, v2Pro: kernel and stride 2)
            or ``50hz`` (kernel and stride 1).

    Returns:
        Conv1d: ``Conv1d(ssl_dim, ssl_dim, stride, stride=stride)``.

    Raises:
        ValueError: If the frame rate is neither.

    """
    if semantic_frame_rate not in SEMANTIC_STRIDES:
        raise ValueError(
            f"unknown semantic_frame_rate {semantic_frame_rate!r}; choose one of "
            f"{sorted(SEMANTIC_STRIDES)}"
        )
    stride = SEMANTIC_STRIDES[semantic_frame_rate]
    return torch.nn.Conv1d(ssl_dim, ssl_dim, stride, stride=stride)


def project_ssl(ssl_proj: torch.nn.Conv1d, ssl: torch.Tensor) -> torch.Tensor:
    """Apply ``ssl_proj`` after checking the features fit it.

    Args:
        ssl_proj (Conv1d): The projection (see :func:`build_ssl_projection`).
        ssl (Tensor): HuBERT features (B, ssl_dim, T_ssl), T_ssl a multiple
            of the projection's stride.

    Returns:
        Tensor: Projected features (B, ssl_dim, T_ssl / stride).

    Raises:
        ValueError: If the shape or the frame count does not fit.

    """
    channels, (stride,) = ssl_proj.in_channels, ssl_proj.stride
    if ssl.dim() != 3 or ssl.size(1) != channels:
        raise ValueError(
            f"SSL features have shape {tuple(ssl.shape)}; expected (batch, "
            f"{channels}, frames): HuBERT features, channels first"
        )
    if ssl.size(2) % stride:
        raise ValueError(
            f"SSL features have {ssl.size(2)} frames; ssl_proj has stride "
            f"{stride}, so the count must be a multiple of {stride}: pad or trim "
            "one frame"
        )
    return ssl_proj(ssl)


def extract_latent(
    ssl_proj: torch.nn.Conv1d, quantizer: SemanticQuantizer, ssl: torch.Tensor
) -> torch.Tensor:
    """Semantic codes of SSL features (the reference's ``extract_latent``).

    Args:
        ssl_proj (Conv1d): The projection.
        quantizer (SemanticQuantizer): The quantizer.
        ssl (Tensor): HuBERT features (B, ssl_dim, T_ssl).

    Returns:
        Tensor: Codes (B, stages, T_ssl / stride), int64.

    """
    _, codes, _, _ = quantizer(project_ssl(ssl_proj, ssl))
    return codes.transpose(0, 1)
