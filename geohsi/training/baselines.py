"""Classical baselines (scikit-learn SVM-RBF / random forest) on the same pixels and split as ``train``.

Features are the centre pixel's spectrum: either the raw good bands (physical values,
standardised on the training pixels) or the 12 channels of the same spectral transform the
transformer uses. The split is drawn by :func:`geohsi.datasets.splits.make_split` with the same
spec, seed and window, so the test pixels are exactly those of a ``geohsi train`` run with the same
options, and the metrics JSON has the same form.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import UsageError

METHODS = ("svm", "rf")


def baseline(
    scene: str | os.PathLike,
    *,
    method: str = "svm",
    split: str = "per-class:10",
    features: str = "raw",
    seed: int = 0,
    window: int = 15,
    val_fraction: float = 0.1,
    svm_c: float | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Fit a classical classifier on the training pixels and score the test pixels.

    Args:
        scene: labelled scene store.
        method: ``svm`` (RBF kernel; C chosen by stratified k-fold CV (k = min(3, smallest class count)) over {1, 10, 100, 1000} unless given) or
            ``rf`` (500 trees).
        split: split spec, as for ``geohsi train``.
        features: ``raw`` (good bands) or ``pca`` (the 12 standardised PCA channels).
        seed: split and model seed.
        window: window size of the matching ``train`` run (it sets the ``blocks`` gap).
        val_fraction: as for ``train`` (validation pixels are added to the training set here).
        svm_c: fixed SVM C.
        out: metrics JSON path (a CSV is written beside it).
        overwrite: replace existing files.

    Returns:
        The metrics report, with ``method``, ``features``, ``fit_seconds``.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from geohsi.datasets.splits import make_split
    from geohsi.files import check_output
    from geohsi.metrics import report_for
    from geohsi.scene import labels_and_valid, open_scene, scene_legend
    from geohsi.spectral.normalize import physical_cube
    from geohsi.spectral.pca import good_band_indices

    if method not in METHODS:
        raise UsageError(f"unknown baseline method {method!r}; use svm or rf")
    if features not in ("raw", "pca"):
        raise UsageError(f"unknown baseline features {features!r}; use raw or pca")
    if out is not None:
        check_output(out, overwrite)
    ds = open_scene(scene)
    classes = scene_legend(ds)
    labels, valid = labels_and_valid(ds)
    sp = make_split(
        labels,
        split,
        seed=seed,
        val_fraction=val_fraction,
        window=window,
        valid=valid,
        class_names={c.id: c.name for c in classes},
    )
    if features == "raw":
        cube = physical_cube(ds, dtype="float32").isel(band=good_band_indices(ds))
    else:
        from geohsi.spectral.transform import SpectralTransform

        cube = SpectralTransform.fit(ds, "pca", 12, "standard", seed=seed).apply(ds)
    flat = np.asarray(cube.values, dtype=np.float32).reshape(cube.shape[0], -1)
    train_idx = np.concatenate([sp.train, sp.val])
    y_train = np.concatenate([sp.train_labels, sp.val_labels])
    x_train, x_test = flat[:, train_idx].T, flat[:, sp.test].T
    t0 = time.perf_counter()
    if method == "svm":
        pipe = make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma="scale", C=svm_c or 100.0))
        min_count = int(np.bincount(y_train)[np.unique(y_train)].min())
        if svm_c is None and min_count >= 2:
            cv = StratifiedKFold(n_splits=min(3, min_count), shuffle=True, random_state=seed)
            pipe = GridSearchCV(pipe, {"svc__C": [1.0, 10.0, 100.0, 1000.0]}, cv=cv, n_jobs=1)
        clf = pipe.fit(x_train, y_train)
    else:
        clf = RandomForestClassifier(n_estimators=500, random_state=seed, n_jobs=-1).fit(x_train, y_train)
    fit_s = time.perf_counter() - t0
    report = report_for(sp.test_labels, clf.predict(x_test), classes)
    report.update(method=method, features=features, split=split, seed=seed, fit_seconds=fit_s)
    if out is not None:
        from geohsi.metrics import write_metrics

        write_metrics(report, Path(out), overwrite=overwrite)
    return report
