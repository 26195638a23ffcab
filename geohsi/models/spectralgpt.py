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

Configurations live in :mod:`geohsi.models.config`, the layers in :mod:`geohsi.models.layers` and
checkpoint I/O (official ``.pth``, geohsi safetensors, :func:`~geohsi.models.checkpoint.checkpoint_filter_fn`)
in :mod:`geohsi.models.checkpoint`.

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from geohsi.errors import BandMismatchError, UsageError
from geohsi.models.config import SpectralGPTConfig, resolve_model_config
from geohsi.models.heads import ClassificationHead
from geohsi.models.layers import Block, PatchEmbed3d, init_linear_and_norm


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
        cfg = resolve_model_config(config)
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
            self.config.embed_dim, num_classes, hidden=head_hidden, pool=pool, dropout=head_dropout, norm_eps=self.config.norm_eps
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
    return SpectralGPT(resolve_model_config(name, **overrides))


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
    cfg = resolve_model_config(config, **overrides)
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
    c = resolve_model_config(config)
    d, hd = c.embed_dim, c.mlp_hidden
    patch = d * c.t_patch * c.patch_size**2 + d
    pos = (c.num_spatial + c.num_groups) * d if c.sep_pos_embed else c.num_tokens * d
    block = 4 * d + 4 * (d * d + d) + (d * hd + hd) + (hd * d + d)
    total = patch + pos + c.depth * block
    if num_classes:
        total += 2 * d
        total += (
            (d * head_hidden + head_hidden + head_hidden * num_classes + num_classes)
            if head_hidden
            else d * num_classes + num_classes
        )
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
    c = resolve_model_config(config)
    s, d, hd = c.num_tokens, c.embed_dim, c.mlp_hidden
    patch = 2 * s * (c.t_patch * c.patch_size**2) * d
    block = 2 * s * d * d * 4 + 2 * 2 * s * s * d + 2 * 2 * s * d * hd
    return patch + c.depth * block


__all__ = [
    "SpectralGPT",
    "SpectralGPTClassifier",
    "build_classifier",
    "count_flops",
    "count_parameters",
    "spectralgpt_base",
    "spectralgpt_small",
    "spectralgpt_tiny",
]
