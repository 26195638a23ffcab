"""The one training runner behind ``geohsi train`` and ``geohsi pretrain``: optimisation step,
learning-rate schedule, checkpoint/resume, progress bar and seeding.

A run builds its model and data, then hands a :class:`Runner` the model, optimiser and schedule.
The runner owns everything the two loops used to repeat:

* **step** — zero the gradients, back-propagate, clip the global gradient norm of the trainable
  parameters, step the optimiser and the schedule (:meth:`Runner.step`);
* **schedule** — linear warm-up then cosine decay to 0 (:func:`lr_lambda`);
* **checkpoint / resume** — an atomic ``checkpoint.pt`` in the run's work directory with the
  trainable (or all) weights, optimiser, schedule, the global torch RNG state, the run's position
  and whatever state the loop adds; :meth:`Runner.resume` refuses a checkpoint made with other
  options (compared as the options' JSON) and restores all of it, so a resumed run ends with the
  same weights as an uninterrupted one;
* **progress** — a rich progress bar with the loop's fields, plain periodic lines in a log
  (:meth:`Runner.progress`);
* **seeding** — :func:`seed_init` before the model is built; the loops draw every epoch's or
  step's data from generators seeded by ``(seed, position)``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geohsi.errors import UsageError

CHECKPOINT_NAME = "checkpoint.pt"


def seed_init(seed: int) -> None:
    """Seed torch's global generator before a model is built (its initialisation and dropout draws)."""
    torch.manual_seed(seed)


def lr_lambda(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Linear warm-up to 1, then cosine decay to 0 over the remaining steps (a ``LambdaLR`` factor)."""

    def f(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        rest = max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup_steps) / rest)))

    return f


def work_dir(out: Path) -> Path:
    """Where a run keeps its checkpoint: ``.NAME.work/`` beside its output ``NAME``."""
    return out.parent / f".{out.name}.work"


def check_resumable(out: Path, work: Path, *, resume: bool = True, overwrite: bool = False) -> None:
    """Before any work: ``--resume`` needs the run's checkpoint, and a new run does not silently replace one.

    Args:
        out: the run's output.
        work: its work directory (:func:`work_dir`).
        resume: the run resumes.
        overwrite: a new run may start over an interrupted one's checkpoint.

    Raises:
        UsageError: ``resume`` without a checkpoint, or a checkpoint of an interrupted run without
            ``resume`` or ``overwrite``.
    """
    found = (work / CHECKPOINT_NAME).is_file()
    if resume and not found:
        raise UsageError(f"nothing to resume for {out}: no checkpoint at {work / CHECKPOINT_NAME}; run without --resume")
    if not resume and found and not overwrite:
        raise UsageError(
            f"an interrupted run of {out} left its checkpoint at {work / CHECKPOINT_NAME}; "
            "pass --resume to continue it, or --overwrite to start over"
        )


def _differences(then: Any, now: str, shown: int = 3) -> str:
    """What differs between two runs' option JSONs, e.g. ``lr 0.001 → 0.0005, scenes``: the refusal to resume
    had said only "other options or data"."""

    def flat(value: Any, key: str = "") -> dict[str, Any]:
        if isinstance(value, dict):
            return {k: v for name, sub in value.items() for k, v in flat(sub, f"{key}.{name}" if key else name).items()}
        return {key: value}

    try:
        a, b = flat(json.loads(then)), flat(json.loads(now))
    except (TypeError, ValueError):
        return "a checkpoint of another version"
    missing = object()
    keys = sorted(
        k for k in a.keys() | b.keys() if a.get(k, missing) != b.get(k, missing) or type(a.get(k)) is not type(b.get(k))
    )
    data = {k for k in keys if k.split(".")[0] in ("data", "scenes")}  # digests and lists: named, not shown
    shown_data = sorted({k.removeprefix("data.").split(".")[0] for k in data})
    # "unset": a key an older version did not record
    parts = [f"{k.removeprefix('config.')} {a.get(k, 'unset')} → {b.get(k, 'unset')}" for k in keys if k not in data]
    parts += shown_data
    if not parts:
        return "recorded otherwise, by another geohsi version"
    return ", ".join(parts[:shown]) + (f" and {len(parts) - shown} more" if len(parts) > shown else "")


class Runner:
    """Optimisation, checkpoints and progress of one training run.

    Args:
        model: the model being trained (on its device).
        optimizer: its optimiser.
        total_steps: optimisation steps of the whole run.
        warmup_steps: warm-up steps of the schedule.
        work: the run's work directory (checkpoints).
        config_json: the run's options as JSON: a checkpoint resumes only under the same options.
        grad_clip: max global gradient norm of the trainable parameters (0 disables).
        state: what a checkpoint stores of the model: ``trainable`` (parameters that require
            gradients: adapter + head, small) or ``full`` (the whole state dict).

    Attributes:
        scheduler: the ``LambdaLR`` schedule (:func:`lr_lambda`).
        resumed_seconds: the seconds the sessions before a resumed run had trained, to their last checkpoint
            (0 for a fresh run): a run's ``wall_seconds`` adds them (a resumed run had reported its last session only).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        total_steps: int,
        warmup_steps: int,
        work: Path,
        config_json: str,
        grad_clip: float = 0.0,
        state: str = "trainable",
    ) -> None:
        if state not in ("trainable", "full"):
            raise ValueError(f"state must be trainable or full, got {state!r}")
        self.model, self.optimizer = model, optimizer
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total_steps, warmup_steps))
        self.work, self.config_json, self.grad_clip, self.state = Path(work), config_json, float(grad_clip), state
        self._params = [p for p in model.parameters() if p.requires_grad]
        self._t0, self.resumed_seconds = time.perf_counter(), 0.0

    @property
    def checkpoint_path(self) -> Path:
        """``WORK/checkpoint.pt``."""
        return self.work / CHECKPOINT_NAME

    @property
    def lr(self) -> float:
        """The current learning rate of the first parameter group."""
        return float(self.scheduler.get_last_lr()[0])

    # -- optimisation ------------------------------------------------------------------------------

    def step(self, loss: torch.Tensor) -> torch.Tensor:
        """One optimisation step on ``loss``; returns it detached, still on its device.

        Reading the value (``float(...)``) waits for the step's kernels; callers on CUDA read the
        previous step's loss instead, so the device always has the next step queued.
        """
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(self._params, self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()

    # -- model state -------------------------------------------------------------------------------

    def model_state(self) -> dict[str, torch.Tensor]:
        """A copy of what a checkpoint stores of the model (see ``state``)."""
        if self.state == "full":
            return self.model.state_dict()
        return {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        """Put a :meth:`model_state` back into the model."""
        if self.state == "full":
            self.model.load_state_dict(state)
            return
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for n, t in state.items():
                params[n].copy_(t)

    # -- checkpoints -------------------------------------------------------------------------------

    def save(self, position: int, **extra: Any) -> None:
        """Write the checkpoint after ``position`` epochs or steps, atomically, with the loop's ``extra`` state."""
        self.work.mkdir(parents=True, exist_ok=True)
        tmp = self.work / (CHECKPOINT_NAME + ".tmp")
        torch.save(
            {
                "position": int(position),
                "config": self.config_json,
                "model": self.model_state(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "seconds": self.resumed_seconds + time.perf_counter() - self._t0,
                "extra": extra,
            },
            tmp,
        )
        os.replace(tmp, self.checkpoint_path)

    def read_checkpoint(self) -> dict[str, Any]:
        """The last checkpoint, checked against this run's options (see :meth:`restore`).

        Raises:
            UsageError: no checkpoint, or one made with other options.
        """
        if not self.checkpoint_path.is_file():
            raise UsageError(f"nothing to resume: no checkpoint at {self.checkpoint_path}; run without --resume")
        ck = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        if ck.get("config") != self.config_json:
            raise UsageError(
                f"checkpoint {self.checkpoint_path} was made with other options or data "
                f"({_differences(ck.get('config'), self.config_json)}); resume with the same ones or drop --resume"
            )
        return ck

    def restore(self, ck: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Put a checkpoint back: weights, optimiser, schedule and RNG (every rank of a run, from rank 0's file).

        Returns:
            ``(position, extra)``: epochs or steps done, and the loop's state saved with them.
        """
        self.load_model_state(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["rng"])
        if ck.get("cuda_rng") and torch.cuda.is_available() and len(ck["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(ck["cuda_rng"])  # dropout masks on a GPU draw from its own generators
        self.resumed_seconds = float(ck.get("seconds", 0.0))
        return int(ck["position"]), dict(ck["extra"])

    def resume(self) -> tuple[int, dict[str, Any]]:
        """Restore the last checkpoint: weights, optimiser, schedule and RNG.

        Returns:
            ``(position, extra)``: epochs or steps done, and the loop's state saved with them.

        Raises:
            UsageError: no checkpoint, or one made with other options.
        """
        return self.restore(self.read_checkpoint())

    def finish(self) -> None:
        """Remove the work directory once the run's outputs are in place."""
        shutil.rmtree(self.work, ignore_errors=True)

    # -- progress ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def progress(
        self, title: str, total: int, completed: int, *, enabled: bool = True, val_label: str = "val", **fields: Any
    ) -> Iterator[Callable[..., None]]:
        """Progress over the run's steps (:func:`geohsi.console.progress`: a rich bar on a terminal, a plain
        line every ``GEOHSI_PROGRESS_INTERVAL`` seconds in a log); yields ``update(advance=0, **fields)``.

        Args:
            title: rich-markup title; may show fields, e.g. ``"epoch {task.fields[epoch]}"``.
            total: steps of the run.
            completed: steps already done (a resumed run).
            enabled: show the progress.
            val_label: label of the ``val`` field.
            **fields: initial values of the fields the title shows (``loss``, ``lr`` and ``val`` always exist).
        """
        from geohsi.console import progress

        detail = "loss {task.fields[loss]} lr {task.fields[lr]:.2e} " + val_label + " {task.fields[val]}"
        init = {"loss": "-", "lr": self.lr, "val": "-", **fields}

        def shown(advance: int = 0, **values: Any) -> None:
            loss = values.get("loss")
            if loss is not None and not isinstance(loss, str):  # "-" until a loss has been read, never "nan"
                values["loss"] = f"{loss:.4f}" if math.isfinite(loss) else "-"
            update(advance=advance, **values)

        with progress(title, total, completed=completed, unit="steps", detail=detail, enabled=enabled, **init) as update:
            yield shown


__all__ = ["CHECKPOINT_NAME", "Runner", "check_resumable", "lr_lambda", "seed_init", "work_dir"]
