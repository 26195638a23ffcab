"""Score a model bundle on a labelled scene: OA, AA, κ, per-class metrics, confusion matrix.

On the scene the bundle was trained on (recognised by its label grid's sha256) only the split's
test pixels are scored; on any other scene, every valid labelled pixel. Patch bundles classify one
window per scored pixel; dense bundles predict the whole scene once (overlapping tiles blended as
in ``geohsi classify``, :func:`geohsi.prediction.predict_dense`) and read the scored pixels.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import DataError, GeohsiWarning


def evaluate(
    bundle: str | os.PathLike,
    scene: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "fp32",
    backbone: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate a bundle on a scene and optionally write ``metrics.json`` + CSV + confusion PNG.

    Args:
        bundle: bundle directory.
        scene: labelled scene store.
        out: JSON path; a ``.csv`` and a ``.png`` are written beside it.
        overwrite: replace existing outputs.
        batch_size: windows per forward (tiles per forward for dense bundles).
        device: ``auto``, ``cpu`` or ``cuda``.
        precision: ``fp32`` or ``bf16``.
        backbone: the backbone file's new location, if it moved since training.

    Returns:
        The metrics report.

    Raises:
        DataError: the scene has no labels or labels of classes the bundle does not know.
        BandMismatchError: the scene's bands/wavelengths do not match the bundle's transform.
        ModelError: a broken bundle.
    """
    from geohsi.bundle import load_bundle
    from geohsi.files import atomic_output, check_output
    from geohsi.metrics import report_for
    from geohsi.prediction import resolve_device
    from geohsi.scene import labels_and_valid, labels_digest, open_scene, scene_legend

    if out is not None:
        check_output(out, overwrite)
    b = load_bundle(bundle)
    ds = open_scene(scene)
    scene_legend(ds)  # raises DataError without labels
    b.transform.check_scene(ds, warn=lambda m: warnings.warn(m, GeohsiWarning, stacklevel=2))
    labels, valid = labels_and_valid(ds)
    if labels_digest(labels) == b.meta.train_config.get("labels_sha256"):
        split = b.split()
        split.verify(labels, source=str(scene))
        idx, truth = split.test, split.test_labels
    else:
        flat = labels.reshape(-1)
        idx = np.flatnonzero((flat > 0) & valid.reshape(-1))
        truth = flat[idx]
        unknown = sorted(set(np.unique(truth).tolist()) - set(b.class_ids.tolist()))
        if unknown:
            raise DataError(
                f"{scene} has labels of classes {unknown} that bundle {bundle} does not know "
                f"(it knows {b.class_ids.tolist()}); evaluate on a scene with the same legend"
            )
    if len(idx) == 0:
        raise DataError(f"{scene} has no valid labelled pixels to evaluate; check its labels and nodata")
    model = b.build_model(backbone=backbone)
    dev = resolve_device(device)
    model.to(dev)
    channels = b.transform.apply(ds)
    pred = b.head.predict_pixels(model, channels, idx, batch_size=batch_size, device=dev, precision=precision)
    report = report_for(truth, b.class_ids[pred], b.classes)
    if out is not None:
        from geohsi.metrics import write_metrics
        from geohsi.plot import figure_png, plot_confusion

        out = Path(out)
        png = out.with_suffix(".png")
        check_output(png, overwrite)
        write_metrics(report, out, overwrite=overwrite)
        with atomic_output(png, overwrite=overwrite) as tmp:
            tmp.write_bytes(figure_png(plot_confusion(report)))
    return report
