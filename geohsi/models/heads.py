"""Task heads that sit on the SpectralGPT token sequence.

The encoder (:class:`geohsi.models.spectralgpt.SpectralGPT`) returns the last block's tokens
``[N, T·L, D]``; a head turns them into predictions. Patch classification (the paper's setting) uses
:class:`ClassificationHead`; the dense head of a later stage starts from
:meth:`~geohsi.models.spectralgpt.SpectralGPT.token_grid` instead.

.. versionadded:: 0.1
"""

from __future__ import annotations

import torch
from torch import nn

from geohsi.errors import UsageError

#: Pooling modes of :class:`ClassificationHead`.
#: ``"mean"``: average over all tokens (geohsi's default, the paper's "average pooling").
#: ``"official"``: average over tokens ``1 … end``, reproducing the official fine-tune ViT, whose
#: pooling skips token 0 (a class-token leftover that, without a class token, simply drops the first
#: spatial token of spectral group 0). Use it only to compare against official logits.
POOL_MODES = ("mean", "official")


class ClassificationHead(nn.Module):
    """Mean-pool the tokens, normalise, classify: ``fc(drop(norm(pool(tokens))))``.

    Submodules (their names are the state-dict layout bundles rely on):

    - ``norm``: ``LayerNorm(D, eps)``; an official checkpoint's ``norm.*`` loads here.
    - ``drop``: dropout on the pooled vector (no parameters).
    - ``fc``: ``Linear(D, C)`` when ``hidden == 0`` (the official head; an official ``head.*`` loads
      here when its class count matches), else ``Sequential(Linear(D, hidden), GELU, Dropout,
      Linear(hidden, C))`` (the paper's MLP head), parameters ``fc.0.*`` and ``fc.3.*``.

    Args:
        embed_dim: token width D.
        num_classes: number of output classes C (≥ 1).
        hidden: width of the MLP's hidden layer; 0 for a single Linear.
        pool: ``"mean"`` (default) or ``"official"``; see :data:`POOL_MODES`.
        dropout: dropout probability before each Linear (training only).
        norm_eps: LayerNorm epsilon (1e-6 as in SpectralGPT).

    Raises:
        UsageError: an unknown ``pool`` mode, or a non-positive class count / negative hidden width.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        *,
        hidden: int = 0,
        pool: str = "mean",
        dropout: float = 0.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if pool not in POOL_MODES:
            raise UsageError(f"pool={pool!r} is not a pooling mode; use one of {', '.join(POOL_MODES)}")
        if num_classes < 1:
            raise UsageError(f"num_classes={num_classes} must be at least 1")
        if hidden < 0:
            raise UsageError(f"head hidden width {hidden} must be ≥ 0 (0 = single Linear)")
        self.pool = pool
        self.num_classes = num_classes
        self.hidden = hidden
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.drop = nn.Dropout(dropout)
        last = nn.Linear(hidden or embed_dim, num_classes)
        if hidden:
            first = nn.Linear(embed_dim, hidden)
            nn.init.xavier_uniform_(first.weight)
            nn.init.zeros_(first.bias)
            self.fc: nn.Module = nn.Sequential(first, nn.GELU(), nn.Dropout(dropout), last)
        else:
            self.fc = last
        # A near-zero last layer starts training from uniform class probabilities, as the official
        # fine-tune does (truncated normal, std 2e-5).
        nn.init.trunc_normal_(last.weight, std=2e-5)
        nn.init.zeros_(last.bias)

    def pool_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Average the tokens according to :attr:`pool`.

        Args:
            tokens: ``[N, S, D]`` encoder output.

        Returns:
            ``[N, D]`` pooled vectors (before the norm).
        """
        if self.pool == "official":
            return tokens[:, 1:].mean(dim=1)
        return tokens.mean(dim=1)

    def forward(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Classify a batch of token sequences.

        Args:
            tokens: ``[N, S, D]`` encoder output.
            pre_logits: return the normalised pooled vector ``[N, D]`` instead of the logits.

        Returns:
            ``[N, C]`` logits, or ``[N, D]`` features when ``pre_logits``.
        """
        x = self.norm(self.pool_tokens(tokens))
        if pre_logits:
            return x
        return self.fc(self.drop(x))


__all__ = ["ClassificationHead", "POOL_MODES"]
