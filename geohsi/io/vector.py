"""Vector labels: polygons, multipolygons and points of a GIS file, rasterised onto a scene's grid.

One file labels many scenes: :func:`read_vector_labels` reads it once (GeoPackage, GeoJSON,
Shapefile, FlatGeobuf — anything GDAL's vector drivers read, through geopandas/pyogrio), turns the
class field into one legend shared by every scene (string values → ids 1..K in sorted order,
integer values kept as ids), and :meth:`VectorLabels.rasterize` burns the features into any window
of any scene grid, in the scene's CRS (features reprojected once per CRS), with
``rasterio.features.rasterize``:

* polygons and multipolygons: the **pixel-centre rule** — a pixel is labelled when its centre lies
  inside (GDAL's default); ``all_touched=True`` labels every pixel the outline touches;
* points: the pixel that contains the point;
* where features overlap, the later feature in the file wins.

Features with an empty or NaN class value (or id 0) are skipped (counted in :attr:`VectorLabels.skipped`).
Class names are compared without regard to case or spacing ("Water", "water " and "WATER" are one
class, with a warning), in the file and against ``class_names``.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import DataError, GeohsiWarning, GeoreferenceError, InputFormatError, UsageError
from geohsi.scene import ClassInfo, Legend, check_names_cover, default_colors

#: File suffixes read as vector labels (any other label file is a raster).
VECTOR_SUFFIXES: tuple[str, ...] = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".gml", ".kml", ".parquet")
#: The largest class id a label raster holds (uint16).
MAX_CLASS_ID = 65535
#: a class id written as text ("3", "10", "3.0"): read as the id, not as a name.
_WHOLE = r"[+-]?[0-9]+(?:\.0*)?"


def is_vector(path: str | os.PathLike) -> bool:
    """Whether a label file is a vector file (by its suffix)."""
    return Path(path).suffix.lower() in VECTOR_SUFFIXES


def _layer(path: Path, layer: str | None) -> str | None:
    import pyogrio

    layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    if layer is not None and layer not in layers:
        raise UsageError(f"{path} has no layer {layer!r} (layers: {', '.join(layers)}); pass one of them with --layer")
    if layer is None and len(layers) > 1:
        raise UsageError(f"{path} holds {len(layers)} layers ({', '.join(layers)}); choose one with --layer")
    return layer


def _canonical(name: str) -> str:
    """How class names are compared: inner runs of white space as one space, case folded."""
    return " ".join(str(name).split()).casefold()


def _check_class_names(class_names: list[str] | None) -> None:
    seen: dict[str, str] = {}
    for n in class_names or ():
        if _canonical(n) in seen:
            raise UsageError(f"--class-names lists one class twice ({seen[_canonical(n)]!r} and {n!r}); name each class once")
        seen[_canonical(n)] = n


def _named_ids(text: Any, path: Path, label_field: str, class_names: list[str] | None) -> tuple[np.ndarray, dict[int, str]]:
    """Class ids of class names (``0``: empty), names compared without regard to case or spacing."""
    spellings: dict[str, set[str]] = {}
    for t in text:
        if t:
            spellings.setdefault(_canonical(t), set()).add(" ".join(t.split()))
    merged = {k: sorted(v) for k, v in spellings.items() if len(v) > 1}
    if merged:
        v = next(iter(sorted(merged.values())))
        warnings.warn(
            f"{path}: field {label_field!r} spells {len(merged)} class(es) in several ways (e.g. {', '.join(map(repr, v))}); "
            "each is taken as one class",
            GeohsiWarning,
            stacklevel=4,
        )
    order = list(class_names) if class_names else sorted(min(v) for v in spellings.values())
    position = {_canonical(name): k + 1 for k, name in enumerate(order)}
    unknown = sorted(min(v) for k, v in spellings.items() if k not in position)
    if unknown:
        raise DataError(f"{path}: field {label_field!r} has classes {unknown[:5]} not in --class-names; add them")
    ids = np.asarray([position[_canonical(t)] if t else 0 for t in text], dtype=np.int64)
    return ids, {k + 1: str(name) for k, name in enumerate(order)}


def _class_ids(values: Any, path: Path, label_field: str, class_names: list[str] | None) -> tuple[np.ndarray, Legend]:
    """``([n] class id per feature, 0 = skipped)``, and the legend the values make."""
    import pandas as pd

    _check_class_names(class_names)
    v = pd.Series(values)
    empty = v.isna() | (v.astype(str).str.strip() == "")
    if not pd.api.types.is_numeric_dtype(v) and v[~empty].astype(str).str.strip().str.fullmatch(_WHOLE).all():
        # ids kept as text ("1", "2", "10") had become names in string order; floats, so a huge id is refused as one
        v = v.where(~empty, None).map(lambda t: np.nan if t is None else float(str(t).strip())).astype("float64")
    if pd.api.types.is_numeric_dtype(v):
        num = v.where(~empty, 0).astype("float64").to_numpy()
        if np.any(num != np.round(num)) or num.min() < 0 or num.max() > MAX_CLASS_ID:
            raise DataError(
                f"{path}: field {label_field!r} holds values that are not class ids 1..{MAX_CLASS_ID} "
                f"(e.g. {num[(num != np.round(num)) | (num < 0) | (num > MAX_CLASS_ID)][0]:g}); use whole numbers or class names"
            )
        ids = num.astype(np.int64)
        present = sorted({int(i) for i in ids if i > 0})
        check_names_cover(set(present), class_names)  # fewer names had been dropped (class_<id>) without a word
        names = {i: (class_names[i - 1] if class_names and i <= len(class_names) else f"class_{i}") for i in present}
    else:
        ids, names = _named_ids(v.where(~empty, "").astype(str).str.strip().tolist(), path, label_field, class_names)
        present = sorted(names)
    ids_in = sorted(present)
    legend = Legend(tuple(ClassInfo(i, names[i], c) for i, c in zip(ids_in, default_colors(ids_in), strict=True)))
    return ids, legend


@dataclass
class VectorLabels:
    """The features of a vector label file with a class id each, ready to rasterise onto scene grids.

    Attributes:
        path: the file.
        label_field: the attribute holding the class.
        layer: the layer read (``None``: the file's only layer).
        all_touched: rasterise every pixel a polygon touches, not only those whose centre it contains.
        frame: a GeoDataFrame with the features kept (``geometry`` and ``class_id``).
        legend: the classes, shared by every scene.
        skipped: features with an empty or NaN class value, id 0 or no geometry (not used).
        used: ``[n]`` bool, features that fell inside at least one rasterised window so far.
    """

    path: str
    label_field: str
    layer: str | None
    all_touched: bool
    frame: Any = field(repr=False)
    legend: Legend
    skipped: int = 0
    used: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    _projected: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.used is None:
            self.used = np.zeros(len(self.frame), dtype=bool)

    @property
    def crs(self) -> Any:
        """The file's CRS."""
        return self.frame.crs

    def describe_bounds(self) -> str:
        """The file's bounds and CRS, for messages."""
        b = self.frame.total_bounds
        return f"{b[0]:.6g}, {b[1]:.6g}, {b[2]:.6g}, {b[3]:.6g} in {self.crs.to_string() if self.crs else 'no CRS'}"

    def in_crs(self, crs: Any) -> Any:
        """The features reprojected to ``crs`` (cached per CRS)."""
        key = crs.to_wkt()
        if key not in self._projected:
            self._projected[key] = self.frame.to_crs(crs)
        return self._projected[key]

    def rasterize(
        self, crs: Any, transform: Any, shape: tuple[int, int], window: tuple[int, int, int, int] | None = None
    ) -> np.ndarray:
        """Class ids of the pixels of a scene grid (or of a window of it), ``0`` where no feature falls.

        Args:
            crs: the scene's CRS (:class:`rasterio.crs.CRS`).
            transform: the scene's affine transform.
            shape: ``(H, W)`` of the scene.
            window: ``(row, col, height, width)`` of the part to rasterise (default: the whole grid).

        Returns:
            ``[h, w]`` uint16 class ids.
        """
        from rasterio.features import rasterize
        from rasterio.windows import Window, bounds
        from rasterio.windows import transform as window_transform
        from shapely.geometry import box

        row, col, h, w = window if window is not None else (0, 0, *shape)
        win = Window(col, row, w, h)
        frame = self.in_crs(crs)
        hits = frame.sindex.query(box(*bounds(win, transform)), predicate="intersects")
        out = np.zeros((h, w), dtype=np.uint16)
        if hits.size == 0:
            return out
        self.used[hits] = True
        part = frame.iloc[np.sort(hits)]  # file order: a later feature overwrites an earlier one
        shapes = zip(part.geometry.values, part["class_id"].to_numpy(), strict=True)
        return rasterize(shapes, out=out, transform=window_transform(win, transform), all_touched=self.all_touched)


def read_vector_labels(
    path: str | os.PathLike,
    label_field: str,
    *,
    layer: str | None = None,
    all_touched: bool = False,
    class_names: list[str] | None = None,
) -> VectorLabels:
    """Read a vector label file (GeoPackage, GeoJSON, Shapefile, FlatGeobuf, …) for rasterisation.

    Args:
        path: the file.
        label_field: the attribute holding the class (names or integer ids).
        layer: the layer to read (required when the file holds several).
        all_touched: label every pixel a polygon touches (default: pixel centres inside).
        class_names: the legend's order for string classes (ids 1..K), or names of integer ids 1..K.

    Returns:
        The :class:`VectorLabels`.

    Raises:
        InputFormatError: the file is missing or unreadable, or has no CRS.
        UsageError: an unknown ``label_field`` (the fields are listed) or layer.
        DataError: no feature has a class value, or the values are not class ids.
    """
    import geopandas as gpd

    from geohsi.storage import local_copy

    p = local_copy(path, "label file")  # a URL: downloaded once into the cache
    if not p.exists():
        raise InputFormatError(f"label file {p} does not exist; check the path")
    layer = _layer(p, layer)
    try:
        frame = gpd.read_file(p, layer=layer, engine="pyogrio")
    except Exception as e:  # pyogrio raises DataSourceError & co. for unreadable files
        raise InputFormatError(f"cannot read {p} as vector labels ({type(e).__name__}: {e}); check the file") from e
    if label_field not in frame.columns:
        fields = [c for c in frame.columns if c != frame.geometry.name]
        raise UsageError(
            f"{p} has no field {label_field!r}; its fields are {', '.join(map(repr, fields)) or 'none'}; pass one with --label-field"
        )
    if frame.crs is None:
        raise GeoreferenceError(f"{p} has no CRS; set it (e.g. ogr2ogr -a_srs EPSG:4326) so its features can be placed on scenes")
    ids, legend = _class_ids(frame[label_field], p, label_field, class_names)
    keep = (ids > 0) & frame.geometry.notna().to_numpy() & ~frame.geometry.is_empty.to_numpy()
    skipped = int((~keep).sum())
    if not keep.any():
        raise DataError(f"{p}: no feature has a class in field {label_field!r} ({skipped} empty, NaN or 0); fill the field")
    if skipped:
        warnings.warn(
            f"{p}: {skipped} of {len(frame)} features have no class in {label_field!r} (empty, NaN or 0) or no geometry; skipped",
            GeohsiWarning,
            stacklevel=2,
        )
    kept = frame.loc[keep, [frame.geometry.name]].copy()
    kept["class_id"] = ids[keep].astype(np.uint16)
    return VectorLabels(str(p), label_field, layer, bool(all_touched), kept.reset_index(drop=True), legend, skipped)


__all__ = ["MAX_CLASS_ID", "VECTOR_SUFFIXES", "VectorLabels", "is_vector", "read_vector_labels"]
