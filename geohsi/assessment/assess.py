"""``geohsi assess``: accuracy and error-adjusted class areas of maps from labelled reference points.

::

    points file ──read, reproject──► the map pixel of each point ──► map class (read, or recorded)
         │                                                             │
         └─ reference field (names or ids) ────────────────────────────┴─► error matrix ──► estimator
    design: the points' recorded strata (geohsi sample), --strata MAP2, or the maps' classes

* strata = the assessed maps' classes → the stratified estimator of Olofsson et al. (2014);
* strata of another map (a sample designed on an earlier map, ``--strata``) → Stehman (2014);
* ``--reference-scene`` → every labelled pixel of a scene: a census of the labels, not a
  probability sample (no weights, no intervals).

.. versionadded:: 0.3
"""

from __future__ import annotations

import dataclasses
import os
import warnings as pywarnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.assessment.estimators import census_summary, stehman_estimate, stratified_estimate
from geohsi.assessment.maps import NODATA, ClassMap, catalog_maps, open_maps, pooled_legend, scan_map
from geohsi.assessment.points import DESIGN_COLUMNS, class_positions, field_values, locate, read_points
from geohsi.assessment.report import build_report, report_paths, write_report
from geohsi.console import say
from geohsi.errors import DataError, GeohsiWarning, UsageError
from geohsi.scene import Legend

_OLOFSSON = "Olofsson et al. (2014): stratified estimator, strata = map classes"
_STEHMAN = "Stehman (2014): stratified estimator for strata that are not the map classes"


@dataclass
class _Design:
    """The sampling design: each point's stratum and each stratum's size."""

    stratum: np.ndarray  # [n] stratum index
    ids: np.ndarray  # [H] stratum ids
    names: list[str]
    sizes: np.ndarray  # [H] pixels
    area_ha: np.ndarray | None  # [H]
    source: str


def _legend(cmaps: Sequence[ClassMap]) -> Legend:
    """The maps' pooled legend; a map that declares none is counted once to find its ids, which are named and
    coloured once for all maps (each map's own colours had clashed in the pooled legend)."""
    found = {i: [int(j) for j in scan_map(m).ids] for i, m in enumerate(cmaps) if m.legend is None}
    legend = pooled_legend(cmaps, found=sorted({j for ids in found.values() for j in ids}))
    by_id = {c.id: c for c in legend}
    for i, ids in found.items():
        cmaps[i].legend = Legend(tuple(by_id[j] for j in ids))
    return legend


def _located(pts: Any, cmaps: Sequence[ClassMap], source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    which, rows, cols = locate(pts, cmaps)
    out = np.flatnonzero(which < 0)
    if out.size:
        g = pts.geometry.iloc[int(out[0])]
        crs = pts.crs.to_string() if pts.crs is not None else "no CRS"
        raise DataError(
            f"{out.size} of {len(pts)} points of {source} lie outside every map (first at {g.x:.6g}, {g.y:.6g} in {crs}); "
            "check the file's CRS and give the maps the points were drawn on"
        )
    return which, rows, cols


def _scan(
    cmaps: Sequence[ClassMap], legend: Legend, which: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, count: bool, values: bool
):
    """One pass per map: ``([M, K] pixels per class, [n] map class id at each point)``."""
    pos = legend.positions()
    pixels = np.zeros((len(cmaps), len(legend)), np.int64)
    at = np.zeros(which.size, np.int64)
    for i, m in enumerate(cmaps):
        sel = np.flatnonzero(which == i)
        if not count and not (values and sel.size):
            continue
        s = scan_map(m, count=count, rows=rows[sel] if values else None, cols=cols[sel] if values else None)
        pixels[i, [pos[int(j)] for j in s.ids]] = s.counts
        if values:
            at[sel] = s.values
    return pixels, at


def _areas(cmaps: Sequence[ClassMap], pixels: np.ndarray) -> np.ndarray | None:
    """``[K]`` hectares per class (``None`` for pixel grids)."""
    if any(m.pixel_area_m2 is None for m in cmaps):
        return None
    return (pixels * np.asarray([m.pixel_area_m2 for m in cmaps])[:, None]).sum(axis=0) / 1e4


def _file_design(pts: Any, source: str) -> _Design | None:
    """The design ``geohsi sample`` recorded in the points (stratum id, name and size), if it did."""
    if not set(DESIGN_COLUMNS) <= set(pts.columns):
        return None
    sid = pts["stratum_id"].to_numpy(np.int64)
    ids, stratum = np.unique(sid, return_inverse=True)
    sizes = np.zeros(ids.size)
    np.maximum.at(sizes, stratum, pts["stratum_pixels"].to_numpy(float))
    if (pts["stratum_pixels"].to_numpy(float) != sizes[stratum]).any():
        raise DataError(f"{source}: points of one stratum record different stratum sizes; use the file geohsi sample wrote")
    names = [str(pts["stratum"].iloc[int(np.argmax(stratum == h))]) for h in range(ids.size)]
    area = None
    if "stratum_area_ha" in pts.columns and pts["stratum_area_ha"].notna().all():
        area = np.zeros(ids.size)
        area[stratum] = pts["stratum_area_ha"].to_numpy(float)
    return _Design(stratum, ids, names, sizes, area, f"recorded in {source} (geohsi sample)")


def _strata_design(strata: Sequence[str | os.PathLike], pts: Any) -> _Design:
    """Strata = the classes of another map (``--strata``): its class at each point and its class sizes."""
    smaps = open_maps(strata)
    slegend = _legend(smaps)
    which, rows, cols = _located(pts, smaps, "the points (on the --strata maps)")
    pixels, at = _scan(smaps, slegend, which, rows, cols, count=True, values=True)
    if (at == NODATA).any():
        raise DataError(
            f"{int((at == NODATA).sum())} points fall on nodata pixels of the --strata maps; give the map the sample was drawn on"
        )
    sizes = pixels.sum(axis=0)
    live = np.flatnonzero(sizes > 0)  # every class of the strata map is a stratum, with points or not
    index = np.full(int(slegend.ids.max()) + 1, -1, np.int64)
    index[slegend.ids[live]] = np.arange(live.size)
    area = _areas(smaps, pixels)
    return _Design(
        index[at], slegend.ids[live], [slegend[int(k)].name for k in live], sizes[live].astype(float),
        None if area is None else area[live], f"the classes of {', '.join(m.name for m in smaps)}",
    )  # fmt: skip


def _labels(pts: Any, field: str, legend: Legend, source: str) -> np.ndarray:
    """Reference class positions; unlabelled points are dropped later (with a warning)."""
    raw = field_values(pts, field, source)
    ref = class_positions(raw, legend, field=field, source=source)
    if (ref < 0).all():
        raise DataError(
            f"reference field '{field}' of {source} is empty; label the points first (e.g. in QGIS: fill '{field}' with class names or ids)"
        )
    return ref


def _estimate_sample(
    cmaps: Sequence[ClassMap], legend: Legend, pts: Any, ref: np.ndarray, map_field: str | None,
    strata: Sequence[str | os.PathLike] | None, recorded: _Design | None, source: str,
) -> tuple[Any, np.ndarray, np.ndarray | None, _Design | None]:  # fmt: skip
    """The estimates, the mapped pixels and hectares per class, and the design used (``recorded``: the
    design the points file records, read before unlabelled points were left out)."""
    which, rows, cols = _located(pts, cmaps, source)
    design = _strata_design(strata, pts) if strata else recorded
    from_file = design is not None and not strata
    pixels, at = _scan(cmaps, legend, which, rows, cols, count=not from_file, values=map_field is None)
    if map_field is None:
        if (at == NODATA).any():
            raise DataError(
                f"{int((at == NODATA).sum())} points of {source} fall on nodata pixels of the maps; give the maps they were drawn on"
            )
        pos = legend.positions()
        mcls = np.asarray([pos[int(i)] for i in at], np.int64)
    else:
        mcls = class_positions(field_values(pts, map_field, source, what="map class"), legend, field=map_field, source=source)
        if (mcls < 0).any():
            raise DataError(
                f"map field '{map_field}' of {source} is empty at {int((mcls < 0).sum())} points; leave out --map-field to read the maps"
            )
    names = legend.names
    if design is None:
        est = stratified_estimate(_counts(mcls, ref, len(legend)), pixels.sum(axis=0), names=names)
        return est, pixels.sum(axis=0), _areas(cmaps, pixels), None
    if from_file and _strata_are_classes(design, legend, mcls):
        return _olofsson_from_design(design, legend, mcls, ref)
    if from_file:
        pixels, _ = _scan(cmaps, legend, which, rows, cols, count=True, values=False)
    if abs(design.sizes.sum() - pixels.sum()) > 0.005 * pixels.sum():
        pywarnings.warn(
            f"the strata hold {int(design.sizes.sum()):,} pixels but the maps {int(pixels.sum()):,}; the estimates refer to "
            "the strata's population: give the maps and the --strata map of one area",
            GeohsiWarning,
            stacklevel=3,
        )
    est = stehman_estimate(
        design.stratum, mcls, ref, design.sizes, len(legend), mapped=pixels.sum(axis=0), names=names, stratum_names=design.names
    )
    return est, pixels.sum(axis=0), _areas(cmaps, pixels), design


def _counts(mcls: np.ndarray, ref: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(mcls * k + ref, minlength=k * k).reshape(k, k)


def _strata_are_classes(design: _Design, legend: Legend, mcls: np.ndarray) -> bool:
    pos = legend.positions()
    if not all(int(i) in pos for i in design.ids):
        return False
    return bool((np.asarray([pos[int(i)] for i in design.ids])[design.stratum] == mcls).all())


def _olofsson_from_design(design: _Design, legend: Legend, mcls: np.ndarray, ref: np.ndarray):
    """Strata recorded by geohsi sample that are the map classes: their sizes are the mapped sizes."""
    pos = legend.positions()
    pixels = np.zeros(len(legend))
    area = None if design.area_ha is None else np.zeros(len(legend))
    for h, i in enumerate(design.ids):
        pixels[pos[int(i)]] = design.sizes[h]
        if area is not None:
            area[pos[int(i)]] = design.area_ha[h]
    est = stratified_estimate(_counts(mcls, ref, len(legend)), pixels, names=legend.names)
    return est, pixels.astype(np.int64), area, design


def _from_sample(
    cmaps: Sequence[ClassMap], reference: str | os.PathLike, label_field: str, map_field: str | None,
    strata: Sequence[str | os.PathLike] | None,
) -> dict[str, Any]:  # fmt: skip
    source = Path(reference).name
    pts = read_points(reference, crs=cmaps[0].crs)
    field_values(pts, label_field, source)  # a missing field is reported before any map is read
    legend = _legend(cmaps)
    ref = _labels(pts, label_field, legend, source)
    n_file, notes = len(pts), []
    recorded = None if strata else _file_design(pts, source)  # every stratum drawn stays in the population
    if (ref < 0).any():
        notes.append(f"{int((ref < 0).sum())} of {len(ref)} points of {source} have no reference label and were left out")
        keep = np.flatnonzero(ref >= 0)
        pts, ref = pts.iloc[keep], ref[keep]
        recorded = None if recorded is None else dataclasses.replace(recorded, stratum=recorded.stratum[keep])
    est, pixels, area_ha, design = _estimate_sample(cmaps, legend, pts, ref, map_field, strata, recorded, source)
    stehman = est.estimator == "stehman2014"
    kind = "stratified random sample, strata are " + (f"{design.source}, not the map classes" if stehman else "the map classes")
    strata_info = None
    if design is not None:
        n_h = np.bincount(design.stratum, minlength=design.ids.size)
        strata_info = [
            {"id": int(i), "name": nm, "pixels": int(s), "n": int(c)}
            for i, nm, s, c in zip(design.ids, design.names, design.sizes, n_h, strict=True)
        ]
    return build_report(
        est, legend, pixels=pixels, area_ha=area_ha,
        design={"design": kind, "estimator": _STEHMAN if stehman else _OLOFSSON, "probability_sample": True, "strata": strata_info},
        inputs={"maps": [m.name for m in cmaps], "reference": str(reference), "label_field": label_field, "map_field": map_field,
                "n_points_file": n_file},
        warnings=notes,
    )  # fmt: skip


def _census(cmaps: Sequence[ClassMap], scene: str | os.PathLike) -> dict[str, Any]:
    """Every labelled pixel of a scene as reference: a census of the labels, not a probability sample."""
    import geopandas as gpd

    from geohsi.scene import open_scene, scene_crs, scene_transform

    ds = open_scene(scene)
    if "labels" not in ds:
        raise DataError(f"{scene} has no labels; ingest it with --labels FILE to use it as reference")
    labels = np.asarray(ds["labels"].values)
    r, c = np.nonzero(labels > 0)
    x, y = scene_transform(ds) @ (c + 0.5, r + 0.5)
    pts = gpd.GeoDataFrame({"map": cmaps[0].name, "row": r, "col": c}, geometry=gpd.points_from_xy(x, y), crs=scene_crs(ds))
    legend = _legend(cmaps)
    ref = class_positions(labels[r, c].tolist(), legend, field="labels", source=Path(scene).name)
    which, rows, cols = locate(pts, cmaps)
    pixels, at = _scan(cmaps, legend, np.where(which < 0, len(cmaps), which), rows, cols, count=True, values=True)
    on_map = (which >= 0) & (at != NODATA)
    pos = legend.positions()
    mcls = np.asarray([pos.get(int(i), -1) for i in at[on_map]], np.int64)
    est = census_summary(_counts(mcls, ref[on_map], len(legend)))
    left = (
        [f"{int((~on_map).sum())} of {r.size} labelled pixels lie outside the maps or on nodata and were left out"]
        if (~on_map).any()
        else []
    )
    return build_report(
        est, legend, pixels=pixels.sum(axis=0), area_ha=_areas(cmaps, pixels),
        design={"design": "census of the labelled pixels of a scene", "estimator": "none: counts of labelled pixels (no sampling weights)",
                "probability_sample": False,
                "note": "NOT a probability sample: the labelled pixels were not drawn at random from the map, so these are "
                        "agreement counts on the labelled pixels only; no confidence interval or error-adjusted area applies to the whole map",
                "strata": None},
        inputs={"maps": [m.name for m in cmaps], "reference": None, "reference_scene": str(scene), "label_field": None, "map_field": None},
        warnings=left,
    )  # fmt: skip


def assess(
    maps: Sequence[str | os.PathLike] = (),
    *,
    reference: str | os.PathLike | None = None,
    reference_scene: str | os.PathLike | None = None,
    catalog: str | os.PathLike | None = None,
    label_field: str = "ref",
    map_field: str | None = None,
    strata: Sequence[str | os.PathLike] | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = say,
) -> dict[str, Any]:
    """Assess maps against labelled reference points: error matrix, accuracies and error-adjusted areas.

    Args:
        maps: the class maps (COG ``.tif`` or ``.zarr``) the points were drawn on.
        reference: the labelled points (``.gpkg``, ``.geojson``, ``.csv``, or any file pyogrio
            reads), in any CRS: they are reprojected to each map's.
        reference_scene: instead of points, a labelled scene store: every labelled pixel is a
            reference (a census, not a probability sample; no intervals).
        catalog: a batch's ``catalog.json``: all of its maps.
        label_field: the points' reference field, class names or ids (empty values are left out).
        map_field: a field holding each point's map class (e.g. ``map_class``); default: read the maps.
        strata: the map(s) the sample was stratified on, when not the assessed maps (Stehman 2014);
            default: the strata recorded in the points by ``geohsi sample``, else the maps' classes.
        out: ``report.json``; ``report.csv`` (error matrix), ``report.md`` and ``report.png`` go beside it.
        overwrite: replace existing report files.
        log: receives one-line messages.

    Returns:
        The report (what ``report.json`` holds): ``overall_accuracy``, per class ``users_accuracy``,
        ``producers_accuracy``, ``area_ha`` (each ``{estimate, se, ci95}``), the error matrix in counts
        and area proportions, the design and the warnings (also issued as :class:`~geohsi.errors.GeohsiWarning`).

    Raises:
        UsageError: neither or both references, a missing field; DataError: empty or unknown
            labels, points outside every map; InputFormatError: unreadable inputs; OutputError: ``out`` exists.

    Example:
        >>> geohsi.assess(catalog="maps/catalog.json", reference="points.gpkg", out="report.json")  # doctest: +SKIP

    .. versionadded:: 0.3
    """
    from geohsi.files import check_not_an_input, check_output
    from geohsi.storage import local_only

    local_only("geohsi assess", maps, reference, reference_scene, catalog, list(strata or ()), out)
    if (reference is None) == (reference_scene is None):
        raise UsageError(
            "give the reference as --reference points.gpkg (labelled sample) or --reference-scene SCENE.zarr, one of them"
        )
    if reference_scene is not None and (strata or map_field):
        raise UsageError("--strata and --map-field apply to a sample of points, not to --reference-scene")
    catalogued = catalog_maps(catalog) if catalog is not None else []
    check_not_an_input(
        report_paths(out) if out is not None else [], [*maps, catalog, *catalogued, reference, reference_scene, *(strata or ())]
    )
    for p in report_paths(out) if out is not None else ():  # after: "pass --overwrite" must not be said of an input
        check_output(p, overwrite, directory=False)
    cmaps = open_maps([*maps, *catalogued], None)  # the catalogue read once, above
    if reference_scene is not None:
        report = _census(cmaps, reference_scene)
    else:
        report = _from_sample(cmaps, reference, label_field, map_field, strata)
    for w in report["warnings"]:
        pywarnings.warn(w, GeohsiWarning, stacklevel=2)
    if out is not None:
        paths = write_report(report, out, overwrite=overwrite)
        log(f"wrote {', '.join(str(p) for p in paths)}")
    return report


__all__ = ["assess"]
