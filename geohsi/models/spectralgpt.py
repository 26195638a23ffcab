"""SpectralGPT: the spectral-spatial ViT encoder, its size variants and its official checkpoints.

An independent implementation of the encoder of Hong et al., *SpectralGPT: Spectral Remote Sensing
Foundation Model* (IEEE TPAMI 2024), written from the behavioural description in
``shared/reference/spectralgpt/ARCHITECTURE.md`` (the official code is GPLv3 and is not copied).

Model in one paragraph: the input ``[N, B, H, W]`` (B = 12 bands) is cut into tubelets of
``t_patch × p × p`` (3 × 8 × 8) by one ``Conv3d``; bands are grouped consecutively, giving
T = B / t_patch spectral groups of L = (H/p)·(W/p) spatial tokens. Tokens are ordered
**spectral-major** (all L tokens of group 0, then group 1, …; row-major inside a group). Token
(t, l) gets ``pos_embed_spatial[l] + pos_embed_temporal[t]`` (or one joint ``pos_embed[t·L + l]``),
then ``depth`` pre-norm blocks with full attention over all T·L tokens. Attention keeps **separate**
``q``, ``k``, ``v`` Linears so PEFT adapters can target Q and V alone. The encoder returns the last
block's tokens, un-normalised; the final LayerNorm belongs to the head
(:class:`~geohsi.models.heads.ClassificationHead`), as in the official fine-tune ViT.

Deliberate differences from the official fine-tune code (all documented where they happen):

- **Position embeddings are loaded, never left at zero.** The official fine-tune script loads an MAE
  checkpoint (separate ``pos_embed_spatial``/``pos_embed_temporal``) into a ViT with a joint
  ``pos_embed`` using ``strict=False``, so the joint embedding silently stays at zero. Here the
  default model keeps the separate layout (``sep_pos_embed=True``) and the loader refuses any
  checkpoint that does not fill every position embedding; loading a separate-layout checkpoint into
  a joint-layout model composes ``spatial[l] + temporal[t]`` exactly.
- **Position embeddings are resized per spectral group.** The official script interpolates the
  whole T·L sequence as one square grid (wrong for T > 1); :func:`resample_pos_embed` interpolates
  only the (H/p)×(W/p) spatial grid (bicubic, ``align_corners=False``) and keeps the temporal part.
- **Pooling averages all tokens.** The official head skips token 0; that mode is kept only as
  ``pool="official"`` to prove equality with the official logits.

Checkpoint key layout (official and geohsi safetensors alike): ``patch_embed.proj.*``,
``pos_embed_spatial``/``pos_embed_temporal`` or ``pos_embed``, ``blocks.{i}.{norm1, attn.q, attn.k,
attn.v, attn.proj, norm2, mlp.fc1, mlp.fc2}.*``, ``norm.*`` and optionally ``head.*``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geohsi.errors import BandMismatchError, InputFormatError, ModelError, UsageError
from geohsi.models.heads import ClassificationHead

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpectralGPTConfig:
    """Geometry and size of a SpectralGPT encoder.

    Attributes:
        img_size: input height and width in pixels (an int for square inputs, or ``(H, W)``).
        patch_size: spatial tubelet size p in pixels; ``img_size`` must be a multiple of it.
        num_bands: input channels B; a multiple of ``t_patch`` (12 in the official weights).
        t_patch: spectral tubelet depth in bands (3 in the official weights).
        embed_dim: token width D.
        depth: number of transformer blocks.
        num_heads: attention heads; must divide ``embed_dim``.
        mlp_ratio: MLP hidden width as a multiple of D.
        sep_pos_embed: separate spatial + spectral position embeddings (MAE layout, the default)
            instead of one joint embedding per token (official fine-tune layout).
        drop_path_rate: stochastic-depth rate of the last block (linear from 0 over depth).
        norm_eps: LayerNorm epsilon.

    Raises:
        UsageError: inconsistent geometry (see the message for the value at fault).

    .. versionadded:: 0.1
    """

    img_size: int | tuple[int, int] = 32
    patch_size: int = 8
    num_bands: int = 12
    t_patch: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    sep_pos_embed: bool = True
    drop_path_rate: float = 0.0
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        size = self.img_size
        if isinstance(size, (list, tuple)):
            if len(size) != 2:
                raise UsageError(f"img_size={size!r} must be an int or (height, width)")
            object.__setattr__(self, "img_size", (int(size[0]), int(size[1])))
        h, w = self.input_size
        p = self.patch_size
        if p < 1 or h < p or w < p or h % p or w % p:
            raise UsageError(f"img_size={self.img_size} is not a multiple of patch_size={p}; resize inputs to a multiple of {p}")
        if self.t_patch < 1 or self.num_bands < self.t_patch or self.num_bands % self.t_patch:
            raise UsageError(
                f"num_bands={self.num_bands} is not a multiple of t_patch={self.t_patch}; "
                f"reduce the scene to a multiple of {self.t_patch} channels (12 for the official weights)"
            )
        if self.num_heads < 1 or self.embed_dim % self.num_heads:
            raise UsageError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}; choose a divisor")
        if self.depth < 0 or not 0.0 <= self.drop_path_rate < 1.0 or self.mlp_ratio <= 0:
            raise UsageError(
                f"depth={self.depth}, drop_path_rate={self.drop_path_rate}, mlp_ratio={self.mlp_ratio}: "
                "need depth ≥ 0, 0 ≤ drop_path_rate < 1, mlp_ratio > 0"
            )

    @property
    def input_size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        s = self.img_size
        return (s, s) if isinstance(s, int) else (s[0], s[1])

    @property
    def grid_size(self) -> tuple[int, int]:
        """Spatial token grid ``(H/p, W/p)``."""
        h, w = self.input_size
        return h // self.patch_size, w // self.patch_size

    @property
    def num_groups(self) -> int:
        """Spectral groups T = B / t_patch."""
        return self.num_bands // self.t_patch

    @property
    def num_spatial(self) -> int:
        """Spatial tokens per spectral group L = (H/p)·(W/p)."""
        gh, gw = self.grid_size
        return gh * gw

    @property
    def num_tokens(self) -> int:
        """Sequence length T·L."""
        return self.num_groups * self.num_spatial

    @property
    def mlp_hidden(self) -> int:
        """MLP hidden width ``int(D · mlp_ratio)``."""
        return int(self.embed_dim * self.mlp_ratio)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        if isinstance(d["img_size"], tuple):
            d["img_size"] = list(d["img_size"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpectralGPTConfig:
        """Rebuild a config from :meth:`to_dict` output.

        Raises:
            UsageError: unknown keys (e.g. a config from another model family).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UsageError(f"unknown SpectralGPT config keys {unknown}; allowed: {sorted(known)}")
        return cls(**dict(d))

    def describe(self) -> str:
        """Short human description used in messages, e.g. ``D=768 depth=12 32×32 px 12 bands``."""
        h, w = self.input_size
        layout = "sep" if self.sep_pos_embed else "joint"
        return f"D={self.embed_dim} depth={self.depth} {h}×{w} px {self.num_bands} bands {layout} pos_embed"


#: Named configurations. ``tiny`` is the golden-fixture geometry (tests); ``small`` trains on two CPU
#: cores; ``base`` is ViT-B, the size of the official SpectralGPT / SpectralGPT+ weights.
CONFIGS: dict[str, SpectralGPTConfig] = {
    "tiny": SpectralGPTConfig(embed_dim=64, depth=2, num_heads=4),
    "small": SpectralGPTConfig(embed_dim=192, depth=4, num_heads=3),
    "base": SpectralGPTConfig(embed_dim=768, depth=12, num_heads=12),
}


def resolve_config(config: str | SpectralGPTConfig | Mapping[str, Any], **overrides: Any) -> SpectralGPTConfig:
    """Turn a config name, config or dict into a :class:`SpectralGPTConfig`, applying overrides.

    Args:
        config: a key of :data:`CONFIGS`, a config, or a :meth:`SpectralGPTConfig.to_dict` dict.
        **overrides: fields to replace, e.g. ``img_size=64``.

    Returns:
        The resolved config.

    Raises:
        UsageError: unknown name or field.

    .. versionadded:: 0.1
    """
    if isinstance(config, str):
        if config not in CONFIGS:
            raise UsageError(f"unknown SpectralGPT config {config!r}; choose one of {', '.join(CONFIGS)}")
        cfg = CONFIGS[config]
    elif isinstance(config, SpectralGPTConfig):
        cfg = config
    else:
        cfg = SpectralGPTConfig.from_dict(config)
    if overrides:
        known = {f.name for f in dataclasses.fields(SpectralGPTConfig)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise UsageError(f"unknown SpectralGPT config fields {bad}; allowed: {sorted(known)}")
        cfg = dataclasses.replace(cfg, **overrides)
    return cfg


# --------------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------------


def init_linear_and_norm(modules: Iterable[nn.Module]) -> None:
    """The ViT/MAE initialisation: Xavier-uniform Linear weights, zero biases, unit LayerNorms."""
    for m in modules:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's residual branch with probability ``p`` (training only)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Attention(nn.Module):
    """Multi-head self-attention with separate ``q``, ``k``, ``v`` and ``proj`` Linears (all with bias)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, s, d = x.shape
        h = self.num_heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(n, s, h, d // h).transpose(1, 2)

        # Default scale head_dim ** -0.5, softmax over keys: the official computation.
        out = F.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)))
        return self.proj(out.transpose(1, 2).reshape(n, s, d))


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` with exact (erf) GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, drop_path: float, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_hidden)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed3d(nn.Module):
    """Tubelet embedding: ``Conv3d(1, D, (t_patch, p, p), stride=(t_patch, p, p))`` over (bands, y, x)."""

    def __init__(self, config: SpectralGPTConfig) -> None:
        super().__init__()
        k = (config.t_patch, config.patch_size, config.patch_size)
        self.proj = nn.Conv3d(1, config.embed_dim, kernel_size=k, stride=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, B, H, W]`` → ``[N, T, L, D]`` (spatial tokens row-major)."""
        x = self.proj(x.unsqueeze(1))  # [N, D, T, H/p, W/p]
        return x.flatten(3).permute(0, 2, 3, 1)


class SpectralGPT(nn.Module):
    """The SpectralGPT encoder (no head).

    Submodule names follow the official checkpoints: ``patch_embed.proj``, ``pos_embed_spatial``
    ``[1, L, D]`` + ``pos_embed_temporal`` ``[1, T, D]`` (or ``pos_embed`` ``[1, T·L, D]`` when
    ``sep_pos_embed=False``), ``blocks[i].{norm1, attn.{q,k,v,proj}, norm2, mlp.{fc1,fc2}}``.

    Args:
        config: a :class:`SpectralGPTConfig` or the name of one in :data:`CONFIGS`.

    Example:
        >>> enc = spectralgpt_tiny()
        >>> enc.forward_features(torch.zeros(2, 12, 32, 32)).shape
        torch.Size([2, 64, 64])

    .. versionadded:: 0.1
    """

    def __init__(self, config: SpectralGPTConfig | str = "base") -> None:
        super().__init__()
        cfg = resolve_config(config)
        self.config = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed3d(cfg)
        if cfg.sep_pos_embed:
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, cfg.num_spatial, d))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, cfg.num_groups, d))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_tokens, d))
        # Linear 0 → drop_path_rate over depth, in Python so a meta-device build works too.
        last = max(cfg.depth - 1, 1)
        rates = [cfg.drop_path_rate * i / last for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(Block(d, cfg.num_heads, cfg.mlp_hidden, r, cfg.norm_eps) for r in rates)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """MAE-style initialisation (xavier-uniform Linears and tubelet kernel, N(0, 0.02²) positions)."""
        for name, p in self.named_parameters():
            if name.startswith("pos_embed"):
                nn.init.trunc_normal_(p, std=0.02)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.proj.bias)
        init_linear_and_norm(self.blocks.modules())

    @property
    def num_tokens(self) -> int:
        """Sequence length T·L."""
        return self.config.num_tokens

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Token grid ``(T, H/p, W/p)``."""
        return (self.config.num_groups, *self.config.grid_size)

    @property
    def embed_dim(self) -> int:
        """Token width D."""
        return self.config.embed_dim

    def _check_input(self, x: torch.Tensor) -> None:
        cfg = self.config
        if x.ndim != 4:
            raise UsageError(f"SpectralGPT input has shape {tuple(x.shape)}; expected [N, {cfg.num_bands}, H, W]")
        if x.shape[1] != cfg.num_bands:
            raise BandMismatchError(
                f"SpectralGPT input has {x.shape[1]} channels; the model expects {cfg.num_bands}: "
                f"reduce the scene to {cfg.num_bands} channels (PCA or S2 resampling)"
            )
        if tuple(x.shape[2:]) != cfg.input_size:
            raise UsageError(
                f"SpectralGPT input is {x.shape[2]}×{x.shape[3]} px; the model expects "
                f"{cfg.input_size[0]}×{cfg.input_size[1]}: resize windows or build the model with img_size={tuple(x.shape[2:])}"
            )

    def embed_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Tubelet embedding plus position embedding.

        Args:
            x: ``[N, B, H, W]`` input.

        Returns:
            ``[N, T·L, D]`` tokens, spectral-major order.
        """
        self._check_input(x)
        t = self.patch_embed(x)  # [N, T, L, D]
        n, tt, ll, d = t.shape
        if self.config.sep_pos_embed:
            t = t + self.pos_embed_spatial.unsqueeze(1) + self.pos_embed_temporal.unsqueeze(2)
            return t.reshape(n, tt * ll, d)
        return t.reshape(n, tt * ll, d) + self.pos_embed

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch.

        Args:
            x: ``[N, B, H, W]`` input (B = ``num_bands``, H×W = ``img_size``).

        Returns:
            ``[N, T·L, D]`` output of the last block, before any norm.

        Raises:
            BandMismatchError: wrong channel count.
            UsageError: wrong rank or spatial size.
        """
        x = self.embed_tokens(x)
        for blk in self.blocks:
            x = blk(x)
        return x

    forward = forward_features

    def token_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """Reshape a token sequence to its grid for dense heads.

        Args:
            tokens: ``[N, T·L, D]`` (output of :meth:`forward_features`).

        Returns:
            ``[N, T, H/p, W/p, D]`` view; ``[:, t, i, j]`` is the tubelet of bands
            ``t·t_patch … (t+1)·t_patch − 1`` at rows ``i·p …`` and columns ``j·p …``.
        """
        t, gh, gw = self.grid_size
        return tokens.reshape(tokens.shape[0], t, gh, gw, tokens.shape[-1])


class SpectralGPTClassifier(nn.Module):
    """SpectralGPT encoder + :class:`~geohsi.models.heads.ClassificationHead`.

    Attributes:
        encoder: the :class:`SpectralGPT` encoder (state-dict prefix ``encoder.``).
        head: the classification head (prefix ``head.``; ``head.norm`` receives the official
            ``norm.*``, ``head.fc`` the official ``head.*`` when shapes fit).

    Args:
        config: encoder config or its name.
        num_classes: number of classes C.
        pool: ``"mean"`` (default) or ``"official"`` (skip token 0, for official-logit equality only).
        head_hidden: MLP hidden width; 0 = single Linear (the official head).
        head_dropout: dropout in the head.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        config: SpectralGPTConfig | str,
        num_classes: int,
        *,
        pool: str = "mean",
        head_hidden: int = 0,
        head_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.encoder = SpectralGPT(config)
        self.config = self.encoder.config
        self.head = ClassificationHead(
            self.config.embed_dim,
            num_classes,
            hidden=head_hidden,
            pool=pool,
            dropout=head_dropout,
            norm_eps=self.config.norm_eps,
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, B, H, W]`` → ``[N, T·L, D]`` encoder tokens."""
        return self.encoder.forward_features(x)

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``[N, T·L, D]`` → ``[N, C]`` logits (``[N, D]`` normalised features if ``pre_logits``)."""
        return self.head(tokens, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, B, H, W]`` → ``[N, C]`` logits."""
        return self.head(self.encoder.forward_features(x))


def _factory(name: str, overrides: dict[str, Any]) -> SpectralGPT:
    return SpectralGPT(resolve_config(name, **overrides))


def spectralgpt_tiny(**overrides: Any) -> SpectralGPT:
    """Tiny encoder (D 64, depth 2, 4 heads): the golden-fixture geometry, for tests.

    .. versionadded:: 0.1
    """
    return _factory("tiny", overrides)


def spectralgpt_small(**overrides: Any) -> SpectralGPT:
    """Small encoder (D 192, depth 4, 3 heads, ≈1.8 M parameters): CPU experiments.

    .. versionadded:: 0.1
    """
    return _factory("small", overrides)


def spectralgpt_base(**overrides: Any) -> SpectralGPT:
    """ViT-B encoder (D 768, depth 12, 12 heads, ≈85.2 M parameters at 32×32): the official weights' size.

    .. versionadded:: 0.1
    """
    return _factory("base", overrides)


def build_classifier(
    config: str | SpectralGPTConfig,
    num_classes: int,
    *,
    pool: str = "mean",
    head_hidden: int = 0,
    head_dropout: float = 0.0,
    **overrides: Any,
) -> SpectralGPTClassifier:
    """Build a classifier from a config name or config.

    Args:
        config: name in :data:`CONFIGS` or a config.
        num_classes: number of classes.
        pool: head pooling mode (see :data:`geohsi.models.heads.POOL_MODES`).
        head_hidden: MLP hidden width (0 = single Linear).
        head_dropout: head dropout.
        **overrides: config fields to replace (``img_size``, ``drop_path_rate``, …).

    Returns:
        A freshly initialised :class:`SpectralGPTClassifier`.

    .. versionadded:: 0.1
    """
    cfg = resolve_config(config, **overrides)
    return SpectralGPTClassifier(cfg, num_classes, pool=pool, head_hidden=head_hidden, head_dropout=head_dropout)


# --------------------------------------------------------------------------------------------------
# Cost formulas
# --------------------------------------------------------------------------------------------------


def count_parameters(config: str | SpectralGPTConfig, num_classes: int = 0, head_hidden: int = 0) -> int:
    """Closed-form parameter count.

    Args:
        config: encoder config or name.
        num_classes: 0 for the encoder alone, else include a :class:`ClassificationHead` with C classes.
        head_hidden: the head's hidden width.

    Returns:
        Number of parameters (the ``base`` encoder at 32×32: 85,218,048).

    .. versionadded:: 0.1
    """
    c = resolve_config(config)
    d, hd = c.embed_dim, c.mlp_hidden
    patch = d * c.t_patch * c.patch_size**2 + d
    pos = (c.num_spatial + c.num_groups) * d if c.sep_pos_embed else c.num_tokens * d
    block = 4 * d + 4 * (d * d + d) + (d * hd + hd) + (hd * d + d)
    total = patch + pos + c.depth * block
    if num_classes:
        total += 2 * d
        total += (d * head_hidden + head_hidden + head_hidden * num_classes + num_classes) if head_hidden else d * num_classes + num_classes
    return total


def count_flops(config: str | SpectralGPTConfig) -> int:
    """Analytic floating-point operations of one encoder forward for one sample.

    Counts the matrix products only (2 FLOPs per multiply-add): the tubelet convolution, the
    ``q``/``k``/``v``/``proj`` and MLP Linears, and the two attention products ``QKᵀ`` and ``AV``.
    Norms, softmax, GELU and additions are left out (well under 1 % for ViT-B).

    Args:
        config: encoder config or name.

    Returns:
        FLOPs per sample (``base`` at 32×32: ≈ 11.04 GFLOP).

    .. versionadded:: 0.1
    """
    c = resolve_config(config)
    s, d, hd = c.num_tokens, c.embed_dim, c.mlp_hidden
    patch = 2 * s * (c.t_patch * c.patch_size**2) * d
    block = 2 * s * d * d * 4 + 2 * 2 * s * s * d + 2 * 2 * s * d * hd
    return patch + c.depth * block


# --------------------------------------------------------------------------------------------------
# Official checkpoints
# --------------------------------------------------------------------------------------------------

ZENODO_RECORD = "https://zenodo.org/records/8412455"

#: Released SpectralGPT weights (MAE pretraining checkpoints, ViT-B, 12 bands, t_patch 3, patch 8).
#: sha256 is None: the digests were not available offline when this table was written; fill them in
#: from a verified download before relying on them.
KNOWN_CHECKPOINTS: dict[str, dict[str, Any]] = {
    "SpectralGPT": {
        "file": "SpectralGPT.pth",
        "url": f"{ZENODO_RECORD}/files/SpectralGPT.pth",
        "sha256": None,
        "config": "base",
        "input_size": 96,
        "layout": "mae (pos_embed_spatial [1,144,768] + pos_embed_temporal [1,4,768], decoder_*)",
        "pretraining": "MAE on fMoW-Sentinel (Sentinel-2, 12 bands B01–B12 without B10), 200 epochs",
    },
    "SpectralGPT+": {
        "file": "SpectralGPT+.pth",
        "url": f"{ZENODO_RECORD}/files/SpectralGPT+.pth",
        "sha256": None,
        "config": "base",
        "input_size": 128,
        "layout": "mae (pos_embed_spatial [1,256,768] + pos_embed_temporal [1,4,768], decoder_*)",
        "pretraining": "SpectralGPT continued by MAE on BigEarthNet-S2 for 100 epochs",
    },
}

_WRAPPERS = ("model", "state_dict", "model_state")
_MAX_LISTED = 4


def _list(items: list[str]) -> str:
    head = ", ".join(items[:_MAX_LISTED])
    return head + (f", … (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def _unwrap(obj: Any) -> dict[str, torch.Tensor]:
    """Strip ``{'model': …}`` / ``{'state_dict': …}`` wrappers and DDP ``module.`` prefixes."""
    if not isinstance(obj, Mapping):
        raise ModelError(f"checkpoint holds a {type(obj).__name__}, not a state dict; save model.state_dict() instead")
    for key in _WRAPPERS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise ModelError(f"checkpoint entry {k!r} is a {type(v).__name__}, not a tensor; save model.state_dict() instead")
        while k.startswith("module."):
            k = k[len("module.") :]
        out[k] = v
    return out


def _square_side(n: int, what: str) -> int:
    side = math.isqrt(n)
    if side * side != n:
        raise ModelError(f"{what} has {n} spatial positions, not a square grid; cannot resample it")
    return side


def resample_pos_embed(pos: torch.Tensor, new_grid: tuple[int, int], num_groups: int = 1) -> torch.Tensor:
    """Resize position embeddings over the spatial grid, one spectral group at a time.

    The source grid is taken as square (the released checkpoints are 12×12 and 16×16). Interpolation
    is bicubic with ``align_corners=False`` and no antialiasing, computed in float32.

    Args:
        pos: ``[1, G·Ls, D]`` with ``Ls`` a square number; ``G = num_groups`` spectral groups in
            spectral-major order (G = 1 for ``pos_embed_spatial``).
        new_grid: target ``(H/p, W/p)``.
        num_groups: G.

    Returns:
        ``[1, G·h·w, D]`` in the input's dtype (the input itself when the grid already matches).

    .. versionadded:: 0.1
    """
    _, n, d = pos.shape
    ls = n // num_groups
    side = _square_side(ls, "position embedding")
    if (side, side) == tuple(new_grid):
        return pos
    grid = pos.reshape(num_groups, side, side, d).permute(0, 3, 1, 2).float()  # [G, D, s, s]
    out = F.interpolate(grid, size=tuple(new_grid), mode="bicubic", align_corners=False)
    return out.permute(0, 2, 3, 1).reshape(1, -1, d).to(pos.dtype)


def _split_model(model: nn.Module) -> tuple[SpectralGPT, ClassificationHead | None, str]:
    if isinstance(model, SpectralGPTClassifier):
        return model.encoder, model.head, "encoder."
    if isinstance(model, SpectralGPT):
        return model, None, ""
    raise UsageError(f"cannot load SpectralGPT weights into a {type(model).__name__}; pass a SpectralGPT or SpectralGPTClassifier")


def checkpoint_filter_fn(state_dict: Mapping[str, Any], model: nn.Module) -> dict[str, torch.Tensor]:
    """Translate an official (or geohsi) SpectralGPT state dict to ``model``'s parameter names.

    Steps: strip ``model``/``state_dict`` wrappers and ``module.`` prefixes; drop the MAE decoder
    (``decoder_*``) and ``mask_token``; split a fused ``attn.qkv`` into ``q``/``k``/``v``; map
    ``norm.*`` → ``head.norm.*`` and ``head.*`` → ``head.fc.*`` when ``model`` is a
    :class:`SpectralGPTClassifier` (a head whose shape does not fit — other class count or an MLP head
    — is dropped and will show up as missing; for a bare encoder both are dropped, the encoder has no
    norm); resize and convert position embeddings:

    - separate → separate: ``pos_embed_spatial`` resampled to the model's grid
      (:func:`resample_pos_embed`), ``pos_embed_temporal`` unchanged;
    - separate → joint: ``pos_embed[t·L + l] = spatial[l] + temporal[t]`` (exact);
    - joint → joint (official fine-tune checkpoints): reshaped as ``[T, Ls]`` and the spatial part
      resampled per spectral group;
    - joint → separate is not invertible and is left to fail in the loader (build the model with
      ``sep_pos_embed=False``).

    Entries that cannot be translated are passed through unchanged so that the loader reports them.

    Args:
        state_dict: checkpoint contents (wrapped or not).
        model: the target :class:`SpectralGPT` or :class:`SpectralGPTClassifier`.

    Returns:
        A state dict keyed like ``model.state_dict()``.

    Raises:
        ModelError: not a mapping of tensors, or a non-square source position grid.

    .. versionadded:: 0.1
    """
    sd = _unwrap(state_dict)
    encoder, head, prefix = _split_model(model)
    cfg = encoder.config
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k == "mask_token" or k.startswith("decoder_"):
            continue
        if k.startswith("norm."):
            if head is not None:
                out["head.norm." + k[len("norm.") :]] = v
            continue
        if k.startswith("head."):
            fc = head.fc if head is not None else None
            if isinstance(fc, nn.Linear) and tuple(v.shape) == tuple(getattr(fc, k[len("head.") :]).shape):
                out["head.fc." + k[len("head.") :]] = v
            continue
        m = re.fullmatch(r"(blocks\.\d+\.attn\.)qkv\.(weight|bias)", k)
        if m and v.shape[0] % 3 == 0:
            for name, part in zip("qkv", v.chunk(3, dim=0), strict=True):
                out[f"{prefix}{m.group(1)}{name}.{m.group(2)}"] = part
            continue
        if k.startswith("pos_embed"):
            continue  # handled below, after every key is known
        out[prefix + k] = v

    spatial, temporal, joint = sd.get("pos_embed_spatial"), sd.get("pos_embed_temporal"), sd.get("pos_embed")
    grid, t_groups = cfg.grid_size, cfg.num_groups
    if spatial is not None:
        spatial = resample_pos_embed(spatial, grid)
        if cfg.sep_pos_embed or temporal is None or temporal.shape[1] != t_groups or spatial.shape[-1] != temporal.shape[-1]:
            out[prefix + "pos_embed_spatial"] = spatial
            if temporal is not None:
                out[prefix + "pos_embed_temporal"] = temporal
        else:
            comp = spatial.unsqueeze(1) + temporal.unsqueeze(2)  # [1, T, L, D]
            out[prefix + "pos_embed"] = comp.reshape(1, -1, comp.shape[-1])
    elif temporal is not None:
        out[prefix + "pos_embed_temporal"] = temporal
    if joint is not None:
        if not cfg.sep_pos_embed and joint.shape[1] % t_groups == 0:
            joint = resample_pos_embed(joint, grid, num_groups=t_groups)
        out[prefix + "pos_embed"] = joint
    return out


def _read_pth(path: Path) -> Any:
    try:
        # argparse.Namespace is allow-listed because MAE-style training scripts store their `args`
        # beside the weights; it only holds attribute values, each still vetted by the unpickler.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None:  # not a pickle of objects, just not a checkpoint (e.g. an HTML error page)
            raise ModelError(f"{path} is not a readable PyTorch checkpoint (corrupt or another format); check the download") from e
        raise ModelError(
            f"{path} is not a plain weights file (it pickles {found.group(1)}); geohsi will not unpickle "
            "arbitrary objects: re-save it as torch.save({'model': model.state_dict()}) or as safetensors"
        ) from e
    except Exception as e:  # torch raises KeyError/RuntimeError/EOFError for non-checkpoints
        raise ModelError(f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}: {e}); check the download or re-save it") from e


def _read_state_dict(path: str | os.PathLike) -> tuple[Any, dict[str, str]]:
    p = Path(path)
    if not p.is_file():
        raise InputFormatError(f"checkpoint {p} does not exist; check the path or download it (see KNOWN_CHECKPOINTS)")
    if p.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(p, framework="pt", device="cpu") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118
        except Exception as e:
            raise ModelError(f"{p} is not a readable safetensors file ({type(e).__name__}: {e}); check the file or re-save it") from e
    return _read_pth(p), {}


def load_state_dict_checked(
    model: nn.Module,
    state_dict: Mapping[str, Any],
    *,
    source: str = "checkpoint",
    allow_missing: Iterable[str] = ("head.*",),
) -> nn.Module:
    """Filter a state dict with :func:`checkpoint_filter_fn` and load it, refusing any mismatch.

    Args:
        model: target :class:`SpectralGPT` or :class:`SpectralGPTClassifier` (modified in place).
        state_dict: checkpoint contents.
        source: name of the checkpoint in messages (its path).
        allow_missing: ``fnmatch`` patterns over ``model``'s parameter names that may stay at their
            initial values (default: the head, which a backbone checkpoint does not fit).

    Returns:
        ``model``.

    Raises:
        ModelError: missing (not allowed), unexpected or wrong-shaped keys, listed in one line.

    .. versionadded:: 0.1
    """
    encoder, _, _ = _split_model(model)
    try:
        sd = checkpoint_filter_fn(state_dict, model)
    except ModelError as e:
        raise ModelError(f"{source}: {e}") from e
    own = model.state_dict()
    patterns = tuple(allow_missing)
    missing = [k for k in own if k not in sd]
    refused = [k for k in missing if not any(fnmatch(k, p) for p in patterns)]
    unexpected = [k for k in sd if k not in own]
    wrong = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in sd if k in own and sd[k].shape != own[k].shape
    ]
    if refused or unexpected or wrong:
        parts = []
        if refused:
            parts.append(f"{len(refused)} missing [{_list(refused)}]")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected [{_list(unexpected)}]")
        if wrong:
            parts.append(f"{len(wrong)} wrong-shaped (checkpoint vs model) [{_list(wrong)}]")
        cfg = encoder.config
        if any(k.endswith("pos_embed") for k in unexpected) and cfg.sep_pos_embed:
            fix = "this is a joint-pos_embed (fine-tune) checkpoint: build the model with sep_pos_embed=False"
        else:
            fix = "build the model with the checkpoint's configuration (embed_dim, depth, patch_size, t_patch, num_bands)"
        raise ModelError(f"{source} does not fit SpectralGPT ({cfg.describe()}): {'; '.join(parts)}; {fix}")
    model.load_state_dict(sd, strict=False)
    if missing:
        log.info("%s: left at initial values (allowed): %s", source, _list(missing))
    return model


def _target(model_or_config: nn.Module | str | SpectralGPTConfig, joint_in_ckpt: bool) -> nn.Module:
    if isinstance(model_or_config, nn.Module):
        return model_or_config
    cfg = resolve_config(model_or_config)
    if joint_in_ckpt and cfg.sep_pos_embed:
        # A fine-tune checkpoint carries a joint pos_embed that cannot be split exactly.
        cfg = dataclasses.replace(cfg, sep_pos_embed=False)
    return SpectralGPT(cfg)


def _has_joint_pos(obj: Any) -> bool:
    try:
        keys = _unwrap(obj).keys()
    except ModelError:
        return False
    return "pos_embed" in keys and "pos_embed_spatial" not in keys


def load_official_checkpoint(
    path: str | os.PathLike,
    model_or_config: nn.Module | str | SpectralGPTConfig = "base",
    *,
    allow_missing: Iterable[str] = ("head.*",),
) -> nn.Module:
    """Load an official SpectralGPT ``.pth`` (MAE pretraining or fine-tune layout) strictly.

    The file is read with ``torch.load(weights_only=True)``: tensors and plain containers only
    (plus ``argparse.Namespace``, which training scripts store as ``args``).

    Args:
        path: the ``.pth`` file (e.g. ``SpectralGPT+.pth``, see :data:`KNOWN_CHECKPOINTS`).
        model_or_config: a model to fill in place, or a config/name to build a :class:`SpectralGPT`
            encoder from (switched to ``sep_pos_embed=False`` when the checkpoint has a joint
            ``pos_embed``). The model's ``img_size`` may differ from the checkpoint's: position
            embeddings are resampled.
        allow_missing: parameter-name patterns that may be absent (default: the head).

    Returns:
        The loaded model.

    Raises:
        InputFormatError: the file does not exist.
        ModelError: a pickled non-tensor object, an unreadable file, or keys that do not fit.

    Example:
        >>> enc = load_official_checkpoint("SpectralGPT+.pth", "base")  # doctest: +SKIP

    .. versionadded:: 0.1
    """
    obj, _ = _read_state_dict(path)
    model = _target(model_or_config, _has_joint_pos(obj))
    return load_state_dict_checked(model, obj, source=str(path), allow_missing=allow_missing)


def load_backbone(
    path: str | os.PathLike,
    config: nn.Module | str | SpectralGPTConfig | None = None,
    *,
    allow_missing: Iterable[str] = ("head.*",),
) -> nn.Module:
    """Load backbone weights from ``.safetensors`` (geohsi) or ``.pth`` (official), same key layout.

    Args:
        path: weights file.
        config: model to fill, config or name; ``None`` uses the config stored in the
            safetensors metadata by :func:`save_backbone`.
        allow_missing: parameter-name patterns that may be absent.

    Returns:
        The loaded model.

    Raises:
        InputFormatError: the file does not exist.
        ModelError: unreadable file, no config given and none stored, or keys that do not fit.

    .. versionadded:: 0.1
    """
    obj, meta = _read_state_dict(path)
    if config is None:
        if "geohsi_config" not in meta:
            raise ModelError(f"{path} stores no geohsi config; pass config= (e.g. 'base') to load_backbone")
        config = SpectralGPTConfig.from_dict(json.loads(meta["geohsi_config"]))
    model = _target(config, _has_joint_pos(obj))
    return load_state_dict_checked(model, obj, source=str(path), allow_missing=allow_missing)


def save_backbone(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    include_head: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write the encoder as safetensors in the official key layout, with its config as metadata.

    Args:
        model: a :class:`SpectralGPT` or :class:`SpectralGPTClassifier` (adapters merged first:
            wrapped ``q``/``v`` modules would not match the layout and fail to load back).
        path: output ``.safetensors`` file.
        include_head: for a classifier, also write ``head.norm`` as ``norm.*`` and a single-Linear
            ``head.fc`` as ``head.*`` (official layout).
        overwrite: replace an existing file.

    Returns:
        The written path.

    Raises:
        OutputError: the file exists without ``overwrite`` or cannot be written.

    .. versionadded:: 0.1
    """
    from safetensors.torch import save_file

    from geohsi.files import atomic_output

    encoder, head, _ = _split_model(model)
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    if include_head and head is not None:
        tensors.update({f"norm.{k}": v.detach().cpu().contiguous() for k, v in head.norm.state_dict().items()})
        if isinstance(head.fc, nn.Linear):
            tensors.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in head.fc.state_dict().items()})
    meta = {"format": "geohsi-spectralgpt", "geohsi_config": json.dumps(encoder.config.to_dict())}
    with atomic_output(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


__all__ = [
    "CONFIGS",
    "KNOWN_CHECKPOINTS",
    "SpectralGPT",
    "SpectralGPTClassifier",
    "SpectralGPTConfig",
    "build_classifier",
    "checkpoint_filter_fn",
    "count_flops",
    "count_parameters",
    "load_backbone",
    "load_official_checkpoint",
    "load_state_dict_checked",
    "resample_pos_embed",
    "resolve_config",
    "save_backbone",
    "spectralgpt_base",
    "spectralgpt_small",
    "spectralgpt_tiny",
]
