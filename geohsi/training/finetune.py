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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geohsi.console import say
from geohsi.errors import ModelError, UsageError
from geohsi.files import check_output
from geohsi.heads import Head, get_head
from geohsi.prediction import autocast
from geohsi.training.config import TrainConfig
from geohsi.training.data import LabelSource, TrainingData
from geohsi.training.distributed import EpochSampler, Ranks, from_main, local_batch_size, setup, teardown, wrap
from geohsi.training.loader import epoch_order
from geohsi.training.runner import CHECKPOINT_NAME, Runner, check_resumable, seed_init, work_dir

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


def _load_backbone(head: Any, model: Any, path: Path, model_name: str) -> None:
    """Load the backbone weights; one that does not fit and says which ``--model`` it was pretrained as
    names that option (the message had named config fields no command takes).

    Raises:
        ModelError: the weights do not fit the model.
    """
    from geohsi.models.default import pretraining_config

    try:
        head.load_pretrained(model, path)
    except ModelError as e:
        pretrained_as = (pretraining_config(path) or {}).get("model")
        if not pretrained_as or pretrained_as == model_name:
            raise
        raise ModelError(
            f"{path.name} was pretrained with --model {pretrained_as} and does not fit --model {model_name}; "
            f"train with --model {pretrained_as}, or give a backbone pretrained for {model_name}"
        ) from e


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
            f"[yellow]WARNING: no pretrained backbone for config {run.model!r}: the backbone is RANDOMLY "
            f"initialised (seed {run.seed}); pass --backbone PATH for meaningful fine-tuning[/]"
        )
    if backbone is None:
        ident = {"name": f"random-{run.model}-seed{run.seed}", "config": model.config.to_dict()}
        # The frozen random weights travel with the bundle (copied before adapters wrap its layers).
        return model, {"kind": "bundled", "identity": ident, "module": copy.deepcopy(model.encoder)}
    from geohsi.models.default import backbone_front_end, pretrained_front_end
    from geohsi.storage import absolute, local_copy

    path = local_copy(backbone, "backbone")  # a URL: downloaded once into the cache
    _load_backbone(head, model, path, run.model)
    sha = file_sha256(path)
    front = pretrained_front_end(path)
    log(f"backbone {path} (sha256 {sha[:12]}…{f', pretrained on {front} channels' if front else ''})")
    if front is not None and front != backbone_front_end(run.spectral):
        log(
            f"[yellow]WARNING: backbone {path.name} was pretrained on {front} channels but this run uses "
            f"--spectral {run.spectral}: its channel i means something else here; use a backbone pretrained with "
            f"--spectral {backbone_front_end(run.spectral)} (the default for it when --backbone is omitted)[/]"
        )
    ident = {"sha256": sha, "config": model.config.to_dict()}
    record = {"kind": "file", "path": absolute(backbone), "sha256": sha, "identity": ident}
    if front is not None:
        record["pretrained_on"] = front
    return model, record


def _sensor_augmented(samples, data, transform, config: TrainConfig, log):
    """The run's samples drawn from the scenes and from ``config.sensor_augment`` random sensors' views of them."""
    from geohsi.heads.augment import VariantSamples
    from geohsi.spectral.simulate import random_sensor_resamplers
    from geohsi.training.loader import scene_arrays

    n = config.sensor_augment
    per_scene = [random_sensor_resamplers(s.ds, n, seed=config.run.seed) for s in data.scenes]
    log(
        f"sensor augmentation: the scene{'s' if len(per_scene) > 1 else ''} and {n} random sensors' views of {'them' if len(per_scene) > 1 else 'it'}"
    )
    datasets = [s.ds for s in data.scenes]
    views = [
        samples.with_channels(scene_arrays(transform, datasets, config.loader, log, [r[i] for r in per_scene])) for i in range(n)
    ]
    return VariantSamples([samples, *views])


def _split(data: TrainingData, config: TrainConfig, log: Callable[[str], None]):
    """The run's split of the labelled pixels of every scene, logged."""
    run = config.run
    split = data.split(config.split, seed=run.seed, val_fraction=config.val_fraction, window=run.window)
    where = f" in {len(data.scenes)} scenes" if len(data.scenes) > 1 else ""
    log(f"split {config.split}: {len(split.train)} train / {len(split.val)} val / {len(split.test)} test pixels{where}")
    return split


def _samples(data: TrainingData, split, config: TrainConfig, log: Callable[[str], None]) -> tuple[Head, Any, Any, bool]:
    """The spectral transform fitted on the scenes, the head, and the training samples it cuts from them."""
    from geohsi.spectral.transform import SpectralTransform
    from geohsi.training.loader import scene_arrays, streamed

    run = config.run
    labelled = data.spectra(split, seed=run.seed) if run.spectral == "lda" else None
    if labelled is not None:
        log(f"spectral lda: discriminants of {len(labelled[1])} training pixels, then principal components")
    transform = SpectralTransform.fit_many(
        [s.ds for s in data.scenes], run.spectral, run.n_components, run.norm, seed=run.seed, labelled=labelled
    )
    arrays = scene_arrays(transform, [s.ds for s in data.scenes], config.loader, log)
    head = get_head(config.head).from_options(
        window=run.window,
        input_size=run.input_size,
        head_hidden=config.head_hidden,
        tile_overlap=config.tile_overlap,
        context_dropout=config.context_dropout,
    )
    positions = data.legend.positions()
    targets = np.asarray([positions[int(k)] for k in split.train_labels], dtype=np.int64)
    samples = head.training_samples(arrays, split, targets, seed=run.seed, epochs=config.epochs, log=log)
    if config.sensor_augment:
        samples = _sensor_augmented(samples, data, transform, config, log)
    return head, transform, samples, streamed(arrays)


def _model(
    config: TrainConfig, head: Head, data: TrainingData, transform, epoch_steps: list[int], work: Path, device, log
) -> tuple[Any, dict, Runner]:
    """The model with its backbone and adapter, and the runner that optimises it (parameter groups built before any DDP wrap)."""
    from geohsi.adapters import apply_adapter, param_groups

    run = config.run
    model, backbone = build_model(config, head, len(data.legend), transform.n_channels, log)
    log(str(apply_adapter(model, config.adapter_config(), config.targets)))
    model.to(device)
    optimizer = torch.optim.AdamW(param_groups(model, run.lr, weight_decay=run.weight_decay))
    runner = Runner(
        model,
        optimizer,
        total_steps=sum(epoch_steps),
        warmup_steps=sum(epoch_steps[: config.warmup_epochs]),
        work=work,
        config_json=json.dumps({**config.to_dict(), "data": data.record()}, sort_keys=True),  # a resume needs the same data
        grad_clip=run.grad_clip,
    )
    return model, backbone, runner


@dataclass
class _Fit:
    """The state of the epoch loop that a checkpoint keeps (see :class:`_Loop`)."""

    best_oa: float = float("-inf")  # the score: validation OA, or minus the training loss without validation
    best_state: dict = field(default_factory=dict)
    stale: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def _epoch_steps(samples: Any, config: TrainConfig, ranks: Ranks) -> list[int]:
    """Steps of each epoch on every rank: a rank's share of the epoch's samples, in local batches."""
    b = local_batch_size(config.run.batch_size, ranks)
    return [math.ceil(math.ceil(samples.epoch_size(e) / ranks.world) / b) for e in range(config.epochs)]


@dataclass
class _Loop:
    """The epoch loop of one rank (one process: the whole run): train, validate, checkpoint, stop early.

    Attributes:
        runner: the optimisation, checkpoints and progress.
        net: the module the steps run (``DistributedDataParallel`` over the model on several ranks).
        head, samples, split, data, config: the run.
        ranks: this process's place in the run; rank 0 validates, writes and decides.
        device: this rank's device.
        stream: samples are streamed (data-loader workers cut them).
    """

    runner: Runner
    net: Any
    head: Head
    samples: Any
    split: Any
    data: TrainingData
    config: TrainConfig
    ranks: Ranks
    device: Any
    stream: bool

    @property
    def batch(self) -> int:
        """This rank's share of the global batch."""
        return local_batch_size(self.config.run.batch_size, self.ranks)

    def epoch_steps(self) -> list[int]:
        """Steps of each epoch on every rank (see :func:`_epoch_steps`)."""
        return _epoch_steps(self.samples, self.config, self.ranks)

    def epoch(self, epoch: int, sampler: EpochSampler, update) -> tuple[list[float], float, float]:
        """One epoch of steps; returns the step losses, the seconds waited for data and the loop's seconds."""
        from geohsi.training.loader import STREAM_WORKERS, epoch_batches

        run = self.config.run
        sampler.set_epoch(epoch)
        feed = epoch_batches(
            self.samples,
            epoch,
            np.fromiter(sampler, dtype=np.int64),
            batch_size=self.batch,
            seed=run.seed,
            augment=run.augment,
            workers=STREAM_WORKERS if self.stream else 0,
            rank=self.ranks.rank,
        )
        self.net.train()
        steps: list[torch.Tensor] = []
        t0 = time.perf_counter()
        for x, y in feed:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)  # the only copy per step
            with autocast(self.device, run.precision):
                loss = self.head.loss(self.net(x), y)
            steps.append(self.runner.step(loss))
            # Show the previous step's loss: reading it does not wait for the step just queued on a GPU.
            update(advance=1, loss=float(steps[-2] if len(steps) > 1 else steps[-1]), lr=self.runner.lr, epoch=epoch + 1)
        losses = torch.stack(steps).cpu().tolist() if steps else []
        return losses, feed.wait, time.perf_counter() - t0

    def validate(self) -> float | None:
        """Validation OA, computed on rank 0 and known to every rank."""
        if not len(self.split.val):
            return None
        oa = None
        if self.ranks.main:
            run, positions = self.config.run, self.data.legend.positions()
            y_val = np.asarray([positions[int(c)] for c in self.split.val_labels], dtype=np.int64)
            pred = self.samples.predict(
                self.runner.model, self.split.val, batch_size=run.batch_size, device=self.device, precision=run.precision
            )
            oa = float((pred == y_val).mean())
        return from_main(oa, self.ranks)

    def start(self, resume: bool, log) -> tuple[_Fit, int]:
        """The loop's state: fresh, or rank 0's checkpoint restored on every rank."""
        keep_best = self.config.patience > 0  # only early stopping restores the best validation epoch
        if not resume:
            return _Fit(best_state=self.runner.model_state() if keep_best else {}), 0
        start, saved = self.runner.restore(from_main(self.runner.read_checkpoint() if self.ranks.main else None, self.ranks))
        log(f"resuming after epoch {start} from {self.runner.checkpoint_path}")
        return _Fit(saved["best_oa"], saved["best_state"], saved["stale"], json.loads(saved["history"])), start

    def run(self, *, resume: bool, progress: bool, log, on_epoch_end) -> _Fit:
        """Every epoch; the model ends with the weights the run keeps."""
        config, runner = self.config, self.runner
        st, start = self.start(resume, log)
        steps = self.epoch_steps()
        order = lambda e: epoch_order(self.samples, config.run.seed, e, self.stream)  # noqa: E731
        sampler = EpochSampler(order, self.samples.epoch_size, self.ranks)
        bar = runner.progress(
            "epoch {task.fields[epoch]}", sum(steps), sum(steps[:start]), enabled=progress, val_label="val OA", epoch=start + 1
        )
        with bar as update:
            for epoch in range(start, config.epochs):
                t0 = time.perf_counter()
                losses, wait, loop_s = self.epoch(epoch, sampler, update)
                val_oa = self.validate()
                score = val_oa if val_oa is not None else -float(np.mean(losses))
                st.best_oa, st.stale = (score, 0) if score > st.best_oa else (st.best_oa, st.stale + 1)
                if config.patience > 0 and st.stale == 0:
                    st.best_state = runner.model_state()
                row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_oa": val_oa, "lr": runner.lr}
                row.update(seconds=time.perf_counter() - t0, train_s=loop_s, data_wait_s=wait)
                st.history.append(row)
                update(val=f"{val_oa:.4f}" if val_oa is not None else "-")
                if self.ranks.main:
                    runner.save(
                        epoch + 1, best_oa=st.best_oa, best_state=st.best_state, stale=st.stale, history=json.dumps(st.history)
                    )
                    if on_epoch_end is not None:
                        on_epoch_end(epoch + 1, row)
                if config.patience and st.stale >= config.patience:
                    what = "validation OA" if val_oa is not None else "training loss (no validation pixels)"
                    log(f"early stop after epoch {epoch + 1}: {what} did not improve for {config.patience} epochs")
                    break
        if config.patience > 0:
            # Early stopping: the weights of the best validation epoch. Without it the run keeps its final
            # (cosine-annealed) weights, as Lightning does without a checkpoint callback: a validation set
            # of one spatial block (``blocks:S``) can peak early on a one-class model.
            runner.load_model_state(st.best_state)
        return st


def _write(
    out: Path,
    config: TrainConfig,
    data: TrainingData,
    *,
    head: Head,
    transform,
    backbone: dict,
    model,
    split,
    report,
    history,
    overwrite: bool,
    wall: float,
    devices: int = 1,
    log,
) -> None:
    """The bundle: model, adapter, split, legend, transform, backbone record, training config, scenes and figures."""
    from geohsi.bundle import BackboneRecord, BundleMeta, write_bundle
    from geohsi.plot import figure_png, have_matplotlib, plot_confusion, plot_training
    from geohsi.storage import absolute

    extra: dict[str, bytes] = {}
    if have_matplotlib():
        extra = {"confusion.png": figure_png(plot_confusion(report)), "training.png": figure_png(plot_training(history))}
    else:
        log("[yellow]warning:[/] matplotlib is not installed: the bundle has no confusion.png / training.png")
    train_cfg = config.to_dict()
    record = data.record()
    if len(data.scenes) == 1 and data.source.kind == "store":  # the one-scene record, as bundles always had it
        train_cfg["scene"] = absolute(data.scenes[0].source)  # a URL as given (Path() had made it ./s3:/bucket/…)
        train_cfg["labels_sha256"] = data.scenes[0].labels_sha256
    else:
        train_cfg.update(scenes=record["scenes"], labels=record["labels"])
    train_cfg["wall_seconds"] = wall
    if devices > 1:
        train_cfg["devices"] = devices
    meta = BundleMeta(
        model_config=model.config.to_dict(),
        head=head,
        classes=data.legend,
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
        overwrite=overwrite,
    )


def train(
    scene: str | os.PathLike | Sequence[Any],
    config: TrainConfig | None = None,
    *,
    labels: LabelSource | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = say,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    **options: Any,
) -> Path | str:
    """Fine-tune SpectralGPT on the labelled pixels of one or many scenes and write a model bundle: what ``geohsi train`` runs.

    Args:
        scene: a scene (store, file read in place, ``pystac.Item``), or several.
        config: a :class:`~geohsi.training.config.TrainConfig` (default: the defaults).
        labels: where the labels come from (:class:`~geohsi.training.data.LabelSource`: each store's
            ``labels`` by default, label rasters paired by name, or one vector file).
        out: bundle directory (default ``runs/<timestamp>-<adapter>``, with ``runs/latest`` → it), or an
            ``s3://``/``gs://``/``az://`` URL (written locally, uploaded with a completion marker when complete).
        overwrite: replace an existing bundle.
        resume: continue from the last epoch checkpoint of an interrupted run with the same ``out``.
        progress: show a progress bar.
        log: receives one-line messages.
        on_epoch_end: called with ``(epoch, log_row)`` after each epoch's checkpoint.
        **options: training options, flat as the CLI flags (``adapter="lora", epochs=30, lr=2e-3``);
            they override ``config``'s.

    Returns:
        The bundle directory (its URL for a URL ``out``).

    Raises:
        DataError: no labels, too few pixels for the split.
        UsageError: invalid options, ``--resume`` without a checkpoint or with another config.
        OutputError: the bundle exists without ``overwrite``.
    """
    from geohsi.storage import as_given, is_url, staged

    # torchrun's global rank: rank 0 writes the bundle, and uploads it when ``out`` is a URL
    upload = os.environ.get("RANK", "0") == "0"
    with staged({"out": out}, overwrite or resume, upload=upload) as where:
        log = as_given(log, where, {"out": out})
        written = _train(
            scene,
            config,
            labels=labels,
            out=where["out"],
            overwrite=overwrite,
            resume=resume,
            progress=progress,
            log=log,
            on_epoch_end=on_epoch_end,
            **options,
        )
    return str(out) if is_url(out) else written


def _train(
    scene: str | os.PathLike | Sequence[Any],
    config: TrainConfig | None,
    *,
    labels: LabelSource | None,
    out: str | os.PathLike | None,
    overwrite: bool,
    resume: bool,
    progress: bool,
    log: Callable[[str], None],
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None,
    **options: Any,
) -> Path:
    """The body of :func:`train`, writing to a local ``out``."""
    from geohsi.training.data import load_training_data
    from geohsi.training.grid_tiles import join_for_split

    t_start = time.perf_counter()
    if config is None or options:
        config = TrainConfig.from_dict({**(config.to_dict() if config is not None else {}), **options})
    run = config.run
    default = out is None
    if resume and default:
        raise UsageError("--resume continues the run written to --out; pass the --out of the interrupted run")
    out = Path(out) if out is not None else default_out(config.adapter)
    in_runs = out.absolute().parent == RUNS_DIR.absolute()  # runs/latest follows (a resumed default run names its out)
    check_output(out, overwrite or resume, directory=True)
    work = work_dir(out)
    check_resumable(out, work, resume=resume, overwrite=overwrite)
    ranks, device = setup(run.device, log=lambda m: log(f"[yellow]{m}[/]"))
    local_batch_size(run.batch_size, ranks)  # refuse a batch the ranks cannot share before any work
    log = log if ranks.main else _quiet  # one writer: rank 0
    try:
        data = join_for_split(load_training_data(_scene_list(scene), labels, log=log), config.split, log=log)
        split = _split(data, config, log)
        head, transform, samples, stream = _samples(data, split, config, log)
        steps = _epoch_steps(samples, config, ranks)
        model, backbone, runner = _model(config, head, data, transform, steps, work, device, log)
        loop = _Loop(runner, wrap(model, ranks, device), head, samples, split, data, config, ranks, device, stream)
        fit = loop.run(resume=resume, progress=progress and ranks.main, log=log, on_epoch_end=on_epoch_end)
        if ranks.main:
            wall = time.perf_counter() - t_start + loop.runner.resumed_seconds  # a resumed run: every session
            _finish(loop, out, transform, backbone, fit, overwrite=overwrite or resume, latest=in_runs, wall=wall, log=log)
    except BaseException as e:
        teardown(ranks)
        if default and isinstance(e, KeyboardInterrupt) and (work / CHECKPOINT_NAME).exists():
            log(f"the interrupted run's checkpoint is kept; to continue it, pass --out {out} --resume")
        raise
    teardown(ranks, finished=True)
    return out


def _quiet(message: str) -> None:
    """The log of ranks other than 0."""


def _finish(
    loop: _Loop, out: Path, transform, backbone: dict, fit: _Fit, *, overwrite: bool, latest: bool, wall: float, log
) -> None:
    """Rank 0, after the loop: the test score, the bundle, ``runs/latest`` (``latest``: the bundle is in ``runs/``)."""
    from geohsi.metrics import report_for

    model, split, data = loop.runner.model, loop.split, loop.data
    model.to("cpu")
    # Test predictions in fp32, as `geohsi evaluate` scores by default, so both report the same numbers.
    cpu = torch.device("cpu")
    y_pred = loop.samples.predict(model, split.test, batch_size=loop.config.run.batch_size, device=cpu, precision="fp32")
    report = report_for(split.test_labels, data.legend.ids[y_pred], data.legend)
    _write(
        out,
        loop.config,
        data,
        head=loop.head,
        transform=transform,
        backbone=backbone,
        model=model,
        split=split,
        report=report,
        history=fit.history,
        overwrite=overwrite,
        wall=wall,
        devices=loop.ranks.world,
        log=log,
    )
    loop.runner.finish()
    if latest:
        _point_latest(out)
    log(
        f"test OA {report['overall_accuracy']:.4f}, AA {report['average_accuracy']:.4f}, κ {report['kappa']:.4f} "
        f"on {report['n_test']} pixels → bundle {out}"
    )


def _scene_list(scene: Any) -> list[Any]:
    return list(scene) if isinstance(scene, (list, tuple)) else [scene]


__all__ = ["RUNS_DIR", "build_model", "default_out", "train"]
