"""Classical baselines (scikit-learn SVM-RBF / random forest) on the same pixels and split as ``train``.

Features are the centre pixel's spectrum: either the raw good bands (physical values,
standardised on the training pixels) or the 12 channels of the same spectral transform the
transformer uses. The split is drawn by :func:`geohsi.splits.make_split` with the same
spec, seed and window, so the test pixels are exactly those of a ``geohsi train`` run with the same
options, and the metrics JSON has the same form.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.console import say
from geohsi.errors import UsageError

METHODS = ("svm", "rf")


def _features(data: Any, features: str, seed: int) -> list[Any]:
    """Per scene, the ``[F, H, W]`` feature cube the classifier reads at the split's pixels (lazy)."""
    from geohsi.spectral.normalize import physical_cube
    from geohsi.spectral.pca import good_band_indices

    if features == "raw":
        from geohsi.spectral.transform import _check_poolable

        _check_poolable([s.ds for s in data.scenes], "pca")  # raw spectra compare only within one band table
        return [physical_cube(s.ds, dtype="float32").isel(band=good_band_indices(s.ds)) for s in data.scenes]
    from geohsi.spectral.transform import SpectralTransform

    t = SpectralTransform.fit_many([s.ds for s in data.scenes], "pca", 12, "standard", seed=seed)
    return [t.apply(s.ds) for s in data.scenes]


def _classifier(method: str, y_train: np.ndarray, seed: int, svm_c: float | None) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if method == "rf":
        return RandomForestClassifier(n_estimators=500, random_state=seed, n_jobs=-1)
    pipe = make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma="scale", C=svm_c or 100.0))
    min_count = int(np.bincount(y_train)[np.unique(y_train)].min())
    if svm_c is None and min_count >= 2:
        cv = StratifiedKFold(n_splits=min(3, min_count), shuffle=True, random_state=seed)
        pipe = GridSearchCV(pipe, {"svc__C": [1.0, 10.0, 100.0, 1000.0]}, cv=cv, n_jobs=1)
    return pipe


def baseline(
    scene: str | os.PathLike | Sequence[Any],
    *,
    labels: Any = None,
    method: str = "svm",
    split: str = "per-class:10",
    features: str = "raw",
    seed: int = 0,
    window: int = 15,
    val_fraction: float = 0.1,
    svm_c: float | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = say,
) -> dict[str, Any]:
    """Fit a classical classifier on the training pixels and score the test pixels.

    Args:
        scene: a labelled scene, or several (as ``geohsi train`` takes them).
        labels: where the labels come from (a :class:`~geohsi.training.data.LabelSource`; default:
            each store's ``labels``).
        method: ``svm`` (RBF kernel; C chosen by stratified k-fold CV (k = min(3, smallest class count)) over {1, 10, 100, 1000} unless given) or
            ``rf`` (500 trees).
        split: split spec, as for ``geohsi train``.
        features: ``raw`` (good bands; one band table) or ``pca`` (the 12 standardised PCA channels).
        seed: split and model seed.
        window: window size of the matching ``train`` run (it sets the ``blocks`` gap).
        val_fraction: as for ``train`` (validation pixels are added to the training set here).
        svm_c: fixed SVM C.
        out: metrics JSON path (a CSV is written beside it).
        overwrite: replace existing files.
        log: receives one-line notes (labels reprojected, tiles joined into one scene).

    Returns:
        The metrics report, with ``method``, ``features``, ``fit_seconds``.
    """
    from geohsi.files import check_output, check_outside_stores
    from geohsi.metrics import metrics_paths, report_for
    from geohsi.spectral.windows import check_window
    from geohsi.training.data import load_training_data, pixel_values
    from geohsi.training.grid_tiles import join_for_split

    if method not in METHODS:
        raise UsageError(f"unknown baseline method {method!r}; use svm or rf")
    if features not in ("raw", "pca"):
        raise UsageError(f"unknown baseline features {features!r}; use raw or pca")
    check_window(window)  # odd, as train's: the blocks gap must be the one of the matching run
    if not 0 <= val_fraction < 1:
        raise UsageError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    check_outside_stores(metrics_paths(out, figure=False) if out is not None else [])  # a bundle's own metrics.json
    for path in metrics_paths(out, figure=False) if out is not None else ():
        check_output(path, overwrite, directory=False)  # the JSON and its CSV, before the classifier is fitted
    scenes = list(scene) if isinstance(scene, (list, tuple)) else [scene]
    data = join_for_split(load_training_data(scenes, labels, log=log), split, log=log)
    sp = data.split(split, seed=seed, val_fraction=val_fraction, window=window)
    cubes = _features(data, features, seed)
    train_idx = np.concatenate([sp.train, sp.val])
    y_train = np.concatenate([sp.train_labels, sp.val_labels])
    x_train, x_test = pixel_values(cubes, sp.scenes, train_idx), pixel_values(cubes, sp.scenes, sp.test)
    t0 = time.perf_counter()
    clf = _classifier(method, y_train, seed, svm_c).fit(x_train, y_train)
    fit_s = time.perf_counter() - t0
    report = report_for(sp.test_labels, clf.predict(x_test), data.legend)
    report.update(method=method, features=features, split=split, seed=seed, val_fraction=val_fraction, fit_seconds=fit_s)
    if out is not None:
        from geohsi.metrics import write_metrics
        from geohsi.storage import staged

        with staged({"out": out}, overwrite) as where:  # a URL: written locally, uploaded when complete
            write_metrics(report, Path(where["out"]), overwrite=overwrite)
    return report
