"""The ``patch`` head: one window per pixel, resized to the model input, one logit vector each (the paper).

Model: :class:`~geohsi.models.spectralgpt.SpectralGPTClassifier` (encoder + pooled classification
head). Training samples: the window around each training pixel (:class:`~geohsi.spectral.windows.WindowSource`),
flipped/rotated at random. Inference: every valid pixel of a block gets its own window, so a block
needs a halo of ``window // 2`` pixels.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geohsi.errors import UsageError
from geohsi.heads.augment import dihedral
from geohsi.heads.base import CHUNK_BUDGET_BYTES, Head, image_batch, register_head
from geohsi.prediction import ForwardTimer, patch_block_probabilities, predict_window_classes
from geohsi.spectral.windows import WindowSource, check_window
from geohsi.splits import SceneLayout

#: default spatial chunk edge: 128² = 16,384 pixels per task keeps batches full (dask issue 12082)
#: while a task holds only ~B·(c + 2r)²·8 bytes of input (≈ 40 MB for 224 bands).
DEFAULT_CHUNK = 128
#: windows scored per forward at validation/test time, at least.
EVAL_BATCH = 256


@dataclass
class PatchSamples:
    """The training windows of a run: one per training pixel, the same pixels every epoch.

    Attributes:
        sources: windows of each transformed scene.
        layout: where the scenes sit in the split's grid.
        train_idx: ``[n]`` split (virtual) indices of the training pixels.
        targets: ``[n]`` int64 logit index of each.
    """

    sources: list[WindowSource]
    layout: SceneLayout
    train_idx: np.ndarray
    targets: torch.Tensor

    def epoch_size(self, epoch: int) -> int:
        return len(self.train_idx)

    def windows(self, idx: np.ndarray) -> np.ndarray:
        """``[N, C, S, S]`` windows at split indices ``idx``, cut from their scenes, in order."""
        if len(self.sources) == 1:
            return self.sources[0].windows(idx)
        out = None
        for k, pos, local in self.layout.groups(idx):
            w = self.sources[k].windows(local)
            if out is None:
                out = np.empty((len(idx), *w.shape[1:]), dtype=np.float32)
            out[pos] = w
        return out

    def batch(self, epoch: int, sel: np.ndarray, generator: torch.Generator, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.windows(self.train_idx[sel]))
        if augment:
            x, _ = dihedral(x, generator)
        return x, self.targets[sel]

    def sample_keys(self, epoch: int) -> np.ndarray:
        """``[n]`` the (scene, chunk) each sample is read from, as one integer (streamed training)."""
        return self.layout.chunk_keys(self.train_idx, [s.channels for s in self.sources])

    def predict(self, model: nn.Module, idx: np.ndarray, *, batch_size: int, device: Any, precision: str) -> np.ndarray:
        out = np.zeros(len(idx), dtype=np.int64)
        for k, pos, local in self.layout.groups(idx):
            out[pos] = predict_window_classes(
                model, self.sources[k], local, batch_size=max(batch_size, EVAL_BATCH), device=device, precision=precision
            )
        return out

    def with_channels(self, channels: Any) -> PatchSamples:
        scenes = channels if isinstance(channels, list) else [channels]
        w = self.sources[0]
        return PatchSamples([WindowSource(c, w.window, w.input_size) for c in scenes], self.layout, self.train_idx, self.targets)


@register_head
@dataclass(frozen=True)
class PatchHead(Head):
    """Per-pixel window classification.

    Attributes:
        window: window edge in pixels (odd).
        input_size: the window is resized (bilinear) to ``input_size × input_size``.
        hidden: hidden width of the MLP classification head (0 = a single Linear).
    """

    name: ClassVar[str] = "patch"
    default_batch: ClassVar[Mapping[str, int]] = {"cpu": 256}

    window: int = 15
    input_size: int = 32
    hidden: int = 0

    @classmethod
    def from_options(
        cls, *, window: int, input_size: int, head_hidden: int = 0, tile_overlap: int | None = None, context_dropout: float = 0.0
    ) -> PatchHead:
        return cls(window=int(window), input_size=int(input_size), hidden=int(head_hidden))

    @classmethod
    def from_record(cls, model: Mapping[str, Any], window: Mapping[str, Any]) -> PatchHead:
        return cls(window=int(window["size"]), input_size=int(window["input_size"]), hidden=int(model.get("head_hidden", 0)))

    @classmethod
    def training_defaults(cls, adapter: str) -> dict[str, Any]:
        """The paper's protocol: 30 epochs of 64 windows, lr 1e-3."""
        return {"epochs": 30, "batch_size": 64, "lr": 1e-3}

    def record(self) -> dict[str, Any]:
        return {"head": self.name, "head_hidden": self.hidden}

    def build_model(self, config: Any, num_classes: int) -> nn.Module:
        from geohsi.models import build_classifier

        return build_classifier(config, num_classes, head_hidden=self.hidden)

    def load_pretrained(self, model: nn.Module, path: str | os.PathLike) -> None:
        from geohsi.models import load_backbone

        # The whole classifier: the checkpoint's final norm (official ``norm.*``), when it has one,
        # initialises the head's norm; an encoder saved without it keeps the default norm.
        load_backbone(path, model, allow_missing=("head.fc.*", "head.norm.*"))

    def training_samples(
        self, channels: Any, split: Any, targets: np.ndarray, *, seed: int, epochs: int, log: Callable[[str], None]
    ) -> PatchSamples:
        scenes = channels if isinstance(channels, list) else [channels]
        sources = [WindowSource(c, self.window, self.input_size) for c in scenes]
        return PatchSamples(sources, split.scenes, np.asarray(split.train), torch.as_tensor(np.asarray(targets, dtype=np.int64)))

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets)

    def predict_pixels(
        self, model: nn.Module, channels: Any, idx: np.ndarray, *, batch_size: int, device: Any, precision: str
    ) -> np.ndarray:
        return predict_window_classes(
            model,
            WindowSource(channels, self.window, self.input_size),
            idx,
            batch_size=batch_size,
            device=device,
            precision=precision,
        )

    @property
    def halo(self) -> int:
        return self.window // 2

    def default_chunk(self, height: int, width: int, n_bands: int, *, budget_bytes: int = CHUNK_BUDGET_BYTES) -> int:
        """:data:`DEFAULT_CHUNK`, shrunk while ``B·(c + 2r)²·8·3`` exceeds the budget (3 copies: raw,
        physical, transformed); never below 32, never above the scene."""
        r = self.halo
        c = DEFAULT_CHUNK
        while c > 32 and 3 * 8 * n_bands * (c + 2 * r) ** 2 > budget_bytes:
            c //= 2
        return max(1, min(c, max(height, width)))

    def check_scene(self, height: int, width: int, source: str, model_name: str) -> None:
        if self.window > height or self.window > width:  # the bundle fixes the window: no --window to suggest
            raise UsageError(
                f"{source} is {height}×{width} pixels, smaller than the {self.window}-pixel windows of patch bundle "
                f"{model_name}; give a scene at least {self.window} pixels high and wide, or use a bundle with a smaller window"
            )
        check_window(self.window)  # odd and positive (a hand-edited bundle); the sizes are checked above

    def predict_block(
        self,
        block: np.ndarray,
        model: nn.Module,
        *,
        halo: int,
        origin: tuple[int, int],
        batch_size: int,
        device: Any,
        precision: str,
        timer: ForwardTimer | None = None,
    ) -> np.ndarray:
        return patch_block_probabilities(
            block,
            model,
            window=self.window,
            input_size=self.input_size,
            halo=halo,
            batch_size=batch_size,
            device=device,
            precision=precision,
            timer=timer,
        )

    def describe(self) -> str:
        return self.name

    @property
    def mlm_tasks(self) -> list[str]:
        return ["classification"]

    def mlm_input(self, n_channels: int) -> dict[str, Any]:
        s = self.input_size
        return {
            "name": "spectral windows",
            "description": f"per-pixel windows of {self.window}×{self.window} pixels resized to {s}×{s}",
            "input": image_batch(n_channels, s),
            "resize_type": "interpolation-linear",
        }

    def mlm_output(self, n_classes: int) -> dict[str, Any]:
        return {
            "name": "class logits",
            "description": "logits of the window's centre pixel",
            "tasks": ["classification"],
            "result": {"shape": [-1, n_classes], "dim_order": ["batch", "class"], "data_type": "float32"},
        }


__all__ = ["DEFAULT_CHUNK", "PatchHead", "PatchSamples"]
