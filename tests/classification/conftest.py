"""Fixtures for the classify tests: Indian Pines scenes, the EnMAP Potsdam mosaic, random tiny bundles
(trained once per session), and the single-process reference classifier."""

from __future__ import annotations

import numpy as np
import pytest

CROP = (slice(20, 60), slice(30, 80))  # 40 × 50 pixels: small, odd chunkings still give many blocks


def _ip_arrays(data_dir):
    """Indian Pines' cube ``[200, 145, 145]`` and labels, from the .mat files — or, where SciPy is missing
    (the offline GPU check), from the pre-ingested ``indian_pines.zarr`` of the data directory."""
    try:
        import scipy.io
    except ImportError:
        from geohsi.scene import cube as scene_cube
        from geohsi.scene import open_scene

        ds = open_scene(data_dir / "indian_pines.zarr")
        return np.asarray(scene_cube(ds).values), np.asarray(ds["labels"].values)
    d = data_dir / "indian_pines"
    cube = scipy.io.loadmat(d / "Indian_pines_corrected.mat")["indian_pines_corrected"].transpose(2, 0, 1)
    gt = scipy.io.loadmat(d / "Indian_pines_gt.mat")["indian_pines_gt"]
    return cube, gt


@pytest.fixture(scope="session")
def ip_scene(tmp_path_factory, data_dir):
    """The whole Indian Pines scene (pixel grid, 145 × 145 × 200) with labels."""
    from geohsi.datasets.registry import indian_pines_bands
    from geohsi.scene import add_labels, make_scene, write_scene

    cube, gt = _ip_arrays(data_dir)
    ds = add_labels(make_scene(cube, wavelength=indian_pines_bands()[0], fwhm=indian_pines_bands()[1]), gt)
    return write_scene(ds, tmp_path_factory.mktemp("ip") / "ip.zarr", chunks=64)


@pytest.fixture(scope="session")
def ip_crop_geo(tmp_path_factory, data_dir):
    """A 40 × 50 crop of Indian Pines, georeferenced (EPSG:32616, 20 m) with a nodata patch and nodata pixels.

    The CRS/transform are made up (Indian Pines ships without them) so the GeoTIFF path can be tested
    on the scene the bundle was trained on; nodata = 0 on a 5 × 7 block and a scatter of pixels.
    """
    from affine import Affine

    from geohsi.datasets.registry import indian_pines_bands
    from geohsi.scene import make_scene, write_scene

    cube, _ = _ip_arrays(data_dir)
    c = cube[:, CROP[0], CROP[1]].copy()
    c[:, 3:8, 10:17] = 0
    rng = np.random.default_rng(0)
    rr, cc = rng.integers(0, c.shape[1], 15), rng.integers(0, c.shape[2], 15)
    c[:, rr, cc] = 0
    ds = make_scene(
        c,
        wavelength=indian_pines_bands()[0],
        fwhm=indian_pines_bands()[1],
        crs="EPSG:32616",
        transform=Affine(20.0, 0.0, 500000.0, 0.0, -20.0, 4500000.0),
        nodata=0,
    )
    return write_scene(ds, tmp_path_factory.mktemp("ipgeo") / "ip_geo.zarr", chunks=16)


@pytest.fixture(scope="session")
def ip_crop_grid(tmp_path_factory, data_dir):
    """A 40 × 50 pixel-grid crop of Indian Pines (no CRS)."""
    from geohsi.datasets.registry import indian_pines_bands
    from geohsi.scene import make_scene, write_scene

    cube, _ = _ip_arrays(data_dir)
    ds = make_scene(cube[:, CROP[0], CROP[1]].copy(), wavelength=indian_pines_bands()[0], fwhm=indian_pines_bands()[1])
    return write_scene(ds, tmp_path_factory.mktemp("ipgrid") / "ip_grid.zarr", chunks=32)


@pytest.fixture(scope="session")
def ip_mid(tmp_path_factory, data_dir):
    """The top-left 72 × 72 pixels of Indian Pines (pixel grid): 36 chunks of 12² for the cluster tests."""
    from geohsi.datasets.registry import indian_pines_bands
    from geohsi.scene import make_scene, write_scene

    cube, _ = _ip_arrays(data_dir)
    wl, fw = indian_pines_bands()
    ds = make_scene(cube[:, :72, :72].copy(), wavelength=wl, fwhm=fw)
    return write_scene(ds, tmp_path_factory.mktemp("ipmid") / "ip_mid.zarr", chunks=36)


def _train(scene, out):
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    cfg = resolve_train_config(adapter="lora", epochs=1, split="per-class:5", model="tiny", device="cpu", head="patch")
    return train(scene, cfg, out=out, progress=False, log=lambda m: None)


@pytest.fixture(scope="session")
def ip_bundle(tmp_path_factory, ip_scene):
    """A random-backbone tiny LoRA bundle trained one epoch on Indian Pines."""
    return _train(ip_scene, tmp_path_factory.mktemp("ipb") / "bundle")


@pytest.fixture(scope="session")
def enmap_scene(tmp_path_factory, data_dir):
    """The EnMAP Potsdam tile mosaic (EPSG:32633, 30 m, nodata −32768 outside the 18 tiles) with labels."""
    from geohsi.ingestion import ingest

    d = data_dir / "enmap_potsdam"
    tiles = sorted((d / "images").glob("*.tif"))
    return ingest(tiles, tmp_path_factory.mktemp("enmap") / "enmap.zarr", labels=d / "enmap_landcover_unstyled.tif")


@pytest.fixture(scope="session")
def enmap_bundle(tmp_path_factory, enmap_scene):
    """A random-backbone tiny LoRA bundle trained one epoch on the EnMAP mosaic."""
    return _train(enmap_scene, tmp_path_factory.mktemp("enb") / "bundle")


def reference_probabilities(scene_path, bundle_path, batch_size: int = 512) -> np.ndarray:
    """Single-process reference: every pixel of the whole in-memory scene, one loop, no Dask blocks.

    Returns:
        ``[K, H, W]`` float32, NaN at invalid pixels.
    """
    from geohsi.bundle import load_bundle
    from geohsi.prediction import predict_proba
    from geohsi.scene import open_scene
    from geohsi.spectral.windows import extract_windows

    ds = open_scene(scene_path)
    b = load_bundle(bundle_path)
    import dask

    with dask.config.set(scheduler="synchronous"):
        channels = np.asarray(b.transform.apply(ds).values, dtype="float32")  # whole scene in memory
    model = b.build_model(merge=True)
    _, h, w = channels.shape
    valid = ~np.isnan(channels).any(axis=0)
    rows, cols = np.nonzero(valid)
    out = np.full((len(b.classes), h, w), np.nan, np.float32)
    for s in range(0, rows.size, batch_size):
        r, c = rows[s : s + batch_size], cols[s : s + batch_size]
        out[:, r, c] = predict_proba(
            model, extract_windows(channels, r, c, b.head.window, b.head.input_size), batch_size=batch_size
        ).T
    return out


def reference_labels(probs: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Class ids of the reference (0 where invalid), computed independently of geohsi.classification."""
    ids = np.asarray(class_ids)[np.nan_to_num(probs, nan=-1).argmax(0)]
    return np.where(np.isnan(probs[0]), 0, ids)
