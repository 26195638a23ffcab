"""The assessment report: a JSON-able dict, and its files (JSON, CSV of the error matrix, Markdown, PNG).

.. versionadded:: 0.3
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.assessment.estimators import AccuracyEstimate
from geohsi.scene import Legend

#: what a report file's siblings are called: ``report.json`` → ``report.csv``, ``report.md``, ``report.png``.
SIBLINGS = (".csv", ".md", ".png")


def _num(x: Any, digits: int = 10) -> float | None:
    """A float for JSON (``None`` for NaN), rounded to shed float noise."""
    v = float(x)
    return None if not math.isfinite(v) else round(v, digits)


def _interval(est: AccuracyEstimate, value: float, se: float, scale: float = 1.0) -> dict[str, Any]:
    lo, hi = est.interval(value * scale, se * scale)
    return {"estimate": _num(value * scale), "se": _num(se * scale), "ci95": [_num(lo), _num(hi)]}


def _class_rows(est: AccuracyEstimate, legend: Legend, pixels: np.ndarray, area_ha: np.ndarray | None) -> list[dict[str, Any]]:
    total_px = float(pixels.sum())
    total_ha = None if area_ha is None else float(np.nansum(area_ha))
    rows = []
    for k, c in enumerate(legend):
        rows.append(
            {
                "id": int(c.id),
                "name": c.name,
                "n_map": int(est.counts[k].sum()),
                "n_reference": int(est.counts[:, k].sum()),
                "mapped_pixels": int(pixels[k]),
                "mapped_area_ha": None if area_ha is None else _num(area_ha[k], 6),
                "mapped_share": _num(pixels[k] / total_px) if total_px else None,
                "users_accuracy": _interval(est, est.users[k], est.users_se[k]),
                "producers_accuracy": _interval(est, est.producers[k], est.producers_se[k]),
                "area_proportion": _interval(est, est.area[k], est.area_se[k]),
                "area_pixels": _interval(est, est.area[k], est.area_se[k], total_px),
                "area_ha": None if total_ha is None else _interval(est, est.area[k], est.area_se[k], total_ha),
            }
        )
    return rows


def build_report(
    est: AccuracyEstimate,
    legend: Legend,
    *,
    pixels: np.ndarray,
    area_ha: np.ndarray | None,
    design: dict[str, Any],
    inputs: dict[str, Any],
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The report of one assessment.

    Args:
        est: the estimates.
        legend: the classes, in the estimates' order.
        pixels: ``[K]`` mapped pixels of each class (the population the areas refer to).
        area_ha: ``[K]`` their area in hectares (``None`` for pixel grids).
        design: ``{"kind", "estimator", "probability_sample", "strata", …}``.
        inputs: the maps, the reference and the fields used.
        warnings: notes beyond the estimator's own.

    Returns:
        A JSON-able dict (NaN written as ``null``).
    """
    from geohsi.version import __version__

    total_ha = None if area_ha is None else _num(np.nansum(area_ha), 6)
    return {
        "geohsi_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **design,
        "confidence": 0.95 if abs(est.z - 1.96) < 1e-9 else None,
        "z": est.z,
        **inputs,
        "n_points": int(est.counts.sum()),
        "total_mapped_pixels": int(pixels.sum()),
        "total_mapped_area_ha": total_ha,
        "overall_accuracy": _interval(est, est.overall, est.overall_se),
        "classes": _class_rows(est, legend, pixels, area_ha),
        "error_matrix": {
            "rows": "map class",
            "columns": "reference class",
            "classes": legend.names,
            "counts": est.counts.astype(int).tolist(),
            "area_proportions": [[_num(v) for v in row] for row in est.proportions],
        },
        "warnings": [*est.warnings, *warnings],
    }


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def plus_minus(d: dict[str, Any] | None, digits: int = 3, scale: float = 1.0) -> str:
    """``estimate ± half-width`` of an interval dict."""
    if d is None or d["estimate"] is None:
        return "–"
    est = d["estimate"] * scale
    if d["ci95"][0] is None:
        return _fmt(est, digits)
    return f"{_fmt(est, digits)} ± {_fmt((d['ci95'][1] - d['ci95'][0]) / 2 * scale, digits)}"


def _matrix_md(report: dict[str, Any], key: str, digits: int) -> list[str]:
    m = report["error_matrix"]
    names = m["classes"]
    rows = np.asarray([[np.nan if v is None else v for v in row] for row in m[key]], float)
    lines = ["| map \\ reference | " + " | ".join(names) + " | total |", "|---" * (len(names) + 2) + "|"]
    for name, row in zip(names, rows, strict=True):
        lines.append(f"| {name} | " + " | ".join(_fmt(v, digits) for v in row) + f" | {_fmt(np.nansum(row), digits)} |")
    lines.append(
        "| total | " + " | ".join(_fmt(v, digits) for v in np.nansum(rows, axis=0)) + f" | {_fmt(np.nansum(rows), digits)} |"
    )
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the headline, a table per class, both error matrices, the warnings."""
    ha = report["total_mapped_area_ha"] is not None
    unit = "ha" if ha else "pixels"
    lines = [
        "# Accuracy assessment and area estimates",
        "",
        f"- design: {report['design']}",
        f"- estimator: {report['estimator']}",
        f"- sample: {report['n_points']:,} points; mapped area {_fmt(report['total_mapped_area_ha'], 1) if ha else report['total_mapped_pixels']} {unit}",
        f"- overall accuracy: {plus_minus(report['overall_accuracy'])} (± = half-width of the 95 % confidence interval)",
    ]
    if report.get("note"):
        lines += ["", f"> **{report['note']}**"]
    lines += [
        "",
        f"| class | n (map) | mapped area ({unit}) | error-adjusted area ({unit}) ± 95 % CI | user's accuracy | producer's accuracy |",
    ]
    lines += ["|---|---:|---:|---:|---:|---:|"]
    for c in report["classes"]:
        area = c["area_ha"] if ha else c["area_pixels"]
        mapped = c["mapped_area_ha"] if ha else c["mapped_pixels"]
        lines.append(
            f"| {c['name']} | {c['n_map']} | {_fmt(mapped, 1)} | {plus_minus(area, 1)} | "
            f"{plus_minus(c['users_accuracy'])} | {plus_minus(c['producers_accuracy'])} |"
        )
    lines += ["", "## Error matrix: estimated area proportions", "", *_matrix_md(report, "area_proportions", 4)]
    lines += ["", "## Error matrix: sample counts", "", *_matrix_md(report, "counts", 0)]
    if report["warnings"]:
        lines += ["", "## Warnings", "", *(f"- {w}" for w in report["warnings"])]
    return "\n".join(lines) + "\n"


def csv_text(report: dict[str, Any]) -> str:
    """The error matrix as CSV: one block of sample counts and one of area proportions (column ``table``)."""
    import csv
    import io

    m = report["error_matrix"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "map_class", *m["classes"], "total"])
    for table, key in (("count", "counts"), ("area_proportion", "area_proportions")):
        for name, row in zip(m["classes"], m[key], strict=True):
            vals = [0.0 if v is None else v for v in row]
            w.writerow([table, name, *vals, round(sum(vals), 10)])
    return buf.getvalue()


def figure(report: dict[str, Any]):
    """Error-adjusted area of each class relative to its mapped (pixel-count) area, with 95 % intervals.

    One row per class: the dot is the error-adjusted area in percent of the mapped area (100 % =
    pixel counting was right), the bar its 95 % interval; the absolute areas are written beside it.
    """
    from matplotlib.figure import Figure

    ha = report["total_mapped_area_ha"] is not None
    unit = "ha" if ha else "px"
    classes = report["classes"]
    k = len(classes)
    fig = Figure(figsize=(8.0, 0.9 + 0.32 * k))
    left = min(0.4, 0.02 + 0.0115 * max(len(c["name"]) for c in classes))
    ax = fig.add_axes((left, 0.6 / (0.9 + 0.32 * k), 0.66 - left, 0.32 * k / (0.9 + 0.32 * k)))
    y = np.arange(k)[::-1]
    dots = []  # (y, % of mapped, −, +): one errorbar call draws them all (one artist per class costs ~10 ms)
    for yy, c in zip(y, classes, strict=True):
        mapped = (c["mapped_area_ha"] if ha else c["mapped_pixels"]) or 0.0
        a = c["area_ha"] if ha else c["area_pixels"]
        est = None if a is None else a["estimate"]
        if mapped > 0 and est is not None:
            lo, hi = (est, est) if a["ci95"][0] is None else a["ci95"]
            dots.append((yy, 100 * est / mapped, 100 * (est - lo) / mapped, 100 * (hi - est) / mapped))
        ax.annotate(f"{plus_minus(a, 0)} {unit} (mapped {mapped:,.0f})", (1.01, yy), xycoords=("axes fraction", "data"),
                    va="center", fontsize=7, annotation_clip=False)  # fmt: skip
    if dots:
        yy, x, minus, plus = np.asarray(dots, float).T
        ax.errorbar(x, yy, xerr=[minus, plus], fmt="o", color="tab:red", ms=4, capsize=3)
    ax.axvline(100, color="0.5", lw=0.8, ls="--")
    ax.set_yticks(y, [c["name"] for c in classes], fontsize=8)
    ax.set_ylim(-0.6, k - 0.4)
    ax.set_xlabel("error-adjusted area, % of the mapped area (dot) with its 95 % confidence interval", fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"overall accuracy {plus_minus(report['overall_accuracy'])} (95 % CI)", fontsize=8, loc="left")
    return fig


def report_paths(out: str | os.PathLike) -> list[Path]:
    """``report.json`` and its siblings."""
    p = Path(out)
    return [p, *(p.with_suffix(s) for s in SIBLINGS)]


def write_report(report: dict[str, Any], out: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Write the report as JSON, CSV (error matrix), Markdown and PNG, each atomically.

    Raises:
        OutputError: a file exists without ``overwrite``.
    """
    from geohsi.files import write_bytes_atomic
    from geohsi.plot import figure_png

    paths = report_paths(out)
    contents = [
        (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode(),
        csv_text(report).encode(),
        markdown(report).encode(),
        figure_png(figure(report), dpi=100),
    ]
    for p, data in zip(paths, contents, strict=True):
        write_bytes_atomic(p, data, overwrite=overwrite)
    return paths


__all__ = ["SIBLINGS", "build_report", "csv_text", "figure", "markdown", "plus_minus", "report_paths", "write_report"]
