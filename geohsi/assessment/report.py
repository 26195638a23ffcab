"""The assessment report: a JSON-able dict, and its files (JSON, CSV of the error matrix, Markdown, PNG).

.. versionadded:: 0.3
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.assessment.estimators import AccuracyEstimate
from geohsi.errors import UsageError
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


def _class_rows(
    est: AccuracyEstimate, legend: Legend, pixels: np.ndarray, area_ha: np.ndarray | None, sampled: bool
) -> list[dict[str, Any]]:
    """One row per class; a census (not ``sampled``) has no area estimates: its labelled pixels say nothing of the map's."""
    total_px = float(pixels.sum())
    total_ha = None if area_ha is None else float(np.nansum(area_ha))
    rows = []
    for k, c in enumerate(legend):
        area = _interval(est, est.area[k], est.area_se[k]) if sampled else None
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
                "area_proportion": area,
                "area_pixels": None if area is None else _interval(est, est.area[k], est.area_se[k], total_px),
                "area_ha": None if area is None or total_ha is None else _interval(est, est.area[k], est.area_se[k], total_ha),
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
        "classes": _class_rows(est, legend, pixels, area_ha, design.get("probability_sample", True)),
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


def is_census(report: dict[str, Any]) -> bool:
    """Whether a report is a census of labelled pixels (``--reference-scene``), not a probability sample."""
    return report.get("probability_sample") is False


def _md_cell(text: Any) -> str:
    """``text`` as one Markdown table cell: a ``|`` in a class name would start a new column."""
    return str(text).replace("|", "\\|")


def _matrix_md(report: dict[str, Any], key: str, digits: int) -> list[str]:
    m = report["error_matrix"]
    names = m["classes"]
    rows = np.asarray([[np.nan if v is None else v for v in row] for row in m[key]], float)
    lines = ["| map \\ reference | " + " | ".join(map(_md_cell, names)) + " | total |", "|---" * (len(names) + 2) + "|"]
    for name, row in zip(names, rows, strict=True):
        lines.append(f"| {_md_cell(name)} | " + " | ".join(_fmt(v, digits) for v in row) + f" | {_fmt(np.nansum(row), digits)} |")
    lines.append(
        "| total | " + " | ".join(_fmt(v, digits) for v in np.nansum(rows, axis=0)) + f" | {_fmt(np.nansum(rows), digits)} |"
    )
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the headline, a table per class, both error matrices, the warnings."""
    ha = report["total_mapped_area_ha"] is not None
    unit = "ha" if ha else "pixels"
    census = is_census(report)
    lines = [
        "# Agreement with the labelled pixels (a census, not a sample)" if census else "# Accuracy assessment and area estimates",
        "",
        f"- design: {report['design']}",
        f"- estimator: {report['estimator']}",
        f"- sample: {report['n_points']:,} points; mapped area {_fmt(report['total_mapped_area_ha'], 1) if ha else report['total_mapped_pixels']} {unit}",
        f"- overall accuracy: {plus_minus(report['overall_accuracy'])}"
        + ("" if census else " (± = half-width of the 95 % confidence interval)"),
    ]
    if report.get("note"):
        lines += ["", f"> **{report['note']}**"]
    fourth = "n (reference)" if census else f"error-adjusted area ({unit}) ± 95 % CI"
    lines += ["", f"| class | n (map) | mapped area ({unit}) | {fourth} | user's accuracy | producer's accuracy |"]
    lines += ["|---|---:|---:|---:|---:|---:|"]
    for c in report["classes"]:
        area = c["area_ha"] if ha else c["area_pixels"]
        mapped = c["mapped_area_ha"] if ha else c["mapped_pixels"]
        lines.append(
            f"| {_md_cell(c['name'])} | {c['n_map']} | {_fmt(mapped, 1)} | {c['n_reference'] if census else plus_minus(area, 1)} | "
            f"{plus_minus(c['users_accuracy'])} | {plus_minus(c['producers_accuracy'])} |"
        )
    shares = "shares of the labelled pixels" if census else "estimated area proportions"
    lines += ["", f"## Error matrix: {shares}", "", *_matrix_md(report, "area_proportions", 4)]
    lines += ["", "## Error matrix: sample counts", "", *_matrix_md(report, "counts", 0)]
    if report["warnings"]:
        lines += ["", "## Warnings", "", *(f"- {w}" for w in report["warnings"])]
    return "\n".join(lines) + "\n"


def csv_text(report: dict[str, Any]) -> str:
    """The error matrix as CSV: one block of sample counts and one of area proportions (column ``table``;
    ``labelled_share`` for a census, whose proportions are of its labelled pixels, not of the map's area)."""
    import csv
    import io

    m = report["error_matrix"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "map_class", *m["classes"], "total"])
    shares = "labelled_share" if is_census(report) else "area_proportion"
    for table, key in (("count", "counts"), (shares, "area_proportions")):
        for name, row in zip(m["classes"], m[key], strict=True):
            vals = [0.0 if v is None else v for v in row]
            w.writerow([table, name, *vals, round(sum(vals), 10)])
    return buf.getvalue()


# --------------------------------------------------------------------------- the figure
#
# Drawn with Pillow rather than matplotlib: the chart is a dozen labels, a few lines and one dot per
# class, and matplotlib's text layout made it ≈ 60 ms of an assessment that otherwise takes ≈ 15 ms
# (and a cold ``import matplotlib`` ≈ 0.5 s more per ``geohsi assess``). Lines and dots are drawn at
# twice the size and halved, which smooths their edges and the text's.

#: drawing scale: the canvas is drawn this many times larger, then reduced.
_SCALE = 2
#: the dots and bars (matplotlib's ``tab:red``), the axes, the 100 % line and the text.
_RED, _AXES, _GUIDE, _INK = (214, 39, 40), (0, 0, 0), (128, 128, 128), (0, 0, 0)
#: pixels (at the final size): the figure's width, one class row, the margins, the font sizes.
_WIDTH, _ROW, _PAD, _TICK, _FONT, _SMALL = 800, 30, 10, 4, 12, 11


@functools.cache
def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size * _SCALE)


def nice_ticks(lo: float, hi: float, target: int = 7) -> list[float]:
    """Round tick values in ``[lo, hi]``: steps of 1, 2, 2.5 or 5 × 10ⁿ, about ``target`` of them.

    Example:
        >>> nice_ticks(88.3, 113.1)
        [90.0, 95.0, 100.0, 105.0, 110.0]
    """
    raw = (hi - lo) / max(target - 1, 1)
    mag = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw) if raw > 0 else 1.0
    first = math.ceil(lo / step - 1e-9)
    return [round((first + i) * step, 10) for i in range(int(math.floor(hi / step + 1e-9)) - first + 1)]


def _rows(report: dict[str, Any]) -> list[tuple[str, str, tuple[float, float, float] | None]]:
    """Per class: ``(name, the areas written beside it, (low, estimate, high) in % of the mapped area)``.

    A census has no areas: its dot is the class's map pixels in % of its labelled pixels, on the labelled pixels.
    """
    if is_census(report):
        return [
            (c["name"], f"{c['n_reference']:,} labelled, {c['n_map']:,} mapped as it",
             (100 * c["n_map"] / c["n_reference"],) * 3 if c["n_reference"] else None)
            for c in report["classes"]
        ]  # fmt: skip
    ha = report["total_mapped_area_ha"] is not None
    unit = "ha" if ha else "px"
    out = []
    for c in report["classes"]:
        mapped = (c["mapped_area_ha"] if ha else c["mapped_pixels"]) or 0.0
        a = c["area_ha"] if ha else c["area_pixels"]
        dot = None
        if mapped > 0 and a is not None and a["estimate"] is not None:
            lo, hi = (a["estimate"],) * 2 if a["ci95"][0] is None else a["ci95"]
            dot = (100 * lo / mapped, 100 * a["estimate"] / mapped, 100 * hi / mapped)
        out.append((c["name"], f"{plus_minus(a, 0)} {unit} (mapped {mapped:,.0f})", dot))
    return out


def _x_range(dots: list[tuple[float, float, float]]) -> tuple[float, float]:
    """The x range: every interval and the 100 % line, with a margin."""
    lo = min([100.0, *(d[0] for d in dots)])
    hi = max([100.0, *(d[2] for d in dots)])
    pad = max((hi - lo) * 0.05, 1.0)
    return lo - pad, hi + pad


def _fit(text: str, font: Any, width: float) -> str:
    """``text``, cut short with an ellipsis where it is wider than ``width``."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _titles(report: dict[str, Any]) -> tuple[str, str]:
    """The title and the x axis label; a census (every labelled pixel) has no intervals and says so."""
    if is_census(report):
        return (f"overall accuracy {plus_minus(report['overall_accuracy'])} (a census of labelled pixels: no intervals)",
                "pixels mapped as the class, % of those labelled as it (on the labelled pixels only)")  # fmt: skip
    return (f"overall accuracy {plus_minus(report['overall_accuracy'])} (95 % CI)",
            "error-adjusted area, % of the mapped area (dot) with its 95 % confidence interval")  # fmt: skip


def area_chart(report: dict[str, Any]) -> Any:
    """The report's figure as a :class:`PIL.Image.Image` (``write_report`` saves it as ``report.png``).

    One row per class: the dot is the error-adjusted area in percent of the mapped area (100 % =
    pixel counting was right), the bar its 95 % confidence interval; the absolute areas are written
    beside it, the overall accuracy above. Class names wider than a quarter of the figure, and area
    labels wider than three eighths of it, are cut short with an ellipsis.

    Args:
        report: what :func:`geohsi.assess` returns.

    Returns:
        An RGB image, 800 pixels wide.
    """
    from PIL import Image, ImageDraw

    s, font, small = _SCALE, _font(_FONT), _font(_SMALL)
    rows = [(_fit(n, font, _WIDTH // 4 * s), _fit(t, small, _WIDTH * 3 // 8 * s), d) for n, t, d in _rows(report)]
    left = 2 * _PAD * s + max(font.getlength(n) for n, _, _ in rows)
    right = _WIDTH * s - 2 * _PAD * s - max(small.getlength(t) for _, t, _ in rows)
    top, plot_h = 30 * s, _ROW * s * len(rows)
    img = Image.new("RGB", (_WIDTH * s, top + plot_h + 46 * s), "white")
    draw = ImageDraw.Draw(img)
    lo, hi = _x_range([d for _, _, d in rows if d is not None])

    def x_of(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    for v in nice_ticks(lo, hi):
        draw.line([(x_of(v), top + plot_h), (x_of(v), top + plot_h + _TICK * s)], fill=_AXES, width=s)
        draw.text((x_of(v), top + plot_h + (_TICK + 2) * s), f"{v:g}", fill=_INK, font=small, anchor="ma")
    for y in range(top, top + plot_h, 8 * s):  # the dashed 100 % line
        draw.line([(x_of(100.0), y), (x_of(100.0), min(y + 4 * s, top + plot_h))], fill=_GUIDE, width=s)
    for k, (name, text, dot) in enumerate(rows):
        y = top + (k + 0.5) * _ROW * s
        draw.text((left - _PAD * s, y), name, fill=_INK, font=font, anchor="rm")
        draw.text((right + _PAD * s, y), text, fill=_INK, font=small, anchor="lm")
        if dot is not None:
            a, e, b = (x_of(v) for v in dot)
            draw.line([(a, y), (b, y)], fill=_RED, width=2 * s)
            for end in (a, b):
                draw.line([(end, y - 4 * s), (end, y + 4 * s)], fill=_RED, width=2 * s)
            draw.ellipse([e - 4 * s, y - 4 * s, e + 4 * s, y + 4 * s], fill=_RED)
    draw.rectangle([left, top, right, top + plot_h], outline=_AXES, width=s)
    title, xlabel = _titles(report)
    draw.text((left, top - 8 * s), _fit(title, font, _WIDTH * s - left - _PAD * s), fill=_INK, font=font, anchor="ld")
    draw.text(((left + right) / 2, top + plot_h + 26 * s), xlabel, fill=_INK, font=small, anchor="ma")
    return img.reduce(s)


def chart_png(report: dict[str, Any]) -> bytes:
    """:func:`area_chart` as PNG bytes."""
    import io

    buf = io.BytesIO()
    area_chart(report).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def report_paths(out: str | os.PathLike) -> list[Path]:
    """``report.json`` and its siblings.

    Raises:
        UsageError: ``out`` ends in a sibling's suffix (``report.csv``): the JSON would be written over it.
    """
    p = Path(out)
    if p.suffix.lower() in SIBLINGS:
        raise UsageError(
            f"--out {p} names the JSON report (its {', '.join(SIBLINGS)} are written beside it); "
            f"give a .json path such as {p.with_suffix('.json')}"
        )
    return [p, *(p.with_suffix(s) for s in SIBLINGS)]


def write_report(report: dict[str, Any], out: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Write the report as JSON, CSV (error matrix), Markdown and PNG, each atomically.

    Raises:
        OutputError: a file exists without ``overwrite``.
    """
    from geohsi.files import write_bytes_atomic

    paths = report_paths(out)
    contents = [
        (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode(),
        csv_text(report).encode(),
        markdown(report).encode(),
        chart_png(report),
    ]
    for p, data in zip(paths, contents, strict=True):
        write_bytes_atomic(p, data, overwrite=overwrite)
    return paths


__all__ = [
    "SIBLINGS",
    "area_chart",
    "build_report",
    "chart_png",
    "csv_text",
    "is_census",
    "markdown",
    "nice_ticks",
    "plus_minus",
    "report_paths",
    "write_report",
]
