"""Descriptions of what geohsi reads and writes: scenes, bundles, maps, model configs (``geohsi info``).

:func:`info` is the Python twin of ``geohsi info``: a scene store, a bundle directory or a class map
by path, or a model config (with an adapter) by name; :func:`scene_info`, :func:`bundle_info`,
:func:`map_info` and :func:`describe_model` are its parts. Each returns a flat, JSON-able mapping.

Model counts come from two independent sources and are both given: the closed-form formulas
(:func:`~geohsi.models.count_parameters`, :func:`~geohsi.adapters.count_adapter_parameters`) and
the model actually built (on the ``meta`` device, so ViT-B costs no memory).

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from geohsi.adapters import AdapterSummary, adapter_summary
from geohsi.bands import band_summary, band_table_problem, broad_width_warning
from geohsi.bundle import ADAPTER_DIR, META_NAME, Bundle, load_bundle
from geohsi.errors import InputFormatError, UsageError
from geohsi.scene import Legend, cube, filled_colors, nodata_value, open_scene, scene_crs, valid_mask

PathLike = str | os.PathLike


def info(
    path: PathLike | None = None,
    *,
    model: str | None = None,
    adapter: str | None = None,
    num_classes: int = 16,
    input_size: int = 32,
    rank: int = 8,
    head: str = "dense",
    stats: bool = True,
    record: bool = False,
) -> dict[str, Any]:
    """Describe a scene store or a model bundle, or a model config (and an adapter on it): what ``geohsi info`` prints.

    Args:
        path: a scene ``.zarr``, a bundle directory or a class map ``.tif``/``.zarr`` (ignored with ``model``).
        model: a model config name (``tiny``, ``small``, ``base``) to describe instead.
        adapter: with ``model``: count the trainable parameters of this adapter method.
        num_classes: with ``model``: classes of the head.
        input_size: with ``model``: input edge in pixels.
        rank: with ``adapter``: LoRA/LoKr rank.
        head: with ``model``: the head counted, ``dense`` (the segmentation decoder, the default of
            ``geohsi train`` and ``geohsi info``) or ``patch``.
        stats: scenes: compute the nodata fraction (reads the cube once); maps: the pixels and
            hectares of each class (reads the map once).
        record: bundles: the full JSON record (:func:`bundle_record`) instead of the one-line summary.

    Returns:
        The description (see :func:`scene_info`, :func:`bundle_info`, :func:`bundle_record`, :func:`map_info`,
        :func:`describe_model`).

    Raises:
        UsageError: neither ``path`` nor ``model``.
        InputFormatError / ModelError: not a scene, bundle or map.

    .. versionadded:: 0.1
    """
    if model is not None:
        return describe_model(model, adapter=adapter, num_classes=num_classes, input_size=input_size, rank=rank, head=head)
    if path is None:
        raise UsageError("give a PATH (scene .zarr, bundle directory or class map .tif/.zarr) or --model NAME")
    if adapter is not None:
        raise UsageError(f"--adapter counts the parameters of a model config: give it with --model NAME, not with {path}")
    from geohsi.storage import display, exists, is_url, join, local_copy

    if is_url(path) and exists(join(path, META_NAME)):
        path = local_copy(path, "bundle")  # downloaded once (complete uploads only) into the cache
    if (Path(path) / META_NAME).is_file():
        return bundle_record(path) if record else bundle_info(path)
    if is_url(path) and _remote_map(str(path)):  # a map in a bucket: described from a local copy
        return {**map_info(local_copy(path, "map"), stats=stats), "path": display(path)}
    if not is_url(path) and not Path(path).exists() and Path(path).suffix.lower() != ".zarr":  # a .zarr: "ingest it"
        raise InputFormatError(f"{path} does not exist; give a scene .zarr, a bundle directory or a class map .tif/.zarr")
    if not is_url(path) and _is_class_map(Path(path)):
        return map_info(path, stats=stats)
    return scene_info(path, stats=stats)


def _remote_map(url: str) -> bool:
    """Whether a URL is a class map (a ``.tif``'s header is read in place; a ``.zarr`` has ``classes``).

    Raises:
        InputFormatError: a ``.tif`` that is missing, or that is an image to ingest rather than a map.
    """
    from geohsi.storage import display, exists, join, name

    if Path(name(url)).suffix.lower() not in (".tif", ".tiff"):
        return exists(join(url, "classes", "zarr.json"))
    if not exists(url):
        raise InputFormatError(f"{display(url)} does not exist; check the URL")
    if not _is_class_map(url):
        raise InputFormatError(
            f"{display(url)} is an image, not a scene store; create a scene with 'geohsi ingest {display(url)} --out SCENE.zarr'"
        )
    return True


def _is_class_map(path: Path | str) -> bool:
    """A map of ``geohsi classify``'s kind: a one-band integer GeoTIFF, or a Zarr store with ``classes``
    (anything else goes on to the scene reader, whose error names ``geohsi ingest``)."""
    from geohsi.storage import name, open_raster

    try:
        if Path(name(path)).suffix.lower() == ".zarr":
            import zarr

            return "classes" in zarr.open_group(str(path), mode="r")
        if Path(name(path)).suffix.lower() in (".tif", ".tiff"):
            with open_raster(path) as src:  # a URL's header through GDAL, no download
                return src.count == 1 and np.dtype(src.dtypes[0]).kind in "ui"
    except Exception:  # noqa: BLE001 - unreadable here: the scene reader gives the error
        return False
    return False


def _scene_extent(crs: Any, tf: Any, h: int, w: int) -> tuple[tuple[float, ...] | None, tuple[float, float] | None]:
    """``(bounds, resolution)`` of a georeferenced grid (left, bottom, right, top; x, y), else ``(None, None)``."""
    bounds = resolution = None
    if crs is not None:
        xs = sorted([tf.c, tf.c + tf.a * w])
        ys = sorted([tf.f, tf.f + tf.e * h])
        bounds = (xs[0], ys[0], xs[1], ys[1])
        resolution = (abs(tf.a), abs(tf.e))
    return bounds, resolution


def _grid(crs: Any, tf: Any, h: int, w: int) -> dict[str, Any]:
    """``crs``, ``georeferenced``, ``transform``, ``resolution`` and ``bounds`` of a grid, as :func:`info` shows them."""
    bounds, resolution = _scene_extent(crs, tf, h, w)
    return {
        "crs": None if crs is None else (f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.to_string()),
        "georeferenced": crs is not None,
        "transform": list(tuple(tf)[:6]),
        "resolution": None if resolution is None else list(resolution),
        "bounds": None if bounds is None else list(bounds),
    }


def _label_summary(ds: xr.Dataset) -> dict[str, Any] | None:
    """Pixel counts per class (with legend names and colours) of the scene's labels, or None without labels."""
    labels = None
    if "labels" in ds:
        lab = np.asarray(ds["labels"].values)
        counts = np.bincount(lab.reshape(-1).astype("int64"), minlength=1)
        named = {c.id: c for c in (Legend.from_attrs(ds["labels"].attrs) or ())}
        ids = set(named) | {int(i) for i in np.flatnonzero(counts) if i != 0}
        labels = {
            "classes": [
                {
                    "id": i,
                    "name": named[i].name if i in named else f"class_{i}",
                    "color": named[i].color if i in named else None,
                    "pixels": int(counts[i]) if i < counts.size else 0,
                }
                for i in sorted(ids)
            ],
            "labelled_pixels": int(counts[1:].sum()),
            "unlabelled_pixels": int(counts[0]),
        }
    return labels


def scene_info(path_or_ds: PathLike | xr.Dataset, *, stats: bool = True) -> dict[str, Any]:
    """Summarise a scene: what ``geohsi info`` prints.

    Args:
        path_or_ds: a scene store path or an opened scene.
        stats: compute the nodata fraction (reads the whole cube once); label counts are always computed.

    Returns:
        A JSON-serialisable dict with keys ``path``, ``variable``, ``shape`` ``[B, H, W]``, ``dtype``,
        ``chunks``, ``bands``, ``crs`` (string or ``None``), ``georeferenced``, ``transform`` (affine
        a..f), ``resolution`` (x, y map units or ``None``), ``bounds`` (left, bottom, right, top or
        ``None``), ``wavelength_range_nm`` (min, max or ``None``), ``bad_bands`` (1-based),
        ``band_table`` (bands, min/max nm, median spacing and median FWHM in nm, see
        :func:`geohsi.bands.band_summary`), ``band_check`` (``ok`` or what is wrong with the band table),
        ``nodata``, ``nodata_fraction`` (or ``None``), ``scale_factor``, ``add_offset``, ``units``, ``sensor``,
        ``acquisition_time``, ``source_files``, ``labels`` (``None`` or ``{"classes": [{"id",
        "name", "color", "pixels"}], "labelled_pixels", "unlabelled_pixels"}``).

    Raises:
        InputFormatError: the path is not a scene.
    """
    if isinstance(path_or_ds, xr.Dataset):
        ds, path = path_or_ds, path_or_ds.encoding.get("source")
    else:
        ds, path = open_scene(path_or_ds, check_band_table=False), str(path_or_ds)  # show an implausible table, do not refuse it
    v = cube(ds)
    b, h, w = (int(s) for s in v.shape)
    crs = scene_crs(ds)
    tf = ds.rio.transform()
    wl = np.asarray(ds["wavelength"].values, dtype="float64")
    known = wl[np.isfinite(wl)]
    good = np.asarray(ds["good_band"].values, bool)
    nodata_fraction = None
    if stats:
        nodata_fraction = float(1.0 - valid_mask(ds).mean().compute())
    labels = _label_summary(ds)
    chunks = tuple(int(c[0]) for c in v.chunks) if v.chunks else (b, h, w)
    return {
        "path": path,
        "variable": str(v.name),
        "shape": [b, h, w],
        "dtype": str(v.dtype),
        "chunks": list(chunks),
        "bands": b,
        **_grid(crs, tf, h, w),
        "wavelength_range_nm": [float(known.min()), float(known.max())] if known.size else None,
        "wavelengths_known": int(known.size),
        "band_table": band_summary(wl, ds["fwhm"].values),
        "band_check": band_check(wl, ds["fwhm"].values, str(path)),
        "bad_bands": [int(i) + 1 for i in np.flatnonzero(~good)],
        "nodata": nodata_value(ds),
        "nodata_fraction": nodata_fraction,
        "scale_factor": v.attrs.get("scale_factor"),
        "add_offset": v.attrs.get("add_offset"),
        "units": ds.attrs.get("units"),
        "sensor": ds.attrs.get("sensor"),
        "acquisition_time": ds.attrs.get("acquisition_time"),
        "source_files": list(ds.attrs.get("source_files", [])),
        "labels": labels,
    }


def _tally(block: np.ndarray, row_areas: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(ids, pixels, m²)`` of one chunk of a map (``row_areas``: each of its rows' pixel area)."""
    ids, inverse = np.unique(block, return_inverse=True)
    pixels = np.bincount(inverse.reshape(-1), minlength=ids.size)
    if row_areas is None:
        return ids, pixels, None
    m2 = np.bincount(inverse.reshape(-1), weights=np.repeat(row_areas, block.shape[1]), minlength=ids.size)
    return ids, pixels, m2


def _class_table(cmap: Any, stats: bool) -> tuple[list[dict[str, Any]], int]:
    """The map's classes (its legend's, then any other id found) with their pixels and hectares (``stats``), and the
    pixels of negative values, which are no class."""
    import dask

    from geohsi.export.maps import NODATA
    from geohsi.scene import grid_pixel_areas

    named = {c.id: c for c in (cmap.legend or ())}
    pixels: dict[int, int] = {}
    m2: dict[int, float] = {}
    areas, _ = grid_pixel_areas(cmap.crs, cmap.transform, cmap.shape)
    if stats:
        starts = np.cumsum((0, *cmap.data.chunks[0]))
        blocks = cmap.data.to_delayed()
        tasks = [dask.delayed(_tally)(blk, None if areas is None else areas[starts[i] : starts[i + 1]])
                 for i, row in enumerate(blocks) for blk in row]  # fmt: skip
        for ids, n, a in dask.compute(*tasks):
            for k, i in enumerate(ids.tolist()):
                pixels[i] = pixels.get(i, 0) + int(n[k])
                m2[i] = m2.get(i, 0.0) + (float(a[k]) if a is not None else 0.0)
    negative = {i: n for i, n in pixels.items() if i < NODATA}
    if negative:
        _warn_negative(cmap.path, negative)
    rows = []
    ids = sorted((set(named) | set(pixels)) - {NODATA} - set(negative))
    colours = filled_colors([named[i].color if i in named else None for i in ids], ids)
    for i, colour in zip(ids, colours, strict=True):
        row: dict[str, Any] = {"id": i, "name": named[i].name if i in named else f"class_{i}", "color": colour}
        if stats:
            row["pixels"] = pixels.get(i, 0)
            row["area_ha"] = None if areas is None else round(m2.get(i, 0.0) / 1e4, 4)
        rows.append(row)
    return rows, sum(negative.values())


def _warn_negative(path: Any, negative: dict[int, int]) -> None:
    """Negative values are no class (ids start at 1, 0 = nodata): most often a nodata value the file does not declare.
    They had been listed as classes ("class_-9999") with an area."""
    import warnings

    from geohsi.errors import GeohsiWarning

    first = min(negative)
    warnings.warn(
        f"map {path} holds negative values ({', '.join(f'{i}: {n:,} px' for i, n in sorted(negative.items())[:3])}), "
        f"which are no class and are left out of the table; if {first} marks missing pixels, declare it "
        f"(gdal_edit.py -a_nodata {first} MAP) before sample or assess, which refuse such maps",
        GeohsiWarning,
        stacklevel=3,
    )


def map_info(path: PathLike, *, stats: bool = True) -> dict[str, Any]:
    """Summarise a class map (a ``.tif``/``.zarr`` of ``geohsi classify``, or a one-band integer GeoTIFF).

    Args:
        path: the map.
        stats: count the pixels and hectares of each class (reads the map once, chunk by chunk).

    Returns:
        A JSON-serialisable dict with keys ``path``, ``kind``, ``shape`` ``[H, W]``, ``dtype``, ``crs``,
        ``georeferenced``, ``transform``, ``resolution``, ``bounds``, ``pixel_area`` (how areas are
        found), ``nodata`` (0), ``made_from`` (the bundle and scene it records, or ``None``),
        ``classes`` (``[{"id", "name", "color"}]``, with ``"pixels"`` and ``"area_ha"`` when ``stats``;
        geodesic per row for a geographic CRS, ``None`` for a pixel grid) and ``nodata_pixels``.

    Raises:
        InputFormatError: the path is not a class map.

    .. versionadded:: 0.3
    """
    from geohsi.export.class_maps import open_map
    from geohsi.export.maps import NODATA, read_identity

    cmap = open_map(path)
    h, w = cmap.shape
    classes, negative = _class_table(cmap, stats)
    nodata_pixels = h * w - sum(c["pixels"] for c in classes) - negative if stats else None
    return {
        "path": str(path),
        "kind": "class map (Zarr)" if Path(path).suffix.lower() == ".zarr" else "class map (GeoTIFF)",
        "shape": [h, w],
        "dtype": str(cmap.data.dtype),
        **_grid(cmap.crs, cmap.transform, h, w),
        "pixel_area": cmap.area_note,
        "nodata": NODATA,
        "made_from": read_identity(path),
        "classes": classes,
        "nodata_pixels": nodata_pixels,
    }


def band_check(wavelength: np.ndarray, fwhm: np.ndarray, source: str) -> str:
    """``ok``, or why the band table is refused (and how to re-ingest), or what looks odd about it."""
    return band_table_problem(wavelength, fwhm, source, stored=True) or broad_width_warning(wavelength, fwhm, source) or "ok"


def bundle_info(path: str | os.PathLike) -> dict[str, Any]:
    """A bundle as ``geohsi info`` shows it: one labelled line per aspect, then its classes.

    Args:
        path: a bundle directory.

    Returns:
        An ordered mapping of one-line strings (``model``, ``head``, ``backbone``, ``spectral``,
        ``maps``, ``split``, ``training``, ``test metrics``, the parameter rows of
        :class:`~geohsi.adapters.AdapterSummary`) and ``classes`` (``[{id, name, color}]``).

    Raises:
        InputFormatError / ModelError: not a readable bundle.
    """
    b = load_bundle(path)
    m = b.meta
    cfg, spec, tc = m.model_config, m.spectral, m.train_config
    described: dict[str, Any] = {
        "created": m.created,
        "model": f"dim {cfg['embed_dim']}, depth {cfg['depth']}, heads {cfg['num_heads']}, input {m.head.input_size} px",
        "head": _head_line(m.head),
        "backbone": m.backbone.name
        + (f" (pretrained on {m.backbone.pretrained_on} channels)" if m.backbone.pretrained_on else ""),
        "spectral": f"{spec['reduction']} → {len(spec['channel_names'])} channels, "
        f"{spec['normalizer']['method']} normalisation, {spec['input_band_count']} input bands",
        "maps": b.transform.describe_inputs(),
        "split": tc.get("split"),
        "training": f"{tc.get('epochs')} epoch{'' if tc.get('epochs') == 1 else 's'}, lr {tc.get('lr')}, seed {tc.get('seed')}"
        + (f", sensor augmentation: the scene and {tc['sensor_augment']} random sensors" if tc.get("sensor_augment") else ""),
        "test metrics": _metrics_line(m.metrics),
    }
    described.update(bundle_parameters(b).rows())
    described["classes"] = m.classes.to_list()
    return described


def bundle_parameters(bundle: Bundle) -> AdapterSummary:
    """The parameter summary of a bundle: the adapter and head counted on its model, and its file size.

    The model is rebuilt on the ``meta`` device (no weights read or allocated) and the recorded adapter
    applied to it, so the counts are those ``geohsi train`` printed.

    Args:
        bundle: a loaded :class:`~geohsi.bundle.Bundle`.

    Returns:
        An :class:`~geohsi.adapters.AdapterSummary` with ``file_bytes`` = the size of ``adapter/``.
    """
    from geohsi.models import SpectralGPTConfig

    m = bundle.meta
    with torch.device("meta"):
        model = m.head.build_model(SpectralGPTConfig.from_dict(m.model_config), len(m.classes))
        summary = adapter_summary(model, m.adapter)
    size = sum(f.stat().st_size for f in (bundle.path / ADAPTER_DIR).rglob("*") if f.is_file())
    return dataclasses.replace(summary, file_bytes=size)


def bundle_record(path: str | os.PathLike) -> dict[str, Any]:
    """Everything a bundle records, as JSON (``geohsi info BUNDLE --json``).

    Args:
        path: a bundle directory.

    Returns:
        Its ``bundle.json`` document, with ``parameters`` added: the
        :meth:`~geohsi.adapters.AdapterSummary.to_dict` of :func:`bundle_parameters`.

    Raises:
        InputFormatError / ModelError: not a readable bundle.
    """
    b = load_bundle(path)
    return {**b.meta.to_dict(), "parameters": bundle_parameters(b).to_dict()}


def _head_line(head: Any) -> str:
    """The head in one line; a head that resizes its input says from what (the patch window)."""
    line = head.describe()
    mlm = head.mlm_input(1)
    return f"{line}: {mlm['description']}" if mlm.get("resize_type") else line


def _metrics_line(metrics: dict[str, Any]) -> str | None:
    """``OA 0.812, AA 0.774, κ 0.786 on 1,234 test pixels`` (``None`` without test metrics)."""
    names = (("overall_accuracy", "OA"), ("average_accuracy", "AA"), ("kappa", "κ"))
    parts = [f"{label} {metrics[k]:.3f}" for k, label in names if metrics.get(k) is not None]
    if not parts:
        return None
    n = metrics.get("n_test")
    return ", ".join(parts) + (f" on {int(n):,} test pixels" if n is not None else "")


def describe_model(
    name: str, *, adapter: str | None = None, num_classes: int = 16, input_size: int = 32, rank: int = 8, head: str = "dense"
) -> dict[str, Any]:
    """Parameter counts and geometry of config ``name`` at ``input_size``, optionally with an adapter.

    Counts come twice: from the closed-form formulas and from the model built on the ``meta``
    device; with an adapter, the built model's rows are those of :class:`~geohsi.adapters.AdapterSummary`
    (what ``geohsi train`` prints and ``geohsi info BUNDLE`` shows).

    Args:
        name: ``tiny``, ``small`` or ``base``.
        adapter: an adapter method (``lora``, ``krona+``, …, ``full``, ``linear``) or ``None``.
        num_classes: classes of the head.
        input_size: input edge in pixels.
        rank: LoRA/LoKr rank.
        head: the model mode whose head is counted: ``dense`` (a segmentation decoder, the default
            of ``geohsi train``) or ``patch`` (a classification head).

    Returns:
        An ordered mapping for printing.

    Raises:
        UsageError: an unknown config, adapter or head.
    """
    from geohsi.heads import get_head
    from geohsi.models import count_flops, count_parameters, resolve_model_config

    cfg = resolve_model_config(name, img_size=input_size)
    mode = get_head(head).from_options(window=15, input_size=input_size)  # the window does not change any weight
    with torch.device("meta"):
        model = mode.build_model(cfg, num_classes)
    enc_built = sum(p.numel() for p in model.encoder.parameters())
    head_built = sum(p.numel() for p in model.head.parameters())
    described: dict[str, Any] = {
        "config": f"{name}: dim {cfg.embed_dim}, depth {cfg.depth}, heads {cfg.num_heads}, mlp ×{cfg.mlp_ratio:g}",
        "input": f"{cfg.num_bands} bands × {input_size}×{input_size} px, tubelets {cfg.t_patch}×{cfg.patch_size}×{cfg.patch_size}",
        "tokens": cfg.num_tokens,
        "encoder params (formula)": f"{count_parameters(cfg):,}",
        "encoder params (built)": f"{enc_built:,}",
        f"{head} head params ({num_classes} classes)": f"{head_built:,}",
        "GFLOP per sample (forward)": round(count_flops(cfg) / 1e9, 3),
    }
    if adapter is not None:
        from geohsi.adapters import apply_adapter, count_adapter_parameters, method_options

        opts = method_options(adapter, rank=rank)
        with torch.device("meta"):
            summary = apply_adapter(model, adapter, "qv", **opts)
        described.update(summary.rows())
        formula = count_adapter_parameters(cfg, adapter, "qv", **opts)
        described["adapter weights (formula)"] = f"{formula:,}"
        described["total trainable (formula + head)"] = f"{formula + head_built:,}"
    return described


__all__ = ["bundle_info", "bundle_parameters", "bundle_record", "describe_model", "info", "map_info", "scene_info"]
