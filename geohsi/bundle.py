"""The model bundle: a small self-describing directory that replays a fine-tuned classifier exactly.

Layout of ``BUNDLE/``::

    bundle.json            everything needed to rebuild the model and its input (see below)
    adapter/               adapter + head weights (safetensors) and their config (geohsi.adapters.weights)
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

import dataclasses
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from geohsi.errors import DataError, InputFormatError, ModelError, UsageError
from geohsi.files import atomic_output, file_sha256
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

    from geohsi.version import __version__

    return {
        "geohsi": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "xarray": xarray.__version__,
        "dask": dask.__version__,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class BackboneRecord:
    """Which frozen backbone a bundle's adapter belongs to.

    Attributes:
        kind: ``bundled`` (the weights are ``backbone.safetensors`` in the bundle, e.g. a random
            init) or ``file`` (an external weights file, checked by sha256).
        identity: the identity the adapter file records (name or sha256, and the encoder config).
        path: ``file`` backbones: where the file was at training time.
        sha256: ``file`` backbones: the file's digest.
        pretrained_on: the spectral front end the backbone was pretrained with (``pca``/``s2``,
            :func:`geohsi.models.default.pretrained_front_end`); ``None``: unknown or random.
    """

    kind: str
    identity: dict[str, Any]
    path: str | None = None
    sha256: str | None = None
    pretrained_on: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "identity": self.identity}
        if self.path is not None:
            d["path"] = self.path
        if self.sha256 is not None:
            d["sha256"] = self.sha256
        if self.pretrained_on is not None:
            d["pretrained_on"] = self.pretrained_on
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BackboneRecord:
        return cls(str(d["kind"]), dict(d.get("identity") or {}), d.get("path"), d.get("sha256"), d.get("pretrained_on"))

    @property
    def name(self) -> str:
        """The file path, or the identity's name, or the kind."""
        return self.path or str(self.identity.get("name", self.kind))


#: The model config fields a bundle must record to rebuild its encoder.
_MODEL_KEYS = ("embed_dim", "depth", "num_heads")


def format_version(doc: dict[str, Any], source: str) -> int:
    """The ``version`` field of a ``bundle.json`` (0 when absent).

    Raises:
        ModelError: not a whole number.
    """
    v = doc.get("version", 0)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ModelError(f"{source} has format version {v!r}, not a whole number; re-create the bundle with 'geohsi train'")
    return v


def _required(record: Any, keys: Sequence[str], what: str) -> dict[str, Any]:
    """``record`` as a dict, once it holds every one of ``keys`` (a :class:`DataError` naming ``what.key`` otherwise)."""
    record = dict(record)
    missing = [k for k in keys if k not in record]
    if missing:
        raise DataError(f"the field {what}.{missing[0]} is missing")
    return record


@dataclass(frozen=True)
class BundleMeta:
    """The content of ``bundle.json``, typed.

    :meth:`to_dict` writes the layout every geohsi version has written (format version
    :data:`BUNDLE_VERSION`) and :meth:`from_dict` reads it, bundles from before the head
    abstraction included.

    Attributes:
        model_config: the encoder config (:meth:`~geohsi.models.SpectralGPTConfig.to_dict`).
        head: the model mode with its geometry.
        classes: the legend in logit order.
        adapter: the adapter config (:func:`geohsi.adapters.adapter_config`).
        backbone: the frozen backbone.
        spectral: the spectral transform record (:meth:`~geohsi.spectral.transform.SpectralTransform.to_dict`).
        train_config: the resolved training options (plus ``scene``, ``labels_sha256``, ``wall_seconds``).
        metrics: summary test metrics (``overall_accuracy``, ``average_accuracy``, ``kappa``, ``n_test``).
        versions: package versions that made it.
        created: ISO 8601 creation time (UTC).
        files: sha256 of every other file of the bundle, by relative path.
    """

    model_config: dict[str, Any]
    head: Head
    classes: Legend
    adapter: dict[str, Any]
    backbone: BackboneRecord
    spectral: dict[str, Any]
    train_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    files: dict[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """The adapter method (``krona+``, …, ``full``, ``linear``)."""
        return str(self.adapter["method"])

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (``bundle.json``)."""
        return {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "created": self.created,
            "model": {"config": self.model_config, **self.head.record(), "num_classes": len(self.classes)},
            "classes": self.classes.to_list(),
            "adapter": self.adapter,
            "backbone": self.backbone.to_dict(),
            "spectral": self.spectral,
            "window": {
                "size": int(self.head.window),
                "input_size": int(self.head.input_size),
                "padding": "reflect",
                "resize": "bilinear",
            },
            "train_config": self.train_config,
            "metrics": self.metrics,
            "versions": self.versions,
            "files": self.files,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "bundle.json") -> BundleMeta:
        """Parse a ``bundle.json`` document.

        Raises:
            ModelError: not a geohsi bundle description, a newer format, or a malformed field.
        """
        if d.get("format") != BUNDLE_FORMAT:
            raise ModelError(f"{source} is not a geohsi bundle description; re-create the bundle with 'geohsi train'")
        if format_version(d, source) > BUNDLE_VERSION:
            raise ModelError(f"{source} has format version {d['version']}, newer than this geohsi reads; upgrade geohsi")
        try:
            model = d["model"]
            return cls(
                model_config=_required(model["config"], _MODEL_KEYS, "model.config"),
                head=get_head(str(model.get("head", "patch"))).from_record(model, d["window"]),
                classes=Legend.from_list(d["classes"]).checked("classes"),
                adapter=_required(d["adapter"], ("method",), "adapter"),
                backbone=BackboneRecord.from_dict(d["backbone"]),
                spectral=_required(d["spectral"], ("reduction",), "spectral"),
                train_config=dict(d.get("train_config") or {}),
                metrics=dict(d.get("metrics") or {}),
                versions=dict(d.get("versions") or {}),
                created=str(d.get("created", "")),
                files=dict(d.get("files") or {}),
            )
        except (KeyError, TypeError, ValueError, UsageError, DataError) as e:
            why = str(e) if isinstance(e, (DataError, UsageError)) else f"{type(e).__name__}: {e}"
            raise ModelError(f"{source} is malformed ({why}); undo the edit, or re-create the bundle with 'geohsi train'") from e


@dataclass
class Bundle:
    """A loaded (verified) bundle.

    Attributes:
        path: the bundle directory (for a bundle read from object storage: its local copy).
        meta: its parsed ``bundle.json``.
        url: the URL it was read from, if any (what workers without a shared disk load it from).
        moved_backbone: where its backbone file is now, if it moved since training (:meth:`with_backbone`).
    """

    path: Path
    meta: BundleMeta
    _transform: Any = field(default=None, repr=False)
    url: str | None = None
    moved_backbone: str | None = None

    @property
    def location(self) -> str:
        """Where any machine can load this bundle from: its URL, else its real path (``runs/latest`` moves on to the next
        run, so a map's provenance and its workers name the run it points at now)."""
        return self.url or str(Path(self.path).resolve())

    @property
    def classes(self) -> Legend:
        """The class legend in output order (logit k ↔ ``classes[k]``)."""
        return self.meta.classes

    @property
    def class_ids(self) -> np.ndarray:
        """``[K]`` class id of each logit."""
        return self.meta.classes.ids

    @property
    def head(self) -> Head:
        """The model mode (:class:`~geohsi.heads.PatchHead` or :class:`~geohsi.heads.DenseHead`) with its
        geometry; bundles from before dense mode are ``patch``."""
        return self.meta.head

    @property
    def method(self) -> str:
        """The adapter method."""
        return self.meta.method

    @property
    def transform(self):
        """The :class:`~geohsi.spectral.transform.SpectralTransform` the model expects."""
        if self._transform is None:
            from geohsi.spectral.transform import SpectralTransform

            self._transform = SpectralTransform.from_dict(self.meta.spectral)
        return self._transform

    @property
    def hash(self) -> str:
        """Identity of the bundle (sha256 of its ``bundle.json``): the key of worker model caches."""
        return file_sha256(self.path / META_NAME)

    def split(self):
        """The training split (:class:`geohsi.splits.Split`)."""
        from geohsi.splits import Split

        return Split.load(self.path / SPLIT_NAME)

    def _backbone_file(self, backbone: str | os.PathLike | None) -> Path:
        """The backbone file of a bundle trained on one: ``backbone`` (its new location) or the recorded path.

        Raises:
            ModelError: the file is missing or is not the one trained with (sha256).
        """
        bb = self.meta.backbone
        src = Path(backbone) if backbone else Path(str(bb.path))
        if not src.is_file():
            where = f"{src} does not exist" if backbone else f"{bb.path}, which is missing"
            raise ModelError(
                f"bundle {self.path} was trained on backbone {where}; pass its new location with --backbone PATH"
                if not backbone
                else f"--backbone {where}; pass the file bundle {self.path} was trained on"
            )
        got = file_sha256(src)
        if got != bb.sha256:
            raise ModelError(
                f"backbone {src} (sha256 {got[:12]}…) is not the one bundle {self.path} was trained on "
                f"(sha256 {str(bb.sha256)[:12]}…); pass the original backbone file"
            )
        return src

    def with_backbone(self, backbone: str | os.PathLike | None = None) -> Bundle:
        """This bundle once its backbone file is found and checked (sha256), here and once, before any
        work is distributed: at ``backbone``, where it moved since training, else at the recorded path.

        Returns:
            The bundle, reading its backbone from ``backbone`` when given.

        Raises:
            UsageError: ``backbone`` for a bundle that carries its backbone.
            ModelError: the file is missing or is not the one trained with.
        """
        if self.meta.backbone.kind != "file":
            if backbone is not None:
                raise UsageError(
                    f"bundle {self.path} carries its own backbone; --backbone is for bundles trained on a backbone file"
                )
            return self
        src = self._backbone_file(backbone)
        return self if backbone is None else dataclasses.replace(self, moved_backbone=str(src.absolute()))

    def build_model(self, *, backbone: str | os.PathLike | None = None, merge: bool = True) -> nn.Module:
        """Rebuild the model: backbone weights, adapter and head, adapters merged for inference.

        The head builds the model: a ``patch`` bundle gives a
        :class:`~geohsi.models.spectralgpt.SpectralGPTClassifier` (``[N, C, S, S]`` → ``[N, K]``), a
        ``dense`` one a :class:`~geohsi.models.decoder.SpectralGPTSegmenter` (``[N, C, S, S]`` → ``[N, K, S, S]``).

        Args:
            backbone: path of the backbone file when it moved since training (checked by sha256;
                default: :attr:`moved_backbone`, else the recorded path).
            merge: fold the adapter into the frozen weights (exact; faster inference).

        Returns:
            The model in eval mode on the CPU.

        Raises:
            ModelError: the backbone file is missing or differs from the one trained with.
        """
        from geohsi.adapters import load_adapter, merge_adapter
        from geohsi.models import SpectralGPTConfig, load_backbone

        model = self.head.build_model(SpectralGPTConfig.from_dict(self.meta.model_config), len(self.classes))
        bb = self.meta.backbone
        if bb.kind == "bundled":
            load_backbone(self.path / BACKBONE_NAME, model.encoder)
        elif bb.kind == "file":
            load_backbone(self._backbone_file(backbone or self.moved_backbone), model.encoder)
        load_adapter(model, self.path / ADAPTER_DIR, backbone_id=bb.identity, method=self.method)
        if merge and self.method not in ("full", "linear"):
            merge_adapter(model)
        model.eval()
        return model


def _files_table(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file() and p.name != META_NAME}


def write_bundle(
    out: str | os.PathLike,
    meta: BundleMeta,
    *,
    model: nn.Module,
    split: Any,
    backbone_module: nn.Module | None = None,
    report: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    extra_files: dict[str, bytes] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a bundle directory atomically.

    ``meta`` says what the bundle is; its ``adapter``, ``metrics``, ``versions``, ``created`` and
    ``files`` are filled in here from the model, the report and the files written.

    Args:
        out: bundle directory.
        meta: the bundle's description (model config, head, legend, backbone, spectral transform,
            training options).
        model: the trained model with its adapter (unmerged).
        split: the training split.
        backbone_module: ``bundled`` backbones: the encoder as it was before fine-tuning (no
            adapter), written into the bundle.
        report: the test metrics report of the run (written as ``metrics.json`` + CSV).
        history: per-epoch log rows.
        extra_files: more files to write (name → bytes), e.g. the confusion-matrix PNG.
        overwrite: replace an existing bundle.

    Returns:
        The bundle path.

    Raises:
        OutputError: the bundle exists without ``overwrite`` or cannot be written.
    """
    from geohsi.adapters import adapter_config, save_adapter
    from geohsi.models import save_backbone

    with atomic_output(out, overwrite=overwrite) as tmp:
        tmp.mkdir()
        save_adapter(model, tmp / ADAPTER_DIR, backbone_id=meta.backbone.identity)
        if meta.backbone.kind == "bundled":
            if backbone_module is None:
                raise ValueError("a bundled backbone needs backbone_module")
            save_backbone(backbone_module, tmp / BACKBONE_NAME)
        split.save(tmp / SPLIT_NAME)
        if history is not None:
            (tmp / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        if report is not None:
            from geohsi.metrics import write_metrics

            write_metrics(report, tmp / "metrics.json")
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        final = dataclasses.replace(
            meta,
            head=meta.head.resolved(model),
            adapter=adapter_config(model),
            metrics={k: report[k] for k in ("overall_accuracy", "average_accuracy", "kappa", "n_test") if report and k in report},
            versions=package_versions(),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            files=_files_table(tmp),
        )
        (tmp / META_NAME).write_text(json.dumps(final.to_dict(), indent=1, default=_json_default) + "\n")
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
    from geohsi.storage import display, is_url, local_copy

    p = local_copy(path, "bundle")  # a URL: downloaded once (complete uploads only) into the cache
    if not p.exists():
        raise InputFormatError(f"bundle {p} does not exist; train one with 'geohsi train SCENE.zarr --out {p}'")
    meta_path = p / META_NAME
    if not meta_path.is_file():
        raise InputFormatError(f"{p} is not a geohsi bundle (no {META_NAME}); pass the directory written by 'geohsi train'")
    try:
        doc = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{meta_path} is corrupted ({e.__class__.__name__}); re-create the bundle with 'geohsi train'") from e
    if isinstance(doc, dict) and doc.get("format") == BUNDLE_FORMAT and format_version(doc, str(meta_path)) > BUNDLE_VERSION:
        raise ModelError(f"bundle {p} has format version {doc['version']}, newer than this geohsi reads; upgrade geohsi")
    meta = BundleMeta.from_dict(doc if isinstance(doc, dict) else {}, source=str(meta_path))
    for rel, sha in meta.files.items():
        f = p / rel
        if not f.is_file():
            raise ModelError(f"bundle {p} is missing {rel}; copy the whole bundle directory or re-create it")
        if file_sha256(f) != sha:
            raise ModelError(f"bundle file {f} was modified or corrupted (sha256 mismatch); re-create the bundle")
    return Bundle(p, meta, url=display(path) if is_url(path) else None)


__all__ = ["BackboneRecord", "Bundle", "BundleMeta", "load_bundle", "package_versions", "write_bundle"]
