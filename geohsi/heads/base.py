"""The head abstraction: what a model mode (``patch`` or ``dense``) is, in one place.

A :class:`Head` is everything that differs between the paper's per-pixel protocol and dense
segmentation of tiles, so that no code outside the two implementations asks ``if head ==
"dense"``:

* **model** — build it (:meth:`Head.build_model`), load a pretrained backbone into it
  (:meth:`Head.load_pretrained`), record its geometry in a bundle (:meth:`Head.record`) and
  rebuild the head from that record (:meth:`Head.from_record`);
* **training** — cut the training samples of a split and score pixels
  (:meth:`Head.training_samples` → :class:`TrainingSamples`), and the loss (:meth:`Head.loss`);
* **inference on a block** — the halo a block needs (:attr:`Head.halo`), the default chunk and
  batch, the smallest scene it can map (:meth:`Head.check_scene`), and the prediction of a
  halo'd block (:meth:`Head.predict_block`);
* **description** — one line for ``geohsi info`` and the MLM input/output objects of a STAC item.

Implementations register themselves by name (:func:`register_head`); :func:`get_head` finds one.
Heads are small frozen dataclasses: picklable (they travel in the classify graph) and hashable.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from geohsi.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from geohsi.models.config import SpectralGPTConfig
    from geohsi.prediction.runtime import ForwardTimer
    from geohsi.splits import Split

#: input bytes (float64 during the spectral transform) one classify task may hold by default.
CHUNK_BUDGET_BYTES = 256 << 20


class TrainingSamples(Protocol):
    """The training data of one run, as a head cuts it from the transformed scene and the split."""

    def epoch_size(self, epoch: int) -> int:
        """Number of samples (windows or tiles) of epoch ``epoch`` (0-based)."""
        ...

    def batch(self, epoch: int, sel: np.ndarray, generator: torch.Generator, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of the samples ``sel`` of an epoch (augmented with ``generator`` when asked)."""
        ...

    def sample_keys(self, epoch: int) -> np.ndarray:
        """``[epoch_size]`` an integer per sample naming the (scene, chunk) it is read from: streamed
        training draws each epoch chunk by chunk so a chunk is decompressed once, not once per sample."""
        ...

    def predict(self, model: nn.Module, idx: np.ndarray, *, batch_size: int, device: Any, precision: str) -> np.ndarray:
        """Predicted logit indices at split indices ``idx`` (validation and test scoring)."""
        ...

    def with_channels(self, channels: Any) -> TrainingSamples:
        """The same samples (pixels or tiles, targets) cut from other channels of the same scenes (a list, one per scene)."""
        ...


class Head(ABC):
    """One model mode. Subclasses are frozen dataclasses with at least ``window`` and ``input_size``.

    Attributes:
        name: the registry name (``patch``, ``dense``), recorded as ``model.head`` in bundles.
        window: per-pixel window edge in pixels (odd); also the gap of ``blocks`` splits.
        input_size: model input edge in pixels (the resized window, or the tile).
    """

    name: ClassVar[str]
    window: int
    input_size: int

    # -- construction -------------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def from_options(
        cls, *, window: int, input_size: int, head_hidden: int = 0, tile_overlap: int | None = None, context_dropout: float = 0.0
    ) -> Head:
        """The head of a training run (the options of :class:`~geohsi.training.config.TrainConfig`)."""

    @classmethod
    @abstractmethod
    def from_record(cls, model: Mapping[str, Any], window: Mapping[str, Any]) -> Head:
        """The head a bundle describes (its ``model`` and ``window`` records)."""

    @abstractmethod
    def record(self) -> dict[str, Any]:
        """The ``model`` fields of a bundle: ``head``, ``head_hidden`` and the mode's own."""

    def resolved(self, model: nn.Module) -> Head:
        """This head with every default the built ``model`` fixed (e.g. decoder widths) filled in."""
        return self

    # -- model --------------------------------------------------------------------------------

    @abstractmethod
    def build_model(self, config: SpectralGPTConfig, num_classes: int) -> nn.Module:
        """A freshly initialised model ``[N, C, S, S]`` → logits for this mode."""

    @abstractmethod
    def load_pretrained(self, model: nn.Module, path: str | os.PathLike) -> None:
        """Load backbone weights (official ``.pth`` or geohsi safetensors) into a model of this mode."""

    # -- training -----------------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def training_defaults(cls, adapter: str) -> dict[str, Any]:
        """``epochs``, ``batch_size`` and ``lr`` of a fine-tuning run with this head when they are not given."""

    @abstractmethod
    def training_samples(
        self, channels: Any, split: Split, targets: np.ndarray, *, seed: int, epochs: int, log: Callable[[str], None]
    ) -> TrainingSamples:
        """The samples of a run.

        Args:
            channels: the transformed scenes, one ``[C, H, W]`` array per scene of the split's layout:
                numpy (in memory), a :class:`~geohsi.spectral.windows.CachedCube` (streamed) or a lazy
                DataArray; one scene may be given alone.
            split: the split (its :attr:`~geohsi.splits.Split.scenes` place the scenes).
            targets: ``[n_train]`` logit index of each training pixel.
            seed: run seed.
            epochs: number of epochs (samples may be drawn for all of them up front).
            log: receives one-line notes.
        """

    @abstractmethod
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar training loss of a batch."""

    @abstractmethod
    def predict_pixels(
        self, model: nn.Module, channels: Any, idx: np.ndarray, *, batch_size: int, device: Any, precision: str
    ) -> np.ndarray:
        """Predicted logit indices at scene pixels ``idx`` (evaluation).

        Args:
            model: a model of this mode.
            channels: ``[C, H, W]`` transformed scene (numpy or lazy).
            idx: ``[N]`` flat (row-major) pixel indices.
            batch_size: samples per forward.
            device: torch device.
            precision: ``fp32`` or ``bf16``.
        """

    # -- inference on blocks ------------------------------------------------------------------

    @property
    @abstractmethod
    def halo(self) -> int:
        """Pixels of context a block needs on each side."""

    @property
    def reach(self) -> int:
        """Pixels past a block's core that the block's own model inputs cover (0: none).

        A head with a reach predicts by overlap-add: each block task returns sums over its core and
        this margin (:meth:`accumulate_block`), and the map's blocks add their neighbours' margins.
        """
        return 0

    #: samples per forward when none is given, by device type (CUDA batches are auto-tuned).
    default_batch: ClassVar[Mapping[str, int]]

    @abstractmethod
    def default_chunk(self, height: int, width: int, n_bands: int, *, budget_bytes: int = CHUNK_BUDGET_BYTES) -> int:
        """Default spatial chunk edge of a classification (one task per chunk)."""

    @abstractmethod
    def check_scene(self, height: int, width: int, source: str, model_name: str) -> None:
        """Refuse a scene too small for this mode.

        Raises:
            UsageError: the scene is smaller than a window / a tile.
        """

    @abstractmethod
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
        """``[K, h, w]`` probabilities of a halo'd block's core (NaN at invalid pixels).

        Args:
            block: ``[C, h + 2·halo, w + 2·halo]`` float32 channels, NaN at invalid pixels.
            model: a model of this mode (eval mode; adapters merged).
            halo: the halo the block carries (≥ :attr:`halo`).
            origin: scene ``(row, col)`` of the block's first core pixel.
            batch_size: samples per forward.
            device: torch device.
            precision: ``fp32`` or ``bf16``.
            timer: accumulates the seconds spent in the model forwards.
        """

    # -- description --------------------------------------------------------------------------

    @abstractmethod
    def describe(self) -> str:
        """One line for ``geohsi info``."""

    @property
    @abstractmethod
    def mlm_tasks(self) -> list[str]:
        """MLM tasks of the model (``classification``, ``semantic-segmentation``)."""

    @abstractmethod
    def mlm_input(self, n_channels: int) -> dict[str, Any]:
        """MLM input fields of this mode: ``name``, ``description``, ``input`` and ``resize_type``."""

    @abstractmethod
    def mlm_output(self, n_classes: int) -> dict[str, Any]:
        """MLM output fields of this mode: ``name``, ``description``, ``tasks`` and ``result``."""


def image_batch(n_channels: int, size: int) -> dict[str, Any]:
    """The MLM input structure of a batch of ``[N, C, S, S]`` float32 images (windows or tiles)."""
    return {"shape": [-1, n_channels, size, size], "dim_order": ["batch", "channel", "height", "width"], "data_type": "float32"}


#: name → head class, filled by :func:`register_head`.
HEADS: dict[str, type[Head]] = {}


def register_head(cls: type[Head]) -> type[Head]:
    """Class decorator: register a :class:`Head` implementation under its ``name``."""
    HEADS[cls.name] = cls
    return cls


def get_head(name: str) -> type[Head]:
    """The head class registered as ``name``.

    Raises:
        UsageError: an unknown name.
    """
    if name not in HEADS:
        raise UsageError(f"unknown --head {name!r}; use one of {', '.join(HEADS)}")
    return HEADS[name]


__all__ = ["CHUNK_BUDGET_BYTES", "HEADS", "Head", "TrainingSamples", "get_head", "image_batch", "register_head"]
