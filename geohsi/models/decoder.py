"""Dense (patch-free) segmentation on SpectralGPT: one encoder forward labels every pixel of a tile.

Patch mode (:class:`~geohsi.models.spectralgpt.SpectralGPTClassifier`, the paper's protocol) runs a
whole ViT forward per pixel. Dense mode runs it once per ``S × S`` tile and decodes all ``S²``
pixels from the token grid, so the encoder cost per pixel drops by the number of pixels a tile
contributes (``stride²`` with overlapping tiles, see :mod:`geohsi.prediction.tiles`).

Decoder (:class:`DenseDecoder`), a light FPN-style path plus a full-resolution spectral branch::

    tokens [N, T·L, D] ─LayerNorm─► token grid [N, T, S/p, S/p, D]
        ─concat the T spectral groups─► [N, T·D, S/p, S/p] ─1×1 conv + GELU─► [N, F, S/p, S/p]
        ─3×3 conv (context between neighbouring tubelets)─► [N, H, S/p, S/p]
        ─bilinear ×p (align_corners=False: a token's value sits at its tubelet's centre)─► [N, H, S, S]
    input x [N, C, S, S] ─1×1 conv + GELU─► [N, E, S, S] ─1×1 conv─► [N, H, S, S]   (spectral branch)
    sum ─GELU─► 1×1 conv ─► logits [N, K, S, S]

Why this shape: the tokens carry 8 × 8-pixel context but no sub-tubelet detail; the per-pixel
spectrum carries the detail (on hyperspectral scenes it alone separates most classes). Both are
projected to the same width ``H`` and added. The token path is projected **before** the ×p
upsampling — bilinear interpolation and a 1×1 convolution commute, so this is the same function
as upsampling first, at 1/p² of the cost — which keeps the full-resolution work at
``2·(C·E + E·H + H·K)`` FLOPs per pixel (≈ 7 kFLOP with the defaults), small beside the encoder's
share even for ``tiny``.

Adapters are applied to ``encoder`` exactly as in patch mode (:func:`geohsi.adapters.apply_adapter`
with ``head="head"``): the whole decoder is the trained, saved "head".

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geohsi.errors import UsageError
from geohsi.models.config import SpectralGPTConfig, resolve_model_config
from geohsi.models.spectralgpt import SpectralGPT

#: Default widths of :class:`DenseDecoder`: token fusion F, decoder H, spectral branch E.
DEFAULT_FUSE_DIM = 128
DEFAULT_DECODER_DIM = 64
DEFAULT_SPECTRAL_DIM = 32


class DenseDecoder(nn.Module):
    """The dense decoder: token grid + input spectra → per-pixel logits (see the module docstring for the diagram).

    Submodules (their names are the state-dict layout bundles rely on): ``norm`` (LayerNorm on
    tokens), ``fuse`` (Linear = 1×1 conv over the concatenated spectral groups), ``context``
    (3×3 conv at token resolution), ``spectral`` (Linear on each pixel's input channels),
    ``spectral_proj`` (Linear to the decoder width), ``classifier`` (Linear to the classes). The
    per-pixel layers are ``nn.Linear`` applied channels-last (a 1×1 convolution, computed as one
    flat matmul).

    Args:
        config: the encoder's config (token width, groups, patch size, input channels).
        num_classes: number of output classes K (≥ 1).
        fuse_dim: width F after fusing the spectral groups.
        decoder_dim: width H where the token and spectral paths meet.
        spectral_dim: width E of the per-pixel spectral branch (0 disables the branch).
        context_dropout: in training only, the share of tiles whose token (context) path is
            dropped, so the classifier also learns to label pixels from their own spectra (modality
            dropout; not rescaled, so a kept tile is computed exactly as at inference). Not a width:
            a bundle does not record it, inference never drops.

    Raises:
        UsageError: a non-positive class count or width, or a context dropout outside [0, 1) or
            without the spectral branch.

    .. versionadded:: 0.1
    .. versionchanged:: 0.3
       ``context_dropout``.
    """

    def __init__(
        self,
        config: SpectralGPTConfig,
        num_classes: int,
        *,
        fuse_dim: int = DEFAULT_FUSE_DIM,
        decoder_dim: int = DEFAULT_DECODER_DIM,
        spectral_dim: int = DEFAULT_SPECTRAL_DIM,
        context_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise UsageError(f"num_classes={num_classes} must be at least 1")
        if fuse_dim < 1 or decoder_dim < 1 or spectral_dim < 0:
            raise UsageError(
                f"dense head widths fuse={fuse_dim}, decoder={decoder_dim}, spectral={spectral_dim} must be positive "
                "(spectral may be 0 to disable the spectral branch)"
            )
        if not 0 <= context_dropout < 1 or (context_dropout and not spectral_dim):
            raise UsageError(
                f"context dropout {context_dropout} must be in [0, 1) and needs the spectral branch (spectral_dim > 0)"
            )
        self.context_dropout = float(context_dropout)
        self.num_classes = num_classes
        self.patch_size = config.patch_size
        self.groups = config.num_groups
        self.grid = config.grid_size
        d = config.embed_dim
        self.norm = nn.LayerNorm(d, eps=config.norm_eps)
        self.fuse = nn.Linear(self.groups * d, fuse_dim)
        self.context = nn.Conv2d(fuse_dim, decoder_dim, kernel_size=3, padding=1, padding_mode="replicate")
        if spectral_dim:
            self.spectral: nn.Module | None = nn.Linear(config.num_bands, spectral_dim)
            self.spectral_proj: nn.Module | None = nn.Linear(spectral_dim, decoder_dim)
        else:
            self.spectral = self.spectral_proj = None
        self.classifier = nn.Linear(decoder_dim, num_classes)
        sh, sw = config.input_size
        # Bilinear ×p as two small matrices (not persistent: derived from the geometry).
        self.register_buffer("up_rows", bilinear_matrix(gh := config.grid_size[0], sh), persistent=False)
        self.register_buffer("up_cols", bilinear_matrix(config.grid_size[1], sw), persistent=False)
        del gh
        self.widths = {"fuse_dim": fuse_dim, "decoder_dim": decoder_dim, "spectral_dim": spectral_dim}

    def forward(self, tokens: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Decode a batch.

        Args:
            tokens: ``[N, T·L, D]`` encoder output.
            x: ``[N, C, S, S]`` the encoder's input (for the spectral branch).

        Returns:
            ``[N, K, S, S]`` logits.
        """
        n = tokens.shape[0]
        gh, gw = self.grid
        t = self.norm(tokens).reshape(n, self.groups, gh, gw, -1)  # spectral-major token order
        t = F.gelu(self.fuse(t.permute(0, 2, 3, 1, 4).reshape(n, gh, gw, -1)))  # concat groups → [N, gh, gw, F]
        t = self.context(t.permute(0, 3, 1, 2))  # [N, H, gh, gw]
        # Full resolution in channels-last layout: the 1×1 convolutions become flat matmuls and the
        # bilinear ×p two small ones, several times faster on CPU than NCHW convs + upsample_bilinear2d.
        up_r, up_c = self.up_rows.to(t.dtype), self.up_cols.to(t.dtype)
        y = torch.matmul(up_r, t.permute(0, 3, 2, 1))  # [N, gw, S, H]: rows interpolated
        y = torch.matmul(up_c, y.transpose(1, 2))  # [N, S, S, H] (row, col, channel)
        if self.training and self.context_dropout:
            y = y * (torch.rand(n, 1, 1, 1, device=y.device) >= self.context_dropout).to(y.dtype)
        if self.spectral is not None:
            y = y + self.spectral_proj(F.gelu(self.spectral(x.permute(0, 2, 3, 1))))
        return self.classifier(F.gelu(y)).permute(0, 3, 1, 2)


def bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``[n_out, n_in]`` weights of 1-D bilinear resampling, ``align_corners=False`` (edges clamped).

    Equal to :func:`torch.nn.functional.interpolate` (``mode="bilinear"``) applied along one axis.

    .. versionadded:: 0.1
    """
    m = torch.zeros(n_out, n_in)
    scale = n_in / n_out
    for i in range(n_out):
        src = max((i + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(src), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        f = src - i0
        m[i, i0] += 1.0 - f
        m[i, i1] += f
    return m


class SpectralGPTSegmenter(nn.Module):
    """SpectralGPT encoder + :class:`DenseDecoder`: ``[N, C, S, S]`` → ``[N, K, S, S]`` logits.

    Attributes:
        encoder: the :class:`~geohsi.models.spectralgpt.SpectralGPT` encoder (prefix ``encoder.``),
            adapted exactly as in patch mode.
        head: the :class:`DenseDecoder` (prefix ``head.``), trained and saved with the adapter.
        config: the encoder config (``img_size`` = the tile edge).

    Args:
        config: encoder config or its name.
        num_classes: number of classes K.
        **head_options: :class:`DenseDecoder` widths (``fuse_dim``, ``decoder_dim``, ``spectral_dim``) and
            ``context_dropout``.

    Example:
        >>> m = SpectralGPTSegmenter(resolve_model_config("tiny"), 5)
        >>> m(torch.zeros(2, 12, 32, 32)).shape
        torch.Size([2, 5, 32, 32])

    .. versionadded:: 0.1
    """

    def __init__(self, config: SpectralGPTConfig | str, num_classes: int, **head_options: Any) -> None:
        super().__init__()
        self.encoder = SpectralGPT(config)
        self.config = self.encoder.config
        self.head = DenseDecoder(self.config, num_classes, **head_options)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, S, S]`` → ``[N, T·L, D]`` encoder tokens."""
        return self.encoder.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, S, S]`` → ``[N, K, S, S]`` logits."""
        return self.head(self.encoder.forward_features(x), x)


def build_segmenter(
    config: str | SpectralGPTConfig, num_classes: int, *, head_options: dict[str, Any] | None = None, **overrides: Any
) -> SpectralGPTSegmenter:
    """Build a dense segmenter from a config name or config.

    Args:
        config: name in :data:`geohsi.models.config.CONFIGS` or a config.
        num_classes: number of classes.
        head_options: :class:`DenseDecoder` widths and ``context_dropout``.
        **overrides: config fields to replace (``img_size`` = tile edge, ``num_bands``, …).

    Returns:
        A freshly initialised :class:`SpectralGPTSegmenter`.

    .. versionadded:: 0.1
    """
    return SpectralGPTSegmenter(resolve_model_config(config, **overrides), num_classes, **(head_options or {}))


def dense_head_flops(config: str | SpectralGPTConfig, num_classes: int, **head_options: Any) -> int:
    """Analytic FLOPs of one :class:`DenseDecoder` forward for one tile (matrix products only).

    Args:
        config: encoder config or name (its ``img_size`` is the tile edge).
        num_classes: number of classes K.
        **head_options: head widths as in :class:`DenseDecoder`.

    Returns:
        FLOPs per tile.

    .. versionadded:: 0.1
    """
    c = resolve_model_config(config)
    f = head_options.get("fuse_dim", DEFAULT_FUSE_DIM)
    h = head_options.get("decoder_dim", DEFAULT_DECODER_DIM)
    e = head_options.get("spectral_dim", DEFAULT_SPECTRAL_DIM)
    gh, gw = c.grid_size
    sh, sw = c.input_size
    low = gh * gw * (c.num_groups * c.embed_dim * f + 9 * f * h)
    full = sh * sw * (c.num_bands * e + e * h + h * num_classes)
    return 2 * (low + full)


__all__ = [
    "DEFAULT_DECODER_DIM",
    "DEFAULT_FUSE_DIM",
    "DEFAULT_SPECTRAL_DIM",
    "DenseDecoder",
    "SpectralGPTSegmenter",
    "build_segmenter",
    "bilinear_matrix",
    "dense_head_flops",
]
