"""``geohsi sample``: a stratified random sample of pixels over one class map or a whole batch.

The strata are the map classes, pooled over every map given (a batch's catalogue is one
population). One chunked pass over each map counts the pixels of every class and keeps, per chunk
and class, a few random candidate pixels; the allocation then splits the sample over the strata,
each stratum's points over the chunks (multivariate hypergeometric on the chunk counts: exactly a
simple random sample without replacement within the stratum) and takes them from the candidates.
A chunk that needs more points than it kept candidates is read once more, alone.

.. versionadded:: 0.3
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.assessment.estimators import TooFewPoints, allocate, sample_size, user_accuracy_sd
from geohsi.assessment.maps import ClassMap, MapScan, catalog_maps, open_maps, overlaps, pooled_legend, scan_map
from geohsi.assessment.points import SAMPLE_COLUMNS, points_driver, write_points
from geohsi.console import say
from geohsi.errors import DataError, GeohsiWarning, UsageError
from geohsi.scene import Legend

#: random candidate pixels kept per chunk and class in the first pass (more are read only if needed).
CANDIDATES = 64
#: the random streams of one seed, told apart by a tag (seeds are padded with zeros, so the tag
#: comes first): the first pass's candidates, the chunks read again, and the split + point order.
_CANDIDATES, _REFETCH, _SPLIT = 0, 1, 2


@dataclass
class SampleResult:
    """What :func:`sample` drew.

    Attributes:
        path: the points file written.
        n: number of points.
        strata: per stratum ``{id, name, pixels, area_ha, share, n, inclusion_probability}``.
        points: the points as a GeoDataFrame (what the file holds).
        maps: the maps sampled.
    """

    path: Path
    n: int
    strata: list[dict[str, Any]]
    points: Any
    maps: list[Path]


def _expected_ua(expected: Mapping[str | int, float] | float | None, legend: Legend) -> np.ndarray | None:
    """Per legend class, the anticipated user's accuracy (names or ids as keys; ``"*"`` or a number: every class)."""
    if expected is None:
        return None
    if isinstance(expected, int | float):
        expected = {"*": float(expected)}
    known = {str(c.id): k for k, c in enumerate(legend)} | {c.name.casefold(): k for k, c in enumerate(legend)}
    out = np.full(len(legend), float(expected.get("*", np.nan)))
    for key, ua in expected.items():
        if str(key) == "*":
            continue
        k = known.get(str(key).casefold())
        if k is None:
            raise UsageError(f"--expected-ua names class '{key}', which the maps do not have ({', '.join(legend.names)})")
        out[k] = float(ua)
    user_accuracy_sd(np.nan_to_num(out, nan=0.5))  # range check
    return out


def _require_ua(ua: np.ndarray | None, legend: Legend, live: np.ndarray, why: str) -> np.ndarray:
    missing = [
        c.name
        for c, u, on in zip(legend, np.full(len(legend), np.nan) if ua is None else ua, live, strict=True)
        if on and np.isnan(u)
    ]
    if missing:
        raise UsageError(f"{why} needs the expected user's accuracy of every mapped class; missing: {', '.join(missing)} "
                         "(--expected-ua CLASS=UA, or --expected-ua UA for all)")  # fmt: skip
    return ua[live]  # type: ignore[index]


def _plan(n: int | None, target_se: float | None, expected: Mapping[str | int, float] | float | None) -> int:
    """An upper bound of the sample size, known before the maps are read (it sizes the candidates):
    ``n`` itself, or ``(max_h S_h / target)²`` since ``Σ W_h S_h ≤ max_h S_h``."""
    given = {} if expected is None else {"*": expected} if isinstance(expected, int | float) else dict(expected)
    bad = {k: v for k, v in given.items() if not 0 <= float(v) <= 1}  # NaN too: it had crashed the planning (exit 70)
    if bad:
        k, v = next(iter(bad.items()))
        raise UsageError(f"--expected-ua takes user's accuracies in [0, 1], got {v} for {'every class' if k == '*' else k}")
    if (n is None) == (target_se is None):
        raise UsageError("give the sample size --n N, or --target-se S with --expected-ua CLASS=UA (not both)")
    if n is not None:
        if n < 1:
            raise UsageError(f"--n must be at least 1, got {n}")
        return int(n)
    if expected is None:
        raise UsageError("--target-se needs the expected user's accuracies: --expected-ua CLASS=UA (or one UA for every class)")
    values = np.asarray([expected] if isinstance(expected, int | float) else list(expected.values()), float)
    worst = values[np.argmax(user_accuracy_sd(values))]  # the accuracy of the largest S_h
    return sample_size(np.array([1.0]), np.array([worst]), target_se)


def _sizes(legend: Legend, maps: Sequence[ClassMap], scans: Sequence[MapScan]) -> tuple[np.ndarray, np.ndarray]:
    """``[M, K]`` pixels and hectares of each legend class in each map."""
    pos = legend.positions()
    pixels = np.zeros((len(maps), len(legend)), np.int64)
    for i, s in enumerate(scans):
        pixels[i, [pos[int(j)] for j in s.ids]] = s.counts
    area = np.asarray([np.nan if m.pixel_area_m2 is None else m.pixel_area_m2 / 1e4 for m in maps])
    return pixels, pixels * area[:, None]


def _split_over_chunks(counts: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """How many of ``n`` points drawn without replacement from a stratum fall in each chunk, whose
    ``counts`` of its pixels are given: the multivariate hypergeometric split, as ranks of a simple
    random sample of the stratum (exact for any stratum size; numpy's own sampler stops at 10⁹)."""
    ranks = rng.choice(int(counts.sum()), size=n, replace=False)
    return np.bincount(np.searchsorted(np.cumsum(counts), ranks, side="right"), minlength=counts.size)


def _draw(
    maps: Sequence[ClassMap], scans: Sequence[MapScan], legend: Legend, n_h: np.ndarray, rng: np.random.Generator, seed: int
) -> list[tuple[int, int, int]]:
    """``(map index, flat pixel index, class position)`` of every sampled pixel."""
    pos = legend.positions()
    chunks = [(i, b, pos[int(j)], k) for i, s in enumerate(scans) for b in range(len(s.candidates)) for k, j in enumerate(s.ids)]
    picks: list[tuple[int, int, int]] = []
    refetch: dict[int, dict[int, list[tuple[int, int]]]] = {}  # map → chunk → [(class id, count)]
    for h in np.flatnonzero(n_h):
        mine = [(i, b, k) for i, b, hh, k in chunks if hh == h and scans[i].block_counts[b, k] > 0]
        counts = np.asarray([scans[i].block_counts[b, k] for i, b, k in mine], np.int64)
        per_chunk = _split_over_chunks(counts, int(n_h[h]), rng)
        for (i, b, k), s in zip(mine, per_chunk, strict=True):
            if s > len(scans[i].candidates[b][k]):
                refetch.setdefault(i, {}).setdefault(b, []).append((int(scans[i].ids[k]), int(s)))
            elif s:
                picks += [(i, int(f), int(h)) for f in scans[i].candidates[b][k][:s]]
    for i, blocks in refetch.items():
        again = scan_map(
            maps[i], count=False, draw=max(s for v in blocks.values() for _, s in v), seed=(seed, _REFETCH, i), blocks=set(blocks)
        )
        where = {int(j): k for k, j in enumerate(again.ids)}
        for b, wanted in blocks.items():
            picks += [(i, int(f), pos[j]) for j, s in wanted for f in again.candidates[b][where[j]][:s]]
    return picks


def _points_frame(
    maps: Sequence[ClassMap], picks: list[tuple[int, int, int]], legend: Legend, pixels: np.ndarray, area_ha: np.ndarray,
    n_h: np.ndarray, label_field: str, rng: np.random.Generator,
) -> Any:  # fmt: skip
    """The points table (see :mod:`geohsi.assessment.points` for the columns), rows in random order."""
    import geopandas as gpd
    import pandas as pd

    from geohsi.assessment.points import _to_crs

    which, flat, h = (np.asarray(a, np.int64) for a in zip(*picks, strict=True)) if picks else (np.empty(0, np.int64),) * 3
    widths = np.asarray([m.shape[1] for m in maps])
    rows, cols = flat // widths[which], flat % widths[which]
    x, y, lon, lat = (np.full(len(flat), np.nan) for _ in range(4))
    for i, m in enumerate(maps):
        sel = which == i
        x[sel], y[sel] = m.transform @ (cols[sel] + 0.5, rows[sel] + 0.5)
        if m.crs is not None and sel.any():
            lon[sel], lat[sel] = _to_crs(x[sel], y[sel], m.crs, "EPSG:4326")
    total_px, total_ha = pixels.sum(axis=0), area_ha.sum(axis=0)
    names, ids = np.asarray(legend.names, dtype=object), legend.ids
    df = pd.DataFrame(
        {
            "map": [maps[i].name for i in which], "row": rows, "col": cols, "x": x, "y": y, "lon": lon, "lat": lat,
            "stratum": names[h], "stratum_id": ids[h], "map_class": names[h], "map_class_id": ids[h],
            "inclusion_prob": n_h[h] / total_px[h], "stratum_pixels": total_px[h], "stratum_area_ha": np.round(total_ha[h], 6),
            label_field: "",
        }
    )  # fmt: skip
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    df.insert(0, "point_id", np.arange(1, len(df) + 1))
    crs = maps[0].crs if all(m.crs == maps[0].crs for m in maps) else "EPSG:4326"
    gx, gy = (df["x"], df["y"]) if crs is maps[0].crs else (df["lon"], df["lat"])
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(gx, gy), crs=crs)


def _check_label_field(label_field: str) -> None:
    """The reference field must be a new column (``point_id`` had crashed after the scan; ``map_class`` was
    blanked; ``geometry`` was written nowhere)."""
    if not label_field.strip():
        raise UsageError("--label-field must name the reference field to fill in, e.g. --label-field ref")
    if label_field.strip().casefold() in {c.casefold() for c in SAMPLE_COLUMNS}:
        raise UsageError(
            f"--label-field {label_field} is a column geohsi sample writes itself; name the reference field otherwise, e.g. ref"
        )


def _warn_single_pixel_strata(legend: Legend, total: np.ndarray) -> None:
    """A stratum of one pixel gets one point, and one point has no variance: say so at design time (``assess``
    had asked for 2 points of it)."""
    import warnings

    single = [c.name for c, t in zip(legend, total, strict=True) if t == 1]
    if single:
        warnings.warn(
            f"map class(es) {', '.join(single[:5])} cover 1 pixel: one point each, whose variance cannot be estimated, so "
            "assess leaves out the intervals they enter; merge such a class into another before sampling",
            GeohsiWarning,
            stacklevel=3,
        )


def _warn_overlaps(maps: Sequence[ClassMap]) -> None:
    """Say where maps overlap: the strata count their shared pixels once per map."""
    import warnings

    pairs = overlaps(maps)
    if pairs:
        i, j, _ = pairs[0]
        warnings.warn(
            f"{len(pairs)} pair(s) of maps overlap (first: {maps[i].name} and {maps[j].name}); the strata count the "
            "pixels they share once per map, so those areas weigh twice: sample maps that do not overlap (e.g. a mosaic)",
            GeohsiWarning,
            stacklevel=3,
        )


def _stratum_sizes(
    legend: Legend,
    total: np.ndarray,
    n: int | None,
    target_se: float | None,
    expected_ua: Mapping[str | int, float] | float | None,
    allocation: str,
) -> np.ndarray:
    """``[K]`` points per legend class: the total sample size (given or planned) allocated over the mapped strata."""
    ua = _expected_ua(expected_ua, legend)
    live = total > 0
    n_total = n if n is not None else sample_size(total[live], _require_ua(ua, legend, live, "--target-se"), target_se)
    neyman = allocation.strip().lower() == "neyman"
    n_h = np.zeros(len(legend), np.int64)
    try:
        n_h[live] = allocate(
            n_total,
            total[live],
            allocation,
            expected_ua=_require_ua(ua, legend, live, "neyman allocation") if neyman else None,
            sizes=total[live],
        )
    except TooFewPoints as e:
        if n is not None:
            raise
        raise UsageError(  # the user asked for no number of points: say where the number came from
            f"--target-se {target_se:g} with the --expected-ua given plans {n_total} point(s) (eq. 13; user's accuracies "
            f"near 0 or 1 plan few), fewer than the {e.needed} the allocation's minimum per stratum needs; give --n "
            f"{e.needed} or more (or a smaller --target-se, or expected accuracies further from 0 and 1)"
        ) from None
    return n_h


def _strata(legend: Legend, total: np.ndarray, area_ha: np.ndarray, n_h: np.ndarray) -> list[dict[str, Any]]:
    """One record per mapped stratum: pixels, area, share, points and inclusion probability."""
    return [
        {"id": int(c.id), "name": c.name, "pixels": int(total[k]), "area_ha": float(area_ha[:, k].sum()),
         "share": float(total[k] / total.sum()), "n": int(n_h[k]),
         "inclusion_probability": float(n_h[k] / total[k]) if total[k] else 0.0}
        for k, c in enumerate(legend) if total[k]
    ]  # fmt: skip


def sample(
    maps: Sequence[str | os.PathLike] = (),
    *,
    out: str | os.PathLike,
    catalog: str | os.PathLike | None = None,
    n: int | None = None,
    target_se: float | None = None,
    expected_ua: Mapping[str | int, float] | float | None = None,
    allocation: str = "proportional",
    seed: int = 0,
    label_field: str = "ref",
    overwrite: bool = False,
    log: Callable[[str], None] = say,
) -> SampleResult:
    """Draw a stratified random sample of pixels (strata = map classes) and write it, ready to label.

    Args:
        maps: class maps written by ``geohsi classify`` (COG ``.tif`` or ``.zarr``).
        out: the points file: ``.gpkg`` (GeoPackage, for QGIS), ``.geojson`` or ``.csv``.
        catalog: a batch's ``catalog.json``: all of its maps (strata pooled over them).
        n: total sample size; or plan it with ``target_se``.
        target_se: target standard error of overall accuracy; ``n = (Σ W_h S_h / target_se)²``
            with ``S_h = √(U_h (1 − U_h))`` (Olofsson et al. 2014, eq. 13).
        expected_ua: anticipated user's accuracy per class (``{"water": 0.95, 3: 0.8, "*": 0.85}``, or
            one number for every class): needed by ``target_se`` and ``neyman``.
        allocation: ``proportional``, ``equal``, ``min:K`` (at least K per stratum, rest
            proportional) or ``neyman``; every stratum gets at least 2 points and at most its pixels.
        seed: random seed (same maps + same seed → same sample).
        label_field: name of the empty reference field to fill in.
        overwrite: replace an existing points file.
        log: receives one-line progress messages.

    Returns:
        A :class:`SampleResult`.

    Raises:
        UsageError: bad sizes, allocation or output suffix; OutputError: ``out`` exists.
        InputFormatError: a map cannot be read; DataError: the maps have no mapped pixel.

    Example:
        >>> geohsi.sample(catalog="maps/catalog.json", n=600, allocation="min:50", out="points.gpkg")  # doctest: +SKIP

    .. versionadded:: 0.3
    """
    from geohsi.files import check_not_an_input, check_output
    from geohsi.storage import local_only

    if seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {seed}")
    local_only("geohsi sample", maps, catalog, out)
    _check_label_field(label_field)
    points_driver(out)
    catalogued = catalog_maps(catalog) if catalog is not None else []
    check_not_an_input([out], [*maps, catalog, *catalogued])
    check_output(out, overwrite, directory=False)  # after: "pass --overwrite" must not be said of an input
    bound = _plan(n, target_se, expected_ua)
    cmaps = open_maps([*maps, *catalogued], None)  # the catalogue read once, above
    _warn_overlaps(cmaps)
    scans = [scan_map(m, draw=min(bound, CANDIDATES), seed=(seed, _CANDIDATES, i)) for i, m in enumerate(cmaps)]
    legend = pooled_legend(cmaps, found=sorted({int(j) for s in scans for j in s.ids}))
    pixels, area_ha = _sizes(legend, cmaps, scans)
    total = pixels.sum(axis=0)
    if total.sum() == 0:
        raise DataError("the maps have no mapped pixel (all nodata); sample maps that 'geohsi classify' filled")
    n_h = _stratum_sizes(legend, total, n, target_se, expected_ua, allocation)
    _warn_single_pixel_strata(legend, total)
    rng = np.random.default_rng([seed, _SPLIT])
    picks = _draw(cmaps, scans, legend, n_h, rng, seed)
    points = _points_frame(cmaps, picks, legend, pixels, area_ha, n_h, label_field, rng)
    path = write_points(points, out, overwrite=overwrite)
    strata = _strata(legend, total, area_ha, n_h)
    log(f"drew {len(points)} points over {len(cmaps)} map(s) in {len(strata)} strata → {path}")
    return SampleResult(path, len(points), strata, points, [m.path for m in cmaps])


__all__ = ["CANDIDATES", "SampleResult", "sample"]
