"""Classification metrics for land-cover maps: OA, AA, Cohen's κ, per-class scores, confusion matrix.

Pure numpy, computed from one confusion matrix whose **rows are the true classes and columns the
predicted classes** (scikit-learn's convention). Conventions where a ratio is 0/0 (scikit-learn's
``zero_division=0``): precision of a class never predicted, recall of a class absent from the truth,
F1 and IoU of a class neither present nor predicted are 0. Average accuracy (AA) is the mean
recall over the classes **present in the truth**, so classes without test pixels do not drag it
down. κ is 1 when truth and prediction are one and the same single class (scikit-learn returns
NaN there, which JSON cannot hold).

:func:`classification_report` gathers everything into the JSON document ``geohsi evaluate``
writes; :func:`write_metrics` writes it with a CSV table next to it.

.. versionadded:: 0.1
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import DataError, UsageError
from geohsi.files import atomic_output, check_output

#: Per-class score names, in the order of the CSV columns.
PER_CLASS_FIELDS: tuple[str, ...] = ("precision", "recall", "f1", "iou", "support")

_METRICS_FORMAT_VERSION = 1


def _as_labels(y: Any, name: str) -> np.ndarray:
    a = np.asarray(y).reshape(-1)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise DataError(f"{name} holds non-integer class ids; pass integer class ids")
        a = a.astype(np.int64)
    elif a.dtype.kind not in "iub":
        raise DataError(f"{name} has dtype {a.dtype}; pass integer class ids")
    return a.astype(np.int64, copy=False)


def _resolve_labels(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int] | int | None) -> np.ndarray:
    if labels is None:
        return np.union1d(y_true, y_pred)
    if isinstance(labels, (int, np.integer)):
        if labels < 1:
            raise UsageError(f"num_classes={labels} must be >= 1")
        return np.arange(int(labels), dtype=np.int64)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if lab.size == 0 or np.unique(lab).size != lab.size:
        raise UsageError(f"labels {lab.tolist()} must be a non-empty list of distinct class ids")
    return lab


def confusion_matrix(y_true: Any, y_pred: Any, labels: Sequence[int] | int | None = None) -> np.ndarray:
    """Count (truth, prediction) pairs.

    Args:
        y_true: true class ids, any shape (flattened), ``[N]``.
        y_pred: predicted class ids, same number of elements.
        labels: the class ids indexing the matrix, in that order; an int ``K`` means
            ``0..K-1``; ``None`` means the sorted union of the ids in ``y_true`` and ``y_pred``.

    Returns:
        ``[K, K]`` int64 matrix ``C`` with ``C[i, j]`` = number of pixels of true class
        ``labels[i]`` predicted as ``labels[j]`` (rows = truth).

    Raises:
        DataError: the inputs differ in length, are empty, or hold ids outside ``labels``.
        UsageError: ``labels`` is empty or repeats an id.

    .. versionadded:: 0.1
    """
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.size != p.size:
        raise DataError(f"y_true has {t.size} values but y_pred has {p.size}; pass one prediction per pixel")
    if t.size == 0:
        raise DataError("no pixels to score (empty y_true); check the split's test pixels or the labels")
    lab = _resolve_labels(t, p, labels)
    k = lab.size
    order = np.argsort(lab, kind="stable")
    sorted_lab = lab[order]
    cells = []
    for name, a in (("y_true", t), ("y_pred", p)):
        pos = np.clip(np.searchsorted(sorted_lab, a), 0, k - 1)
        bad = sorted_lab[pos] != a
        if bad.any():
            extra = np.unique(a[bad])[:10].tolist()
            raise DataError(
                f"{name} holds class ids {extra} outside the labels {lab.tolist()}; score against the model's class list"
            )
        cells.append(order[pos])
    return np.bincount(cells[0] * k + cells[1], minlength=k * k).reshape(k, k).astype(np.int64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _oa(cm: np.ndarray) -> float:
    return float(np.trace(cm) / cm.sum())


def _per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1)
    predicted = cm.sum(0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    iou = _ratio(tp, support + predicted - tp)
    return {"precision": precision, "recall": recall, "f1": f1, "iou": iou, "support": support.astype(np.int64)}


def _aa(cm: np.ndarray) -> float:
    support = cm.sum(1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def _kappa(cm: np.ndarray) -> float:
    """Cohen's κ in exact integer arithmetic: ``(n·trace − Σ rowᵢ·colᵢ) / (n² − Σ rowᵢ·colᵢ)``.

    Chance agreement is 1 only when every pixel is one class and predicted as it: κ is 0/0 there
    and reported as 1 (perfect agreement). A float tolerance around 1 would also call a model that
    always predicts a class of 99.999 % of the pixels perfect.
    """
    n = int(cm.sum())
    trace = int(np.trace(cm))
    chance = sum(int(r) * int(c) for r, c in zip(cm.sum(1), cm.sum(0), strict=True))
    if chance == n * n:
        return 1.0
    return float((n * trace - chance) / (n * n - chance))


def overall_accuracy(y_true: Any, y_pred: Any) -> float:
    """Overall accuracy (OA): share of pixels predicted correctly.

    Args:
        y_true: true class ids ``[N]``.
        y_pred: predicted class ids ``[N]``.

    Returns:
        OA in [0, 1].

    Raises:
        DataError: see :func:`confusion_matrix`.

    .. versionadded:: 0.1
    """
    return _oa(confusion_matrix(y_true, y_pred))


def average_accuracy(y_true: Any, y_pred: Any, labels: Sequence[int] | int | None = None) -> float:
    """Average accuracy (AA): mean per-class recall over the classes present in ``y_true``.

    Args:
        y_true: true class ids ``[N]``.
        y_pred: predicted class ids ``[N]``.
        labels: class ids (see :func:`confusion_matrix`); classes absent from ``y_true`` never count.

    Returns:
        AA in [0, 1].

    .. versionadded:: 0.1
    """
    return _aa(confusion_matrix(y_true, y_pred, labels))


def kappa(y_true: Any, y_pred: Any, labels: Sequence[int] | int | None = None) -> float:
    """Cohen's κ: agreement corrected for the agreement expected by chance.

    ``κ = (p_o - p_e) / (1 - p_e)`` with ``p_o`` = OA and ``p_e = Σ_k (n_k,true · n_k,pred) / N²``.

    Args:
        y_true: true class ids ``[N]``.
        y_pred: predicted class ids ``[N]``.
        labels: class ids (see :func:`confusion_matrix`).

    Returns:
        κ in [-1, 1] (1.0 in the degenerate single-class perfect case).

    .. versionadded:: 0.1
    """
    return _kappa(confusion_matrix(y_true, y_pred, labels))


def per_class(y_true: Any, y_pred: Any, labels: Sequence[int] | int | None = None) -> dict[str, np.ndarray]:
    """Precision, recall, F1, IoU (Jaccard) and support of every class.

    Args:
        y_true: true class ids ``[N]``.
        y_pred: predicted class ids ``[N]``.
        labels: class ids (see :func:`confusion_matrix`); the arrays follow their order.

    Returns:
        ``{"precision", "recall", "f1", "iou": float64 [K], "support": int64 [K]}``; 0/0 ratios are 0.

    .. versionadded:: 0.1
    """
    return _per_class(confusion_matrix(y_true, y_pred, labels))


def classification_report(
    y_true: Any, y_pred: Any, class_ids: Sequence[int], class_names: Sequence[str] | Mapping[int, str] | None = None
) -> dict[str, Any]:
    """All metrics of one evaluation, as a JSON-able dict.

    Args:
        y_true: true class ids of the test pixels ``[N]``.
        y_pred: predicted class ids ``[N]``.
        class_ids: the model's class ids (matrix order); every id in ``y_true``/``y_pred`` must be one.
        class_names: names aligned with ``class_ids``, or ``{class_id: name}``; default ``str(id)``.
            Names must be distinct (they key ``per_class``).

    Returns:
        ``{"overall_accuracy", "average_accuracy", "kappa": float, "n_test": int,
        "class_ids": [int], "class_names": [str], "per_class": {name: {"precision", "recall",
        "f1", "iou", "support"}}, "confusion_matrix": [[int]] (rows = truth)}``.

    Raises:
        DataError: empty input or class ids outside ``class_ids``.
        UsageError: names do not match the ids or repeat.

    .. versionadded:: 0.1
    """
    ids = [int(c) for c in class_ids]
    if class_names is None:
        names = [str(c) for c in ids]
    elif isinstance(class_names, Mapping):
        names = [str(class_names.get(c, c)) for c in ids]
    else:
        names = [str(n) for n in class_names]
        if len(names) != len(ids):
            raise UsageError(f"{len(names)} class names for {len(ids)} class ids; pass one name per class id")
    if len(set(names)) != len(names):
        raise UsageError(f"class names {names} repeat; give every class a distinct name")
    cm = confusion_matrix(y_true, y_pred, ids)
    pc = _per_class(cm)
    return {
        "format_version": _METRICS_FORMAT_VERSION,
        "overall_accuracy": _oa(cm),
        "average_accuracy": _aa(cm),
        "kappa": _kappa(cm),
        "n_test": int(cm.sum()),
        "class_ids": ids,
        "class_names": names,
        "per_class": {
            name: {f: (int(pc[f][i]) if f == "support" else float(pc[f][i])) for f in PER_CLASS_FIELDS}
            for i, name in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
    }


def report_for(y_true: Any, y_pred: Any, legend: Any) -> dict[str, Any]:
    """:func:`classification_report` over a legend's classes, in its order.

    Args:
        y_true: true class ids ``[N]``.
        y_pred: predicted class ids ``[N]``.
        legend: a :class:`~geohsi.scene.Legend` (anything with ``ids`` and ``names``).

    Returns:
        The report.

    .. versionadded:: 0.1
    """
    return classification_report(np.asarray(y_true), np.asarray(y_pred), [int(i) for i in legend.ids], legend.names)


def _csv_text(report: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["class_id", "class_name", *PER_CLASS_FIELDS, "value"])
    for cid, name in zip(report["class_ids"], report["class_names"], strict=True):
        row = report["per_class"][name]
        w.writerow([cid, name, *(row[f] for f in PER_CLASS_FIELDS), ""])
    # Summary rows: the metric name in class_name, its value in the last column.
    for key in ("overall_accuracy", "average_accuracy", "kappa", "n_test"):
        w.writerow(["", key, *([""] * len(PER_CLASS_FIELDS)), report[key]])
    return buf.getvalue()


def table_path(path_json: str | os.PathLike) -> str:
    """The CSV :func:`write_metrics` writes beside ``path_json``: its suffix replaced by ``.csv``.

    A JSON path that itself ends in ``.csv`` gets ``.csv`` appended, so the table never replaces it.
    Works on URLs too (``s3://b/run/metrics.json`` -> ``s3://b/run/metrics.csv``).
    """
    text = os.fspath(path_json)
    base, suffix = os.path.splitext(text)
    return text + ".csv" if suffix.lower() == ".csv" else base + ".csv"


def metrics_paths(out: str | os.PathLike, *, figure: bool = True) -> tuple[str, ...]:
    """The files a metrics report at ``out`` is written as: ``(OUT, OUT with .csv)`` and, with ``figure``
    (``geohsi evaluate``'s confusion matrix), ``OUT with .png`` (URLs too).

    Raises:
        UsageError: ``OUT`` ends in ``.csv`` or ``.png``: the JSON would be written over one of the others
            (``baseline --out b.csv`` had written its JSON as b.csv and its table as b.csv.csv).
    """
    from geohsi.storage import display

    base, suffix = os.path.splitext(str(out))
    if suffix.lower() in (".csv", ".png"):
        raise UsageError(
            f"--out {display(out)} names the JSON report (its .csv{' and .png are' if figure else ' is'} written beside it); "
            f"give a .json path such as {display(base)}.json"
        )
    return (str(out), table_path(out), *([f"{base}.png"] if figure else []))


def write_metrics(report: Mapping[str, Any], path_json: str | os.PathLike, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a :func:`classification_report` as JSON and a CSV table beside it, each atomically.

    The CSV (same name, ``.csv`` suffix) has one row per class (``class_id, class_name, precision,
    recall, f1, iou, support``) then summary rows whose ``class_name`` is ``overall_accuracy``,
    ``average_accuracy``, ``kappa`` or ``n_test`` and whose ``value`` column holds the number.

    Args:
        report: the report dict.
        path_json: destination of the JSON file (e.g. ``metrics.json``).
        overwrite: replace existing files.

    Returns:
        ``(json_path, csv_path)``.

    Raises:
        OutputError: a destination exists without ``overwrite`` (checked for both before writing
            either) or cannot be written.
        UsageError: ``report`` lacks a key of :func:`classification_report`.

    .. versionadded:: 0.1
    """
    need = (
        "overall_accuracy",
        "average_accuracy",
        "kappa",
        "n_test",
        "class_ids",
        "class_names",
        "per_class",
        "confusion_matrix",
    )
    missing = [k for k in need if k not in report]
    if missing:
        raise UsageError(f"metrics report lacks {', '.join(missing)}; build it with classification_report")
    pj = Path(path_json)
    pc = Path(table_path(pj))
    # Check both before writing either, so a refusal leaves nothing half-written.
    check_output(pj, overwrite, directory=False)
    check_output(pc, overwrite, directory=False)
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    table = _csv_text(report)
    with atomic_output(pj, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    with atomic_output(pc, overwrite=overwrite) as tmp:
        tmp.write_text(table, encoding="utf-8")
    return pj, pc


__all__ = [
    "PER_CLASS_FIELDS",
    "average_accuracy",
    "classification_report",
    "confusion_matrix",
    "kappa",
    "metrics_paths",
    "overall_accuracy",
    "per_class",
    "report_for",
    "table_path",
    "write_metrics",
]
