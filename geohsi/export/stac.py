"""STAC export: a model bundle as an Item with the Machine Learning Model (MLM) extension, a map as a
labelled raster Item (classification + label extensions), validated offline.

The MLM input/output objects come from the bundle's head (:mod:`geohsi.heads`): per-pixel windows
in and ``[-1, K]`` logits out for a patch bundle, tiles in and per-pixel ``[-1, K, S, S]`` logits
out for a dense one.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from geohsi.errors import InputFormatError, ModelError, UsageError

PathLike = str | os.PathLike

EXT_EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
EXT_RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
EXT_PROJ = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
EXT_MLM = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
EXT_CLASSIFICATION = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
EXT_LABEL = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
EXT_FILE = "https://stac-extensions.github.io/file/v2.1.0/schema.json"

#: STAC version of the items and catalogues geohsi writes for maps (pystac validates it offline).
STAC_VERSION = "1.1.0"

#: Media type of a safetensors file, in the MLM extension's ``application/octet-stream; application=…`` form.
SAFETENSORS_TYPE = "application/octet-stream; application=safetensors"
#: The vendored MLM JSON schema (see ``geohsi/schemas/README.md``).
MLM_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "mlm-v1.4.0.schema.json"


_TORCH_DTYPES = {"float32": "float32", "bfloat16": "float32", "float16": "float16"}


def _classification_classes(legend: Any) -> list[dict[str, Any]]:
    """A legend as classification-extension v1.1 class objects (``value``, ``description`` — required —, ``name``, ``color_hint``)."""
    return [
        {"value": c.id, "description": c.name, "name": c.name, **({"color_hint": c.color.lstrip("#").upper()} if c.color else {})}
        for c in legend
    ]


def bundle_item(
    bundle: PathLike,
    *,
    item_id: str | None = None,
    href: str | None = None,
    geometry: dict | None = None,
    bbox: Sequence[float] | None = None,
) -> dict[str, Any]:
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
        UsageError: ``href`` carries credentials, a query or a fragment.
    """
    from geohsi.bundle import load_bundle

    _check_base_href(href)
    b = load_bundle(bundle)
    wl = list(b.meta.spectral.get("input_wavelengths") or [])
    in_names = [f"b{i + 1}" for i in range(len(wl))]
    method = str(b.meta.adapter.get("method", "model"))
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [EXT_MLM, EXT_EO, EXT_CLASSIFICATION],
        "id": item_id or f"geohsi-{method.replace('+', 'plus')}-{b.hash[:12]}",
        "geometry": geometry,
        **({"bbox": list(bbox)} if bbox is not None else {}),
        "properties": _mlm_properties(b, wl, in_names),
        "links": [],
        "assets": _bundle_assets(b, href, wl, in_names),
    }


def _mlm_properties(b: Any, wl: list, in_names: list[str]) -> dict[str, Any]:
    """The MLM item properties of a loaded bundle: input, output, framework, hyperparameters, backbone, metrics."""
    meta = b.meta
    spec, adapter, cfg, versions = meta.spectral, meta.adapter, meta.model_config, meta.versions
    classes = _classification_classes(b.classes)
    # adapter size: every tensor the adapter adds (the head is counted apart by its class count)
    n_trainable = sum(int(np.prod(shape)) for layer in (adapter.get("layers") or {}).values() for shape in layer.values()) or None
    m_out = b.head.mlm_output(len(b.classes))
    return {
        "datetime": meta.created or datetime.now(UTC).isoformat(timespec="seconds"),
        "description": f"SpectralGPT + {adapter.get('method', '?')} classifier trained by geohsi",
        "mlm:name": "geohsi-spectralgpt-" + str(adapter.get("method", "adapter")).replace("+", "-plus"),
        "mlm:architecture": "Vision Transformer",
        "mlm:tasks": b.head.mlm_tasks,
        "mlm:framework": "PyTorch",
        "mlm:framework_version": str(versions.get("torch", "")).split("+")[0] or "unknown",
        "mlm:pretrained": meta.backbone.kind == "file",
        "mlm:pretrained_source": meta.backbone.identity.get("name") if meta.backbone.kind == "file" else None,
        "mlm:accelerator": None,
        "mlm:input": [_mlm_input(b, wl, in_names)],
        "mlm:output": [
            {
                "name": m_out["name"],
                "description": m_out["description"],
                "tasks": m_out["tasks"],
                "result": m_out["result"],
                "classification:classes": classes,
                "post_processing_function": None,
            }
        ],
        "mlm:hyperparameters": {
            "adapter_method": adapter.get("method"),
            "adapter_config": adapter,
            "adapter_trainable_parameters": n_trainable,
            "window": {"size": b.head.window, "input_size": b.head.input_size, "padding": "reflect", "resize": "bilinear"},
            "head": b.head.name,
            "spectral_reduction": spec.get("reduction"),
            "model_config": cfg,
        },
        "geohsi:backbone": meta.backbone.identity,
        "geohsi:metrics": meta.metrics,
        "geohsi:classes": len(classes),
    }


def _mlm_input(b: Any, wl: list, in_names: list[str]) -> dict[str, Any]:
    """The MLM input object: the scene bands, the reduction to the model's channels and their z-score scaling."""
    spec, cfg = b.meta.spectral, b.meta.model_config
    channels = spec.get("channel_names") or [f"c{i + 1}" for i in range(int(cfg.get("in_chans", 12)))]
    norm = spec.get("normalizer", {})
    # geohsi's "standard" normaliser is (x - shift) / scale per channel: MLM's z-score
    mean, std = norm.get("shift", norm.get("mean")), norm.get("scale", norm.get("std"))
    scaling = None
    if mean is not None and std is not None:
        scaling = [{"type": "z-score", "mean": float(m), "stddev": float(s)} for m, s in zip(mean, std, strict=False)]
    m_in = b.head.mlm_input(len(channels))
    return {
        "name": m_in["name"],
        "description": f"{len(wl)} scene bands reduced to {len(channels)} channels by {spec.get('reduction')}, {m_in['description']}",
        "bands": in_names,
        "input": m_in["input"],
        "value_scaling": scaling,
        "resize_type": m_in["resize_type"],
        "pre_processing_function": {"format": "python", "expression": "geohsi.spectral.transform:SpectralTransform.from_dict"},
    }


def _check_base_href(href: str | None) -> None:
    """A base href is a folder's URL: user info or a query (a signed URL signs one object) would be published in
    the item, and ``…?sig=X/bundle.json`` names no file."""
    from urllib.parse import urlsplit

    if not href or not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", href):
        return  # a local folder: written as given, as the default (its real path) is
    from geohsi.storage import split_user_info

    parts = urlsplit(href)
    user, host = split_user_info(parts.scheme, parts.netloc)
    if user is not None or parts.query or parts.fragment:
        plain = f"{parts.scheme}://{host}{parts.path}"
        raise UsageError(
            "--href was given with credentials, a query or a fragment, which the item would publish and which would end "
            f"its asset paths; give the bundle folder's plain URL, e.g. --href {plain}"
        )


def _bundle_assets(b: Any, href: str | None, wl: list, in_names: list[str]) -> dict[str, Any]:
    """The item's assets: ``bundle.json`` (``mlm:model``, with the input bands), the adapter weights
    file and, where the bundle holds it, the backbone's."""
    from geohsi.adapters.weights import WEIGHTS_NAME
    from geohsi.bundle import ADAPTER_DIR, BACKBONE_NAME, META_NAME

    # a bundle read from a bucket: its URL, not the local copy; a local one: its real folder (runs/latest moves on)
    base = (href or b.url or str(Path(b.path).resolve())).rstrip("/")
    asset_bands = [
        {"name": n, "center_wavelength": round(float(w) / 1000.0, 9)} for n, w in zip(in_names, wl, strict=True) if w is not None
    ]
    assets = {
        "model": {
            "href": f"{base}/{META_NAME}",
            "type": "application/json",
            "title": "geohsi bundle description (load with geohsi.bundle.load_bundle on the directory)",
            "roles": ["mlm:model", "metadata"],
            "mlm:artifact_type": "geohsi.bundle",
            "eo:bands": asset_bands,
        },
        "weights": {
            "href": f"{base}/{ADAPTER_DIR}/{WEIGHTS_NAME}",
            "type": SAFETENSORS_TYPE,
            "title": "adapter and head weights (adapter.json beside them describes them)",
            "roles": ["mlm:weights"],
        },
    }
    if b.meta.backbone.kind == "bundled":
        assets["backbone"] = {
            "href": f"{base}/{BACKBONE_NAME}",
            "type": SAFETENSORS_TYPE,
            "title": "backbone weights (held by the bundle)",
            "roles": ["mlm:weights"],
        }
    return assets


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
        raise ModelError(f"MLM item invalid at {where}: {e.message[:200]}; fix geohsi.export.stac.bundle_item") from e


def write_item(item: dict[str, Any], out: PathLike, *, overwrite: bool = False) -> Path:
    """Write a STAC item JSON atomically.

    Raises:
        OutputError: exists without ``overwrite``.
    """
    from geohsi.files import write_bytes_atomic
    from geohsi.storage import as_path

    return write_bytes_atomic(as_path(out), (json.dumps(item, indent=1) + "\n").encode(), overwrite=overwrite)


#: media types of map assets by suffix.
MEDIA_TYPES = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".tiff": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".zarr": "application/vnd+zarr",
    ".png": "image/png",
    ".json": "application/json",
}


def _map_grid(mp: Path | str) -> tuple[Any, Any, int, int, Any, str]:
    """``(crs, transform, height, width, nodata, dtype)`` of a GeoTIFF or Zarr map (a path or a URL)."""
    from geohsi.storage import display, name, open_raster

    try:
        if Path(name(mp)).suffix.lower() == ".zarr":
            import xarray as xr

            with xr.open_zarr(mp, consolidated=False, decode_coords="all", mask_and_scale=False) as ds:
                v = ds["classes"]
                crs = ds.rio.crs if int(ds.attrs.get("georeferenced", 1)) else None
                return crs, ds.rio.transform(), int(v.sizes["y"]), int(v.sizes["x"]), 0, str(v.dtype)
        with open_raster(mp) as src:
            return src.crs, src.transform, src.height, src.width, src.nodata, src.dtypes[0]
    except Exception as e:
        raise InputFormatError(
            f"cannot read map {display(mp)}: {' '.join(str(e).split())[:150]}; pass a map written by 'geohsi classify'"
        ) from e


def _map_footprint(crs: Any, tf: Any, h: int, w: int) -> tuple[dict[str, Any] | None, list[float] | None]:
    """``(geometry, bbox)`` in WGS84 of a map grid, or ``(None, None)`` without a CRS."""
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    if crs is None:
        return None, None
    w_, s_, e_, n_ = transform_bounds(crs, "EPSG:4326", *array_bounds(h, w, tf))
    bbox = [w_, s_, e_, n_]
    geometry = {"type": "Polygon", "coordinates": [[[w_, s_], [e_, s_], [e_, n_], [w_, n_], [w_, s_]]]}
    return geometry, bbox


def _scene_time(scene: Any) -> Any:
    """The acquisition time of a scene (a store path or an opened Dataset), or None."""
    if scene is None:
        return None
    import xarray as xr

    from geohsi.scene import open_scene

    return (scene if isinstance(scene, xr.Dataset) else open_scene(scene)).attrs.get("acquisition_time")


def _map_properties(
    when: Any, classes: list[dict[str, Any]], crs: Any, tf: Any, h: int, w: int, properties: dict[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """``(properties, stac_extensions)`` of a map item: label fields, projection, then the extra properties."""
    props: dict[str, Any] = {
        "datetime": (_rfc3339(when) if when else None) or datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "label:description": "land-cover classes predicted per pixel by geohsi",
        "label:type": "raster",
        "label:tasks": ["classification", "segmentation"],
        "label:properties": None,
        "label:classes": [{"name": None, "classes": [c["name"] for c in classes]}],
        "label:methods": ["automated"],
    }
    extensions = [EXT_LABEL, EXT_CLASSIFICATION, EXT_RASTER]
    if crs is not None:
        extensions.append(EXT_PROJ)
        epsg = crs.to_epsg()
        props.update({"proj:code": f"EPSG:{epsg}"} if epsg else {"proj:wkt2": crs.to_wkt()})
        props.update({"proj:shape": [h, w], "proj:transform": list(tf)[:6]})
    props.update(properties or {})
    return props, extensions


def _map_links(b: Any, scene: Any, source_href: str | None) -> list[dict[str, Any]]:
    """The ``via`` link to the bundle and the ``derived_from`` link to the scene (when known)."""
    from geohsi.storage import absolute

    links = [{"rel": "via", "href": f"{b.location}/bundle.json", "type": "application/json", "title": "model bundle"}]
    if source_href is None and scene is not None and not hasattr(scene, "attrs"):
        source_href = absolute(scene)
    if source_href is not None:
        links.append({"rel": "derived_from", "href": source_href, "title": "classified scene"})
    return links


def _map_asset(mp: Any, href: str | None, classes: list[dict[str, Any]], dtype: str, nodata: Any) -> dict[str, Any]:
    """The ``map`` asset: href, media type, roles, classes and raster band."""
    from geohsi.storage import absolute, name

    return {
        "href": href or absolute(mp),
        "type": MEDIA_TYPES.get(Path(name(mp)).suffix.lower(), "application/octet-stream"),
        "title": "class map",
        "roles": ["data", "labels", "labels-raster"],
        "classification:classes": classes,
        "raster:bands": [{"data_type": dtype, **({"nodata": nodata} if nodata is not None else {})}],
    }


def map_item(
    map_path: PathLike,
    bundle: Any,
    scene: Any = None,
    *,
    item_id: str | None = None,
    href: str | None = None,
    source_href: str | None = None,
    properties: dict[str, Any] | None = None,
    assets: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Describe a classification map (COG or Zarr written by ``geohsi classify``) as a STAC Item.

    Uses the classification extension (``classification:classes`` on the asset) and the label
    extension (``label:type`` raster, ``label:tasks`` classification, class names), the projection
    of the map (projection extension v2: ``proj:code`` or ``proj:wkt2``), and links the model
    bundle (``rel: via``) and the source scene or STAC item (``rel: derived_from``). A pixel-grid
    map (no CRS) has ``geometry: null`` and no ``proj:*`` fields.

    Args:
        map_path: the map (single-band class ids) written by classify.
        bundle: the bundle that produced it (a directory or a loaded :class:`~geohsi.bundle.Bundle`).
        scene: the classified scene (a store path or an opened Dataset): its acquisition time
            becomes the item datetime (else the time of writing).
        item_id: default: the map's file stem.
        href: the map's href in the catalogue (default: its absolute local path).
        source_href: the ``derived_from`` link (default: the scene path, when ``scene`` is one).
        properties: extra item properties (e.g. ``geohsi:*`` provenance and class statistics).
        assets: extra assets (quicklook, confidence, probabilities) by key.

    Returns:
        The STAC Item (STAC 1.1) as a JSON-able dict.

    Raises:
        InputFormatError: the map cannot be read; ModelError: invalid bundle.
    """
    from geohsi.bundle import Bundle, load_bundle
    from geohsi.storage import as_path

    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    mp = as_path(map_path)
    crs, tf, h, w, nodata, dtype = _map_grid(mp)
    geometry, bbox = _map_footprint(crs, tf, h, w)
    when = _scene_time(scene)
    classes = _classification_classes(b.classes)
    props, extensions = _map_properties(when, classes, crs, tf, h, w, properties)
    links = _map_links(b, scene, source_href)
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "id": item_id or mp.stem,
        "geometry": geometry,
        **({"bbox": bbox} if bbox else {}),
        "properties": props,
        "links": links,
        "assets": {"map": _map_asset(mp, href, classes, dtype, nodata), **(assets or {})},
    }


def write_map_collection(
    out: PathLike,
    items: Sequence[dict[str, Any]],
    *,
    collection_id: str,
    description: str,
    overwrite: bool = True,
    base: str | None = None,
) -> dict[str, Any]:
    """Write a self-contained STAC Collection of map items beside them (``catalog.json``), atomically.

    The items are expected as files in the same directory (``./<id>.json``); each gets ``root``,
    ``parent`` and ``collection`` links to the collection. The collection's spatial extent is the
    union of the items' bboxes (the whole globe when no map is georeferenced), its temporal extent
    spans their datetimes.

    Args:
        out: the collection file (``maps/catalog.json``).
        items: the map items (from :func:`map_item`), already linked with :func:`link_item`.
        collection_id: the collection id.
        description: its description.
        overwrite: replace an existing file (a batch rewrites its catalogue on every run).
        base: absolute hrefs under this URL (a catalogue in a bucket) instead of relative ``./`` ones.

    Returns:
        The collection as a JSON-able dict.
    """
    from geohsi.storage import as_path, name

    boxes = [it["bbox"] for it in items if it.get("bbox")]
    bbox = (
        [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
        if boxes
        else [-180.0, -90.0, 180.0, 90.0]
    )
    times = sorted(it["properties"]["datetime"] for it in items if it["properties"].get("datetime"))
    collection = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": collection_id,
        "description": description,
        "license": "other",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [[times[0], times[-1]] if times else [None, None]]}},
        "links": [
            {"rel": "root", "href": member_href(name(out), base), "type": "application/json"},
            *(
                {"rel": "item", "href": member_href(f"{it['id']}.json", base), "type": "application/geo+json", "title": it["id"]}
                for it in items
            ),
        ],
    }
    from geohsi.files import write_bytes_atomic

    write_bytes_atomic(as_path(out), (json.dumps(collection, indent=1) + "\n").encode(), overwrite=overwrite)
    return collection


def member_href(file_name: str, base: str | None = None) -> str:
    """The href of a file of a catalogue's folder: ``./NAME``, or absolute under ``base``.

    ``#`` and ``?``, which end a URL's path, are percent-encoded: a scene named ``plot #1.tif`` had
    made ``./plot #1.json``, which a STAC browser or server reads as ``./plot `` and a fragment.
    Everything else stays as written, as pystac reads local catalogues by their hrefs without
    decoding them (``%`` too: ``50% cover.json`` reads; pystac reads no local name with ``#``).
    """
    if base:
        return f"{base.rstrip('/')}/{file_name}"
    return "./" + file_name.replace("#", "%23").replace("?", "%3F")


def member_file(href: str) -> str:
    """The file name of a :func:`member_href` (``#`` and ``?`` decoded; a ``%`` stays as written)."""
    return href.replace("%23", "#").replace("%3F", "?")


def item_members(catalog: dict[str, Any]) -> list[str]:
    """The files (:func:`member_file`) of a catalogue's ``item`` links, in its order: ``./NAME`` or a URL (``""``
    for a link without href); none where ``links`` is not a list of links."""
    links = catalog.get("links")
    links = [ln for ln in links if isinstance(ln, dict)] if isinstance(links, list) else []
    return [member_file(str(ln.get("href") or "")) for ln in links if ln.get("rel") == "item"]


def link_item(
    item: dict[str, Any], collection_id: str, catalog_name: str = "catalog.json", base: str | None = None
) -> dict[str, Any]:
    """Make a map item a member of the collection in the same directory (``root``/``parent``/``collection`` links;
    absolute under ``base`` for a catalogue in a bucket)."""
    item["collection"] = collection_id
    keep = [ln for ln in item["links"] if ln["rel"] not in ("root", "parent", "collection")]
    href = member_href(catalog_name, base)
    item["links"] = keep + [{"rel": rel, "href": href, "type": "application/json"} for rel in ("root", "parent", "collection")]
    return item


def _rfc3339(value: Any) -> str | None:
    """A scene's acquisition time as STAC requires it (RFC 3339 in UTC, ``Z``), or None where it cannot be read.

    Takes ISO 8601 with or without a zone (none: UTC; a date alone: its midnight) and TIFF's
    ``YYYY:MM:DD hh:mm:ss``. Written as read, ``2022:07:15 10:20:30`` or ``…+02:00`` made items that
    STAC validators and pystac refuse.
    """
    text = re.sub(r"^(\d{4}):(\d\d):(\d\d)", r"\1-\2-\3", str(value).strip())
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # fromisoformat reads at most microseconds
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.isoformat(timespec="microseconds" if t.microsecond else "seconds").replace("+00:00", "Z")


def bundle_stac(
    bundle: PathLike, out: PathLike | None = None, *, item_id: str | None = None, href: str | None = None, overwrite: bool = False
) -> dict[str, Any]:
    """A bundle as a validated STAC MLM Item, optionally written to a file: what ``geohsi bundle stac`` runs.

    Args:
        bundle: the bundle directory.
        out: write the item JSON here (atomically); ``None`` only returns it.
        item_id: item id (default: ``geohsi-<method>-<bundle hash[:12]>``).
        href: base href of the bundle in the catalogue (default: its local absolute path).
        overwrite: replace an existing ``out``.

    Returns:
        The item (JSON-able dict), validated against the MLM schema.

    Raises:
        ModelError: not a valid bundle, or an item that does not validate.
        OutputError: ``out`` exists without ``overwrite``.

    .. versionadded:: 0.1
    """
    if out is not None:
        _check_item_out(bundle, out, overwrite)
    item = bundle_item(bundle, item_id=item_id, href=href)
    validate_mlm(item)
    if out is not None:
        write_item(item, out, overwrite=overwrite)
    return item


def _check_item_out(bundle: PathLike, out: PathLike, overwrite: bool) -> None:
    """Refuse an item path that is not ``.json``, lies inside the bundle (``--out run/bundle.json
    --overwrite`` had replaced the bundle's own description) or exists without ``overwrite``.

    Raises:
        UsageError: not JSON, or inside the bundle; OutputError: exists without ``overwrite``.
    """
    from geohsi.files import check_output
    from geohsi.storage import absolute, display, is_url

    if not str(out).lower().endswith((".json", ".geojson")):
        raise UsageError(f"--out {display(out)} is a STAC item, a JSON file; name it ITEM.json")
    if not is_url(out) and not is_url(bundle) and Path(absolute(bundle)) in Path(absolute(out)).parents:
        raise UsageError(f"--out {display(out)} is inside the bundle {display(bundle)}; write the item beside it")
    check_output(out, overwrite, directory=False)


__all__ = [
    "EXT_MLM",
    "MLM_SCHEMA_PATH",
    "STAC_VERSION",
    "bundle_item",
    "bundle_stac",
    "item_members",
    "link_item",
    "map_item",
    "member_file",
    "member_href",
    "validate_mlm",
    "write_item",
    "write_map_collection",
]
