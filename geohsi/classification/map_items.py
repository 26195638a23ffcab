"""A batch map's own files: where its outputs go, whether a map there is complete (same bundle hash and
scene identity in its item and its tags), and its STAC item, written last.

.. versionadded:: 0.2
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geohsi import storage
from geohsi.classification.job import ClassifyResult, MapJob, MapOutputs
from geohsi.errors import GeohsiError

#: item properties recording what a map was made from (compared on a rerun).
PROVENANCE_KEYS = ("bundle_sha256", "scene_identity")


def map_outputs(out_dir: Path | str, name: str, kind: str, with_probabilities: bool, confidence: bool) -> MapOutputs:
    """The outputs of scene ``name`` in ``out_dir``: ``NAME.{tif,zarr}`` and, when asked, its probabilities and confidence."""
    prob = storage.join(out_dir, f"{name}.probabilities.{kind}") if with_probabilities else None
    return MapOutputs.resolve(storage.join(out_dir, f"{name}.{kind}"), prob, confidence)


def item_path(out: MapOutputs) -> Path | str:
    """The map's STAC item beside it: ``NAME.json``."""
    return storage.with_suffix(out.map, ".json")


def read_item(path: Path | str) -> dict[str, Any] | None:
    """The item at ``path``, or ``None`` when it is missing or unreadable."""
    try:
        return json.loads(storage.read_text(path))
    except (OSError, ValueError, GeohsiError):
        return None


def earlier_items(out_dir: Path | str, catalog: str, names: set[str]) -> list[dict[str, Any]]:
    """The items an earlier batch catalogued in ``out_dir`` whose map is still there, but none named in
    ``names`` (this batch's scenes): a batch into a folder adds to its catalogue (the second of two
    batches into ``maps/`` had dropped the first one's maps from ``catalog.json``, and so from
    ``geohsi sample --catalog``).
    """
    from geohsi.export.stac import item_members, member_file

    doc = read_item(storage.join(out_dir, catalog))
    if not doc or doc.get("type") != "Collection":
        return []
    kept = []
    for file in (Path(m).name for m in item_members(doc)):
        item = read_item(storage.join(out_dir, file)) if file.endswith(".json") else None
        href = str(((item or {}).get("assets") or {}).get("map", {}).get("href", ""))
        if item and item.get("id") not in names and href and storage.exists(storage.join(out_dir, Path(member_file(href)).name)):
            kept.append(item)
    return kept


def map_completion(out: MapOutputs, provenance: dict[str, str]) -> str:
    """``complete``, ``absent`` (nothing there), ``ours`` (a partial run of the same map) or ``foreign``.

    A map is complete when its item exists (written last), records the same bundle hash and scene
    identity, every output exists, and the map's own tags say the same.
    """
    from geohsi.export.maps import read_identity

    item = read_item(item_path(out))
    existing = [p for p in [*out.paths, item_path(out)] if storage.exists(p)]
    if not existing:
        return "absent"
    tags = read_identity(out.map) if storage.exists(out.map) else None
    same_map = tags is not None and all(tags.get(k) == provenance[k] for k in PROVENANCE_KEYS)
    props = (item or {}).get("properties", {})
    same_item = item is not None and all(props.get(f"geohsi:{k}") == provenance[k] for k in PROVENANCE_KEYS)
    if same_map and same_item and all(storage.exists(p) for p in out.paths):
        return "complete"
    if storage.exists(out.map) and not same_map:
        return "foreign"
    if item is not None and not same_item:
        return "foreign"
    return "ours"


def asset_href(p: Path | str) -> str:
    """An asset's href in the batch's catalogue: ``./NAME`` beside it (percent-encoded), absolute in a bucket."""
    from geohsi.export.stac import member_href

    return storage.display(p) if storage.is_url(p) else member_href(storage.name(p))


def write_map_item(job: MapJob, res: ClassifyResult, src: Any, rows: list[dict[str, Any]], collection_id: str) -> Path | str:
    """The map's STAC item (``<name>.json``), linked into the batch's collection."""
    from geohsi.export.stac import MEDIA_TYPES, link_item, map_item, write_item

    out = job.outputs
    extra: dict[str, dict[str, Any]] = {}
    for key, p, roles, title in (
        ("overview", out.quicklook, ["overview", "visual"], "quicklook"),
        ("confidence", out.confidence_tif, ["data", "quality"], "probability of the predicted class (value / 254)"),
        ("probabilities", out.probabilities, ["data", "probabilities"], "per-class probabilities"),
    ):
        if p is not None and storage.exists(p):
            suffix = Path(storage.name(p)).suffix.lower()
            extra[key] = {"href": asset_href(p), "type": MEDIA_TYPES.get(suffix), "roles": roles, "title": title}
    if hasattr(src, "get_self_href"):  # a STAC item: its self link, less any token in its query
        self_href = src.get_self_href()
        source_href = storage.display(self_href) if self_href else None
    else:
        source_href = storage.absolute(src)
    props = {f"geohsi:{k}": v for k, v in job.identity.items()}
    props.update({"geohsi:valid_pixels": res.mapped_pixels, "geohsi:class_stats": rows, "geohsi:area_note": res.area_note})
    item = map_item(
        out.map,
        job.plan.bundle,
        job.plan.scene,
        item_id=Path(storage.name(out.map)).stem,
        href=asset_href(out.map),
        source_href=source_href or f"stac:{getattr(src, 'id', '')}",
        properties=props,
        assets=extra,
    )
    base = storage.display(storage.sibling(out.map, "")).rstrip("/") if storage.is_url(out.map) else None
    link_item(item, collection_id, base=base)
    return write_item(item, item_path(out), overwrite=True)


__all__ = ["PROVENANCE_KEYS", "asset_href", "item_path", "map_completion", "map_outputs", "read_item", "write_map_item"]
