"""The transformer layers of SpectralGPT: tubelet embedding, attention with separate q/k/v, MLP, block.

Submodule names follow the official checkpoints (``attn.q``/``attn.k``/``attn.v``/``attn.proj``,
``mlp.fc1``/``mlp.fc2``, ``norm1``/``norm2``, ``patch_embed.proj``), so state dicts load by name.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from geohsi.models.config import SpectralGPTConfig


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


__all__ = ["Attention", "Block", "DropPath", "Mlp", "PatchEmbed3d", "init_linear_and_norm"]
