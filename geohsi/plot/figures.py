"""Figures of data and runs: class spectra, a confusion matrix, the training history, pretraining loss and reconstructions.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from geohsi.errors import DataError
from geohsi.plot.common import _new_axes, _pyplot, tight
from geohsi.scene import ClassInfo, Legend, default_colors, scene_legend


def class_spectra(
    scene: Any, labels: Any = None, classes: Legend | Sequence[Mapping[str, Any]] | None = None
) -> dict[int, tuple[np.ndarray, np.ndarray, int]]:
    """Mean and standard deviation of the physical spectrum of each class's valid pixels.

    Args:
        scene: a scene.
        labels: class ids ``[H, W]`` on the scene grid (default: the scene's ``labels``).
        classes: restrict to these ``[{id, …}]`` (default: every non-zero id present).

    Returns:
        ``{id: (mean [B], std [B], n_pixels)}``; bad bands are NaN.

    Raises:
        DataError: no labels, or a label grid of another shape.
    """
    from geohsi.scene import valid_mask
    from geohsi.spectral.normalize import physical_cube

    if labels is None:
        if "labels" not in scene:
            raise DataError(f"{scene.encoding.get('source', 'the scene')} has no labels; pass labels=[H, W] class ids")
        labels = scene["labels"]
    lab = np.asarray(getattr(labels, "values", labels))
    if lab.shape != (scene.sizes["y"], scene.sizes["x"]):
        raise DataError(
            f"labels have shape {lab.shape} but the scene is {scene.sizes['y']}×{scene.sizes['x']}; give labels on its grid"
        )
    ok = np.asarray(valid_mask(scene).values, bool) & (lab > 0)
    ids = [c.id for c in Legend.coerce(classes)] if classes is not None else [int(i) for i in np.unique(lab[ok])]
    cube = physical_cube(scene, dtype="float32")
    good = np.asarray(scene["good_band"].values, bool)
    rows, cols = np.nonzero(ok)
    # one vectorised gather of only the labelled pixels (cheap even for lazy scenes of modest size)
    import xarray as xr

    pix = np.asarray(
        cube.isel(y=xr.DataArray(rows, dims="pixel"), x=xr.DataArray(cols, dims="pixel")).transpose("band", "pixel").values
    )
    out = {}
    for i in ids:
        sel = lab[rows, cols] == i
        v = pix[:, sel].astype(float)
        mean = v.mean(axis=1) if sel.any() else np.full(good.size, np.nan)
        std = v.std(axis=1) if sel.any() else np.full(good.size, np.nan)
        out[i] = (np.where(good, mean, np.nan), np.where(good, std, np.nan), int(sel.sum()))
    return out


def plot_spectra(
    scene: Any,
    labels: Any = None,
    *,
    classes: Legend | Sequence[Mapping[str, Any]] | None = None,
    ax: Any = None,
    std: bool = True,
):
    """Mean ± std spectrum per class against wavelength; bad bands are gaps in the lines.

    Args:
        scene: a scene with wavelengths (band numbers are used where wavelengths are unknown).
        labels: class ids ``[H, W]`` (default: the scene's ``labels``).
        classes: ``[{id, name, color}]`` to show (default: the scene's label legend).
        ax: axes to draw on.
        std: shade ± one standard deviation.

    Returns:
        The matplotlib Axes; one line per class (label = class name, colour = class colour).

    Raises:
        DataError: no labels / a label grid of another shape.
    """
    if classes is None and "labels" in scene:
        classes = scene_legend(scene)
    stats = class_spectra(scene, labels, classes)
    legend = (
        Legend.coerce(classes)
        if classes is not None
        else Legend(tuple(ClassInfo(i, f"class_{i}", c) for i, c in zip(stats, default_colors(list(stats)), strict=True)))
    )
    wl = np.asarray(scene["wavelength"].values, dtype=float)
    use_wl = np.isfinite(wl).any()
    x = wl if use_wl else np.asarray(scene["band"].values, dtype=float)
    order = np.argsort(x)
    # break the lines across removed bands (e.g. Indian Pines' water-absorption gaps): a NaN where the
    # spacing jumps to more than 3× its median
    xs = x[order]
    gaps = np.flatnonzero(np.diff(xs) > 3 * np.median(np.diff(xs))) + 1 if xs.size > 2 else np.array([], int)
    scale = scene[next(v for v in ("reflectance", "radiance") if v in scene)].attrs.get("scale_factor")
    units = scene.attrs.get("units", "")
    ax = _new_axes(ax, (7, 4))
    for c in legend:
        mean, sd, n = stats[c.id]
        if n == 0:
            continue
        m, s, xx = (np.insert(a[order].astype(float), gaps, np.nan) for a in (mean, sd, x))
        ax.plot(xx, m, color=c.color, lw=1.2, label=f"{c.name} ({n})")
        if std:
            ax.fill_between(xx, m - s, m + s, color=c.color, alpha=0.15, lw=0)
    ax.set_xlabel("wavelength (nm)" if use_wl else "band")
    ax.set_ylabel(f"{'reflectance' if 'reflectance' in scene else 'radiance'}{f' ({units})' if units and not scale else ''}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False, borderaxespad=0.0)
    ax.tick_params(labelsize=7)
    return ax


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
    ax.set_title(
        f"OA {oa:.3f}, AA {report.get('average_accuracy', 0):.3f}, κ {report.get('kappa', 0):.3f}" if oa is not None else ""
    )
    fig.colorbar(im, ax=ax, fraction=0.046)
    tight(fig)
    return fig


def plot_training(history: Sequence[Mapping[str, Any]]):
    """Loss and validation OA per epoch from a training log.

    Args:
        history: rows with ``epoch``, ``train_loss`` and optionally ``val_oa``.

    Returns:
        The matplotlib Figure.
    """
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
    tight(fig)
    return fig


def plot_pretraining_loss(history: dict[str, Any]):
    """Pretraining loss per step (raw and smoothed) and held-out validation loss.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    train = np.asarray(history["train"], float)
    steps = np.arange(1, train.size + 1)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(steps, train, color="tab:blue", alpha=0.25, lw=0.8, label="train (per step)")
    k = max(1, min(50, train.size // 10))
    if train.size >= k:
        smooth = np.convolve(train, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, color="tab:blue", lw=1.6, label=f"train ({k}-step mean)")
    if history["val"]:
        v = np.asarray(history["val"], float)
        ax.plot(v[:, 0], v[:, 1], "o-", color="tab:orange", ms=3, label="held-out windows")
    ax.set_xlabel("step")
    ax.set_ylabel("masked-tubelet MSE")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    tight(fig)
    return fig


def plot_reconstructions(
    x: np.ndarray,
    masked: np.ndarray,
    recon: np.ndarray,
    names: Sequence[str],
    channels: Sequence[int],
    channel_names: Sequence[str],
    norm_pix: bool,
    flat: np.ndarray | None = None,
):
    """Rows of held-out windows; per channel: input | visible tubelets | reconstruction [| flat].

    Args:
        x: ``[N, C, S, S]`` inputs.
        masked: ``[N, C, S, S]`` inputs with masked tubelets set to NaN (drawn grey).
        recon: ``[N, C, S, S]`` reconstructions (visible tubelets pasted from the input).
        names: row labels.
        channels: channels shown.
        channel_names: their names.
        norm_pix: whether predictions were standardised tubelets (said in the title).
        flat: optional ``[N, C, S, S]`` reconstruction from an all-zero (flat) standardised
            prediction, i.e. each masked tubelet filled with its true mean: what the figure shows
            without any model, so the reader sees what the model adds.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    panels = [(x, "input"), (masked, "visible"), (recon, "recon.")] + ([(flat, "flat pred.")] if flat is not None else [])
    n, nc, k = len(x), len(channels), len(panels)
    fig, axes = plt.subplots(n, k * nc, figsize=(1.25 * k * nc, 1.3 * n + 0.9), squeeze=False)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.6")  # masked tubelets in grey
    for i in range(n):
        for j, c in enumerate(channels):
            lo, hi = np.percentile(x[i, c], [2, 98])
            for kk, (img, title) in enumerate(panels):
                ax = axes[i, k * j + kk]
                ax.imshow(img[i, c], cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1e-6, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(f"{channel_names[c]} {title}", fontsize=7)
                if j == 0 and kk == 0:
                    ax.set_ylabel(names[i], fontsize=7)
    note = (
        (
            " (norm_pix_loss: masked tubelets = predicted pattern × true tubelet std + true mean; "
            "'flat pred.' = true means alone, no model)"
        )
        if norm_pix
        else ""
    )
    fig.suptitle(f"held-out windows{note}", fontsize=8)
    tight(fig)
    return fig
