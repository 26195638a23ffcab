"""Fine-tuning: scene → split → spectral transform → SpectralGPT + adapter → bundle (``geohsi train``).

The head (``TrainConfig.head``, :mod:`geohsi.heads`) decides the samples: ``patch`` trains on one
window per training pixel (the paper's protocol); ``dense`` trains a segmentation head on tiles
covering the training pixels, with the loss on training pixels only, and scores validation/test
pixels from one Hann-blended dense prediction of the scene.

AdamW with the adapter's parameter groups (LoRA+/KronA+ λ), linear warm-up then cosine decay,
bf16 autocast, gradient clipping, early stopping on validation OA, a checkpoint every epoch in a
work directory beside the output (``.BUNDLE.work/``) for ``--resume`` — the optimisation, schedule,
checkpoints and progress are the shared :class:`~geohsi.training.runner.Runner`'s. Determinism
under a seed: the split, the initialisation, every epoch's shuffle and every step's augmentation
are drawn from generators seeded by ``(seed, epoch, step)``, and the global torch RNG state is
checkpointed, so a resumed run ends with the same weights as an uninterrupted one.

.. versionadded:: 0.1
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geohsi.console import say
from geohsi.errors import DataError
from geohsi.files import check_output
from geohsi.heads import Head, get_head
from geohsi.prediction import autocast, batches, resolve_device
from geohsi.scene import labels_and_valid, labels_digest, open_scene, scene_legend
from geohsi.training.config import TrainConfig
from geohsi.training.runner import Runner, check_resumable, seed_init, work_dir

RUNS_DIR = Path("runs")


def default_out(adapter: str, runs_dir: Path = RUNS_DIR) -> Path:
    """``runs/<timestamp>-<adapter>`` (the ``+`` of LoRA+/KronA+ spelled ``plus``)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return runs_dir / f"{stamp}-{adapter.replace('+', 'plus')}"


def _point_latest(out: Path) -> None:
    latest = out.parent / "latest"
    tmp = out.parent / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(out.name)
    os.replace(tmp, latest)


def build_model(
    config: TrainConfig, head: Head, num_classes: int, n_channels: int, log: Callable[[str], None]
) -> tuple[nn.Module, dict]:
    """The head's model with its backbone weights, and the backbone record for the bundle."""
    from geohsi.files import file_sha256
    from geohsi.models import resolve_model_config

    run = config.run
    seed_init(run.seed)
    model = head.build_model(resolve_model_config(run.model, img_size=run.input_size, num_bands=n_channels), num_classes)
    backbone = config.backbone
    if backbone is None:
        from geohsi.models.default import default_backbone_path

        backbone = default_backbone_path(run.model, run.spectral)
    elif backbone == "random":  # explicit: training from scratch (the from-scratch baseline)
        backbone = None
        log(f"backbone: random initialisation (seed {run.seed}), as requested")
    if backbone is None and config.backbone != "random":
        log(
            f"[bold yellow]WARNING: no pretrained backbone for config {run.model!r}: the backbone is RANDOMLY "
            f"initialised (seed {run.seed}); pass --backbone PATH for meaningful fine-tuning[/]"
        )
    if backbone is None:
        ident = {"name": f"random-{run.model}-seed{run.seed}", "config": model.config.to_dict()}
        # The frozen random weights travel with the bundle (copied before adapters wrap its layers).
        return model, {"kind": "bundled", "identity": ident, "module": copy.deepcopy(model.encoder)}
    from geohsi.models.default import pretrained_front_end

    path = Path(backbone)
    head.load_pretrained(model, path)
    sha = file_sha256(path)
    front = pretrained_front_end(path)
    log(f"backbone {path} (sha256 {sha[:12]}…{f', pretrained on {front} channels' if front else ''})")
    if front is not None and front != run.spectral:
        log(
            f"[bold yellow]WARNING: backbone {path.name} was pretrained on {front} channels but this run uses "
            f"--spectral {run.spectral}: its channel i means something else here; use a backbone pretrained with "
            f"--spectral {run.spectral} (the default for it when --backbone is omitted)[/]"
        )
    ident = {"sha256": sha, "config": model.config.to_dict()}
    record = {"kind": "file", "path": str(path.resolve()), "sha256": sha, "identity": ident}
    if front is not None:
        record["pretrained_on"] = front
    return model, record


def _sensor_augmented(samples, ds, transform, config: TrainConfig, log):
    """The run's samples drawn from the scene and from ``config.sensor_augment`` random sensors' views of it."""
    from geohsi.heads.augment import VariantSamples
    from geohsi.spectral.simulate import random_sensor_resamplers

    resamplers = random_sensor_resamplers(ds, config.sensor_augment, seed=config.run.seed)
    log(f"sensor augmentation: the scene and {len(resamplers)} random sensors' views of it")
    return VariantSamples([samples, *(samples.with_channels(transform.apply(ds, projection=r)) for r in resamplers)])


def train(
    scene: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = say,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    **options: Any,
) -> Path:
    """Fine-tune SpectralGPT on the labelled pixels of a scene and write a model bundle: what ``geohsi train`` runs.

    Args:
        scene: a scene store with ``labels``.
        config: a :class:`~geohsi.training.config.TrainConfig` (default: the defaults).
        out: bundle directory (default ``runs/<timestamp>-<adapter>``, with ``runs/latest`` → it).
        overwrite: replace an existing bundle.
        resume: continue from the last epoch checkpoint of an interrupted run with the same ``out``.
        progress: show a progress bar.
        log: receives one-line messages.
        on_epoch_end: called with ``(epoch, log_row)`` after each epoch's checkpoint.
        **options: training options, flat as the CLI flags (``adapter="lora", epochs=30, lr=2e-3``);
            they override ``config``'s.

    Returns:
        The bundle directory.

    Raises:
        DataError: no labels, too few pixels for the split.
        UsageError: invalid options, ``--resume`` without a checkpoint or with another config.
        OutputError: the bundle exists without ``overwrite``.
    """
    from geohsi.adapters import apply_adapter, method_options, param_groups
    from geohsi.bundle import BackboneRecord, BundleMeta, write_bundle
    from geohsi.datasets.splits import make_split
    from geohsi.metrics import report_for
    from geohsi.spectral.transform import SpectralTransform

    t_start = time.perf_counter()
    if config is None or options:
        config = TrainConfig.from_dict({**(config.to_dict() if config is not None else {}), **options})
    run = config.run
    default = out is None
    out = Path(out) if out is not None else default_out(config.adapter)
    check_output(out, overwrite or resume)
    work = work_dir(out)
    if resume:
        check_resumable(out, work)

    ds = open_scene(scene)
    classes = scene_legend(ds)
    labels, valid = labels_and_valid(ds)
    if not valid.any():
        raise DataError(f"{scene} has no valid pixels (every pixel is nodata or non-finite); check its nodata value")
    id_to_index = classes.positions()
    split = make_split(
        labels,
        config.split,
        seed=run.seed,
        val_fraction=config.val_fraction,
        window=run.window,
        valid=valid,
        class_names={c.id: c.name for c in classes},
    )
    log(f"split {config.split}: {len(split.train)} train / {len(split.val)} val / {len(split.test)} test pixels")
    transform = SpectralTransform.fit(ds, run.spectral, run.n_components, run.norm, seed=run.seed)
    channels = transform.apply(ds)
    head = get_head(config.head).from_options(
        window=run.window, input_size=run.input_size, head_hidden=config.head_hidden, tile_overlap=config.tile_overlap
    )
    train_targets = np.asarray([id_to_index[int(k)] for k in split.train_labels], dtype=np.int64)
    samples = head.training_samples(channels, split, train_targets, seed=run.seed, epochs=config.epochs, log=log)
    if config.sensor_augment:
        samples = _sensor_augmented(samples, ds, transform, config, log)
    epoch_steps = [math.ceil(samples.epoch_size(e) / run.batch_size) for e in range(config.epochs)]
    device = resolve_device(run.device, warn=lambda m: log(f"[yellow]{m}[/]"))

    model, backbone = build_model(config, head, len(classes), transform.n_channels, log)
    opts = method_options(config.adapter, rank=config.rank, alpha=config.alpha, lr_ratio=config.lr_ratio)
    log(str(apply_adapter(model, config.adapter, config.targets, **opts)))
    model.to(device)
    optimizer = torch.optim.AdamW(param_groups(model, run.lr, weight_decay=run.weight_decay))
    runner = Runner(
        model,
        optimizer,
        total_steps=sum(epoch_steps),
        warmup_steps=sum(epoch_steps[: config.warmup_epochs]),
        work=work,
        config_json=json.dumps(config.to_dict(), sort_keys=True),
        grad_clip=run.grad_clip,
    )

    y_val = np.asarray([id_to_index[int(c)] for c in split.val_labels], dtype=np.int64)
    history: list[dict[str, Any]] = []
    # Only early stopping restores the best validation epoch, so only then is its state kept.
    keep_best = config.patience > 0
    best_oa, best_state, start_epoch, stale = -1.0, runner.model_state() if keep_best else {}, 0, 0
    if resume:
        start_epoch, st = runner.resume()
        best_oa, best_state, stale, history = st["best_oa"], st["best_state"], st["stale"], json.loads(st["history"])
        log(f"resuming after epoch {start_epoch} from {runner.checkpoint_path}")

    with runner.progress(
        "epoch {task.fields[epoch]}",
        sum(epoch_steps),
        sum(epoch_steps[:start_epoch]),
        enabled=progress,
        val_label="val OA",
        epoch=start_epoch + 1,
    ) as update:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            model.train()
            order = np.random.default_rng([run.seed, epoch]).permutation(samples.epoch_size(epoch))
            steps: list[torch.Tensor] = []
            for step, sl in enumerate(batches(len(order), run.batch_size)):
                gen = torch.Generator().manual_seed(run.seed * 1_000_003 + epoch * 10_007 + step)
                x, y = samples.batch(epoch, order[sl], gen, run.augment)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)  # the batch: the only copy per step
                with autocast(device, run.precision):
                    loss = head.loss(model(x), y)
                steps.append(runner.step(loss))
                # Show the previous step's loss: reading it does not wait for the step just queued on a GPU.
                update(advance=1, loss=float(steps[-2] if len(steps) > 1 else steps[-1]), lr=runner.lr, epoch=epoch + 1)
            losses = torch.stack(steps).cpu().tolist() if steps else []
            val_oa = None
            if len(split.val):
                pred = samples.predict(model, split.val, batch_size=run.batch_size, device=device, precision=run.precision)
                val_oa = float((pred == y_val).mean())
            score = val_oa if val_oa is not None else -float(np.mean(losses))
            if score > best_oa:
                best_oa, stale = score, 0
                if keep_best:
                    best_state = runner.model_state()
            else:
                stale += 1
            row = {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                "val_oa": val_oa,
                "lr": runner.lr,
                "seconds": time.perf_counter() - t0,
            }
            history.append(row)
            update(val=f"{val_oa:.4f}" if val_oa is not None else "-")
            runner.save(epoch + 1, best_oa=best_oa, best_state=best_state, stale=stale, history=json.dumps(history))
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
            if config.patience and stale >= config.patience:
                log(f"early stop after epoch {epoch + 1}: validation OA did not improve for {config.patience} epochs")
                break

    if keep_best:
        # Early stopping: the weights of the best validation epoch. Without it the run keeps its final
        # (cosine-annealed) weights, as Lightning does without a checkpoint callback: a validation set
        # of one spatial block (``blocks:S``) can peak early on a one-class model.
        runner.load_model_state(best_state)
    model.to("cpu")
    # Test predictions in fp32, as `geohsi evaluate` scores by default, so both report the same numbers.
    y_pred = samples.predict(model, split.test, batch_size=run.batch_size, device=torch.device("cpu"), precision="fp32")
    report = report_for(split.test_labels, classes.ids[y_pred], classes)
    from geohsi.plot import figure_png, have_matplotlib, plot_confusion, plot_training

    extra: dict[str, bytes] = {}
    if have_matplotlib():
        extra = {"confusion.png": figure_png(plot_confusion(report)), "training.png": figure_png(plot_training(history))}
    else:
        log("[yellow]warning:[/] matplotlib is not installed: the bundle has no confusion.png / training.png")
    train_cfg = config.to_dict()
    train_cfg["scene"] = str(Path(scene).resolve())
    train_cfg["labels_sha256"] = labels_digest(labels)
    train_cfg["wall_seconds"] = time.perf_counter() - t_start
    meta = BundleMeta(
        model_config=model.config.to_dict(),
        head=head,
        classes=classes,
        adapter={},
        spectral=transform.to_dict(),
        backbone=BackboneRecord.from_dict({k: v for k, v in backbone.items() if k != "module"}),
        train_config=train_cfg,
    )
    write_bundle(
        out,
        meta,
        model=model,
        split=split,
        backbone_module=backbone.get("module"),
        report=report,
        history=history,
        extra_files=extra,
        overwrite=overwrite or resume,
    )
    runner.finish()
    if default:
        _point_latest(out)
    log(
        f"test OA {report['overall_accuracy']:.4f}, AA {report['average_accuracy']:.4f}, κ {report['kappa']:.4f} "
        f"on {report['n_test']} pixels → bundle {out}"
    )
    return out


__all__ = ["RUNS_DIR", "build_model", "default_out", "train"]
