"""STAC: search catalogues for scenes, turn items into scenes, describe bundles and maps as items.

* :func:`search` — query a STAC API (pystac-client) by collection, bbox/intersects, datetime and
  CQL2 filter, following ``next`` pages up to ``max_items``; :func:`item_summary` is the row
  ``geohsi search`` prints. Catalogue names resolve through :func:`resolve_catalog`: built-in
  :data:`PRESETS` plus a user file ``$XDG_CONFIG_HOME/geohsi/catalogs.toml`` (``GEOHSI_CATALOGS``
  overrides the path).
* :func:`ingest_item` / :func:`build_item_scene` — one or more items (tiles) → the standard scene.
  Band metadata comes from the STAC document: STAC 1.1 ``bands`` (``eo:center_wavelength``,
  ``eo:full_width_half_max``, ``nodata``, ``data_type``, ``raster:scale``/``raster:offset``),
  or ``eo:bands`` (µm) + ``raster:bands`` (1.0 extensions). The grid comes from the projection
  extension (``proj:code``/``proj:epsg``/``proj:wkt2``, ``proj:transform``, ``proj:shape``), else
  from the asset's header. Pixels are read lazily with rasterio windowed reads straight from the
  asset hrefs (local paths, ``file://``, ``http(s)://`` through GDAL's /vsicurl/). Reading the
  files on their own grid (no warping) is what makes the scene identical, value for value, to
  ``geohsi ingest`` of the same GeoTIFFs; odc-stac/stackstac resample onto a GeoBox of their own
  choosing, which is the right tool for mixed grids but not for an exact, reproducible ingest.
* :func:`bundle_item` — a model bundle as a STAC Item with the Machine Learning Model (MLM)
  extension; :func:`map_item` — a classification map as an Item with the classification and
  label extensions.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import xarray as xr
from affine import Affine

from geohsi.errors import (
    BandMismatchError,
    DataError,
    GeohsiError,
    GeoreferenceError,
    InputFormatError,
    ModelError,
    OutputError,
    UsageError,
)
from geohsi.scene import DEFAULT_CHUNK, make_scene

PathLike = str | os.PathLike

#: Default network timeout (seconds) of every request to a STAC API.
DEFAULT_TIMEOUT = 20.0

#: Built-in catalogue presets: name → ``{"url", "collection", "description"}``. Not contacted by
#: the tests; a ``catalogs.toml`` entry of the same name overrides one.
PRESETS: dict[str, dict[str, str]] = {
    "dlr-enmap": {
        "url": "https://geoservice.dlr.de/eoc/ogc/stac/v1/",
        "collection": "ENMAP_HSI_L2A",
        "description": "DLR EOC STAC: EnMAP HSI L2A metadata (data access needs an EnMAP account)",
    },
    "emit": {
        "url": "https://cmr.earthdata.nasa.gov/stac/LPCLOUD",
        "collection": "EMITL2ARFL_001",
        "description": "NASA CMR-STAC LP DAAC: EMIT L2A reflectance (netCDF swaths with GLT; search only)",
    },
    "planetary-computer": {
        "url": "https://planetarycomputer.microsoft.com/api/stac/v1",
        "collection": "",
        "description": "Microsoft Planetary Computer STAC (assets need SAS signing)",
    },
    "earth-search": {
        "url": "https://earth-search.aws.element84.com/v1",
        "collection": "",
        "description": "Element 84 Earth Search (Sentinel-2, Landsat; multispectral)",
    },
}

EXT_EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
EXT_RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
EXT_PROJ = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
EXT_MLM = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
EXT_CLASSIFICATION = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
EXT_LABEL = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
EXT_FILE = "https://stac-extensions.github.io/file/v2.1.0/schema.json"

#: The vendored MLM JSON schema (see ``geohsi/schemas/README.md``).
MLM_SCHEMA_PATH = Path(__file__).parent / "schemas" / "mlm-v1.4.0.schema.json"

_NETCDF_TYPES = ("application/x-netcdf", "application/netcdf", "application/x-hdf5", "application/x-hdf")


def _require_client():
    try:
        import pystac_client  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the install
        raise UsageError("STAC support needs pystac-client; install it with: pip install 'geohsi[stac]'") from e
    import pystac_client

    return pystac_client


# --------------------------------------------------------------------------- catalogues


def catalogs_path() -> Path:
    """Where user catalogue presets live: ``$GEOHSI_CATALOGS`` or ``$XDG_CONFIG_HOME/geohsi/catalogs.toml``."""
    env = os.environ.get("GEOHSI_CATALOGS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "geohsi" / "catalogs.toml"


def load_catalogs() -> dict[str, dict[str, str]]:
    """Built-in :data:`PRESETS` merged with the user's ``catalogs.toml`` (user entries win).

    The file holds one table per catalogue::

        [catalogs.mine]
        url = "https://stac.example.org/api"
        collection = "hyperspectral-l2a"     # optional default collection
        description = "our pgstac"

    Returns:
        name → ``{"url", "collection", "description", "source"}``.

    Raises:
        UsageError: the file is not valid TOML or an entry lacks ``url``.
    """
    out = {k: {**v, "source": "built-in"} for k, v in PRESETS.items()}
    path = catalogs_path()
    if not path.is_file():
        return out
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"catalogue file {path} is not valid TOML ({e}); fix it or remove it") from e
    for name, entry in (doc.get("catalogs") or {}).items():
        if not isinstance(entry, dict) or not entry.get("url"):
            raise UsageError(f"catalogue {name!r} in {path} has no url; add url = \"https://…\" under [catalogs.{name}]")
        out[name] = {"url": str(entry["url"]), "collection": str(entry.get("collection", "")),
                     "description": str(entry.get("description", "")), "source": str(path)}
    return out


def resolve_catalog(name_or_url: str, collection: str | None = None) -> tuple[str, str | None]:
    """Turn a preset name or a URL into ``(api_url, collection)``.

    Args:
        name_or_url: an ``http(s)://`` API root, or a name from :func:`load_catalogs`.
        collection: the collection asked for; ``None`` takes the preset's default.

    Returns:
        The API URL and the collection (``None`` when neither gives one).

    Raises:
        UsageError: an unknown name.
    """
    if re.match(r"^https?://", name_or_url):
        return name_or_url, collection
    cats = load_catalogs()
    if name_or_url not in cats:
        raise UsageError(
            f"--url {name_or_url!r} is neither an http(s) URL nor a catalogue preset (known: {', '.join(sorted(cats))}); "
            f"give the API URL or add it to {catalogs_path()}"
        )
    entry = cats[name_or_url]
    return entry["url"], collection or entry.get("collection") or None


# --------------------------------------------------------------------------- search


def _api_error(url: str, e: Exception) -> GeohsiError:
    text = " ".join(str(e).split())
    if any(s in text for s in ("Connection refused", "Max retries", "timed out", "Timeout", "Name or service", "NewConnectionError")):
        return InputFormatError(f"STAC API {url} cannot be reached ({type(e).__name__}); check the URL and the network, or raise --timeout")
    return InputFormatError(f"STAC API {url} failed: {text[:200]}; check the URL and the query")


def open_api(url: str, *, timeout: float = DEFAULT_TIMEOUT):
    """Open a STAC API root with pystac-client, failing fast and in one line.

    Args:
        url: the API root (landing page) URL.
        timeout: seconds per request.

    Returns:
        A :class:`pystac_client.Client`.

    Raises:
        InputFormatError: the API cannot be reached or is not a STAC API.
    """
    pystac_client = _require_client()
    from pystac_client.stac_api_io import StacApiIO

    try:
        # no retries: an unreachable API must fail within one timeout, not after several
        io = StacApiIO(timeout=timeout, max_retries=None)
        return pystac_client.Client.open(url, stac_io=io)
    except GeohsiError:
        raise
    except Exception as e:
        raise _api_error(url, e) from e


def _check_collection(client: Any, url: str, collection: str) -> None:
    try:
        if client.get_collection(collection) is not None:
            return
    except Exception as e:
        text = str(e)
        if "404" not in text and "not found" not in text.lower() and "NotFound" not in text:
            raise _api_error(url, e) from e
    try:
        known = sorted(c.id for c in client.get_collections())
    except Exception:
        known = []
    shown = ", ".join(known[:8]) + (" …" if len(known) > 8 else "")
    raise InputFormatError(f"collection {collection!r} not found at {url} (available: {shown or 'none listed'}); pick one with --collection")


def parse_bbox(value: str | Sequence[float]) -> list[float]:
    """Parse ``W,S,E,N`` (degrees, WGS84) into four floats.

    Raises:
        UsageError: not four numbers, or W > E / S > N / outside ±180, ±90.
    """
    try:
        parts = [float(v) for v in (value.split(",") if isinstance(value, str) else value)]
    except (TypeError, ValueError) as e:
        raise UsageError(f"--bbox {value!r} must be four numbers W,S,E,N in degrees") from e
    if len(parts) != 4:
        raise UsageError(f"--bbox {value!r} must be four numbers W,S,E,N in degrees, got {len(parts)}")
    w, s, e, n = parts
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= n <= 90):
        raise UsageError(f"--bbox {value!r} is not W,S,E,N in degrees (lon −180..180, lat −90..90, S ≤ N)")
    return parts


def load_geometry(path: PathLike) -> dict[str, Any]:
    """Read a GeoJSON file (geometry, Feature, or FeatureCollection of one feature) for ``--intersects``.

    Raises:
        InputFormatError: missing file, not JSON, or no single geometry.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError as e:
        raise InputFormatError(f"--intersects file {p} does not exist; give a GeoJSON file") from e
    except (OSError, ValueError) as e:
        raise InputFormatError(f"--intersects file {p} is not JSON ({e}); give a GeoJSON geometry") from e
    if doc.get("type") == "FeatureCollection":
        feats = doc.get("features") or []
        if len(feats) != 1:
            raise InputFormatError(f"--intersects file {p} holds {len(feats)} features; give exactly one geometry")
        doc = feats[0]
    if doc.get("type") == "Feature":
        doc = doc.get("geometry") or {}
    if doc.get("type") not in ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"):
        raise InputFormatError(f"--intersects file {p} has no GeoJSON geometry; give a Polygon/MultiPolygon")
    return doc


def _parse_filter(filter: str | dict | None) -> tuple[Any, str | None]:
    if filter is None or isinstance(filter, dict):
        return filter, None if filter is None else "cql2-json"
    text = filter.strip()
    if text.startswith("{"):
        try:
            return json.loads(text), "cql2-json"
        except ValueError as e:
            raise UsageError(f"--filter {filter!r} looks like CQL2-JSON but is not JSON ({e})") from e
    return text, "cql2-text"


def search(
    url: str,
    collection: str | None = None,
    *,
    bbox: str | Sequence[float] | None = None,
    intersects: PathLike | dict | None = None,
    datetime: str | None = None,
    query: Sequence[str] | dict | None = None,
    filter: str | dict | None = None,
    ids: Sequence[str] | None = None,
    max_items: int | None = 100,
    page_size: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    require_items: bool = True,
) -> list[Any]:
    """Search a STAC API for items, following ``next`` pages.

    Args:
        url: API root URL or a catalogue preset name (see :func:`resolve_catalog`).
        collection: the collection to search (checked to exist first).
        bbox: ``W,S,E,N`` in degrees.
        intersects: a GeoJSON geometry (dict) or a file holding one.
        datetime: an instant or ``A/B`` interval (RFC 3339, open ends ``..``).
        query: STAC query-extension expressions, e.g. ``["eo:cloud_cover<20"]``.
        filter: a CQL2 filter, text (``"eo:cloud_cover < 20"``) or JSON.
        ids: restrict to these item ids.
        max_items: stop after this many items (``None`` = all).
        page_size: items per request (the server's default when ``None``).
        timeout: seconds per request.
        require_items: raise :class:`DataError` when nothing matches.

    Returns:
        ``pystac.Item`` objects in the server's order.

    Raises:
        UsageError: bad bbox/filter, both bbox and intersects.
        InputFormatError: the API is unreachable or the collection does not exist.
        DataError: nothing matches and ``require_items``.
    """
    api, collection = resolve_catalog(url, collection)
    if bbox is not None and intersects is not None:
        raise UsageError("give either --bbox or --intersects, not both")
    bb = None if bbox is None else parse_bbox(bbox)
    geom = load_geometry(intersects) if isinstance(intersects, (str, os.PathLike)) else intersects
    flt, flt_lang = _parse_filter(filter)
    if max_items is not None and max_items <= 0:
        raise UsageError(f"--max-items must be positive, got {max_items}")
    client = open_api(api, timeout=timeout)
    if collection:
        _check_collection(client, api, collection)
    kwargs: dict[str, Any] = {}
    if flt is not None:
        kwargs.update(filter=flt, filter_lang=flt_lang)
        if flt_lang == "cql2-text":
            kwargs["method"] = "GET"  # POST bodies carry CQL2-JSON only; text travels as a query parameter
    if query:
        kwargs["query"] = list(query) if not isinstance(query, dict) else query
    try:
        result = client.search(
            collections=[collection] if collection else None, bbox=bb, intersects=geom, datetime=datetime,
            ids=list(ids) if ids else None, max_items=max_items, limit=page_size, **kwargs,
        )
        items = list(result.items())
    except GeohsiError:
        raise
    except Exception as e:
        if "datetime" in str(e).lower() and datetime is not None:
            raise UsageError(f"--datetime {datetime!r} is not an RFC 3339 instant or A/B interval ({e})") from e
        raise _api_error(api, e) from e
    if not items and require_items:
        what = ", ".join(
            f"{k} {v}" for k, v in (("bbox", bbox), ("intersects", "geometry" if geom else None), ("datetime", datetime),
                                    ("filter", filter), ("query", query), ("ids", ids)) if v
        )
        raise DataError(f"no items in collection {collection or '(all)'} at {api} match {what or 'the search'}; widen the bbox/datetime or drop the filter")
    return items


# --------------------------------------------------------------------------- band metadata


@dataclass(frozen=True)
class BandSource:
    """One scene band: where its pixels are and what they mean.

    Attributes:
        asset: the asset key. href: the asset's href. index: 1-based band within the asset file.
        name: band name. wavelength, fwhm: nm (NaN unknown). nodata/scale/offset/data_type: raster metadata.
    """

    asset: str
    href: str
    index: int
    name: str | None
    wavelength: float
    fwhm: float
    nodata: float | None
    scale: float | None
    offset: float | None
    data_type: str | None
    good: bool


def _um_to_nm(v: Any) -> float:
    # STAC gives µm; round away the float noise of the unit change (1e-6 nm ≪ any band width)
    return float("nan") if v is None else round(float(v) * 1000.0, 6)


def _asset_bands(item: Any, key: str, asset: Any) -> list[BandSource]:
    """Bands of one asset from STAC 1.1 ``bands`` or ``eo:bands`` + ``raster:bands``."""
    d = asset.to_dict() if hasattr(asset, "to_dict") else dict(asset)
    href = d["href"]
    if not urlparse(href).scheme and not os.path.isabs(href) and hasattr(asset, "get_absolute_href"):
        # only relative hrefs are resolved against the item; pystac would turn an absolute local path
        # into a path on the API's host
        href = asset.get_absolute_href() or href
    props = item.properties if hasattr(item, "properties") else item.get("properties", {})
    bands11 = d.get("bands")
    eo = d.get("eo:bands")
    raster = d.get("raster:bands")
    if bands11 is None and eo is None and raster is None:
        return []
    n = max(len(x) for x in (bands11, eo, raster) if x is not None)
    out = []
    for i in range(n):
        b = (bands11 or [{}] * n)[i] if bands11 and i < len(bands11) else {}
        e = eo[i] if eo and i < len(eo) else {}
        r = raster[i] if raster and i < len(raster) else {}
        wl = b.get("eo:center_wavelength", e.get("center_wavelength"))
        fw = b.get("eo:full_width_half_max", e.get("full_width_half_max"))
        nodata = b.get("nodata", r.get("nodata", d.get("nodata", props.get("nodata"))))
        if isinstance(nodata, str):  # STAC allows "nan", "inf", "-inf"
            nodata = float(nodata)
        scale = b.get("raster:scale", r.get("scale"))
        offset = b.get("raster:offset", r.get("offset"))
        good = b.get("geohsi:good_band", e.get("geohsi:good_band", True))
        out.append(BandSource(
            asset=key, href=href, index=i + 1, name=b.get("name", e.get("name", r.get("name"))),
            wavelength=_um_to_nm(wl), fwhm=_um_to_nm(fw), nodata=None if nodata is None else float(nodata),
            scale=None if scale is None else float(scale), offset=None if offset is None else float(offset),
            data_type=b.get("data_type", r.get("data_type", d.get("data_type"))), good=bool(good),
        ))
    return out


def spectral_bands(item: Any, assets: Sequence[str] | None = None) -> list[BandSource]:
    """The spectral bands of an item in scene order (asset order, then band order within an asset).

    Args:
        item: a ``pystac.Item``.
        assets: asset keys to use; default: every asset whose bands carry a centre wavelength.

    Returns:
        One :class:`BandSource` per band.

    Raises:
        InputFormatError: no spectral metadata, a netCDF/HDF swath asset, or an unknown asset key.
    """
    for key, a in item.assets.items():
        mt = (a.media_type or "").lower()
        if (assets is None or key in assets) and (any(t in mt for t in _NETCDF_TYPES) or a.href.lower().endswith((".nc", ".nc4", ".h5", ".he5"))):
            if "data" in (a.roles or []) or assets is not None or len(item.assets) == 1:
                raise InputFormatError(
                    f"item {item.id} asset {key!r} is netCDF/HDF ({a.href.rsplit('/', 1)[-1]}), e.g. an EMIT swath that needs its GLT "
                    "to be orthorectified; STAC ingest reads GeoTIFF/COG assets only — download and orthorectify it, then 'geohsi ingest FILE'"
                )
    keys = list(item.assets) if assets is None else list(assets)
    missing = [k for k in keys if k not in item.assets]
    if missing:
        raise InputFormatError(f"item {item.id} has no asset {missing[0]!r} (assets: {', '.join(item.assets)}); fix --assets")
    bands: list[BandSource] = []
    for k in keys:
        ab = _asset_bands(item, k, item.assets[k])
        if assets is None:
            ab = ab if ab and all(math.isfinite(b.wavelength) for b in ab) else []
        bands.extend(ab)
    if not bands and "eo:bands" in item.properties and len(keys) >= 1:
        # STAC 1.0 items may list eo:bands on the item for a single data asset
        data = [k for k in keys if "data" in (item.assets[k].roles or [])] or keys[:1]
        if len(data) == 1:
            fake = {"href": item.assets[data[0]].href,
                    "eo:bands": item.properties["eo:bands"], "raster:bands": item.properties.get("raster:bands")}
            bands = [b for b in _asset_bands(item, data[0], {k: v for k, v in fake.items() if v is not None})]
    if not bands or not any(math.isfinite(b.wavelength) for b in bands):
        raise InputFormatError(
            f"item {item.id} has no spectral band metadata (no asset with bands/eo:bands giving center wavelengths); "
            "it cannot become a hyperspectral scene — pick a spectral item or ingest the file with --wavelengths"
        )
    return bands


# --------------------------------------------------------------------------- grid


@dataclass(frozen=True)
class _Tile:
    item_id: str
    crs: Any
    transform: Affine
    height: int
    width: int
    dtype: str
    bands: tuple[BandSource, ...]


def _gdal_path(href: str) -> str:
    u = urlparse(href)
    if u.scheme == "file":
        return u.path
    return href  # local path, or http(s)/s3 URLs that rasterio hands to GDAL's virtual file systems


def _tile(item: Any, bands: list[BandSource]) -> _Tile:
    import rasterio
    from rasterio.crs import CRS

    first = item.assets[bands[0].asset].to_dict()
    props = item.properties

    def get(key: str) -> Any:
        return first.get(key, props.get(key))

    code = get("proj:code") or (f"EPSG:{get('proj:epsg')}" if get("proj:epsg") else None)
    wkt = get("proj:wkt2") or get("proj:projjson")
    tf, shape = get("proj:transform"), get("proj:shape")
    dtypes = {b.data_type for b in bands}
    crs = None
    try:
        if code:
            crs = CRS.from_user_input(code)
        elif wkt:
            crs = CRS.from_user_input(wkt)
    except Exception as e:
        raise GeoreferenceError(f"item {item.id} has an unreadable proj CRS {code or 'wkt2'} ({e}); fix the item's projection fields") from e
    if crs is None or tf is None or shape is None or None in dtypes or len(dtypes) > 1:
        # the item does not say everything: read the asset's header (no pixels)
        try:
            with rasterio.open(_gdal_path(bands[0].href)) as src:
                crs = crs or src.crs
                tf = tf or list(src.transform)[:6]
                shape = shape or [src.height, src.width]
                header_dtype = src.dtypes[0]
        except Exception as e:
            raise InputFormatError(f"cannot read asset {bands[0].href} of item {item.id}: {' '.join(str(e).split())[:150]}; check the href") from e
        if None in dtypes:
            dtypes = {header_dtype}
    if crs is None:
        raise GeoreferenceError(f"item {item.id} has no CRS (no proj:code/proj:epsg and none in the asset); it cannot be placed on a map grid")
    if len(dtypes) > 1:
        raise BandMismatchError(f"item {item.id} mixes band data types {sorted(dtypes)}; geohsi scenes hold one data type")
    t = Affine(*[float(v) for v in list(tf)[:6]])
    if t.b != 0 or t.d != 0:
        raise GeoreferenceError(f"item {item.id} has a rotated/sheared grid; warp it to north-up first (gdalwarp)")
    return _Tile(item.id, crs, t, int(shape[0]), int(shape[1]), str(dtypes.pop()), tuple(bands))


class _ItemMosaic:
    """Array-like ``[B, H, W]`` over aligned item tiles; ``__getitem__`` reads one window per asset."""

    def __init__(self, tiles: list[_Tile], transform: Affine, height: int, width: int, fill: float | None) -> None:
        self.tiles = []
        for t in tiles:
            r0 = int(round((t.transform.f - transform.f) / transform.e))
            c0 = int(round((t.transform.c - transform.c) / transform.a))
            self.tiles.append(([(b.href, b.index) for b in t.bands], r0, c0, t.height, t.width))
        self.dtype = np.dtype(tiles[0].dtype)
        self.shape = (len(tiles[0].bands), height, width)
        self.ndim = 3
        self.fill = fill

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        import rasterio
        from rasterio.windows import Window

        b, ys, xs = (k.indices(n) for k, n in zip(key, self.shape, strict=True))
        wanted = list(range(*b))
        out = np.full((len(wanted), ys[1] - ys[0], xs[1] - xs[0]), self.fill if self.fill is not None else 0, dtype=self.dtype)
        for sources, r0, c0, h, w in self.tiles:
            ry0, ry1 = max(ys[0], r0), min(ys[1], r0 + h)
            cx0, cx1 = max(xs[0], c0), min(xs[1], c0 + w)
            if ry0 >= ry1 or cx0 >= cx1:
                continue
            win = Window(cx0 - c0, ry0 - r0, cx1 - cx0, ry1 - ry0)
            # one open + one read per asset file: group the wanted bands by href, keeping their slots
            groups: dict[str, tuple[list[int], list[int]]] = {}
            for slot, band in enumerate(wanted):
                href, idx = sources[band]
                g = groups.setdefault(href, ([], []))
                g[0].append(slot)
                g[1].append(idx)
            for href, (slots, idxs) in groups.items():
                try:
                    with rasterio.open(_gdal_path(href)) as src:
                        block = src.read(idxs, window=win)
                except Exception as e:
                    raise InputFormatError(f"cannot read asset {href} window {win}: {' '.join(str(e).split())[:150]}; check the href") from e
                out[slots, ry0 - ys[0] : ry1 - ys[0], cx0 - xs[0] : cx1 - xs[0]] = block
        return out


def _one(values: set, what: str, item_id: str, fix: str) -> Any:
    if len(values) > 1:
        raise BandMismatchError(f"item {item_id} has several {what} values {sorted(values, key=str)[:4]}; {fix}")
    return values.pop() if values else None


def build_item_scene(
    items: Any | Sequence[Any], *, assets: Sequence[str] | None = None, chunks: int = DEFAULT_CHUNK,
    quantity: str = "reflectance",
) -> xr.Dataset:
    """One or more STAC items (tiles of one product) → a lazy scene Dataset.

    Args:
        items: ``pystac.Item`` objects; several are mosaicked onto the union of their grids
            (later items win where tiles overlap), uncovered pixels are nodata.
        assets: asset keys holding the bands (default: every asset with spectral band metadata);
            one multi-band asset or one asset per band.
        chunks: spatial chunk edge in pixels of the lazy cube.
        quantity: ``"reflectance"`` or ``"radiance"``.

    Returns:
        The scene ``[B, H, W]`` in the assets' dtype with wavelength/fwhm (nm), nodata, scale/offset,
        CRS and transform from the items.

    Raises:
        InputFormatError: no spectral metadata, netCDF swath assets, unreadable assets.
        GeoreferenceError: tiles in different CRSs, resolutions or off one pixel grid; no CRS.
        BandMismatchError: tiles with other bands; several nodata/scale values in one item.
    """
    from dask.base import tokenize

    from geohsi.io import lazy_cube

    items = [items] if not isinstance(items, (list, tuple)) else list(items)
    if not items:
        raise UsageError("no STAC items given; pass at least one item id or URL")
    tiles = [_tile(it, spectral_bands(it, assets)) for it in items]
    ref = tiles[0]
    for t in tiles[1:]:
        if t.crs != ref.crs:
            raise GeoreferenceError(f"item {t.item_id} is in {t.crs} but {ref.item_id} in {ref.crs}; ingest items of one CRS (one UTM zone)")
        if not (math.isclose(t.transform.a, ref.transform.a) and math.isclose(t.transform.e, ref.transform.e)):
            raise GeoreferenceError(f"item {t.item_id} has pixel size ({t.transform.a}, {t.transform.e}) but {ref.item_id} has ({ref.transform.a}, {ref.transform.e}); ingest items of one resolution")
        col = (t.transform.c - ref.transform.c) / ref.transform.a
        row = (t.transform.f - ref.transform.f) / ref.transform.e
        if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
            raise GeoreferenceError(f"item {t.item_id} is off {ref.item_id}'s pixel grid; ingest items on one grid")
        if len(t.bands) != len(ref.bands) or not np.allclose([b.wavelength for b in t.bands], [b.wavelength for b in ref.bands], equal_nan=True):
            raise BandMismatchError(f"item {t.item_id} has other bands than {ref.item_id}; mosaic items of one product")
        if t.dtype != ref.dtype:
            raise BandMismatchError(f"item {t.item_id} is {t.dtype} but {ref.item_id} is {ref.dtype}; mosaic items of one product")
    bands = ref.bands
    nodata = _one({b.nodata for b in bands if b.nodata is not None}, "nodata", ref.item_id, "geohsi scenes take one nodata value")
    scale = _one({b.scale for b in bands if b.scale is not None}, "raster scale", ref.item_id, "per-band scales are not supported; rescale the product first")
    offset = _one({b.offset for b in bands if b.offset is not None}, "raster offset", ref.item_id, "per-band offsets are not supported; rescale the product first")
    a, e = ref.transform.a, ref.transform.e
    left = min(t.transform.c for t in tiles)
    top = max(t.transform.f for t in tiles) if e < 0 else min(t.transform.f for t in tiles)
    transform = Affine(a, 0.0, left, 0.0, e, top)
    width = max(round((t.transform.c - left) / a) + t.width for t in tiles)
    height = max(round((t.transform.f - top) / e) + t.height for t in tiles)
    if nodata is None:
        cover = np.zeros((height, width), bool)
        for t in tiles:
            r0, c0 = round((t.transform.f - top) / e), round((t.transform.c - left) / a)
            cover[r0 : r0 + t.height, c0 : c0 + t.width] = True
        if not cover.all():
            dt = np.dtype(ref.dtype)
            nodata = float("nan") if dt.kind == "f" else float(np.iinfo(dt).min if dt.kind == "i" else np.iinfo(dt).max)
    mosaic = _ItemMosaic(tiles, transform, height, width, nodata)
    token = tokenize([(it.id, it.properties.get("updated"), [(b.href, b.index) for b in t.bands]) for it, t in zip(items, tiles, strict=True)], chunks)
    arr = lazy_cube(mosaic, (-1, chunks, chunks), f"stac-{token}")
    first = items[0]
    attrs: dict[str, Any] = {
        "source_files": sorted({b.href for t in tiles for b in t.bands}),
        "source_format": "stac",
        "stac_items": [it.id for it in items],
    }
    when = first.datetime or first.common_metadata.start_datetime
    if when is not None:
        attrs["acquisition_time"] = when.isoformat()
    sensor = first.properties.get("instruments") or first.properties.get("platform")
    if sensor:
        attrs["sensor"] = sensor if isinstance(sensor, str) else ",".join(sensor)
    names = [b.name for b in bands]
    return make_scene(
        arr, var=quantity, wavelength=[b.wavelength for b in bands], fwhm=[b.fwhm for b in bands],
        good_band=[b.good for b in bands], crs=ref.crs, transform=transform, nodata=nodata,
        scale_factor=scale if scale not in (None, 1.0) else None, add_offset=offset if offset not in (None, 0.0) else None,
        band_names=names if all(names) else None, attrs=attrs,
    )


def _is_location(ref: str) -> bool:
    return bool(re.match(r"^(https?|file)://", ref)) or ref.endswith(".json") or os.path.sep in ref


def fetch_items(
    refs: str | Sequence[str], *, url: str | None = None, collection: str | None = None, timeout: float = DEFAULT_TIMEOUT,
) -> list[Any]:
    """Resolve item ids (through a STAC API) or item URLs/files into ``pystac.Item`` objects.

    Args:
        refs: item ids, item JSON URLs or item JSON files.
        url: API root URL or preset (needed for ids).
        collection: the collection holding the ids.
        timeout: seconds per request.

    Returns:
        The items in the order given.

    Raises:
        UsageError: ids without ``url``/``collection``.
        InputFormatError: an id or file that does not exist, an unreachable API.
    """
    import pystac

    refs = [refs] if isinstance(refs, str) else list(refs)
    out: dict[str, Any] = {}
    ids = [r for r in refs if not _is_location(r)]
    for r in refs:
        if _is_location(r):
            try:
                out[r] = pystac.Item.from_file(r)
            except Exception as e:
                raise InputFormatError(f"cannot read STAC item {r}: {' '.join(str(e).split())[:150]}; check the URL or file") from e
    if ids:
        if not url or not collection:
            raise UsageError(f"item id {ids[0]!r} needs --from-stac API and --collection C (or give the item's URL)")
        found = {it.id: it for it in search(url, collection, ids=ids, max_items=None, timeout=timeout, require_items=False)}
        for i in ids:
            if i not in found:
                _, coll = resolve_catalog(url, collection)
                raise InputFormatError(f"item {i!r} not found in collection {coll} at {url}; check the id with 'geohsi search'")
            out[i] = found[i]
    return [out[r] for r in refs]


def ingest_item(
    items: str | Any | Sequence[str | Any],
    out: PathLike,
    *,
    url: str | None = None,
    collection: str | None = None,
    assets: Sequence[str] | None = None,
    chunks: int = DEFAULT_CHUNK,
    overwrite: bool = False,
    sensor: str | None = None,
    quantity: str = "reflectance",
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Ingest one or more STAC items (tiles of one product) into a scene store (Zarr v3), atomically.

    Args:
        items: item ids (with ``url``/``collection``), item URLs/files, or ``pystac.Item`` objects.
        out: the output ``.zarr`` directory.
        url: STAC API root URL or catalogue preset.
        collection: the collection holding the ids.
        assets: asset keys holding the bands (default: every spectral asset).
        chunks: spatial chunk edge in pixels.
        overwrite: replace an existing store.
        sensor: sensor name stored in the scene (default: the item's ``instruments``/``platform``).
        quantity: ``"reflectance"`` or ``"radiance"``.
        timeout: seconds per API request.

    Returns:
        The store path.

    Raises:
        InputFormatError / GeoreferenceError / BandMismatchError: see :func:`build_item_scene`.
        OutputError: ``out`` exists without ``overwrite`` or cannot be written.
    """
    from geohsi.files import check_output
    from geohsi.scene import write_scene

    out_p = Path(out)
    check_output(out_p, overwrite)
    seq = [items] if isinstance(items, str) or not isinstance(items, (list, tuple)) else list(items)
    refs = [i for i in seq if isinstance(i, str)]
    fetched = iter(fetch_items(refs, url=url, collection=collection, timeout=timeout)) if refs else iter(())
    objs = [next(fetched) if isinstance(i, str) else i for i in seq]
    ds = build_item_scene(objs, assets=assets, chunks=chunks, quantity=quantity)
    if sensor:
        ds.attrs["sensor"] = sensor
    try:
        return write_scene(ds, out_p, chunks=chunks, overwrite=overwrite)
    except GeohsiError:
        raise
    except OSError as e:
        raise OutputError(f"cannot write {out_p}: {e.strerror or e}; choose a writable --out with free space") from e


# --------------------------------------------------------------------------- summaries


def item_summary(item: Any) -> dict[str, Any]:
    """The row ``geohsi search`` prints: id, datetime, cloud cover, spectral band count, assets.

    Returns:
        ``{"id", "datetime", "cloud_cover", "bands", "wavelength_range_nm", "assets", "collection", "bbox"}``.
    """
    when = item.datetime or item.common_metadata.start_datetime
    try:
        bands = spectral_bands(item)
        wl = [b.wavelength for b in bands if math.isfinite(b.wavelength)]
        nb, rng = len(bands), ([min(wl), max(wl)] if wl else None)
    except InputFormatError:
        nb, rng = 0, None
    return {
        "id": item.id,
        "collection": item.collection_id,
        "datetime": when.isoformat() if when else None,
        "cloud_cover": item.properties.get("eo:cloud_cover"),
        "bands": nb,
        "wavelength_range_nm": rng,
        "assets": list(item.assets),
        "bbox": item.bbox,
    }


# --------------------------------------------------------------------------- bundles and maps in STAC

_TORCH_DTYPES = {"float32": "float32", "bfloat16": "float32", "float16": "float16"}


def _classification_classes(legend: Any) -> list[dict[str, Any]]:
    """A legend as classification-extension class objects (``value``, ``name``, ``color_hint``)."""
    return [{"value": c.id, "name": c.name, **({"color_hint": c.color.lstrip("#").upper()} if c.color else {})} for c in legend]


def bundle_item(bundle: PathLike, *, item_id: str | None = None, href: str | None = None,
                geometry: dict | None = None, bbox: Sequence[float] | None = None) -> dict[str, Any]:
    """Describe a model bundle as a STAC Item with the Machine Learning Model (MLM) extension.

    The item records the input bands (wavelengths from the bundle's spectral transform), the
    normalisation (z-score per model channel), resize (bilinear) and window size, the output classes
    (classification extension objects), framework (PyTorch) and version, the adapter method and its
    trainable parameter count, and the backbone identity. Assets: ``bundle.json`` (role
    ``mlm:model``) and the adapter weights (``mlm:weights``).

    Args:
        bundle: the bundle directory.
        item_id: item id (default: ``geohsi-<method>-<bundle hash[:12]>``).
        href: base href of the bundle in the catalogue (default: the local absolute path).
        geometry: footprint of the training scene (GeoJSON, WGS84); ``None`` when unknown.
        bbox: the footprint's bbox (needed with ``geometry``).

    Returns:
        The STAC Item as a JSON-able dict.

    Raises:
        InputFormatError / ModelError: not a valid bundle.
    """
    from geohsi.bundle import META_NAME, load_bundle

    b = load_bundle(bundle)
    meta = b.meta
    spec, adapter, cfg, versions = meta.spectral, meta.adapter, meta.model_config, meta.versions
    window = {"size": b.head.window, "input_size": b.head.input_size, "padding": "reflect", "resize": "bilinear"}
    base = (href or str(Path(b.path).resolve())).rstrip("/")
    wl = [w for w in (spec.get("input_wavelengths") or [])]
    in_names = [f"b{i + 1}" for i in range(len(wl))]
    channels = spec.get("channel_names") or [f"c{i + 1}" for i in range(int(cfg.get("in_chans", 12)))]
    norm = spec.get("normalizer", {})
    # geohsi's "standard" normaliser is (x - shift) / scale per channel: MLM's z-score
    mean, std = norm.get("shift", norm.get("mean")), norm.get("scale", norm.get("std"))
    scaling = None
    if mean is not None and std is not None:
        scaling = [{"type": "z-score", "mean": float(m), "stddev": float(s)} for m, s in zip(mean, std, strict=False)]
    n_ch = len(channels)
    head = b.head
    m_in, m_out = head.mlm_input(n_ch), head.mlm_output(len(b.classes))
    classes = _classification_classes(b.classes)
    # adapter size: every tensor the adapter adds (the head is counted apart by its class count)
    n_trainable = sum(int(np.prod(shape)) for layer in (adapter.get("layers") or {}).values() for shape in layer.values()) or None
    props: dict[str, Any] = {
        "datetime": meta.created or datetime.now(UTC).isoformat(timespec="seconds"),
        "description": f"SpectralGPT + {adapter.get('method', '?')} classifier trained by geohsi",
        "mlm:name": "geohsi-spectralgpt-" + str(adapter.get("method", "adapter")).replace("+", "-plus"),
        "mlm:architecture": "Vision Transformer",
        "mlm:tasks": head.mlm_tasks,
        "mlm:framework": "PyTorch",
        "mlm:framework_version": str(versions.get("torch", "")).split("+")[0] or "unknown",
        "mlm:pretrained": meta.backbone.kind == "file",
        "mlm:pretrained_source": meta.backbone.identity.get("name") if meta.backbone.kind == "file" else None,
        "mlm:accelerator": None,
        "mlm:input": [{
            "name": m_in["name"],
            "description": f"{len(wl)} scene bands reduced to {n_ch} channels by {spec.get('reduction')}, {m_in['description']}",
            "bands": in_names,
            "input": m_in["input"],
            "value_scaling": scaling,
            "resize_type": m_in["resize_type"],
            "pre_processing_function": {"format": "python", "expression": "geohsi.spectral.transform:SpectralTransform.from_dict"},
        }],
        "mlm:output": [{
            "name": m_out["name"],
            "description": m_out["description"],
            "tasks": m_out["tasks"],
            "result": m_out["result"],
            "classification:classes": classes,
            "post_processing_function": None,
        }],
        "mlm:hyperparameters": {
            "adapter_method": adapter.get("method"),
            "adapter_config": adapter,
            "adapter_trainable_parameters": n_trainable,
            "window": window,
            "head": head.name,
            "spectral_reduction": spec.get("reduction"),
            "model_config": cfg,
        },
        "geohsi:backbone": meta.backbone.identity,
        "geohsi:metrics": meta.metrics,
        "geohsi:classes": len(classes),
    }
    item_id = item_id or f"geohsi-{str(adapter.get('method', 'model')).replace('+', 'plus')}-{b.hash[:12]}"
    asset_bands = [{"name": n, "center_wavelength": round(float(w) / 1000.0, 9)} for n, w in zip(in_names, wl, strict=True) if w is not None]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [EXT_MLM, EXT_EO, EXT_CLASSIFICATION],
        "id": item_id,
        "geometry": geometry,
        **({"bbox": list(bbox)} if bbox is not None else {}),
        "properties": props,
        "links": [],
        "assets": {
            "model": {
                "href": f"{base}/{META_NAME}",
                "type": "application/json",
                "title": "geohsi bundle description (load with geohsi.bundle.load_bundle on the directory)",
                "roles": ["mlm:model", "metadata"],
                "mlm:artifact_type": "geohsi.bundle",
                "eo:bands": asset_bands,
            },
            "weights": {
                "href": f"{base}/adapter",
                "title": "adapter and head weights (safetensors)",
                "roles": ["mlm:weights"],
            },
        },
    }


def validate_mlm(item: dict[str, Any]) -> None:
    """Validate an item's MLM fields against the vendored JSON schema, offline.

    Raises:
        ModelError: the item does not conform (message names the first failing path).
    """
    import jsonschema

    schema = json.loads(MLM_SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(item, schema)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(item)"
        raise ModelError(f"MLM item invalid at {where}: {e.message[:200]}; fix geohsi.stac.bundle_item") from e


def write_item(item: dict[str, Any], out: PathLike, *, overwrite: bool = False) -> Path:
    """Write a STAC item JSON atomically.

    Raises:
        OutputError: exists without ``overwrite``.
    """
    from geohsi.files import atomic_output

    p = Path(out)
    with atomic_output(p, overwrite) as tmp:
        Path(tmp).write_text(json.dumps(item, indent=1) + "\n")
    return p


def map_item(map_path: PathLike, bundle: PathLike, scene: PathLike | None = None, *, item_id: str | None = None,
             href: str | None = None) -> dict[str, Any]:
    """Describe a classification map (GeoTIFF/COG or Zarr written by ``geohsi classify``) as a STAC Item.

    Uses the classification extension (``classification:classes`` on the asset) and the label
    extension (``label:type`` raster, ``label:tasks`` classification, class names), the projection
    of the map, and links the model bundle (``rel: via``) and the source scene (``rel: derived_from``).

    Args:
        map_path: the map file (single-band class ids) written by classify.
        bundle: the bundle that produced it (for the classes and the model link).
        scene: the classified scene store (its acquisition time becomes the item datetime).
        item_id: default: the map's file stem.
        href: the map's href in the catalogue (default: its absolute local path).

    Returns:
        The STAC Item as a JSON-able dict.

    Raises:
        InputFormatError: the map cannot be read; ModelError: invalid bundle.
    """
    import rasterio
    from rasterio.warp import transform_bounds

    from geohsi.bundle import load_bundle

    b = load_bundle(bundle)
    mp = Path(map_path)
    try:
        with rasterio.open(mp) as src:
            crs, tf, h, w, nodata, dtype = src.crs, src.transform, src.height, src.width, src.nodata, src.dtypes[0]
            bounds = src.bounds
    except Exception as e:
        raise InputFormatError(f"cannot read map {mp}: {' '.join(str(e).split())[:150]}; pass the GeoTIFF written by 'geohsi classify'") from e
    geometry = bbox = None
    if crs is not None:
        w_, s_, e_, n_ = transform_bounds(crs, "EPSG:4326", *bounds)
        bbox = [w_, s_, e_, n_]
        geometry = {"type": "Polygon", "coordinates": [[[w_, s_], [e_, s_], [e_, n_], [w_, n_], [w_, s_]]]}
    when = None
    if scene is not None:
        from geohsi.scene import open_scene

        when = open_scene(scene).attrs.get("acquisition_time")
    classes = _classification_classes(b.classes)
    props: dict[str, Any] = {
        "datetime": _rfc3339(when) if when else datetime.now(UTC).isoformat(timespec="seconds"),
        "label:description": "land-cover classes predicted per pixel by geohsi",
        "label:type": "raster",
        "label:tasks": ["classification", "segmentation"],
        "label:properties": None,
        "label:classes": [{"name": None, "classes": [c["name"] for c in classes]}],
        "label:methods": ["automated"],
    }
    if crs is not None:
        props.update({"proj:code": f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else None, "proj:shape": [h, w],
                      "proj:transform": list(tf)[:6]})
        if props["proj:code"] is None:
            props.pop("proj:code")
            props["proj:wkt2"] = crs.to_wkt()
    links = [{"rel": "via", "href": str(Path(b.path).resolve() / "bundle.json"), "type": "application/json", "title": "model bundle"}]
    if scene is not None:
        links.append({"rel": "derived_from", "href": str(Path(scene).resolve()), "title": "classified scene"})
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [EXT_LABEL, EXT_CLASSIFICATION, EXT_PROJ, EXT_RASTER],
        "id": item_id or mp.stem,
        "geometry": geometry,
        **({"bbox": bbox} if bbox else {}),
        "properties": props,
        "links": links,
        "assets": {
            "map": {
                "href": href or str(mp.resolve()),
                "type": "image/tiff; application=geotiff; profile=cloud-optimized" if mp.suffix.lower() in (".tif", ".tiff") else "application/octet-stream",
                "roles": ["data", "labels", "labels-raster"],
                "classification:classes": classes,
                "raster:bands": [{"data_type": dtype, **({"nodata": nodata} if nodata is not None else {})}],
            }
        },
    }


def _rfc3339(value: str) -> str:
    s = str(value)
    if re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$", s):
        return s + "Z"
    return s


__all__ = [
    "PRESETS", "BandSource", "build_item_scene", "bundle_item", "catalogs_path", "fetch_items", "ingest_item",
    "item_summary", "load_catalogs", "load_geometry", "map_item", "open_api", "parse_bbox", "resolve_catalog",
    "search", "spectral_bands", "validate_mlm", "write_item",
]
