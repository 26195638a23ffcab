"""A real STAC API (stac-fastapi-geoparquet) on 127.0.0.1, loaded with items for the EnMAP Potsdam tiles.

Collections served:

* ``enmap-potsdam`` — the 18 tiles, one multi-band GeoTIFF asset each (STAC 1.0 ``eo:bands`` in µm
  + ``raster:bands``), footprints from the files, ``proj:*`` grid fields;
* ``enmap-bands`` — two tiles split into one single-band GeoTIFF per band (STAC 1.1 ``bands``);
* ``synthetic`` — 60 items without spectral metadata on 60 different days (paging, filters).

The items are written here from the files with rasterio, independently of geohsi's STAC reader.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
N_SYNTHETIC = 60
START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _footprint(src) -> tuple[list[float], dict]:
    from rasterio.warp import transform_bounds

    w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return [w, s, e, n], {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _enmap_item(path: Path) -> dict:
    import rasterio

    with rasterio.open(path) as src:
        bbox, geom = _footprint(src)
        tags = [src.tags(i) for i in range(1, src.count + 1)]
        eo = [
            {
                "name": src.descriptions[i],
                "center_wavelength": float(t["wavelength"]) / 1000.0,
                "full_width_half_max": float(t["fwhm"]) / 1000.0,
                "geohsi:good_band": t.get("bbl", "1") != "0",
            }
            for i, t in enumerate(tags)
        ]
        # the files store reflectance × 10000 with a GDAL band scale of 1e-4: the item says so too
        raster = [
            {"nodata": src.nodata, "data_type": src.dtypes[i], "scale": src.scales[i], "offset": src.offsets[i]}
            for i in range(src.count)
        ]
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": path.stem,
            "collection": "enmap-potsdam",
            "stac_extensions": [
                "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            ],
            "bbox": bbox,
            "geometry": geom,
            "properties": {
                "datetime": src.tags()["start_time"] + "Z",
                "platform": "EnMAP",
                "instruments": ["HSI"],
                "eo:cloud_cover": 0.0,
                "proj:epsg": src.crs.to_epsg(),
                "proj:shape": [src.height, src.width],
                "proj:transform": list(src.transform)[:6],
            },
            "links": [],
            "assets": {
                "image": {
                    "href": str(path.resolve()),
                    "type": "image/tiff; application=geotiff",
                    "roles": ["data"],
                    "eo:bands": eo,
                    "raster:bands": raster,
                }
            },
        }


def _per_band_item(path: Path, out_dir: Path) -> dict:
    """Split a tile into one GeoTIFF per band and describe it with STAC 1.1 ``bands``."""
    import rasterio

    out_dir.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path) as src:
        bbox, geom = _footprint(src)
        data = src.read()
        profile = src.profile | {"count": 1}
        assets = {}
        for i in range(src.count):
            t = src.tags(i + 1)
            f = out_dir / f"{path.stem}_B{i + 1:03d}.tif"
            with rasterio.open(f, "w", **profile) as dst:
                dst.write(data[i : i + 1])
            assets[f"B{i + 1:03d}"] = {
                "href": f.resolve().as_uri(),
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "bands": [
                    {
                        "name": src.descriptions[i],
                        "eo:center_wavelength": float(t["wavelength"]) / 1000.0,
                        "eo:full_width_half_max": float(t["fwhm"]) / 1000.0,
                        "nodata": src.nodata,
                        "data_type": src.dtypes[i],
                        "raster:scale": src.scales[i],
                        "raster:offset": src.offsets[i],
                        "geohsi:good_band": t.get("bbl", "1") != "0",
                    }
                ],
            }
        return {
            "type": "Feature",
            "stac_version": "1.1.0",
            "id": path.stem + "-bands",
            "collection": "enmap-bands",
            "stac_extensions": [
                "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
                "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
                "https://stac-extensions.github.io/raster/v2.0.0/schema.json",
            ],
            "bbox": bbox,
            "geometry": geom,
            "properties": {
                "datetime": src.tags()["start_time"] + "Z",
                "proj:code": f"EPSG:{src.crs.to_epsg()}",
                "proj:shape": [src.height, src.width],
                "proj:transform": list(src.transform)[:6],
            },
            "links": [],
            "assets": assets,
        }


def _synthetic_items() -> list[dict]:
    items = []
    for i in range(N_SYNTHETIC):
        x = 10.0 + i * 0.1
        items.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": f"synthetic-{i:03d}",
                "collection": "synthetic",
                "bbox": [x, 50.0, x + 0.05, 50.05],
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[x, 50.0], [x + 0.05, 50.0], [x + 0.05, 50.05], [x, 50.05], [x, 50.0]]],
                },
                "properties": {"datetime": f"2023-{1 + i // 28:02d}-{1 + i % 28:02d}T10:00:00Z", "eo:cloud_cover": float(i)},
                "links": [],
                "assets": {"thumbnail": {"href": "/nonexistent/thumb.png", "type": "image/png", "roles": ["thumbnail"]}},
            }
        )
    return items


def _collection(cid: str, items: list[dict], parquet: Path) -> dict:
    bboxes = np.asarray([it["bbox"] for it in items])
    times = sorted(it["properties"]["datetime"] for it in items)
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": cid,
        "description": f"geohsi test collection {cid}",
        "license": "other",
        "links": [],
        "extent": {
            "spatial": {"bbox": [[*bboxes[:, :2].min(0).tolist(), *bboxes[:, 2:].max(0).tolist()]]},
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "assets": {"data": {"href": str(parquet), "type": "application/vnd.apache.parquet"}},
    }


class StacServer:
    """What the tests need to know about the running catalogue."""

    def __init__(self, url: str, enmap: list[dict], bands: list[dict], tiles: list[Path], startup_s: float) -> None:
        self.url, self.enmap, self.bands, self.tiles, self.startup_s = url, enmap, bands, tiles, startup_s


@pytest.fixture(scope="session")
def stac_api(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Start stac-fastapi-geoparquet on a free 127.0.0.1 port; yields a :class:`StacServer`."""
    try:
        import rustac
        import rustac_duckdb_extensions  # noqa: F401
        import stac_fastapi.geoparquet.api  # noqa: F401
        import uvicorn  # noqa: F401
    except Exception as e:  # the server stack is a test extra
        pytest.skip(f"STAC API server cannot start: {type(e).__name__}: {e} (pip install -e '.[stac-test]')")
    tiles = sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))
    if len(tiles) != 18:
        pytest.skip(f"expected 18 EnMAP Potsdam tiles in {data_dir}, found {len(tiles)}")
    root = tmp_path_factory.mktemp("stac")
    t0 = time.perf_counter()
    enmap = [_enmap_item(p) for p in tiles]
    bands = [_per_band_item(p, root / "bands") for p in tiles[:2]]
    collections = []
    for cid, items in (("enmap-potsdam", enmap), ("enmap-bands", bands), ("synthetic", _synthetic_items())):
        pq = root / f"{cid}.parquet"
        rustac.write_sync(str(pq), items)
        collections.append(_collection(cid, items, pq))
    (root / "collections.json").write_text(json.dumps(collections))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "w")  # noqa: SIM115 - the server process writes it until the session ends
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "stac_server.py"), str(root / "collections.json"), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    deadline = time.perf_counter() + START_TIMEOUT_S
    ok = False
    while time.perf_counter() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/collections", timeout=2) as r:
                ok = r.status == 200 and len(json.loads(r.read())["collections"]) == 3
            if ok:
                break
        except Exception:
            time.sleep(0.1)
    if not ok:
        proc.kill()
        proc.wait()
        log.close()
        tail = (root / "server.log").read_text()[-400:].replace("\n", " | ")
        pytest.skip(f"STAC API server did not start within {START_TIMEOUT_S:.0f} s: {tail}")
    startup = time.perf_counter() - t0
    try:
        yield StacServer(url, enmap, bands, tiles, startup)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
