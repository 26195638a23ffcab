"""Quicklook figures (matplotlib, Agg backend): confusion matrix, training curves.

.. versionadded:: 0.1
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(report: Mapping[str, Any], *, normalize: bool = True):
    """Heatmap of a metrics report's confusion matrix (rows = truth), recall-normalised by default.

    Args:
        report: a :func:`geohsi.metrics.classification_report` dict.
        normalize: divide each row by its support.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    cm = np.asarray(report["confusion_matrix"], dtype=float)
    names = list(report.get("class_names") or range(1, len(cm) + 1))
    show = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    n = len(cm)
    fig, ax = plt.subplots(figsize=(1.6 + 0.45 * n, 1.2 + 0.45 * n))
    im = ax.imshow(show, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    oa = report.get("overall_accuracy")
    ax.set_title(f"OA {oa:.3f}, AA {report.get('average_accuracy', 0):.3f}, κ {report.get('kappa', 0):.3f}" if oa is not None else "")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_training(history: Sequence[Mapping[str, Any]]):
    """Loss and validation OA per epoch from a training log."""
    plt = _pyplot()
    ep = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(ep, [r["train_loss"] for r in history], "o-", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if any(r.get("val_oa") is not None for r in history):
        ax2 = ax.twinx()
        ax2.plot(ep, [r.get("val_oa") for r in history], "s-", color="tab:orange", label="val OA")
        ax2.set_ylabel("val OA")
    fig.tight_layout()
    return fig


def figure_png(fig) -> bytes:
    """PNG bytes of a figure (and close it)."""
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
