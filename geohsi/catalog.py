"""STAC catalogues: find scenes in a STAC API (``geohsi search``) and fetch items by id or URL.

* :func:`search` — query a STAC API (pystac-client) by collection, bbox/intersects, datetime and
  CQL2 filter, following ``next`` pages up to ``max_items``; :func:`item_summary` is the row
  ``geohsi search`` prints. Catalogue names resolve through :func:`resolve_catalog`: built-in
  :data:`PRESETS` plus a user file ``$XDG_CONFIG_HOME/geohsi/catalogs.toml`` (``GEOHSI_CATALOGS``
  overrides the path).
* :func:`fetch_items` — item ids (through an API) or item URLs/files → ``pystac.Item`` objects.

Turning items into scenes is :mod:`geohsi.io.stac`'s job.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geohsi.errors import DataError, GeohsiError, GeohsiWarning, InputFormatError, UsageError
from geohsi.io.stac import spectral_bands

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
            raise UsageError(f'catalogue {name!r} in {path} has no url; add url = "https://…" under [catalogs.{name}]')
        out[name] = {
            "url": str(entry["url"]),
            "collection": str(entry.get("collection", "")),
            "description": str(entry.get("description", "")),
            "source": str(path),
        }
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
    if any(
        s in text for s in ("Connection refused", "Max retries", "timed out", "Timeout", "Name or service", "NewConnectionError")
    ):
        return InputFormatError(
            f"STAC API {url} cannot be reached ({type(e).__name__}); check the URL and the network, or raise --timeout"
        )
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
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise UsageError(f"--timeout must be a positive number of seconds, got {timeout!r}")
    pystac_client = _require_client()
    from pystac_client.stac_api_io import StacApiIO

    try:
        # no retries: an unreachable API must fail within one timeout, not after several; Client.open
        # sets its own timeout on the StacApiIO (None unless given), so it is passed there too
        io = StacApiIO(timeout=timeout, max_retries=None)
        return pystac_client.Client.open(url, stac_io=io, timeout=timeout)
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
    raise InputFormatError(
        f"collection {collection!r} not found at {url} (available: {shown or 'none listed'}); pick one with --collection"
    )


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
    if not isinstance(doc, dict):
        raise InputFormatError(f"--intersects file {p} has no GeoJSON geometry; give a Polygon/MultiPolygon")
    if doc.get("type") == "FeatureCollection":
        feats = doc.get("features") or []
        if len(feats) != 1:
            raise InputFormatError(f"--intersects file {p} holds {len(feats)} features; give exactly one geometry")
        doc = feats[0]
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = doc.get("geometry") or {}
    if (
        not isinstance(doc, dict)
        or doc.get("type") not in ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
        or not isinstance(doc.get("coordinates"), list)
    ):
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


def _check_datetime(value: str | None) -> None:
    """Refuse a ``--datetime`` pystac-client cannot parse, before any request (it would be blamed on the API)."""
    if value is None:
        return
    from pystac_client.item_search import ItemSearch

    try:
        parsed = ItemSearch(url="", datetime=value).get_parameters().get("datetime", "")  # requests nothing
    except Exception as e:
        raise UsageError(
            f"--datetime {value!r} is not an RFC 3339 instant or A/B interval ({e}); e.g. 2024-06-01/2024-08-31"
        ) from e
    from datetime import datetime as dt

    start, _, end = str(parsed).partition("/")
    if end and ".." not in (start, end) and dt.fromisoformat(start) > dt.fromisoformat(end):  # the API said 'not RFC 3339'
        raise UsageError(f"--datetime {value!r} starts after it ends; give the interval as START/END")


def _search_inputs(
    bbox: str | Sequence[float] | None,
    intersects: PathLike | dict | None,
    filter: str | dict | None,
    datetime: str | None,
    max_items: int | None,
    page_size: int | None,
) -> tuple[list[float] | None, dict | None, Any, str | None]:
    """Check and parse the search area, time, filter and limits (before any request): ``(bbox, geometry,
    filter, filter_lang)``."""
    if bbox is not None and intersects is not None:
        raise UsageError("give either --bbox or --intersects, not both")
    bb = None if bbox is None else parse_bbox(bbox)
    geom = load_geometry(intersects) if isinstance(intersects, (str, os.PathLike)) else intersects
    flt, flt_lang = _parse_filter(filter)
    _check_datetime(datetime)
    if max_items is not None and max_items <= 0:
        raise UsageError(f"--max-items must be positive, got {max_items}")
    if page_size is not None and page_size <= 0:
        raise UsageError(f"--page-size must be positive, got {page_size}")
    return bb, geom, flt, flt_lang


def _search_kwargs(flt: Any, flt_lang: str | None, query: Sequence[str] | dict | None) -> dict[str, Any]:
    """The filter and query keywords of ``client.search`` (a CQL2-text filter goes by GET)."""
    kwargs: dict[str, Any] = {}
    if flt is not None:
        kwargs.update(filter=flt, filter_lang=flt_lang)
        if flt_lang == "cql2-text":
            kwargs["method"] = "GET"  # POST bodies carry CQL2-JSON only; text travels as a query parameter
    if query:
        kwargs["query"] = list(query) if not isinstance(query, dict) else query
    return kwargs


def _search_items(
    client: Any,
    api: str,
    collection: str | None,
    *,
    bb: list[float] | None,
    geom: dict | None,
    datetime: str | None,
    ids: Sequence[str] | None,
    max_items: int | None,
    page_size: int | None,
    kwargs: dict[str, Any],
) -> list[Any]:
    """Run the search and collect its items; API failures become geohsi errors."""
    try:
        result = client.search(
            collections=[collection] if collection else None,
            bbox=bb,
            intersects=geom,
            datetime=datetime,
            ids=list(ids) if ids else None,
            max_items=None if max_items is None else max_items + 1,  # one more: whether the cut hid any
            limit=page_size,
            **kwargs,
        )
        items = list(result.items())
    except GeohsiError:
        raise
    except Exception as e:
        if "datetime" in str(e).lower() and datetime is not None:
            raise UsageError(f"--datetime {datetime!r} is not an RFC 3339 instant or A/B interval ({e})") from e
        raise _api_error(api, e) from e
    if max_items is not None and len(items) > max_items:  # 100 of 250 matching items had been taken without a word
        warnings.warn(
            f"more than {max_items} items match; the first {max_items} are used: raise --max-items or narrow the search",
            GeohsiWarning,
            stacklevel=4,
        )
    return items[:max_items]


def _no_items_error(api: str, collection: str | None, criteria: tuple[tuple[str, Any], ...]) -> DataError:
    """The :class:`DataError` for a search that matched nothing, naming the criteria given."""
    what = ", ".join(f"{k} {v}" for k, v in criteria if v)
    return DataError(
        f"no items in collection {collection or '(all)'} at {api} match {what or 'the search'}; widen the bbox/datetime or drop the filter"
    )


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
    bb, geom, flt, flt_lang = _search_inputs(bbox, intersects, filter, datetime, max_items, page_size)
    client = open_api(api, timeout=timeout)
    if collection:
        _check_collection(client, api, collection)
    kwargs = _search_kwargs(flt, flt_lang, query)
    _warn_undeclared(client, api, query, flt)
    from pystac_client.warnings import DoesNotConformTo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DoesNotConformTo)  # said above, in one line
        items = _search_items(
            client,
            api,
            collection,
            bb=bb,
            geom=geom,
            datetime=datetime,
            ids=ids,
            max_items=max_items,
            page_size=page_size,
            kwargs=kwargs,
        )
    if not items and require_items:
        criteria = (
            ("bbox", bbox),
            ("intersects", "geometry" if geom else None),
            ("datetime", datetime),
            ("filter", filter),
            ("query", query),
            ("ids", ids),
        )
        raise _no_items_error(api, collection, criteria)
    return items


def _warn_undeclared(client: Any, api: str, query: Any, flt: Any) -> None:
    """Warn (one line) when ``query`` or ``flt`` needs an extension the API does not declare: such an
    API may ignore it and return every item (pystac-client's own notice is a Python warning with its
    file and line, easy to miss). Not refused: some APIs implement more than they declare."""
    from pystac_client.conformance import ConformanceClasses

    for given, cls, option, other in (
        (query, ConformanceClasses.QUERY, "--query", "--filter"),
        (flt, ConformanceClasses.FILTER, "--filter", "--query"),
    ):
        if given and not client.conforms_to(cls):
            warnings.warn(
                f"{api} does not declare the STAC {cls.name.lower()} extension, so it may ignore {option} and return "
                f"every item; check the results, or select with {other} or --bbox/--datetime",
                GeohsiWarning,
                stacklevel=3,
            )


def _is_location(ref: str) -> bool:
    return bool(re.match(r"^(https?|file)://", ref)) or ref.endswith(".json") or os.path.sep in ref


def fetch_items(
    refs: str | Sequence[str], *, url: str | None = None, collection: str | None = None, timeout: float = DEFAULT_TIMEOUT
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
                raise InputFormatError(
                    f"cannot read STAC item {r}: {' '.join(str(e).split())[:150]}; check the URL or file"
                ) from e
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


__all__ = [
    "DEFAULT_TIMEOUT",
    "PRESETS",
    "catalogs_path",
    "fetch_items",
    "item_summary",
    "load_catalogs",
    "load_geometry",
    "open_api",
    "parse_bbox",
    "resolve_catalog",
    "search",
]
