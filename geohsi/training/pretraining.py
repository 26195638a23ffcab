"""Self-supervised pretraining of a SpectralGPT backbone on unlabelled windows (``geohsi pretrain``).

One run: every scene gets its own fitted spectral transform (PCA-12 or Sentinel-2 resampling, then
standardisation — the same front end ``geohsi train`` fits on its scene); windows are cut around
random valid pixels of all scenes, exactly as fine-tuning cuts them (``window`` px, reflect-padded at
the edges, NaN → 0, bilinear resize to ``input_size``), flipped/rotated at random, and fed to a
:class:`~geohsi.models.mae.SpectralMAE`. Labels are never read.

Sampling: each step draws ``batch_size`` centre pixels uniformly, with replacement, from the valid
pixels of all scenes pooled (so a scene contributes in proportion to its valid area); an "epoch" is
``ceil(pool / batch_size)`` steps. A few valid pixels per scene are held out as centres (never drawn
for training) for the validation loss and the reconstruction figure; their windows still overlap
training windows spatially, so the validation loss measures generalisation to new *windows*, not to
unseen ground.

Determinism: the initialisation comes from ``seed``; step ``k`` draws its pixels, augmentation and
masks from generators seeded by ``(seed, k)``, so the data stream does not depend on where a run
was interrupted, and a resumed run ends with the same weights as an uninterrupted one (same machine,
same thread count).

Outputs next to ``out`` (``NAME.safetensors``): the encoder (+ its final norm) in the official key
layout (:func:`~geohsi.models.mae.save_mae_backbone`), ``NAME.json`` (configuration, per-scene
spectral transforms, losses, sha256 and size of the weights, the command that reproduces them),
``NAME.loss.png`` and ``NAME.reconstruction.png``. Checkpoints go to ``.NAME.work/`` beside it and
are removed when the run completes.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geohsi.console import say
from geohsi.errors import DataError, UsageError
from geohsi.files import atomic_output, check_output, write_bytes_atomic
from geohsi.prediction import autocast
from geohsi.storage import display
from geohsi.training.config import PretrainConfig
from geohsi.training.distributed import Ranks, from_main, local_batch_size, setup, teardown, wrap
from geohsi.training.pretrain_data import WindowPool, build_pool, resolve_scenes, step_batch
from geohsi.training.runner import Runner, check_resumable, seed_init, work_dir

SIDECAR_FORMAT = "geohsi-pretraining"
SIDECAR_VERSION = 1
#: Bands of the first channel of each of the first three spectral groups (PC1, PC4, PC7 after PCA):
#: the reconstruction figure shows one channel per tubelet group.
FIGURE_CHANNELS = (0, 3, 6)


# --------------------------------------------------------------------------------------------------
# Optimisation
# --------------------------------------------------------------------------------------------------


def mae_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on weight matrices only (MAE convention: no decay on biases, norms,
    position embeddings or the mask token)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or "pos_embed" in name or name == "mask_token"
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def _evaluate(mae: nn.Module, x: torch.Tensor, cfg: PretrainConfig, device: torch.device) -> tuple[float, Any]:
    from geohsi.prediction import autocast

    mae.eval()
    with autocast(device, cfg.run.precision):
        out = mae(x.to(device), generator=torch.Generator().manual_seed(cfg.run.seed + 424_242))
    mae.train()
    return float(out.loss), out


def figure_paths(out: Path) -> tuple[Path, Path]:
    """``(NAME.loss.png, NAME.reconstruction.png)`` beside ``out``."""
    return out.with_suffix(".loss.png"), out.with_suffix(".reconstruction.png")


def _write_figures(
    mae: nn.Module,
    pool: WindowPool,
    x_val: torch.Tensor,
    val_out: Any,
    scene_records: list[dict[str, Any]],
    history: dict[str, Any],
    cfg: PretrainConfig,
    out: Path,
) -> tuple[Path, Path]:
    """``NAME.loss.png`` and ``NAME.reconstruction.png`` beside the weights: one held-out window per scene (the
    first of each), channels of three spectral groups."""
    from geohsi.plot import figure_png, plot_pretraining_loss, plot_reconstructions

    rows = [int(np.flatnonzero(pool.held_scene == s)[0]) for s in range(len(pool.sources))]
    recon = mae.reconstruct(x_val, val_out).numpy()[rows]
    vis_mask = mae.unpatchify(val_out.mask.unsqueeze(-1).expand(-1, -1, mae.tubelet_size)).numpy()[rows]
    xs = x_val.numpy()[rows]
    names = [Path(r.get("dataset") or r["store"]).stem for r in scene_records]
    chans = [c for c in FIGURE_CHANNELS if c < x_val.shape[1]]
    ch_names = scene_records[0]["spectral_transform"]["channel_names"]
    flat = None
    if cfg.norm_pix_loss:
        from geohsi.models.mae import MAEOutput

        zero = MAEOutput(val_out.loss, torch.zeros_like(val_out.pred), val_out.mask, val_out.latent)
        flat = mae.reconstruct(x_val, zero).numpy()[rows]
    fig_r = plot_reconstructions(xs, np.where(vis_mask > 0, np.nan, xs), recon, names, chans, ch_names, cfg.norm_pix_loss, flat)
    png_loss, png_recon = figure_paths(out)
    write_bytes_atomic(png_loss, figure_png(plot_pretraining_loss(history)), overwrite=True)  # checked before the run
    write_bytes_atomic(png_recon, figure_png(fig_r), overwrite=True)
    return png_loss, png_recon


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def command_line(scenes: Sequence[str | os.PathLike], out: str | os.PathLike, cfg: PretrainConfig) -> str:
    """The ``geohsi pretrain`` command that reproduces a run (every option that differs from the CLI defaults)."""
    parts = [
        "geohsi pretrain",
        *(display(s) for s in scenes),
        f"--model {cfg.run.model}",
        f"--out {display(out)}",
        f"--spectral {cfg.run.spectral}",
        f"--window {cfg.run.window}",
        f"--steps {cfg.steps}",
        f"--batch-size {cfg.run.batch_size}",
        f"--lr {cfg.run.lr:g}",
        f"--mask-ratio {cfg.mask_ratio:g}",
        f"--seed {cfg.run.seed}",
        f"--precision {cfg.run.precision}",
    ]
    if not cfg.norm_pix_loss:
        parts.append("--no-norm-pix-loss")
    return " ".join(parts)


def pretrain(
    scenes: Sequence[str | os.PathLike],
    *,
    out: str | os.PathLike,
    model: str = "small",
    spectral: str = "pca",
    window: int = 15,
    input_size: int = 32,
    epochs: float | None = None,
    steps: int | None = None,
    batch_size: int = 256,
    lr: float = 1e-3,
    mask_ratio: float = 0.9,
    norm_pix_loss: bool = True,
    seed: int = 0,
    precision: str = "bf16",
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = say,
    on_step: Callable[[int, float], None] | None = None,
    **options: Any,
) -> Path | str:
    """Pretrain a SpectralGPT encoder by masked autoencoding on unlabelled windows of ``scenes``.

    Args:
        scenes: scene stores (``.zarr``) or registered dataset names (fetched and ingested into the
            run's work directory; Jasper Ridge through :func:`~geohsi.datasets.jasper_ridge.jasper_ridge_scene`).
        out: output weights ``NAME.safetensors`` (sidecar ``NAME.json`` and figures beside it); or a URL
            (written locally, uploaded when complete).
        model: encoder config name.
        spectral: ``pca`` or ``s2``, fitted on each scene separately.
        window: window edge in pixels around each centre (odd; resized to ``input_size``).
        input_size: model input edge in pixels.
        epochs: passes over the pooled valid pixels (``ceil(pool / batch_size)`` steps each;
            fractional values allowed); exclusive with ``steps``. Neither: 5 epochs.
        steps: optimisation steps.
        batch_size: windows per step.
        lr: peak learning rate.
        mask_ratio: share of tubelets masked per sample.
        norm_pix_loss: standardised per-tubelet targets.
        seed: seed of everything random.
        precision: ``bf16`` autocast or ``fp32``.
        device: ``auto``, ``cpu`` or ``cuda``.
        resume: continue from the last checkpoint of an interrupted run with the same ``out`` and options.
        overwrite: replace existing outputs.
        progress: show a progress bar.
        log: receives one-line messages.
        on_step: called with ``(step, loss)`` after each step (and its checkpoint, if any).
        **options: further :class:`PretrainConfig` fields (``weight_decay``, ``warmup_steps``,
            ``decoder_dim``, ``holdout_per_scene``, ``eval_every``, ``checkpoint_every``, …).

    Returns:
        The weights path (its URL for a URL ``out``).

    Raises:
        UsageError: invalid options, both ``epochs`` and ``steps``, or ``resume`` without a
            matching checkpoint.
        InputFormatError: a scene that does not exist.
        DataError: a scene with too few valid pixels.
        OutputError: outputs exist without ``overwrite``.

    .. versionadded:: 0.1
    """
    from geohsi.storage import as_given, is_url, staged

    t_start = time.perf_counter()
    base = {"model": model, "spectral": spectral, "window": window, "input_size": input_size, "batch_size": batch_size}
    base |= {"lr": lr, "mask_ratio": mask_ratio, "norm_pix_loss": norm_pix_loss, "seed": seed, "precision": precision}
    base |= {"device": device, **options}
    run = dict(epochs=epochs, steps=steps, options=options, resume=resume, progress=progress, on_step=on_step, t_start=t_start)
    run["shown_out"] = display(out)  # what the sidecar's command names: the user's --out (a URL too), not the staged copy
    # a URL: written locally and uploaded when complete, by rank 0 (torchrun's RANK) only
    with staged({"out": out}, overwrite or resume, upload=os.environ.get("RANK", "0") == "0") as where:
        local = Path(where["out"])
        _check_outputs(local, epochs, steps, overwrite, resume)
        _pretrain_ranks(scenes, local, work_dir(local.with_suffix("")), base, log=as_given(log, where, {"out": out}), **run)
    return str(out) if is_url(out) else local


def _pretrain_ranks(
    scenes: Sequence[str | os.PathLike],
    local: Path,
    work: Path,
    base: dict[str, Any],
    *,
    epochs: float | None,
    steps: int | None,
    options: dict[str, Any],
    resume: bool,
    progress: bool,
    on_step: Callable[[int, float], None] | None,
    t_start: float,
    shown_out: str,
    log: Callable[[str], None],
) -> None:
    """The body of :func:`pretrain` on this rank: join the process group, pool, loop; rank 0 writes ``local``."""
    # validates window, steps, mask ratio etc. before the (slower) transform fits
    probe = PretrainConfig.from_dict({**base, **({"steps": steps} if steps is not None else {})})
    _check_masking(probe)
    ranks, dev = setup(probe.run.device, log=lambda m: log(f"[yellow]{m}[/]"))
    local_batch_size(probe.run.batch_size, ranks)  # refuse a batch the ranks cannot share before any work
    log = log if ranks.main else (lambda m: None)  # one writer: rank 0
    try:
        pool, scene_records = build_pool(resolve_scenes(scenes, work / "scenes"), probe, log)
        cfg = _final_config(base, probe, pool, epochs, steps, options)
        identity = [{k: r[k] for k in ("store", "height", "width", "valid_pixels", "held_out_pixels")} for r in scene_records]
        mae, runner = _mae(cfg, pool, identity, dev, work, log)
        history = _PretrainLoop(runner, wrap(mae, ranks, dev), pool, cfg, ranks, dev).run(
            resume=resume, progress=progress and ranks.main, log=log, on_step=on_step
        )
        if ranks.main:
            start = t_start - runner.resumed_seconds  # a resumed run's wall time counts its earlier sessions too
            _write_pretrained(mae, pool, scene_records, history, cfg, scenes, local, shown_out, dev, start, log)
            runner.finish()
    except BaseException:
        teardown(ranks)
        raise
    teardown(ranks, finished=True)


def _check_masking(cfg: PretrainConfig) -> None:
    """The mask ratio against the model's tokens, known before the scenes are read (it had been checked only
    once every scene's transform was fitted: minutes on large scenes before a one-line usage error)."""
    from geohsi.models import resolve_model_config
    from geohsi.models.mae import masked_count
    from geohsi.spectral.sentinel2 import S2_BANDS

    channels = len(S2_BANDS) if cfg.run.spectral == "s2" else cfg.run.n_components
    enc = resolve_model_config(cfg.run.model, img_size=cfg.run.input_size, num_bands=channels)
    masked_count(enc.num_tokens, cfg.mask_ratio)


def _check_outputs(out: Path, epochs: float | None, steps: int | None, overwrite: bool, resume: bool) -> None:
    if out.suffix != ".safetensors":
        raise UsageError(f"--out {out} must end in .safetensors (the backbone weights file)")
    if epochs is not None and steps is not None:
        raise UsageError("give either --epochs or --steps, not both")
    if epochs is not None and not (math.isfinite(epochs) and epochs > 0):
        raise UsageError(f"--epochs must be a positive number, got {epochs}")
    for p in (out, out.with_suffix(".json"), *figure_paths(out)):
        check_output(p, overwrite or resume, directory=False)
    check_resumable(out, work_dir(out.with_suffix("")), resume=resume, overwrite=overwrite)


def _final_config(
    base: dict, probe: PretrainConfig, pool: WindowPool, epochs: float | None, steps: int | None, options: dict
) -> PretrainConfig:
    """The run's config: steps from ``epochs`` over the pooled centres when not given, warm-up a twentieth of them."""
    if steps is None:
        per_epoch = math.ceil(len(pool.train_pixel) / probe.run.batch_size)
        steps = max(1, math.ceil((5.0 if epochs is None else float(epochs)) * per_epoch))
    if "warmup_steps" not in options:
        base = {**base, "warmup_steps": min(probe.warmup_steps, max(1, steps // 20))}
    return PretrainConfig.from_dict({**base, "steps": int(steps)})


def _mae(
    cfg: PretrainConfig,
    pool: WindowPool,
    scenes_identity: list[dict[str, Any]],
    dev: torch.device,
    work: Path,
    log: Callable[[str], None],
) -> tuple[nn.Module, Runner]:
    """The masked autoencoder (seeded init) and its runner (AdamW β = (0.9, 0.95), full-state checkpoints
    that resume only under the same options and scenes)."""
    from geohsi.models import resolve_model_config
    from geohsi.models.mae import SpectralMAE, decoder_for

    run = cfg.run
    seed_init(run.seed)
    enc_cfg = resolve_model_config(run.model, img_size=run.input_size, num_bands=pool.sources[0].channels.shape[0])
    d_dim, d_depth, d_heads = decoder_for(run.model)
    mae = SpectralMAE(
        enc_cfg,
        decoder_dim=cfg.decoder_dim or d_dim,
        decoder_depth=d_depth if cfg.decoder_depth is None else cfg.decoder_depth,
        decoder_heads=cfg.decoder_heads or d_heads,
        mask_ratio=cfg.mask_ratio,
        norm_pix_loss=cfg.norm_pix_loss,
    ).to(dev)
    optimizer = torch.optim.AdamW(mae_param_groups(mae, run.weight_decay), lr=run.lr, betas=(0.9, 0.95))
    runner = Runner(
        mae,
        optimizer,
        total_steps=cfg.steps,
        warmup_steps=cfg.warmup_steps,
        work=work,
        config_json=json.dumps({"config": cfg.to_dict(), "scenes": scenes_identity}, sort_keys=True),
        grad_clip=run.grad_clip,
        state="full",
    )
    n_enc = sum(p.numel() for p in mae.encoder.parameters())
    log(
        f"SpectralMAE {run.model} ({enc_cfg.describe()}, encoder {n_enc:,} parameters, decoder "
        f"D={mae.decoder_dim}×{mae.decoder_depth}), mask ratio {cfg.mask_ratio}: {mae.num_masked}/{enc_cfg.num_tokens} "
        f"tubelets masked; {len(pool.train_pixel):,} training centres, {cfg.steps} steps of {run.batch_size}"
    )
    return mae, runner


#: steps between reads of the training loss for the progress line (each read waits for the device)
_LOSS_SHOWN_EVERY = 10


@dataclass
class _PretrainLoop:
    """The step loop of one rank: rank 0 evaluates on the held-out windows, keeps the history and writes checkpoints."""

    runner: Runner
    net: nn.Module
    pool: WindowPool
    cfg: PretrainConfig
    ranks: Ranks
    dev: torch.device

    def read_losses(self, pending: list[torch.Tensor], history: dict[str, Any]) -> None:
        """Move the step losses kept on the device into the history (averaged over ranks); refuse a non-finite one.

        Step losses stay on the device until an evaluation, a checkpoint or a callback needs them: on CUDA
        reading one waits for its step, so per-step reads would leave the GPU idle between steps.
        """
        if not pending:
            return
        values = torch.stack(pending).float()
        if self.ranks.world > 1:
            torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.AVG)
        first = len(history["train"])
        pending.clear()
        for i, value in enumerate(values.tolist()):
            if not math.isfinite(value):
                raise DataError(f"pretraining loss became {value} at step {first + i + 1}; lower --lr or use --precision fp32")
        history["train"].extend(values.tolist())

    def evaluate(self, x_val: torch.Tensor) -> float:
        """The held-out masked loss (rank 0's, known to every rank)."""
        return from_main(_evaluate(self.runner.model, x_val, self.cfg, self.dev)[0] if self.ranks.main else None, self.ranks)

    def run(
        self, *, resume: bool, progress: bool, log: Callable[[str], None], on_step: Callable[[int, float], None] | None
    ) -> dict[str, Any]:
        """Every step; returns the loss history (``train`` per step, ``val`` at evaluations)."""
        cfg, runner, run = self.cfg, self.runner, self.cfg.run
        history: dict[str, Any] = {"train": [], "val": []}
        start = 0
        if resume:
            start, st = runner.restore(from_main(runner.read_checkpoint() if self.ranks.main else None, self.ranks))
            history = json.loads(st["history"])
            log(f"resuming after step {start} from {runner.checkpoint_path}")
        x_val = torch.from_numpy(self.pool.windows(self.pool.held_scene, self.pool.held_pixel))
        pending: list[torch.Tensor] = []
        self.net.train()
        with runner.progress("pretrain", cfg.steps, start, enabled=progress) as update:
            if start == 0:
                history["val"].append([0, self.evaluate(x_val)])
            for step in range(start, cfg.steps):
                x, gen = step_batch(self.pool, cfg, step, self.ranks)
                with autocast(self.dev, run.precision):
                    loss = self.net(x.to(self.dev, non_blocking=True), generator=gen).loss
                pending.append(runner.step(loss))
                done = step + 1
                evaluate = done % cfg.eval_every == 0 or done == cfg.steps
                save = done % cfg.checkpoint_every == 0 or done == cfg.steps
                if on_step is not None or evaluate or save or done % _LOSS_SHOWN_EVERY == 0:
                    self.read_losses(pending, history)
                if evaluate:
                    history["val"].append([done, self.evaluate(x_val)])
                    update(val=f"{history['val'][-1][1]:.4f}")
                if save and self.ranks.main:
                    runner.save(done, history=json.dumps(history))
                last = history["train"][-1] if history["train"] else float("nan")
                update(advance=1, loss=last, lr=runner.lr)
                if on_step is not None and self.ranks.main:
                    on_step(done, last)
        return history


def _write_pretrained(
    mae: nn.Module,
    pool: WindowPool,
    scene_records: list[dict[str, Any]],
    history: dict[str, Any],
    cfg: PretrainConfig,
    scenes: Sequence[str | os.PathLike],
    out: Path,
    shown_out: str,
    dev: torch.device,
    t_start: float,
    log: Callable[[str], None],
) -> None:
    """The weights (safetensors, the run recorded in their metadata), the figures and the sidecar JSON
    (its command names ``shown_out``, the ``--out`` the user gave)."""
    from geohsi.bundle import package_versions
    from geohsi.files import file_sha256
    from geohsi.models.mae import save_mae_backbone

    mae.to("cpu")
    x_val = torch.from_numpy(pool.windows(pool.held_scene, pool.held_pixel))
    val_loss, val_out = _evaluate(mae, x_val, cfg, torch.device("cpu"))
    train = history["train"]
    k = max(1, min(20, len(train) // 5))
    losses = {
        "train_first_steps": float(np.mean(train[:k])),
        "train_last_steps": float(np.mean(train[-k:])),
        "averaged_steps": k,
        "val_start": history["val"][0][1],
        "val_end": val_loss,
    }
    record = {"config": cfg.to_dict(), "objective": mae.decoder_config(), "losses": losses}
    save_mae_backbone(mae, out, overwrite=True, metadata={"geohsi_pretraining": json.dumps(record, sort_keys=True)})
    png_loss, png_recon = _write_figures(mae, pool, x_val, val_out, scene_records, history, cfg, out)
    meta = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "weights": out.name,
        "sha256": file_sha256(out),
        "size_bytes": out.stat().st_size,
        "command": command_line(scenes, shown_out, cfg),
        "model": mae.encoder.config.to_dict(),
        **record,
        "scenes": scene_records,
        "history": {"train": train, "val": history["val"]},
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "torch_threads": torch.get_num_threads(),
        "device": str(dev),
        "versions": package_versions(),
        "figures": [png_loss.name, png_recon.name],
        "labels_used": False,
    }
    with atomic_output(out.with_suffix(".json"), overwrite=True) as tmp:
        # Compact: the per-scene transforms and the per-step history make up most of it.
        tmp.write_text(json.dumps(meta, sort_keys=True, separators=(",", ":")))
    log(
        f"masked-tubelet loss {losses['train_first_steps']:.4f} → {losses['train_last_steps']:.4f} (train), "
        f"{losses['val_start']:.4f} → {val_loss:.4f} (held-out) in {meta['wall_seconds']:.0f} s → {out}"
    )


__all__ = ["command_line", "mae_param_groups", "pretrain"]
