"""Score a model bundle on labelled scenes: OA, AA, κ, per-class metrics, confusion matrix.

On a scene the bundle was trained on (recognised by its label grid's sha256) only the split's test
pixels of that scene are scored; on any other scene, every valid labelled pixel. Several scenes give
one pooled report plus a row per scene. Patch bundles classify one window per scored pixel; dense
bundles predict the scene (overlapping tiles blended as in ``geohsi classify``,
:func:`geohsi.prediction.predict_dense`) and read the scored pixels. Labels come as for
``geohsi train`` (each store's, label rasters by stem, or one vector file; vector classes are
matched to the bundle's by name).

.. versionadded:: 0.1
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import DataError, GeohsiWarning, UsageError
from geohsi.metrics import metrics_paths  # the files evaluate(out=...) writes (its CLI prints them)


def _trained_scenes(b: Any) -> dict[str, int]:
    """``{labels sha256: scene index in the bundle's split}`` of the scenes a bundle was trained on."""
    tc = b.meta.train_config
    if tc.get("labels_sha256"):
        return {tc["labels_sha256"]: 0}
    return {s["labels_sha256"]: k for k, s in enumerate(tc.get("scenes") or []) if s.get("labels_sha256")}


def _trained_indices(scene: Any, b: Any, trained: dict[str, int]) -> list[int] | None:
    """The bundle's training scene(s) this scene is (``None``: not one): by its labels' digest and, when several
    training scenes share that digest (two dates of one site under one label map), by its image's identity.

    The last of those scenes had been taken for every one of them, so one date's training pixels were scored as
    the other's test pixels. An image that is none of them keeps every one (its test pixels are the positions all
    of them held out).
    """
    if scene.labels_sha256 not in trained:
        return None
    recorded = b.meta.train_config.get("scenes") or []
    same = [k for k, s in enumerate(recorded) if s.get("labels_sha256") == scene.labels_sha256]
    if len(same) <= 1:
        return [trained[scene.labels_sha256]]
    from geohsi.scene import scene_identity

    ident = scene_identity(scene.ds)
    return [k for k in same if recorded[k].get("identity") == ident][:1] or same


def _in_bundle_classes(labels: Any, b: Any) -> Any:
    """The label source read in the bundle's classes: a vector file's named classes in the bundle's order, so its
    ids and digest are the training run's (sorted by name instead, the training file's pixels were all scored).

    Raises:
        UsageError: ``--class-names`` with labels that carry ids: the report names the bundle's classes (it was ignored).
    """
    import dataclasses

    if labels is None or labels.kind != "vector":
        if labels is not None and labels.class_names:
            raise UsageError(
                f"--class-names names classes of vector labels; evaluate reports the bundle's classes "
                f"({', '.join(b.classes.names[:4])}{', …' if len(b.classes.names) > 4 else ''}): drop it"
            )
        return labels
    return labels if labels.class_names else dataclasses.replace(labels, class_names=tuple(b.classes.names))


def _as_recorded(data: Any, b: Any) -> Any:
    """``data`` with each joined scene whose tiles are those of a joined training scene given the training digest:
    the joined digest follows the order the tiles come in, so the same tiles listed otherwise (``--from-list``, a
    STAC search) had been refused as a part of the training scene."""
    recorded = {
        frozenset(t["labels_sha256"] for t in s["tiles"]): s["labels_sha256"]
        for s in b.meta.train_config.get("scenes") or []
        if s.get("tiles") and s.get("labels_sha256")
    }
    for scene in data.scenes:
        if scene.tiles:
            scene.labels_sha256 = recorded.get(frozenset(t.labels_sha256 for t in scene.tiles), scene.labels_sha256)
    return data


def _check_tiles_whole(data: Any, b: Any, trained: dict[str, int]) -> None:
    """Refuse a tile the bundle trained on inside a joined scene, evaluated without the rest of that scene.

    Its test pixels are recorded on the joined scene's grid only: scored alone, its training pixels would count.

    Raises:
        DataError: such a tile (named with the scene it belongs to).
    """
    tc = b.meta.train_config
    members = {t["labels_sha256"]: s for s in tc.get("scenes") or [] for t in s.get("tiles") or []}
    for scene in data.scenes:
        if scene.labels_sha256 in trained:
            continue
        inside = [t for t in (scene.tiles or [scene]) if t.labels_sha256 in members]
        if inside:
            whole = members[inside[0].labels_sha256]
            raise DataError(
                f"{inside[0].name} was trained as one of the {len(whole['tiles'])} tiles joined into {whole['name']}; "
                "evaluate all of those tiles together (so the training split's test pixels are found) or leave it out"
            )


def _warn_relabelled(data: Any, b: Any, trained: dict[str, int], load_split: Callable[[], Any]) -> None:
    """Warn when an image the bundle was trained on (the same store, or the same scene identity) comes with
    other labels: recognised by its labels' digest only, it is scored whole, training pixels included
    (a one-pixel correction of the labels had scored 10,247 pixels instead of the 5,121 held out, silently)."""
    from geohsi.scene import scene_identity
    from geohsi.storage import absolute

    tc = b.meta.train_config
    stores = {str(tc["scene"])} if tc.get("scene") else set()
    recorded = {s.get("identity"): k for k, s in enumerate(tc.get("scenes") or []) if s.get("identity")}
    if recorded:  # only scenes that gave training pixels: one held out whole (scenes:F) trained nothing
        split = load_split()
        taught = set(np.concatenate([split.scenes.to_local(split.train)[0], split.scenes.to_local(split.val)[0]]).tolist())
        recorded = {i: k for i, k in recorded.items() if k in taught}
    for s in data.scenes:
        if s.labels_sha256 in trained:
            continue
        if absolute(s.source) in stores or scene_identity(s.ds) in recorded:
            warnings.warn(
                f"{s.source} is an image {b.path} was trained on, with other labels than it trained with: every "
                "labelled pixel is scored, its training pixels included; give the training labels to score its test pixels",
                GeohsiWarning,
                stacklevel=3,
            )


def _bundle_ids(labels: np.ndarray, data: Any, b: Any, source: str) -> np.ndarray:
    """The scene's class ids in the bundle's legend: vector classes matched by name, other labels by id.

    Raises:
        DataError: classes the bundle does not know.
    """
    if data.source.kind == "vector":
        by_name = {c.name: c.id for c in b.classes}
        names = {c.id: c.name for c in data.legend}
        missing = sorted({names[int(i)] for i in np.unique(labels)} - set(by_name))
        if missing:
            raise DataError(
                f"{source} has classes {missing} that the bundle does not know (it knows {b.classes.names}); label with its classes"
            )
        lookup = np.zeros(max(names) + 1, dtype=np.int64)
        for i, n in names.items():
            lookup[i] = by_name[n]
        return lookup[labels]
    unknown = sorted(set(np.unique(labels).tolist()) - set(b.class_ids.tolist()))
    if unknown:
        raise DataError(
            f"{source} has labels of classes {unknown} that bundle {b.path} does not know "
            f"(it knows {b.class_ids.tolist()}); evaluate on a scene with the same legend"
        )
    return labels


def _scored(scene: Any, ks: list[int] | None, split: Any, data: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(local flat indices, class ids)`` to score on one scene: the split's test pixels of the training
    scene(s) ``ks`` it is (those all of them held out) that are valid in it (the same labels may lie on another
    date's image, with clouds masked), else every valid labelled pixel."""
    if ks is None:
        return scene.index, _bundle_ids(scene.labels, data, b, scene.source)
    k, local = split.scenes.to_local(split.test)
    held = functools.reduce(np.intersect1d, [local[k == j] for j in ks])
    keep = (k == ks[0]) & np.isin(local, held)
    local, truth = local[keep], split.test_labels[keep]
    valid = np.isin(local, scene.index)
    if not valid.all():
        warnings.warn(
            f"{int((~valid).sum())} of the {local.size} test pixels of {scene.source} are nodata in this image; they are not scored",
            GeohsiWarning,
            stacklevel=3,
        )
    return local[valid], truth[valid]


def _nothing_to_score(scenes: Sequence[Any], trained: dict[str, int], split: Any, b: Any) -> str:
    """Why no pixel of ``scenes`` can be scored: all of them trained the bundle, or none is valid and labelled."""
    where = scenes[0].source if len(scenes) == 1 else f"the {len(scenes)} scenes"
    ks = [_trained_indices(s, b, trained) for s in scenes]
    if split is not None and None not in ks and not np.isin(split.scenes.to_local(split.test)[0], sum(ks, [])).any():
        spec = b.meta.train_config.get("split", "its split")
        return (
            f"every labelled pixel of {where} trained or validated the bundle (split {spec}): none was held out for testing; "
            "evaluate on scenes or tiles the split held out"
        )
    verb, pron = ("has", "its") if len(scenes) == 1 else ("have", "their")
    return f"{where} {verb} no valid labelled pixels to evaluate; check {pron} labels and nodata"


def _note_unscored(scenes: Sequence[Any], scored: Sequence[Any]) -> None:
    """Name the scenes that got no row: they trained or validated the bundle whole, or hold no valid labelled pixel
    (a report "on 18 scenes" had listed 7 rows without a word on the other 11)."""
    left = [s.name for s in scenes if not any(s is t for t in scored)]
    if left:
        warnings.warn(
            f"{len(left)} of the {len(scenes)} scenes are not scored ({', '.join(left[:4])}{', …' if len(left) > 4 else ''}): "
            "every labelled pixel of them trained or validated the bundle, or none is valid",
            GeohsiWarning,
            stacklevel=3,
        )


def _report_rows(per_scene: list[tuple[Any, np.ndarray, np.ndarray, bool]], classes: Any) -> list[dict[str, Any]]:
    from geohsi.metrics import report_for

    rows = []
    for scene, truth, pred, is_test in per_scene:
        r = report_for(truth, pred, classes)
        rows.append(
            {
                "name": scene.name,
                "source": scene.source,
                "scored": "the training split's test pixels" if is_test else "every labelled pixel",
                **{k: r[k] for k in ("overall_accuracy", "average_accuracy", "kappa", "n_test")},
            }
        )
    return rows


def evaluate(
    bundle: str | os.PathLike,
    scene: str | os.PathLike | Sequence[Any],
    *,
    labels: Any = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "fp32",
    backbone: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate a bundle on one or many labelled scenes and optionally write ``metrics.json`` + CSV + confusion PNG.

    Args:
        bundle: bundle directory.
        scene: a labelled scene (store, file read in place, STAC item), or several.
        labels: where the labels come from (:class:`~geohsi.training.data.LabelSource`; default:
            each store's ``labels``).
        out: JSON path; a ``.csv`` and a ``.png`` are written beside it.
        overwrite: replace existing outputs.
        batch_size: windows per forward (tiles per forward for dense bundles).
        device: ``auto``, ``cpu`` or ``cuda``.
        precision: ``fp32`` or ``bf16``.
        backbone: the backbone file's new location, if it moved since training.

    Returns:
        The metrics report, pooled over the scenes; with several scenes, ``scenes`` holds a row per scene.

    Raises:
        DataError: a scene has no labels or labels of classes the bundle does not know.
        BandMismatchError: the scene's bands/wavelengths do not match the bundle's transform.
        ModelError: a broken bundle.
    """
    from geohsi.bundle import load_bundle
    from geohsi.files import check_output, check_outside_stores
    from geohsi.metrics import report_for
    from geohsi.prediction import resolve_device
    from geohsi.storage import staged
    from geohsi.training.data import load_training_data
    from geohsi.training.grid_tiles import join_grid_tiles, tiles_joined_in

    if isinstance(batch_size, bool) or int(batch_size) < 1:  # a negative one had tiled nothing and scored defaults
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    check_outside_stores(metrics_paths(out) if out is not None else [])  # in the bundle, it would break it
    for path in metrics_paths(out) if out is not None else ():
        check_output(path, overwrite, directory=False)  # all three before the model runs
    b = load_bundle(bundle).with_backbone(backbone)  # a bundle carrying its backbone refuses one (it was ignored)
    data = load_training_data(list(scene) if isinstance(scene, (list, tuple)) else [scene], _in_bundle_classes(labels, b))
    if tiles_joined_in(b.meta.train_config):  # recognise the joined training scene (and score its test pixels)
        data = _as_recorded(join_grid_tiles(data, log=lambda m: None), b)
    trained = _trained_scenes(b)
    _check_tiles_whole(data, b, trained)
    load_split = functools.cache(b.split)  # read once: the relabel check and the scoring may both need it
    _warn_relabelled(data, b, trained, load_split)
    split = load_split() if any(s.labels_sha256 in trained for s in data.scenes) else None
    dev = resolve_device(device)
    model = b.build_model().to(dev)
    per_scene = []
    for s in data.scenes:
        b.head.check_scene(int(s.ds.sizes["y"]), int(s.ds.sizes["x"]), str(s.source), str(b.path))
        b.transform.check_scene(s.ds, warn=lambda m: warnings.warn(m, GeohsiWarning, stacklevel=2))
        k = _trained_indices(s, b, trained)
        idx, truth = _scored(s, k, split, data, b)
        if len(idx):
            channels = b.transform.apply(s.ds)
            pred = b.head.predict_pixels(model, channels, idx, batch_size=batch_size, device=dev, precision=precision)
            per_scene.append((s, truth, b.class_ids[pred], k is not None))
    if not per_scene:
        raise DataError(_nothing_to_score(data.scenes, trained, split, b))
    _note_unscored(data.scenes, [s for s, _, _, _ in per_scene])
    report = report_for(
        np.concatenate([t for _, t, _, _ in per_scene]), np.concatenate([p for _, _, p, _ in per_scene]), b.classes
    )
    if len(data.scenes) > 1:
        report["scenes"] = _report_rows(per_scene, b.classes)
    if out is not None:
        with staged({"out": out}, overwrite) as where:  # a URL: written locally, uploaded when complete
            _write_report(report, Path(where["out"]), overwrite)
    return report


def _write_report(report: dict[str, Any], out: Path, overwrite: bool) -> None:
    from geohsi.files import atomic_output, check_output
    from geohsi.metrics import write_metrics
    from geohsi.plot import figure_png, plot_confusion

    png = Path(metrics_paths(out)[2])
    check_output(png, overwrite, directory=False)
    write_metrics(report, out, overwrite=overwrite)
    with atomic_output(png, overwrite=overwrite) as tmp:
        tmp.write_bytes(figure_png(plot_confusion(report)))
