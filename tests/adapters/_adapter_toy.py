"""A small stand-in for SpectralGPTClassifier with the same module names (encoder.blocks[i].attn.q …, head).

Imported by the adapter tests as ``_adapter_toy`` (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import torch
from torch import nn

DIM = 24  # factorises as 4·6: non-square Kronecker factors
HIDDEN = 48  # 6·8: fc1/fc2 are rectangular


class ToyAttention(nn.Module):
    def __init__(self, dim: int, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, s, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(n, s, h, d // h).transpose(1, 2)

        out = nn.functional.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return self.proj(out.transpose(1, 2).reshape(n, s, d))


class ToyMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ToyBlock(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ToyAttention(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = ToyMlp(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ToyEncoder(nn.Module):
    def __init__(self, dim: int, hidden: int, depth: int, in_chans: int = 6) -> None:
        super().__init__()
        self.patch = nn.Conv1d(in_chans, dim, 1)  # not a Linear: never adapted, even by all-linear
        self.pos = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.blocks = nn.ModuleList(ToyBlock(dim, hidden) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [N, C, S] → [N, S, D]
        t = self.patch(x).transpose(1, 2) + self.pos
        for b in self.blocks:
            t = b(t)
        return t


class ToyHead(nn.Module):
    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, classes)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(t.mean(dim=1)))


class ToyClassifier(nn.Module):
    def __init__(self, depth: int = 2, classes: int = 3, dim: int = DIM, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.encoder = ToyEncoder(dim, hidden, depth)
        self.head = ToyHead(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def make_toy(depth: int = 2, classes: int = 3, seed: int = 0) -> ToyClassifier:
    """The same seed gives the same backbone and head: a "fresh backbone" for load tests."""
    torch.manual_seed(seed)
    return ToyClassifier(depth=depth, classes=classes).eval()


def randomize_adapters(model: nn.Module, seed: int = 1, std: float = 0.1) -> None:
    """Give every adapter factor (and the head) non-zero values, as after some training."""
    from geohsi.adapters import adapter_layers

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in adapter_layers(model).values():
            for p in layer.adapter_parameters():
                p.copy_(torch.randn(p.shape, generator=g) * std)
        head = getattr(model, "head", None)
        if head is not None:
            for p in head.parameters():
                p.add_(torch.randn(p.shape, generator=g) * std)
