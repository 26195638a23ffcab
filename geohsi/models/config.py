"""SpectralGPT encoder configurations: the geometry and size dataclass and the named variants.

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geohsi.errors import UsageError


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


def resolve_model_config(config: str | SpectralGPTConfig | Mapping[str, Any], **overrides: Any) -> SpectralGPTConfig:
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


__all__ = ["CONFIGS", "SpectralGPTConfig", "resolve_model_config"]
