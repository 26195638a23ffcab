"""Spectral masked autoencoder: SpectralGPT's pretraining objective around our encoder.

Written from the behavioural description in ``shared/reference/spectralgpt/ARCHITECTURE.md`` (the
official code is GPLv3 and is not copied). One forward pass:

1. **Tubelets.** The input ``[N, B, H, W]`` becomes ``S = T·L`` tubelet tokens with
   :meth:`SpectralGPT.embed_tokens <geohsi.models.spectralgpt.SpectralGPT.embed_tokens>` (tubelet
   convolution + position embeddings), spectral-major order.
2. **3-D masking.** Per sample, ``round(mask_ratio · S)`` tokens are masked uniformly at random over
   the whole (spectral group × spatial) grid, drawn from a caller-supplied generator so that a
   seeded run masks identically every time. The encoder never sees a masked token.
3. **Encoder.** The visible tokens go through the encoder's blocks, then an encoder-side final
   ``LayerNorm`` (``norm``): the official MAE's ``norm.*``, which a classifier loads as its
   ``head.norm``.
4. **Decoder.** ``decoder_embed`` (D → D_dec), a learned ``mask_token`` at every masked position,
   the decoder's own separate spatial + spectral position embeddings, ``decoder_blocks`` (the
   encoder's block type), ``decoder_norm`` and ``decoder_pred`` (D_dec → t_patch·p·p values per
   tubelet).
5. **Loss.** Mean squared error over the **masked tubelets only**; with ``norm_pix_loss`` each
   target tubelet is standardised by its own mean and variance first (MAE's normalised-pixel target).

The state dict of :meth:`SpectralMAE.official_state_dict` has the official MAE key layout
(``patch_embed.*``, ``pos_embed_*``, ``blocks.*``, ``norm.*``, ``mask_token``, ``decoder_*``), so the
official-checkpoint loader reads a geohsi MAE exactly like an official one.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geohsi.errors import UsageError
from geohsi.models.checkpoint import save_backbone
from geohsi.models.config import SpectralGPTConfig, resolve_model_config
from geohsi.models.layers import Block, init_linear_and_norm
from geohsi.models.spectralgpt import SpectralGPT

#: Decoder sizes ``(dim, depth, heads)`` by encoder config name. ``base`` is the official MAE decoder
#: (D 512, 4 blocks); the smaller encoders get proportionally lighter decoders because on a CPU the
#: decoder, which runs on all T·L tokens while the encoder sees only the visible tenth, dominates the
#: cost of a step (the official decoder would make ``small`` pretraining ~20× slower).
DECODERS: dict[str, tuple[int, int, int]] = {"tiny": (32, 1, 2), "small": (128, 2, 4), "base": (512, 4, 16)}


def decoder_for(config: str | SpectralGPTConfig) -> tuple[int, int, int]:
    """Default decoder ``(dim, depth, heads)`` for an encoder config (the official one if unnamed).

    .. versionadded:: 0.1
    """
    if isinstance(config, str) and config in DECODERS:
        return DECODERS[config]
    return DECODERS["base"]


def masked_count(num_tokens: int, mask_ratio: float) -> int:
    """Number of masked tokens per sample: ``round(mask_ratio · num_tokens)``.

    Args:
        num_tokens: sequence length S = T·L.
        mask_ratio: share of tokens to mask.

    Returns:
        The count, between 1 and S − 1.

    Raises:
        UsageError: a ratio that masks nothing or everything.

    .. versionadded:: 0.1
    """
    if not 0.0 < mask_ratio < 1.0:
        raise UsageError(f"--mask-ratio {mask_ratio} must lie strictly between 0 and 1 (SpectralGPT uses 0.9)")
    n = round(mask_ratio * num_tokens)
    if n < 1 or n > num_tokens - 1:
        raise UsageError(
            f"--mask-ratio {mask_ratio} masks {n} of {num_tokens} tokens; choose a ratio that leaves at least one "
            "token masked and one visible"
        )
    return n


@dataclass
class MAEOutput:
    """Result of :meth:`SpectralMAE.forward`.

    Attributes:
        loss: scalar MSE over the masked tubelets (float32).
        pred: ``[N, S, t_patch·p·p]`` decoder predictions for every tubelet (float32).
        mask: ``[N, S]`` float32, 1 at masked tokens, 0 at visible ones.
        latent: ``[N, S − M, D]`` normalised encoder output of the visible tokens (M masked).
    """

    loss: torch.Tensor
    pred: torch.Tensor
    mask: torch.Tensor
    latent: torch.Tensor


class SpectralMAE(nn.Module):
    """SpectralGPT masked autoencoder: encoder on visible tubelets, light decoder, masked-MSE loss.

    Attributes:
        encoder: the :class:`~geohsi.models.spectralgpt.SpectralGPT` being pretrained (what
            :func:`save_mae_backbone` writes).
        norm: encoder-side final ``LayerNorm`` (official ``norm.*``).
        decoder_embed, mask_token, decoder_pos_embed_spatial, decoder_pos_embed_temporal,
        decoder_blocks, decoder_norm, decoder_pred: the decoder (official ``decoder_*`` names).

    Args:
        encoder_config: encoder config or a name in :data:`~geohsi.models.spectralgpt.CONFIGS`.
        decoder_dim: decoder width (default from :data:`DECODERS`).
        decoder_depth: decoder blocks (default from :data:`DECODERS`).
        decoder_heads: decoder attention heads (default from :data:`DECODERS`).
        mask_ratio: share of tubelets masked per sample (0.9 as SpectralGPT at 96 px).
        norm_pix_loss: standardise each target tubelet by its own mean and variance.

    Raises:
        UsageError: a mask ratio that masks nothing or everything, or a decoder width not divisible
            by its head count.

    Example:
        >>> mae = SpectralMAE("tiny")
        >>> out = mae(torch.randn(2, 12, 32, 32), generator=torch.Generator().manual_seed(0))
        >>> out.pred.shape, int(out.mask.sum(1)[0])
        (torch.Size([2, 64, 192]), 58)

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        encoder_config: str | SpectralGPTConfig = "small",
        *,
        decoder_dim: int | None = None,
        decoder_depth: int | None = None,
        decoder_heads: int | None = None,
        mask_ratio: float = 0.9,
        norm_pix_loss: bool = True,
    ) -> None:
        super().__init__()
        cfg = resolve_model_config(encoder_config)
        d_dim, d_depth, d_heads = decoder_for(encoder_config)
        decoder_dim = d_dim if decoder_dim is None else int(decoder_dim)
        decoder_depth = d_depth if decoder_depth is None else int(decoder_depth)
        decoder_heads = d_heads if decoder_heads is None else int(decoder_heads)
        if decoder_dim < 1 or decoder_heads < 1 or decoder_dim % decoder_heads or decoder_depth < 0:
            raise UsageError(
                f"decoder_dim={decoder_dim}, decoder_heads={decoder_heads}, decoder_depth={decoder_depth}: "
                "the width must be a positive multiple of the head count and the depth ≥ 0"
            )
        self.config = cfg
        self.mask_ratio = float(mask_ratio)
        self.num_masked = masked_count(cfg.num_tokens, self.mask_ratio)
        self.norm_pix_loss = bool(norm_pix_loss)
        self.decoder_dim, self.decoder_depth, self.decoder_heads = decoder_dim, decoder_depth, decoder_heads

        self.encoder = SpectralGPT(cfg)
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.decoder_embed = nn.Linear(cfg.embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos_embed_spatial = nn.Parameter(torch.zeros(1, cfg.num_spatial, decoder_dim))
        self.decoder_pos_embed_temporal = nn.Parameter(torch.zeros(1, cfg.num_groups, decoder_dim))
        hidden = int(decoder_dim * cfg.mlp_ratio)
        self.decoder_blocks = nn.ModuleList(
            Block(decoder_dim, decoder_heads, hidden, 0.0, cfg.norm_eps) for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=cfg.norm_eps)
        self.decoder_pred = nn.Linear(decoder_dim, self.tubelet_size)
        self._init_decoder()

    def _init_decoder(self) -> None:
        # The encoder initialised itself (SpectralGPT.reset_parameters); the rest follows MAE.
        for p in (self.mask_token, self.decoder_pos_embed_spatial, self.decoder_pos_embed_temporal):
            nn.init.trunc_normal_(p, std=0.02)
        init_linear_and_norm(m for name, m in self.named_modules() if not name.startswith("encoder"))

    @property
    def tubelet_size(self) -> int:
        """Values per tubelet, ``t_patch · p · p`` (192 for the official geometry)."""
        c = self.config
        return c.t_patch * c.patch_size * c.patch_size

    # ---------------------------------------------------------------------------------------------
    # Tubelets ↔ images
    # ---------------------------------------------------------------------------------------------

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """Cut images into tubelets in the encoder's token order.

        Args:
            x: ``[N, B, H, W]``.

        Returns:
            ``[N, T·L, t_patch·p·p]``; token ``t·L + i·(W/p) + j`` holds bands ``t·t_patch …``, rows
            ``i·p …``, columns ``j·p …``, flattened as (band, row, column).
        """
        c = self.config
        n = x.shape[0]
        t, (gh, gw), tp, p = c.num_groups, c.grid_size, c.t_patch, c.patch_size
        v = x.reshape(n, t, tp, gh, p, gw, p).permute(0, 1, 3, 5, 2, 4, 6)  # [N, T, gh, gw, tp, p, p]
        return v.reshape(n, t * gh * gw, tp * p * p)

    def unpatchify(self, tubelets: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`patchify`: ``[N, T·L, t_patch·p·p]`` → ``[N, B, H, W]``."""
        c = self.config
        n = tubelets.shape[0]
        t, (gh, gw), tp, p = c.num_groups, c.grid_size, c.t_patch, c.patch_size
        v = tubelets.reshape(n, t, gh, gw, tp, p, p).permute(0, 1, 4, 2, 5, 3, 6)  # [N, T, tp, gh, p, gw, p]
        return v.reshape(n, t * tp, gh * p, gw * p)

    # ---------------------------------------------------------------------------------------------
    # Forward
    # ---------------------------------------------------------------------------------------------

    def random_masking(self, n: int, *, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw a random 3-D tubelet mask per sample.

        The noise is drawn on the CPU from ``generator`` (so a seed gives the same masks on any
        device) and ranked: the ``S − M`` lowest-noise tokens stay visible.

        Args:
            n: batch size N.
            generator: a seeded CPU generator (``None``: torch's global one).

        Returns:
            ``(ids_shuffle [N, S], mask [N, S])``: token indices, visible ones first (each part in
            ascending token order), and the float mask (1 = masked).
        """
        s = self.config.num_tokens
        keep = s - self.num_masked
        noise = torch.rand(n, s, generator=generator)
        order = torch.argsort(noise, dim=1)
        # Sorting each part keeps the visible tokens in spectral-major order (cosmetic: attention
        # does not care) and makes the mask a pure function of the noise ranks.
        visible, masked = order[:, :keep].sort(dim=1).values, order[:, keep:].sort(dim=1).values
        ids_shuffle = torch.cat([visible, masked], dim=1)
        mask = torch.ones(n, s)
        mask.scatter_(1, visible, 0.0)
        return ids_shuffle, mask

    def forward_encoder(self, x: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """Encode only the visible tokens.

        Args:
            x: ``[N, B, H, W]`` input.
            ids_keep: ``[N, K]`` indices of the visible tokens.

        Returns:
            ``[N, K, D]`` after the encoder blocks and ``norm``.
        """
        tokens = self.encoder.embed_tokens(x)  # [N, S, D]
        d = tokens.shape[-1]
        h = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
        for blk in self.encoder.blocks:
            h = blk(h)
        return self.norm(h)

    def forward_decoder(self, latent: torch.Tensor, ids_shuffle: torch.Tensor) -> torch.Tensor:
        """Predict every tubelet from the visible tokens' latents.

        Args:
            latent: ``[N, K, D]`` encoder output.
            ids_shuffle: ``[N, S]`` token indices, the K visible first.

        Returns:
            ``[N, S, t_patch·p·p]`` predictions in token order.
        """
        n, k, _ = latent.shape
        c = self.config
        s = c.num_tokens
        y = self.decoder_embed(latent)
        dd = y.shape[-1]
        seq = torch.cat([y, self.mask_token.to(y.dtype).expand(n, s - k, dd)], dim=1)  # shuffled order
        full = torch.empty_like(seq).scatter(1, ids_shuffle.unsqueeze(-1).expand(-1, -1, dd), seq)  # token order
        pos = self.decoder_pos_embed_spatial.unsqueeze(1) + self.decoder_pos_embed_temporal.unsqueeze(2)  # [1, T, L, Dd]
        full = full + pos.reshape(1, s, dd)
        for blk in self.decoder_blocks:
            full = blk(full)
        return self.decoder_pred(self.decoder_norm(full))

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction targets ``[N, S, t_patch·p·p]`` (float32; standardised per tubelet if ``norm_pix_loss``)."""
        target = self.patchify(x.float())
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True, unbiased=False)
            target = (target - mean) / (var + 1e-6).sqrt()
        return target

    def forward_loss(self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the masked tubelets only.

        Args:
            x: ``[N, B, H, W]`` input.
            pred: ``[N, S, t_patch·p·p]`` predictions.
            mask: ``[N, S]``, 1 at masked tokens.

        Returns:
            Scalar float32 loss: per-tubelet MSE averaged over the masked tubelets.
        """
        per_token = ((pred.float() - self.targets(x)) ** 2).mean(dim=-1)  # [N, S]
        mask = mask.to(per_token.device, per_token.dtype)
        return (per_token * mask).sum() / mask.sum()

    def forward(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None, ids_shuffle: torch.Tensor | None = None
    ) -> MAEOutput:
        """Mask, encode, decode and score a batch.

        Args:
            x: ``[N, B, H, W]`` input (B = ``num_bands``, H×W = ``img_size``).
            generator: seeded CPU generator for the masks (ignored when ``ids_shuffle`` is given).
            ids_shuffle: ``[N, S]`` explicit token order, visible tokens first (e.g. from
                :meth:`random_masking`), to reuse a mask.

        Returns:
            :class:`MAEOutput` with the loss, predictions, mask and latents.

        Raises:
            BandMismatchError: wrong channel count.
            UsageError: wrong rank or spatial size.
        """
        n = x.shape[0]
        s = self.config.num_tokens
        keep = s - self.num_masked
        if ids_shuffle is None:
            ids_shuffle, mask = self.random_masking(n, generator=generator)
        else:
            mask = torch.ones(n, s)
            mask.scatter_(1, ids_shuffle[:, :keep].cpu(), 0.0)
        ids_shuffle = ids_shuffle.to(x.device)
        latent = self.forward_encoder(x, ids_shuffle[:, :keep])
        pred = self.forward_decoder(latent, ids_shuffle).float()
        mask = mask.to(x.device)
        return MAEOutput(self.forward_loss(x, pred, mask), pred, mask, latent)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, out: MAEOutput) -> torch.Tensor:
        """Images from predictions, in the input's units, visible tubelets pasted from the input.

        With ``norm_pix_loss`` the predictions are standardised tubelets; each is mapped back with
        the *true* tubelet's mean and standard deviation (as the MAE paper's figures do), so the
        image shows the predicted structure at the right brightness.

        Args:
            x: ``[N, B, H, W]`` the input of ``out``.
            out: the forward result.

        Returns:
            ``[N, B, H, W]`` float32.
        """
        pred = out.pred.float()
        src = self.patchify(x.float())
        if self.norm_pix_loss:
            mean = src.mean(dim=-1, keepdim=True)
            std = (src.var(dim=-1, keepdim=True, unbiased=False) + 1e-6).sqrt()
            pred = pred * std + mean
        m = out.mask.unsqueeze(-1).to(pred.dtype)
        return self.unpatchify(pred * m + src * (1 - m))

    # ---------------------------------------------------------------------------------------------
    # Key layout
    # ---------------------------------------------------------------------------------------------

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """The whole MAE in the official key layout (encoder keys without the ``encoder.`` prefix).

        Returns:
            ``{patch_embed.*, pos_embed_*, blocks.*, norm.*, mask_token, decoder_*}`` tensors.
        """
        return {(k[len("encoder.") :] if k.startswith("encoder.") else k): v for k, v in self.state_dict().items()}

    def decoder_config(self) -> dict[str, Any]:
        """JSON-ready record of the objective (decoder size, mask ratio, target normalisation)."""
        return {
            "decoder_dim": self.decoder_dim,
            "decoder_depth": self.decoder_depth,
            "decoder_heads": self.decoder_heads,
            "mask_ratio": self.mask_ratio,
            "norm_pix_loss": self.norm_pix_loss,
        }


def save_mae_backbone(
    mae: SpectralMAE, path: str | os.PathLike, *, overwrite: bool = False, metadata: dict[str, str] | None = None
) -> Path:
    """Write the pretrained encoder (+ its final ``norm.*``) as a backbone safetensors file.

    The encoder part is written by :func:`~geohsi.models.spectralgpt.save_backbone` (official key
    layout, config in the metadata); the MAE's encoder-side norm is added as ``norm.*``, where the
    official checkpoints keep it, so :func:`~geohsi.models.spectralgpt.load_backbone` gives a
    classifier's ``head.norm`` the pretrained statistics. The decoder is not written. The final file
    appears atomically.

    Args:
        mae: the pretrained model.
        path: output ``.safetensors``.
        overwrite: replace an existing file.
        metadata: extra string metadata (e.g. ``{"geohsi_pretraining": json}``).

    Returns:
        The written path.

    Raises:
        OutputError: the file exists without ``overwrite`` or cannot be written.

    .. versionadded:: 0.1
    """
    from safetensors import safe_open

    from geohsi.files import atomic_output, save_safetensors

    with atomic_output(path, overwrite=overwrite) as tmp:
        staged = tmp.with_name(tmp.name + ".encoder")
        try:
            save_backbone(mae.encoder, staged)
            with safe_open(staged, framework="pt", device="cpu") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
                meta = dict(f.metadata() or {})
        finally:
            staged.unlink(missing_ok=True)
        tensors.update({f"norm.{k}": v.detach().cpu().contiguous() for k, v in mae.norm.state_dict().items()})
        meta.update(metadata or {})
        save_safetensors(tensors, tmp, metadata=meta)
    return Path(path)


__all__ = ["DECODERS", "MAEOutput", "SpectralMAE", "decoder_for", "masked_count", "save_mae_backbone"]
