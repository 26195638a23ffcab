"""The model bundle: a small self-describing directory that replays a fine-tuned classifier exactly.

Layout of ``BUNDLE/``::

    bundle.json            everything needed to rebuild the model and its input (see below)
    adapter/               adapter + head weights (safetensors) and their config (geohsi.adapters.io)
    backbone.safetensors   only when the backbone is not an external file (e.g. a random init)
    split.npz              train/val/test pixel indices of the training scene
    train_log.jsonl        one JSON line per epoch
    metrics.json/.csv, confusion.png   test metrics of the training run

``bundle.json`` records: the model config and head mode (``model.head``: ``patch`` — one window per
pixel — or ``dense`` — a segmentation head over tiles, with ``model.dense`` = tile edge, overlap and
head widths), the number and legend of classes, the adapter config,
the backbone identity (built-in/random weights stored in the bundle, or an external file by
sha256), the spectral transform (PCA or S2 mapping + normalisation, input wavelengths), the
window/resize settings, the resolved training config, test metrics, package versions and the
sha256 of every file, so :func:`load_bundle` can say exactly what is wrong.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from geohsi.files import atomic_output, file_sha256
from geohsi.errors import InputFormatError, ModelError
from geohsi.heads import Head, get_head
from geohsi.scene import Legend

BUNDLE_FORMAT = "geohsi-bundle"
BUNDLE_VERSION = 1
META_NAME = "bundle.json"
ADAPTER_DIR = "adapter"
BACKBONE_NAME = "backbone.safetensors"
SPLIT_NAME = "split.npz"


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine a bundle's numbers."""
    import dask
    import torch
    import xarray

    import geohsi

    return {
        "geohsi": geohsi.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "xarray": xarray.__version__,
        "dask": dask.__version__,
        "python": platform.python_version(),
    }


@dataclass
class Bundle:
    """A loaded (verified) bundle.

    Attributes:
        path: the bundle directory.
        meta: the parsed ``bundle.json``.
    """

    path: Path
    meta: dict[str, Any]
    _transform: Any = field(default=None, repr=False)

    @property
    def model_config(self) -> dict[str, Any]:
        return self.meta["model"]["config"]

    @property
    def classes(self) -> Legend:
        """The class legend in output order (logit k ↔ ``classes[k]``)."""
        return Legend.from_list(self.meta["classes"])

    @property
    def class_ids(self) -> np.ndarray:
        """``[K]`` class id of each logit."""
        return self.classes.ids

    @property
    def window(self) -> int:
        return int(self.meta["window"]["size"])

    @property
    def input_size(self) -> int:
        return int(self.meta["window"]["input_size"])

    @property
    def head(self) -> Head:
        """The model mode (:class:`~geohsi.heads.PatchHead` or :class:`~geohsi.heads.DenseHead`) with its
        geometry; bundles from before dense mode are ``patch``."""
        return get_head(str(self.meta["model"].get("head", "patch"))).from_record(self.meta["model"], self.meta["window"])

    @property
    def method(self) -> str:
        return self.meta["adapter"]["method"]

    @property
    def transform(self):
        """The :class:`~geohsi.spectral.transform.SpectralTransform` the model expects."""
        if self._transform is None:
            from geohsi.spectral.transform import SpectralTransform

            self._transform = SpectralTransform.from_dict(self.meta["spectral"])
        return self._transform

    @property
    def hash(self) -> str:
        """Identity of the bundle (sha256 of its ``bundle.json``): the key of worker model caches."""
        return file_sha256(self.path / META_NAME)

    def split(self):
        """The training split (:class:`geohsi.datasets.splits.Split`)."""
        from geohsi.datasets.splits import Split

        return Split.load(self.path / SPLIT_NAME)

    def build_model(self, *, backbone: str | os.PathLike | None = None, merge: bool = True) -> nn.Module:
        """Rebuild the model: backbone weights, adapter and head, adapters merged for inference.

        The head builds the model: a ``patch`` bundle gives a
        :class:`~geohsi.models.spectralgpt.SpectralGPTClassifier` (``[N, C, S, S]`` → ``[N, K]``), a
        ``dense`` one a :class:`~geohsi.models.dense.SpectralGPTSegmenter` (``[N, C, S, S]`` → ``[N, K, S, S]``).

        Args:
            backbone: path of the backbone file when it moved since training (checked by sha256).
            merge: fold the adapter into the frozen weights (exact; faster inference).

        Returns:
            The model in eval mode on the CPU.

        Raises:
            ModelError: the backbone file is missing or differs from the one trained with.
        """
        from geohsi.adapters import load_adapter, merge_adapter
        from geohsi.models import SpectralGPTConfig, load_backbone

        model = self.head.build_model(SpectralGPTConfig.from_dict(self.model_config), len(self.classes))
        bb = self.meta["backbone"]
        if bb["kind"] == "bundled":
            load_backbone(self.path / BACKBONE_NAME, model.encoder)
        elif bb["kind"] == "file":
            src = Path(backbone) if backbone else Path(bb["path"])
            if not src.is_file():
                raise ModelError(
                    f"bundle {self.path} was trained on backbone {bb['path']}, which is missing; pass its new location "
                    "with --backbone PATH"
                )
            got = file_sha256(src)
            if got != bb["sha256"]:
                raise ModelError(
                    f"backbone {src} (sha256 {got[:12]}…) is not the one bundle {self.path} was trained on "
                    f"(sha256 {bb['sha256'][:12]}…); pass the original backbone file"
                )
            load_backbone(src, model.encoder)
        load_adapter(model, self.path / ADAPTER_DIR, backbone_id=bb["identity"], method=self.method)
        if merge and self.method not in ("full", "linear"):
            merge_adapter(model)
        model.eval()
        return model


def _files_table(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != META_NAME
    }


def write_bundle(
    out: str | os.PathLike,
    *,
    model: nn.Module,
    classes: Legend,
    transform: Any,
    split: Any,
    head: Head,
    train_config: dict[str, Any],
    backbone: dict[str, Any],
    backbone_module: nn.Module | None = None,
    metrics: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    extra_files: dict[str, bytes] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a bundle directory atomically.

    Args:
        out: bundle directory.
        model: the trained classifier with its adapter (unmerged).
        classes: the legend in logit order.
        transform: the fitted spectral transform.
        split: the training split.
        head: the model mode and its geometry.
        train_config: the resolved training config (JSON-able).
        backbone: ``{"kind": "bundled"|"file", "identity": {...}, "path"?, "sha256"?}``.
        backbone_module: for ``bundled``: the encoder as it was before fine-tuning (no adapter),
            written into the bundle.
        metrics: test metrics of the run.
        history: per-epoch log rows.
        extra_files: more files to write (name → bytes), e.g. the confusion-matrix PNG.
        overwrite: replace an existing bundle.

    Returns:
        The bundle path.
    """
    from geohsi.adapters import save_adapter
    from geohsi.models import save_backbone

    with atomic_output(out, overwrite=overwrite) as tmp:
        tmp.mkdir()
        save_adapter(model, tmp / ADAPTER_DIR, backbone_id=backbone["identity"])
        if backbone["kind"] == "bundled":
            if backbone_module is None:
                raise ValueError("a bundled backbone needs backbone_module")
            save_backbone(backbone_module, tmp / BACKBONE_NAME)
        split.save(tmp / SPLIT_NAME)
        if history is not None:
            (tmp / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        if metrics is not None:
            from geohsi.metrics import write_metrics

            write_metrics(metrics, tmp / "metrics.json")
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        from geohsi.adapters import adapter_config

        meta = {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": {"config": model.config.to_dict(), **head.record(model), "num_classes": len(classes)},
            "classes": Legend.coerce(classes).to_list(),
            "adapter": adapter_config(model),
            "backbone": backbone,
            "spectral": transform.to_dict(),
            "window": {"size": int(head.window), "input_size": int(head.input_size), "padding": "reflect", "resize": "bilinear"},
            "train_config": train_config,
            "metrics": {k: metrics[k] for k in ("overall_accuracy", "average_accuracy", "kappa", "n_test") if metrics and k in metrics},
            "versions": package_versions(),
            "files": _files_table(tmp),
        }
        (tmp / META_NAME).write_text(json.dumps(meta, indent=1, default=_json_default) + "\n")
    return Path(out)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Open and verify a bundle: files present, sha256 of each, format version.

    Raises:
        InputFormatError: not a bundle directory.
        ModelError: a missing or modified file, or an unsupported format.
    """
    p = Path(path)
    if not p.exists():
        raise InputFormatError(f"bundle {p} does not exist; train one with 'geohsi train SCENE.zarr --out {p}'")
    meta_path = p / META_NAME
    if not meta_path.is_file():
        raise InputFormatError(f"{p} is not a geohsi bundle (no {META_NAME}); pass the directory written by 'geohsi train'")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{meta_path} is corrupted ({e.__class__.__name__}); re-create the bundle with 'geohsi train'") from e
    if meta.get("format") != BUNDLE_FORMAT:
        raise ModelError(f"{meta_path} is not a geohsi bundle description; re-create the bundle with 'geohsi train'")
    if int(meta.get("version", 0)) > BUNDLE_VERSION:
        raise ModelError(f"bundle {p} has format version {meta['version']}, newer than this geohsi reads; upgrade geohsi")
    for rel, sha in meta.get("files", {}).items():
        f = p / rel
        if not f.is_file():
            raise ModelError(f"bundle {p} is missing {rel}; copy the whole bundle directory or re-create it")
        if file_sha256(f) != sha:
            raise ModelError(f"bundle file {f} was modified or corrupted (sha256 mismatch); re-create the bundle")
    return Bundle(p, meta)


def bundle_info(path: str | os.PathLike) -> dict[str, Any]:
    """A flat description of a bundle for ``geohsi info``."""
    b = load_bundle(path)
    m = b.meta
    size = sum(f.stat().st_size for f in (b.path / ADAPTER_DIR).rglob("*") if f.is_file())
    cfg = m["model"]["config"]
    info: dict[str, Any] = {
        "created": m["created"],
        "adapter": m["adapter"]["method"],
        "adapter options": {k: v for k, v in m["adapter"].items() if k not in ("method",)},
        "adapter files size": f"{size / 1e6:.3f} MB",
        "model": f"dim {cfg['embed_dim']}, depth {cfg['depth']}, heads {cfg['num_heads']}, input {m['window']['input_size']} px",
        "head": b.head.describe(),
        "backbone": m["backbone"].get("path") or m["backbone"]["identity"].get("name", m["backbone"]["kind"]),
        "spectral": f"{m['spectral']['reduction']} → {len(m['spectral']['channel_names'])} channels, "
        f"{m['spectral']['normalizer']['method']} normalisation, {m['spectral']['input_band_count']} input bands",
        "window": f"{m['window']['size']} px → {m['window']['input_size']} px ({m['window']['resize']})",
        "split": m["train_config"].get("split"),
        "training": f"{m['train_config'].get('epochs')} epochs, lr {m['train_config'].get('lr')}, seed {m['train_config'].get('seed')}",
    }
    info.update({k: v for k, v in m.get("metrics", {}).items()})
    info["classes"] = b.classes.to_list()
    return info
