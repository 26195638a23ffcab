"""The report's figure (geohsi/assessment/report.py; its numbers, Markdown and CSV are tested through test_assess.py):
round ticks, the dots and intervals where the report puts them (read back from the PNG ``geohsi assess`` writes),
labels cut short, and a census drawn without intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geohsi.assessment import assess
from geohsi.assessment.report import nice_ticks


@pytest.mark.parametrize(("lo", "hi"), [(88.3, 113.1), (99.9, 100.1), (0.0, 1.0), (-3.0, 412.0), (97.0, 1250.0), (42.0, 42.5)])
def test_nice_ticks_are_round_evenly_spaced_and_inside_the_range(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert 3 <= len(ticks) <= 12, ticks
    assert lo <= ticks[0] and ticks[-1] <= hi
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5)), steps[0]
    assert all(math.isclose(t / steps[0], round(t / steps[0]), abs_tol=1e-9) for t in ticks)  # multiples of the step


def _red_rows(img: np.ndarray) -> list[tuple[float, float, float]]:
    """Per drawn class, top to bottom: ``(left end, dot centre, right end)`` of the red interval, in pixels."""
    red = (img[..., 0] > 170) & (img[..., 1] < 110) & (img[..., 2] < 110)
    rows = np.flatnonzero(red.any(axis=1))
    bands = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    out = []
    for band in bands:
        cols = np.flatnonzero(red[band].any(axis=0))
        height = red[band].sum(axis=0)
        inner = cols[(cols > cols[0] + 3) & (cols < cols[-1] - 3)]  # leave out the caps at the ends
        inner = inner if inner.size else cols  # a dot alone (no interval)
        dot = inner[height[inner] >= height[inner].max() - 1]
        out.append((float(cols[0]), float(dot.mean()), float(cols[-1])))
    return out


def test_the_png_puts_each_classs_dot_and_interval_where_the_report_says(example, tmp_path):
    from PIL import Image

    tif, pts = example
    out = tmp_path / "report.json"
    rep = assess([tif], reference=pts, out=out, log=lambda m: None)
    img = np.asarray(Image.open(out.with_suffix(".png")).convert("RGB")).astype(int)
    assert img.shape[1] == 800
    drawn = _red_rows(img)
    assert len(drawn) == len(rep["classes"]) == 4
    pct = [[100 * v / c["mapped_area_ha"] for v in (c["area_ha"]["ci95"][0], c["area_ha"]["estimate"], c["area_ha"]["ci95"][1])]
           for c in rep["classes"]]  # fmt: skip
    # one linear scale maps every class's (low, estimate, high) in % of the mapped area to its pixels
    pixels, percent = np.ravel(drawn), np.ravel(pct)
    scale, offset = np.polyfit(percent, pixels, 1)
    assert scale > 0
    assert np.abs(scale * percent + offset - pixels).max() <= 2.0, (drawn, pct)
    # the 100 % guide (grey, dashed) sits where the scale puts 100 %, inside the plot
    left, right = int(pixels.min()), int(pixels.max())
    plot = img[:, left : right + 1]
    grey = (np.abs(plot[..., 0] - 128) < 20) & (np.abs(plot - plot[..., :1]).max(axis=2) < 8)
    col = left + np.argmax(grey.sum(axis=0))
    assert abs(col - (scale * 100 + offset)) <= 2.0


def test_long_class_names_are_cut_short_and_leave_the_plot_its_room(example, tmp_path):
    from PIL import Image

    from geohsi.assessment.report import area_chart

    tif, pts = example
    rep = assess([tif], reference=pts, log=lambda m: None)
    for c in rep["classes"]:
        c["name"] = c["name"] + " of a legend written by someone who likes long class names" * 4
    img = np.asarray(area_chart(rep).convert("RGB")).astype(int)
    drawn = _red_rows(img)
    assert len(drawn) == 4
    pct = [100 * c["area_ha"]["estimate"] / c["mapped_area_ha"] for c in rep["classes"]]
    scale, offset = np.polyfit(pct, [d[1] for d in drawn], 1)
    assert scale > 0 and np.abs(scale * np.asarray(pct) + offset - [d[1] for d in drawn]).max() <= 2.0
    assert max(d[2] for d in drawn) - min(d[0] for d in drawn) >= 200  # the intervals still span a readable width
    assert Image.fromarray(img.astype("uint8")).size[0] == 800


def test_a_census_report_draws_its_dots_without_intervals_and_says_so(example):
    from geohsi.assessment.report import _titles, area_chart

    tif, pts = example
    rep = assess([tif], reference=pts, log=lambda m: None)
    rep["probability_sample"] = False
    for c in rep["classes"]:
        c["area_ha"] = c["area_pixels"] = None  # a census has no area estimates
    rep["overall_accuracy"]["ci95"] = [None, None]
    img = np.asarray(area_chart(rep).convert("RGB")).astype(int)
    drawn = _red_rows(img)
    assert len(drawn) == 4
    for lo, dot, hi in drawn:
        assert hi - lo <= 10 and lo <= dot <= hi  # a dot, no bar
    # each dot: the class's map pixels in % of its labelled pixels, in the order of those ratios
    ratio = [c["n_map"] / c["n_reference"] for c in rep["classes"]]
    assert np.argsort([d[1] for d in drawn]).tolist() == np.argsort(ratio).tolist()
    title, xlabel = _titles(rep)
    assert "census" in title and "±" not in title and "confidence" not in xlabel
