"""The bad-input suite: every way a user can point geohsi at the wrong thing, through the CLI.

Each case builds its inputs in a fresh workspace, runs one ``geohsi`` command (in-process through
:func:`geohsi.cli.main.main`, the console-script entry point, so the suite stays fast) and checks:

* the exit code of the error class (``docs/reliability.md`` has the table);
* exactly one line on stderr, matching the case's regex (the file/value, the problem, the fix);
* no ``Traceback`` anywhere in the captured output;
* nothing that existed before changed (sha256 of every file in the workspace and of the shared
  scene/bundle fixtures) and no file appeared under the workspace, hidden temporaries included.

Training-based cases share one tiny bundle trained once per session on a 40 × 40 crop of Indian
Pines. ``test_cli_subprocess_*`` checks the same contract through a real ``python -m geohsi.cli.main``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

CROP = (slice(10, 50), slice(5, 45))  # 40 × 40 pixels of Indian Pines with 9 classes of ≥ 10 pixels
TRANSFORM = (20.0, 0.0, 500000.0, 0.0, -20.0, 4500000.0)  # made up: Indian Pines ships without a CRS


# --------------------------------------------------------------------------- running the CLI


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [x for x in self.err.splitlines() if x.strip()]


def cli(capsys: pytest.CaptureFixture, *args: object) -> Result:
    """Run ``geohsi ARGS`` in-process; returns the exit code and captured stdout/stderr."""
    from geohsi.cli.main import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0) if not isinstance(e.code, str) else 1
    cap = capsys.readouterr()
    return Result(code, cap.out, cap.err)


def tree_state(*roots: Path) -> dict[str, str]:
    """``{path: sha256}`` of every file under ``roots`` (directories themselves ignored)."""
    state: dict[str, str] = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
        for f in files:
            state[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else f"link:{os.readlink(f)}"
    return state


# --------------------------------------------------------------------------- shared inputs


class Inputs:
    """Session inputs, built lazily so a case only pays for what it uses."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root = root
        self.data = data_dir

    # -- raw arrays -------------------------------------------------------------------------
    @cached_property
    def ip(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(cube [200, 40, 40] float32, labels [40, 40] 1..9, wavelength, fwhm)``."""
        import scipy.io

        from geohsi.datasets.registry import indian_pines_bands

        d = self.data / "indian_pines"
        cube = scipy.io.loadmat(d / "Indian_pines_corrected.mat")["indian_pines_corrected"].transpose(2, 0, 1)
        gt = scipy.io.loadmat(d / "Indian_pines_gt.mat")["indian_pines_gt"][CROP].copy()
        gt[gt == 11] = 0  # 6 pixels in this crop: too few for per-class:3 with validation
        lab = np.zeros_like(gt)
        for k, cid in enumerate(i for i in np.unique(gt) if i):
            lab[gt == cid] = k + 1
        wl, fw = indian_pines_bands()
        return cube[:, CROP[0], CROP[1]].astype("float32"), lab, np.asarray(wl), np.asarray(fw)

    def make(
        self,
        name: str,
        *,
        cube: np.ndarray | None = None,
        labels: np.ndarray | None | bool = True,
        crs: str | None = "EPSG:32616",
        wavelength: np.ndarray | None = None,
        fwhm: np.ndarray | None = None,
        nodata: float | None = None,
        chunks: int = 20,
        where: Path | None = None,
    ) -> Path:
        """Write a scene variant of the crop (``labels=True`` → the crop's labels, ``None``/False → none)."""
        from affine import Affine

        from geohsi.scene import add_labels, make_scene, write_scene

        c0, lab0, wl0, fw0 = self.ip
        c = c0 if cube is None else cube
        wl = wl0[: c.shape[0]] if wavelength is None else wavelength
        ds = make_scene(
            c,
            wavelength=wl,
            fwhm=fwhm if fwhm is not None else (fw0[: c.shape[0]] if wavelength is None else None),
            crs=crs,
            transform=Affine(*TRANSFORM) if crs else None,
            nodata=nodata,
        )
        lab = lab0 if labels is True else (labels if isinstance(labels, np.ndarray) else None)
        if lab is not None:
            ds = add_labels(ds, lab)
        return write_scene(ds, (where or self.root) / name, chunks=chunks)

    # -- scenes -----------------------------------------------------------------------------
    @cached_property
    def scene(self) -> Path:
        """The georeferenced 40 × 40 × 200 crop with 9 label classes."""
        return self.make("scene.zarr")

    @cached_property
    def grid_scene(self) -> Path:
        """The same crop as a pixel grid (no CRS)."""
        return self.make("grid.zarr", crs=None)

    @cached_property
    def fewer_bands(self) -> Path:
        """The crop with its last 10 bands dropped (190 bands)."""
        return self.make("fewer.zarr", cube=self.ip[0][:190])

    @cached_property
    def inflated_widths(self) -> Path:
        """The crop as an earlier geohsi stored a file with unitless widths: 5.5 nm read as 5.5 µm."""
        return self.make("inflated.zarr", fwhm=self.ip[3] * 1000.0)

    @cached_property
    def vnir_scene(self) -> Path:
        """200 bands squeezed into 400–1000 nm: no SWIR, so Sentinel-2 bands 11 and 12 are uncovered."""
        return self.make("vnir.zarr", wavelength=np.linspace(400.0, 1000.0, 200))

    # -- backbones and bundles --------------------------------------------------------------
    def backbone(self, name: str, seed: int) -> Path:
        import torch

        from geohsi.models import build_classifier, save_backbone

        p = self.root / name
        if not p.exists():
            torch.manual_seed(seed)
            # with the final norm (official layout): training initialises the head norm from it
            save_backbone(build_classifier("tiny", 9, img_size=32, num_bands=12), p, include_head=True)
        return p

    @cached_property
    def backbone_a(self) -> Path:
        return self.backbone("tiny_a.safetensors", 1)

    @cached_property
    def backbone_b(self) -> Path:
        return self.backbone("tiny_b.safetensors", 2)

    def _train(self, name: str, **opts: object) -> Path:
        from geohsi.training.config import resolve_train_config
        from geohsi.training.finetune import train

        cfg = resolve_train_config(
            **{
                "adapter": "lora",
                "epochs": 1,
                "split": "per-class:3",
                "model": "tiny",
                "device": "cpu",
                "batch_size": 32,
                "head": "patch",
                **opts,
            }
        )
        return train(self.scene, cfg, out=self.root / name, progress=False, log=lambda m: None)

    @cached_property
    def bundle(self) -> Path:
        """LoRA on backbone A, PCA front end, one epoch."""
        return self._train("bundle", backbone=str(self.backbone_a))

    @cached_property
    def s2_bundle(self) -> Path:
        """Linear probe with the Sentinel-2 front end, one epoch."""
        return self._train("bundle_s2", adapter="linear", spectral="s2")

    # -- source files -----------------------------------------------------------------------
    def geotiff(
        self,
        path: Path,
        *,
        crs: str | None = "EPSG:32616",
        transform: tuple = TRANSFORM,
        bands: int = 6,
        size: tuple[int, int] = (40, 40),
        dtype: str = "float32",
        tiled: bool = False,
        value: float | None = None,
    ) -> Path:
        import rasterio
        from affine import Affine

        c = self.ip[0][:bands, : size[0], : size[1]].astype(dtype)
        if value is not None:
            c = np.full_like(c, value)
        profile = {
            "driver": "GTiff",
            "width": size[1],
            "height": size[0],
            "count": bands,
            "dtype": dtype,
            "transform": Affine(*transform),
        }
        if crs:
            profile["crs"] = crs
        if tiled:
            profile.update(tiled=True, blockxsize=16, blockysize=16)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(c)
        return path

    def labels_tif(self, path: Path, *, crs: str = "EPSG:32616", transform: tuple = TRANSFORM, size=(40, 40)) -> Path:
        import rasterio
        from affine import Affine

        lab = np.zeros(size, "uint8")
        lab[: min(size[0], 40), : min(size[1], 40)] = self.ip[1][: size[0], : size[1]]
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=size[1],
            height=size[0],
            count=1,
            dtype="uint8",
            crs=crs,
            transform=Affine(*transform),
        ) as dst:
            dst.write(lab[np.newaxis])
        return path

    def envi(
        self,
        folder: Path,
        *,
        lines: int = 8,
        samples: int = 6,
        bands: int = 5,
        interleave: str = "bsq",
        byte_order: str = "0",
        data_lines: int | None = None,
        data_type: str = "4",
        extra: str = "",
    ) -> Path:
        """A small ENVI pair ``folder/cube.hdr`` + ``folder/cube.img`` (float32)."""
        folder.mkdir(parents=True, exist_ok=True)
        data = np.arange(bands * (data_lines or lines) * samples, dtype="<f4")
        (folder / "cube.img").write_bytes(data.tobytes())
        hdr = (
            f"ENVI\nsamples = {samples}\nlines = {lines}\nbands = {bands}\nheader offset = 0\n"
            f"data type = {data_type}\ninterleave = {interleave}\nbyte order = {byte_order}\n"
            "map info = {UTM, 1, 1, 500000, 4500000, 20, 20, 16, North, WGS-84}\n"
            f"wavelength = {{{', '.join(str(450 + 50 * i) for i in range(bands))}}}\n{extra}"
        )
        (folder / "cube.hdr").write_text(hdr)
        return folder / "cube.hdr"


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Inputs:
    return Inputs(tmp_path_factory.mktemp("bad_inputs"), data_dir)


# --------------------------------------------------------------------------- filesystem helpers


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *, readonly: bool = False):
    """Mount a tiny tmpfs at ``path`` (root only); skips the test where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); the patched-writer case covers this")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the cases


@dataclass
class Env:
    """What a case's setup may use besides its workspace: monkeypatching and cleanups (mounts)."""

    mp: pytest.MonkeyPatch
    stack: contextlib.ExitStack


@dataclass
class Case:
    """One bad input: ``setup(ws, inputs, monkeypatch) → CLI args``; ``code`` and ``message`` regex expected."""

    id: str
    setup: Callable[[Path, Inputs, Env], list]
    code: int
    message: str
    shared: tuple[str, ...] = ()  # Inputs attributes the case reads: their files must not change either


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _chunk_files(store: Path, var: str) -> list[Path]:
    return sorted(p for p in (store / var / "c").rglob("*") if p.is_file())


# -- ingest -------------------------------------------------------------------------------------


def truncated_mat(ws, fx, env):
    src = _truncate(_copy(fx.data / "indian_pines" / "Indian_pines_corrected.mat", ws / "ip.mat"), 0.5)
    return ["ingest", src, "--crs", "none", "--out", ws / "out.zarr"]


def truncated_mat_header(ws, fx, env):
    src = _truncate(_copy(fx.data / "indian_pines" / "Indian_pines_corrected.mat", ws / "ip.mat"), 0.01)
    return ["ingest", src, "--crs", "none", "--out", ws / "out.zarr"]


def truncated_geotiff(ws, fx, env):
    src = _truncate(fx.geotiff(ws / "t.tif"), 0.6)
    return ["ingest", src, "--out", ws / "out.zarr"]


def truncated_geotiff_tiled(ws, fx, env):
    src = _truncate(fx.geotiff(ws / "t.tif", tiled=True), 0.6)
    return ["ingest", src, "--out", ws / "out.zarr"]


def truncated_zarr_chunk(ws, fx, env):
    store = fx.make("src.zarr", where=ws)
    _truncate(_chunk_files(store, "reflectance")[1], 0.5)
    return ["ingest", store, "--out", ws / "out.zarr"]


def info_truncated_zarr_chunk(ws, fx, env):
    store = fx.make("s.zarr", where=ws)
    _truncate(_chunk_files(store, "reflectance")[0], 0.3)
    return ["info", store]


def envi_size_mismatch(ws, fx, env):
    return ["ingest", fx.envi(ws / "e", lines=8, data_lines=7), "--out", ws / "out.zarr"]


def envi_byte_order(ws, fx, env):
    return ["ingest", fx.envi(ws / "e", byte_order="2"), "--out", ws / "out.zarr"]


def envi_interleave(ws, fx, env):
    return ["ingest", fx.envi(ws / "e", interleave="bsx"), "--out", ws / "out.zarr"]


def envi_complex(ws, fx, env):
    return ["ingest", fx.envi(ws / "e", data_type="6"), "--out", ws / "out.zarr"]


def envi_header_garbage(ws, fx, env):
    hdr = fx.envi(ws / "e")
    hdr.write_text(hdr.read_text().replace("lines = 8", "lines = eight"))
    return ["ingest", hdr, "--out", ws / "out.zarr"]


def envi_nodata_not_a_number(ws, fx, env):
    return ["ingest", fx.envi(ws / "e", extra="data ignore value = n/a\n"), "--out", ws / "out.zarr"]


def unknown_format(ws, fx, env):
    (ws / "notes.xyz").write_text("not a raster")
    return ["ingest", ws / "notes.xyz", "--out", ws / "out.zarr"]


def missing_input(ws, fx, env):
    return ["ingest", ws / "nowhere.tif", "--out", ws / "out.zarr"]


def geotiff_not_georeferenced(ws, fx, env):
    """No geotransform at all: rasterio's two-line NotGeoreferencedWarning had come before geohsi's one line."""
    import rasterio

    with rasterio.open(ws / "plain.tif", "w", driver="GTiff", width=5, height=4, count=3, dtype="uint16") as dst:
        dst.write(np.ones((3, 4, 5), "uint16"))
    return ["ingest", ws / "plain.tif", "--out", ws / "o.zarr"]


def mat_without_crs(ws, fx, env):
    return ["ingest", fx.data / "indian_pines" / "Indian_pines_corrected.mat", "--out", ws / "o.zarr"]


def labels_other_shape(ws, fx, env):
    src = fx.geotiff(ws / "s.tif", crs=None)
    lab = fx.labels_tif(ws / "lab.tif", size=(30, 40))
    return ["ingest", src, "--crs", "none", "--labels", lab, "--out", ws / "out.zarr"]


def labels_other_crs(ws, fx, env):
    src = fx.geotiff(ws / "s.tif")
    lab = fx.labels_tif(ws / "lab.tif", crs="EPSG:32617")
    return ["ingest", src, "--labels", lab, "--out", ws / "out.zarr"]


def ingest_band_axis_of_a_geotiff(ws, fx, env):
    """--band-axis for a GeoTIFF had reached its reader: an unexpected TypeError, exit 70."""
    return ["ingest", fx.geotiff(ws / "s.tif"), "--band-axis", "0", "--out", ws / "out.zarr"]


def labels_id_past_uint16(ws, fx, env):
    """An int32 label raster with id 65,537: it had wrapped onto class 1 without a word."""
    import rasterio
    from affine import Affine

    lab = np.zeros((40, 40), "int32")
    lab[:5], lab[10:] = 1, 65537
    with rasterio.open(ws / "lab.tif", "w", driver="GTiff", width=40, height=40, count=1, dtype="int32",
                       crs="EPSG:32616", transform=Affine(*TRANSFORM)) as dst:  # fmt: skip
        dst.write(lab, 1)
    return ["ingest", fx.geotiff(ws / "s.tif"), "--labels", ws / "lab.tif", "--out", ws / "out.zarr"]


def labels_off_grid(ws, fx, env):
    src = fx.geotiff(ws / "s.tif")
    t = list(TRANSFORM)
    t[2] += 7.0  # a third of a pixel east
    lab = fx.labels_tif(ws / "lab.tif", transform=tuple(t))
    return ["ingest", src, "--labels", lab, "--out", ws / "out.zarr"]


def tiles_mixed_crs(ws, fx, env):
    a = fx.geotiff(ws / "a.tif", size=(20, 40))
    t = list(TRANSFORM)
    t[5] -= 400.0
    b = fx.geotiff(ws / "b.tif", size=(20, 40), crs="EPSG:32617", transform=tuple(t))
    return ["ingest", a, b, "--out", ws / "out.zarr"]


def tiles_other_bands(ws, fx, env):
    a = fx.geotiff(ws / "a.tif", size=(20, 40))
    t = list(TRANSFORM)
    t[5] -= 400.0
    b = fx.geotiff(ws / "b.tif", size=(20, 40), bands=5, transform=tuple(t))
    return ["ingest", a, b, "--out", ws / "out.zarr"]


def ingest_bad_crs(ws, fx, env):
    return [
        "ingest",
        fx.geotiff(ws / "s.tif", crs=None),
        "--crs",
        "EPSG:999999",
        "--transform",
        "20,0,0,0,-20,0",
        "--out",
        ws / "o.zarr",
    ]


def ingest_bad_transform(ws, fx, env):
    return [
        "ingest",
        fx.geotiff(ws / "s.tif", crs=None),
        "--crs",
        "EPSG:32616",
        "--transform",
        "20,0,500000,0,-20",
        "--out",
        ws / "o.zarr",
    ]


def ingest_zero_chunks(ws, fx, env):
    return ["ingest", fx.geotiff(ws / "s.tif"), "--chunks", "0", "--out", ws / "o.zarr"]


def ingest_nodata_not_a_number(ws, fx, env):
    return ["ingest", fx.geotiff(ws / "s.tif"), "--nodata", "n/a", "--out", ws / "o.zarr"]


def ingest_out_exists(ws, fx, env):
    fx.make("out.zarr", where=ws)
    return ["ingest", fx.geotiff(ws / "s.tif"), "--out", ws / "out.zarr"]


def ingest_out_under_a_file(ws, fx, env):
    (ws / "file").write_text("I am a file")
    return ["ingest", fx.geotiff(ws / "s.tif"), "--out", ws / "file" / "out.zarr"]


def ingest_out_readonly(ws, fx, env):
    src = fx.geotiff(ws / "s.tif")
    ro = ws / "ro"
    env.stack.enter_context(tmpfs(ro, "1m", readonly=True))
    return ["ingest", src, "--out", ro / "out.zarr"]


def ingest_disk_full(ws, fx, env):
    """A 64 KiB tmpfs: the metadata fits, the 1.3 MB cube does not."""
    src = fx.geotiff(ws / "s.tif", bands=200)
    full = ws / "full"
    env.stack.enter_context(tmpfs(full, "64k"))
    return ["ingest", src, "--out", full / "out.zarr"]


def ingest_disk_full_overwrite(ws, fx, env):
    """Disk full while replacing an existing store with --overwrite: the old store must survive."""
    src = fx.geotiff(ws / "s.tif", bands=200)
    full = ws / "full"
    env.stack.enter_context(tmpfs(full, "256k"))
    small = fx.geotiff(ws / "small.tif", bands=2, size=(8, 8))
    from geohsi.ingestion import ingest

    ingest(small, full / "out.zarr")
    return ["ingest", src, "--out", full / "out.zarr", "--overwrite"]


def ingest_disk_full_patched(ws, fx, env):
    """ENOSPC raised by the store after some chunks were written (no mount needed)."""
    import zarr.storage

    calls = {"n": 0}
    orig = zarr.storage.LocalStore.set

    async def set_(self, key, value):
        calls["n"] += 1
        if calls["n"] > 6:
            raise OSError(errno.ENOSPC, "No space left on device", str(Path(str(self.root)) / key))
        return await orig(self, key, value)

    env.mp.setattr(zarr.storage.LocalStore, "set", set_)
    return ["ingest", fx.geotiff(ws / "s.tif"), "--out", ws / "out.zarr"]


def ingest_out_named_as_a_geotiff(ws, fx, env):
    """A Zarr directory called scene.tif had been written, which GDAL and every viewer then failed to open."""
    return ["ingest", fx.geotiff(ws / "s.tif"), "--out", ws / "scene.tif"]


def ingest_out_is_input(ws, fx, env):
    store = fx.make("s.zarr", where=ws)
    return ["ingest", store, "--out", store, "--overwrite"]


def ingest_url_with_credentials(ws, fx, env):
    """KEY:SECRET@ in an s3:// URL had reached botocore: exit 70 with the secret in the message."""
    return ["ingest", "s3://AKX:SEKRIT@bkt/images/t0.tif", "--out", ws / "o.zarr"]


def ingest_layer_without_labels(ws, fx, env):
    """--layer/--all-touched without --labels had been ignored, exit 0."""
    return ["ingest", fx.geotiff(ws / "s.tif"), "--layer", "fields", "--out", ws / "o.zarr"]


def ingest_out_is_the_inputs_folder(ws, fx, env):
    """--overwrite with --out naming a folder of the user's files (here the inputs' own): it had been deleted."""
    raw = ws / "raw"
    raw.mkdir()
    (raw / "notes.txt").write_text("a user's file")
    return ["ingest", fx.geotiff(raw / "s.tif"), "--out", raw, "--overwrite"]


# -- info -----------------------------------------------------------------------------------------


def netcdf_band_table(ws, wavelength, fwhm, wl_units):
    import xarray as xr

    coords = {"wavelength": ("wavelength", np.asarray(wavelength), {"units": wl_units} if wl_units else {})}
    if fwhm is not None:
        coords["fwhm"] = ("wavelength", np.asarray(fwhm))
    cube = np.ones((len(wavelength), 4, 5), "float32")
    xr.Dataset({"reflectance": (("wavelength", "y", "x"), cube)}, coords=coords).to_netcdf(ws / "c.nc", engine="h5netcdf")
    return ws / "c.nc"


def ingest_micrometres_stated_as_nm(ws, fx, env):
    src = netcdf_band_table(ws, np.linspace(0.4, 2.5, 50), None, "nm")
    return ["ingest", src, "--crs", "none", "--out", ws / "out.zarr"]


def ingest_some_centres_unknown(ws, fx, env):
    wl = np.linspace(400, 2500, 50)
    wl[7] = np.nan
    return ["ingest", netcdf_band_table(ws, wl, None, None), "--crs", "none", "--out", ws / "out.zarr"]


def ingest_widths_not_positive(ws, fx, env):
    src = netcdf_band_table(ws, np.linspace(400, 2500, 50), np.r_[np.full(49, 10.0), 0.0], None)
    return ["ingest", src, "--crs", "none", "--out", ws / "out.zarr"]


def ingest_widths_wider_than_half_the_range(ws, fx, env):
    src = netcdf_band_table(ws, np.linspace(400, 2500, 50), np.full(50, 1500.0), "nm")
    return ["ingest", src, "--crs", "none", "--out", ws / "out.zarr"]


def info_not_a_scene(ws, fx, env):
    (ws / "d").mkdir()
    (ws / "d" / "readme.txt").write_text("hello")
    return ["info", ws / "d"]


def info_corrupt_bundle_json(ws, fx, env):
    b = _copy(fx.bundle, ws / "b")
    (b / "bundle.json").write_text('{"format": "geohsi-bundle", ')
    return ["info", b]


# -- train ----------------------------------------------------------------------------------------


def train_args(ws, fx, *extra):
    return ["train", fx.scene, "--epochs", "1", "--model", "tiny", "--out", ws / "b", "--quiet", *extra]


def split_case(spec):
    return lambda ws, fx, env: train_args(ws, fx, "--split", spec)


def window_case(w):
    return lambda ws, fx, env: train_args(ws, fx, "--split", "per-class:3", "--window", str(w), "--head", "patch")


def class_missing_from_split(ws, fx, env):
    lab = fx.ip[1].copy()
    rows, cols = np.nonzero(lab == 5)
    lab[rows[2:], cols[2:]] = 0  # class 5 keeps 2 pixels: too few for per-class:3
    scene = fx.make("two.zarr", labels=lab, where=ws)
    return ["train", scene, "--epochs", "1", "--split", "per-class:3", "--out", ws / "b", "--quiet"]


def all_nodata(ws, fx, env):
    scene = fx.make("nd.zarr", cube=np.full_like(fx.ip[0], -1.0), nodata=-1.0, where=ws)
    return ["train", scene, "--epochs", "1", "--split", "per-class:3", "--out", ws / "b", "--quiet"]


def all_nan(ws, fx, env):
    scene = fx.make("nan.zarr", cube=np.full_like(fx.ip[0], np.nan), where=ws)
    return ["train", scene, "--epochs", "1", "--split", "per-class:3", "--out", ws / "b", "--quiet"]


def corrupted_safetensors(ws, fx, env):
    bad = _copy(fx.backbone_a, ws / "bb.safetensors")
    data = bytearray(bad.read_bytes())
    data[4:12] = b"\xff" * 8  # the JSON header's length field
    bad.write_bytes(bytes(data))
    return train_args(ws, fx, "--split", "per-class:3", "--backbone", bad)


def truncated_safetensors(ws, fx, env):
    bad = _truncate(_copy(fx.backbone_a, ws / "bb.safetensors"), 0.7)
    return train_args(ws, fx, "--split", "per-class:3", "--backbone", bad)


class _Evil:
    """Unpickling this would create a file (a stand-in for arbitrary code execution)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def pickled_pth(ws, fx, env):
    import torch

    evil = ws / "evil.pth"
    torch.save({"model": {"blocks.0.attn.q.weight": torch.zeros(2, 2)}, "extra": _Evil(str(ws / "PWNED"))}, evil)
    return train_args(ws, fx, "--split", "per-class:3", "--backbone", evil)


def pickled_pth_protocol5(ws, fx, env):
    import torch

    evil = ws / "evil5.pth"
    torch.save(
        {"model": {"blocks.0.attn.q.weight": torch.zeros(2, 2)}, "extra": _Evil(str(ws / "PWNED"))}, evil, pickle_protocol=5
    )
    return train_args(ws, fx, "--split", "per-class:3", "--backbone", evil)


def train_missing_backbone(ws, fx, env):
    return train_args(ws, fx, "--split", "per-class:3", "--backbone", ws / "nope.safetensors")


def train_out_exists(ws, fx, env):
    b = _copy(fx.bundle, ws / "b")
    return train_args(ws, fx, "--split", "per-class:3") if b.exists() else []


def train_out_under_a_file(ws, fx, env):
    (ws / "runs").write_text("a file where a directory should be")
    return ["train", fx.scene, "--epochs", "1", "--out", ws / "runs" / "b", "--quiet"]


def train_missing_config(ws, fx, env):
    return train_args(ws, fx, "--config", ws / "nope.yaml")


def train_config_wrong_type(ws, fx, env):
    (ws / "run.yaml").write_text("rank: lots\n")
    return train_args(ws, fx, "--config", ws / "run.yaml")


def train_scene_missing(ws, fx, env):
    return ["train", ws / "nope.zarr", "--out", ws / "b"]


# -- evaluate ---------------------------------------------------------------------------------------


def bundle_missing_file(ws, fx, env):
    b = _copy(fx.bundle, ws / "b")
    (b / "split.npz").unlink()
    return ["evaluate", b, fx.scene]


def bundle_missing_adapter(ws, fx, env):
    b = _copy(fx.bundle, ws / "b")
    shutil.rmtree(b / "adapter")
    return ["classify", fx.scene, "--bundle", b, "--out", ws / "m.tif"]


def bundle_corrupted_adapter(ws, fx, env):
    b = _copy(fx.bundle, ws / "b")
    f = b / "adapter" / "adapter.safetensors"
    data = bytearray(f.read_bytes())
    data[-5] ^= 0xFF
    f.write_bytes(bytes(data))
    return ["evaluate", b, fx.scene]


def adapter_of_another_backbone(ws, fx, env):
    return ["evaluate", fx.bundle, fx.scene, "--backbone", fx.backbone_b]


def backbone_moved(ws, fx, env):
    b = _copy(fx.bundle, ws / "b")
    meta = json.loads((b / "bundle.json").read_text())
    meta["backbone"]["path"] = str(ws / "moved" / "tiny_a.safetensors")
    (b / "bundle.json").write_text(json.dumps(meta))
    return ["evaluate", b, fx.scene]


def classify_backbone_moved(ws, fx, env):
    """Refused before a cluster starts or a parts store is made (it had failed in the workers)."""
    bundle = backbone_moved(ws, fx, env)[1]
    return ["classify", fx.scene, "--bundle", bundle, "--out", ws / "m.zarr"]


def classify_backbone_given_is_another(ws, fx, env):
    return ["classify", fx.scene, "--bundle", fx.bundle, "--backbone", fx.backbone_b, "--out", ws / "m.zarr"]


def evaluate_smaller_than_the_window(ws, fx, env):
    """An 8 × 8 labelled crop for a bundle of 15-pixel windows: named, with a fix evaluate has."""
    c0, lab0, _, _ = fx.ip
    return ["evaluate", fx.bundle, fx.make("small.zarr", cube=c0[:, :8, :8], labels=lab0[:8, :8].copy(), where=ws)]


def evaluate_fewer_bands(ws, fx, env):
    return ["evaluate", fx.bundle, fx.fewer_bands, "--out", ws / "m.json"]


def evaluate_no_labels(ws, fx, env):
    return ["evaluate", fx.bundle, fx.make("nolab.zarr", labels=None, where=ws)]


def evaluate_out_exists(ws, fx, env):
    (ws / "m.json").write_text('{"overall_accuracy": 0.99}')
    return ["evaluate", fx.bundle, fx.scene, "--out", ws / "m.json"]


def classify_zarr_out_is_a_folder_of_files(ws, fx, env):
    """A .zarr map over a folder of the user's files: refused before the run, not after it."""
    (ws / "maps.zarr").mkdir()
    (ws / "maps.zarr" / "notes.txt").write_text("a user's file")
    return ["classify", fx.scene, "--bundle", fx.bundle, "--out", ws / "maps.zarr", "--overwrite"]


def evaluate_out_is_a_directory(ws, fx, env):
    """--overwrite replaces an output with one of its kind only: a folder named as the JSON report stays."""
    (ws / "runs").mkdir()
    (ws / "runs" / "keep.txt").write_text("a user's file")
    return ["evaluate", fx.bundle, fx.scene, "--out", ws / "runs", "--overwrite"]


def evaluate_out_in_the_bundle(ws, fx, env):
    """--overwrite had replaced the bundle's own metrics.json, and the bundle no longer loaded (sha256 mismatch)."""
    b = _copy(fx.bundle, ws / "b")
    return ["evaluate", b, fx.scene, "--out", b / "metrics.json", "--overwrite"]


def evaluate_out_png(ws, fx, env):
    return ["evaluate", fx.bundle, fx.scene, "--out", ws / "m.png"]


def evaluate_csv_exists(ws, fx, env):
    """The CSV beside the JSON exists: refused before the model runs, like the JSON itself."""
    (ws / "m.csv").write_text("class,precision\n")
    return ["evaluate", fx.bundle, fx.scene, "--out", ws / "m.json"]


def stac_out_is_a_directory(ws, fx, env):
    (ws / "item.json").mkdir()
    (ws / "item.json" / "keep.txt").write_text("a user's file")
    return ["bundle", "stac", fx.bundle, "--out", ws / "item.json", "--overwrite"]


def baseline_even_window(ws, fx, env):
    return ["baseline", fx.scene, "--window", "4"]


def selector_without_stac(ws, fx, env):
    """STAC selectors without --stac had been ignored: the command ran on the paths alone."""
    return ["baseline", fx.scene, "--bbox", "1,2,3,4", "--datetime", "2024"]


def evaluate_disk_full_patched(ws, fx, env):
    """ENOSPC from the metrics writer half-way through: no metrics.json, no temporary left."""
    orig = Path.write_text

    def write_text(self, data, *a, **k):
        if str(self).startswith(str(ws)) and self.name.startswith(".m"):
            with open(self, "w") as f:
                f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return orig(self, data, *a, **k)

    env.mp.setattr(Path, "write_text", write_text)
    return ["evaluate", fx.bundle, fx.scene, "--out", ws / "m.json"]


# -- classify ---------------------------------------------------------------------------------------


def no_crs_to_geotiff(ws, fx, env):
    return ["classify", fx.grid_scene, "--bundle", fx.bundle, "--out", ws / "map.tif"]


def classify_fewer_bands(ws, fx, env):
    return ["classify", fx.fewer_bands, "--bundle", fx.bundle, "--out", ws / "map.tif"]


def _points(ws, values, *, x0: float = 500010.0, y0: float = 4499990.0, crs: str = "EPSG:32616"):
    import geopandas as gpd
    from shapely.geometry import Point

    path = ws / "fields.gpkg"
    gpd.GeoDataFrame({"crop": values}, geometry=[Point(x0 + 20 * i, y0) for i in range(len(values))], crs=crs).to_file(path)
    return path


def train_vector_outside(ws, fx, env):
    src = _points(ws, ["maize", "wheat"], x0=100000.0, y0=100000.0)
    return ["train", fx.scene, "--labels", src, "--label-field", "crop", "--out", ws / "b", "--model", "tiny", "--epochs", "1"]


def train_vector_unknown_field(ws, fx, env):
    src = _points(ws, ["maize", "wheat"])
    return ["train", fx.scene, "--labels", src, "--label-field", "kind", "--out", ws / "b", "--model", "tiny", "--epochs", "1"]


def train_vector_no_classes(ws, fx, env):
    src = _points(ws, [None, ""])
    return ["train", fx.scene, "--labels", src, "--label-field", "crop", "--out", ws / "b", "--model", "tiny", "--epochs", "1"]


def train_labels_without_crs(ws, fx, env):
    (ws / "labels").mkdir()
    fx.geotiff(ws / "labels" / "scene.tif", crs=None, bands=1)
    return ["train", fx.scene, "--labels", str(ws / "labels" / "*.tif"), "--out", ws / "b", "--model", "tiny", "--epochs", "1"]


def train_pca_two_band_tables(ws, fx, env):
    return ["train", fx.scene, fx.fewer_bands, "--out", ws / "b", "--model", "tiny", "--epochs", "1", "--split", "fraction:0.5"]


def classify_inflated_widths(ws, fx, env):
    return ["classify", fx.inflated_widths, "--bundle", fx.s2_bundle, "--out", ws / "map.tif"]


def train_inflated_widths(ws, fx, env):
    return ["train", fx.inflated_widths, "--out", ws / "b", "--model", "tiny", "--epochs", "1"]


def classify_s2_uncovered(ws, fx, env):
    return ["classify", fx.vnir_scene, "--bundle", fx.s2_bundle, "--out", ws / "map.tif"]


def classify_shifted_wavelengths(ws, fx, env):
    scene = fx.make("shift.zarr", wavelength=fx.ip[2] + 25.0, where=ws)
    return ["classify", scene, "--bundle", fx.bundle, "--out", ws / "map.tif"]


def classify_out_exists(ws, fx, env):
    (ws / "map.tif").write_bytes(b"an earlier map")
    return ["classify", fx.scene, "--bundle", fx.bundle, "--out", ws / "map.tif"]


def classify_probabilities_exist(ws, fx, env):
    (ws / "p.zarr").mkdir()
    (ws / "p.zarr" / "zarr.json").write_text("{}")
    return ["classify", fx.scene, "--bundle", fx.bundle, "--out", ws / "map.tif", "--probabilities", ws / "p.zarr"]


def classify_scheduler_nothing(ws, fx, env):
    return ["classify", fx.scene, "--bundle", fx.bundle, "--out", ws / "map.tif", "--scheduler", f"tcp://127.0.0.1:{free_port()}"]


def classify_scheduler_garbage(ws, fx, env):
    return ["classify", fx.scene, "--bundle", fx.bundle, "--out", ws / "map.tif", "--scheduler", "not-an-address"]


def classify_zero_chunks(ws, fx, env):
    return ["classify", fx.scene, "--bundle", fx.bundle, "--out", ws / "map.tif", "--chunks", "0"]


def classify_bad_suffix(ws, fx, env):
    return ["classify", fx.scene, "--bundle", fx.bundle, "--out", ws / "map.png"]


def classify_out_readonly(ws, fx, env):
    ro = ws / "ro"
    env.stack.enter_context(tmpfs(ro, "1m", readonly=True))
    return ["classify", fx.scene, "--bundle", fx.bundle, "--out", ro / "map.tif"]


def classify_missing_bundle(ws, fx, env):
    return ["classify", fx.scene, "--bundle", ws / "no-bundle", "--out", ws / "map.tif"]


# -- pretrain ---------------------------------------------------------------------------------------


def pretrain_zero_window(ws, fx, env):
    return ["pretrain", fx.scene, "--out", ws / "w.safetensors", "--window", "0", "--steps", "1", "--quiet"]


def pretrain_mask_ratio(ws, fx, env):
    return ["pretrain", fx.scene, "--out", ws / "w.safetensors", "--mask-ratio", "1.5", "--steps", "1", "--quiet"]


def pretrain_out_exists(ws, fx, env):
    (ws / "w.safetensors").write_bytes(b"earlier weights")
    return ["pretrain", fx.scene, "--out", ws / "w.safetensors", "--steps", "1", "--quiet"]


def pretrain_missing_scene(ws, fx, env):
    return ["pretrain", ws / "nope.zarr", "--out", ws / "w.safetensors", "--steps", "1", "--quiet"]


# -- search -----------------------------------------------------------------------------------------


def search_unreachable(ws, fx, env):
    return ["search", "--url", f"http://127.0.0.1:{free_port()}", "--collection", "x", "--timeout", "3"]


def search_bad_bbox(ws, fx, env):
    return ["search", "--url", "http://127.0.0.1:9", "--bbox", "13,52,12"]


def search_missing_geometry(ws, fx, env):
    return ["search", "--url", "http://127.0.0.1:9", "--intersects", ws / "aoi.geojson"]


SCENE, BUNDLE = ("scene",), ("scene", "bundle")

CASES: list[Case] = [
    # ingest: broken sources
    Case("truncated-mat", truncated_mat, 3, r"ip\.mat.*(truncated|corrupt|cannot read).*check the file"),
    Case("truncated-mat-header", truncated_mat_header, 3, r"ip\.mat.*(not a MATLAB|cannot read|truncated)"),
    Case("truncated-geotiff", truncated_geotiff, 3, r"t\.tif.*(truncated|cannot read)"),
    Case("truncated-geotiff-tiled", truncated_geotiff_tiled, 3, r"t\.tif.*(truncated|cannot read)"),
    Case(
        "truncated-zarr-chunk",
        truncated_zarr_chunk,
        3,
        r"cannot read chunk \[.*\] of 'reflectance' in .*src\.zarr .*; the store is truncated or corrupted",
    ),
    Case(
        "info-truncated-zarr-chunk",
        info_truncated_zarr_chunk,
        3,
        r"cannot read chunk \[.*\] of 'reflectance' in .*/s\.zarr .*; the store is truncated or corrupted",
    ),
    Case(
        "envi-size-mismatch",
        envi_size_mismatch,
        3,
        r"cube\.img is 840 bytes but cube\.hdr describes 960.*truncated or the header is wrong",
    ),
    Case("envi-byte-order", envi_byte_order, 3, r"cube\.hdr: byte order = '?2'? .*0 .*1.*fix the header"),
    Case("envi-interleave", envi_interleave, 3, r"cube\.hdr: interleave 'bsx' is not bsq, bil or bip; fix the header"),
    Case("envi-complex", envi_complex, 3, r"cube\.hdr: data type 6 .*not supported"),
    Case("envi-garbage-value", envi_header_garbage, 3, r"cube\.hdr: lines = 'eight' is not an integer; fix the header"),
    Case(
        "envi-nodata-not-a-number",
        envi_nodata_not_a_number,
        3,
        r"cube\.hdr: data ignore value = 'n/a' is not a number; fix the header",
    ),
    Case(
        "ingest-micrometres-stated-as-nm",
        ingest_micrometres_stated_as_nm,
        3,
        r"c\.nc has band centres 0\.4–2\.5 nm, outside 300–15,000 nm: their unit was read wrongly .*--wavelengths FILE",
    ),
    Case("ingest-centre-unknown", ingest_some_centres_unknown, 3, r"c\.nc has no valid centre wavelength for bands \[8\]; give"),
    Case(
        "ingest-width-zero",
        ingest_widths_not_positive,
        3,
        r"c\.nc has a band width \(FWHM\) of 0 nm at band 50; widths must be positive",
    ),
    Case(
        "ingest-widths-too-wide",
        ingest_widths_wider_than_half_the_range,
        3,
        r"c\.nc has band widths up to 1,500 nm, more than half of its 400–2500 nm range: they are in the wrong unit .*--fwhm",
    ),
    Case("unknown-format", unknown_format, 3, r"unknown format for .*notes\.xyz"),
    Case("missing-input", missing_input, 3, r"input .*nowhere\.tif does not exist"),
    Case("mat-without-crs", mat_without_crs, 4, r"Indian_pines_corrected\.mat has no CRS.*--crs none"),
    Case("geotiff-not-georeferenced", geotiff_not_georeferenced, 4, r"plain\.tif has no CRS; pass --crs none"),
    # ingest: labels and tiles
    Case(
        "ingest-band-axis-geotiff",
        ingest_band_axis_of_a_geotiff,
        2,
        r"--band-axis orders the axes of MATLAB/NetCDF/Zarr arrays; .*s\.tif is geotiff: drop it",
    ),
    Case("labels-id-past-uint16", labels_id_past_uint16, 3, r"labels .*lab\.tif hold class id 65,537; class ids go up to 65,535"),
    Case("labels-other-shape", labels_other_shape, 4, r"labels .*lab\.tif have shape \(30, 40\) but the scene is 40×40"),
    Case(
        "labels-other-crs", labels_other_crs, 4, r"labels .*lab\.tif are in EPSG:32617 but the scene is in EPSG:32616; reproject"
    ),
    Case("labels-off-grid", labels_off_grid, 4, r"labels .*lab\.tif are off the scene's pixel grid"),
    Case("tiles-mixed-crs", tiles_mixed_crs, 4, r"tile .*b\.tif has CRS EPSG:32617 but a\.tif has EPSG:32616; reproject"),
    Case("tiles-other-band-count", tiles_other_bands, 5, r"tile .*b\.tif has 5 bands but a\.tif has 6"),
    # ingest: options
    Case("ingest-bad-crs", ingest_bad_crs, 2, r"--crs 'EPSG:999999' is not a CRS"),
    Case("ingest-bad-transform", ingest_bad_transform, 2, r"--transform .* has 5 numbers, needs six"),
    Case("ingest-zero-chunks", ingest_zero_chunks, 2, r"--chunks must be a positive pixel count, got 0"),
    Case("ingest-nodata-not-a-number", ingest_nodata_not_a_number, 2, r"--nodata n/a is not a number; give the stored value"),
    Case("ingest-out-is-input", ingest_out_is_input, 2, r"--out .*s\.zarr is also an input"),
    Case(
        "ingest-url-with-credentials",
        ingest_url_with_credentials,
        2,
        r"^(?!.*SEKRIT).*s3://bkt/images/t0\.tif was given with credentials",
    ),
    Case(
        "ingest-layer-without-labels", ingest_layer_without_labels, 2, r"--layer/--all-touched describe labels; add --labels FILE"
    ),
    Case(
        "ingest-out-named-as-a-geotiff",
        ingest_out_named_as_a_geotiff,
        2,
        r"--out .*scene\.tif names a \.tif file, but a scene is a Zarr store; name it SCENE\.zarr",
    ),
    Case(
        "ingest-out-is-the-inputs-folder",
        ingest_out_is_the_inputs_folder,
        8,
        r"raw is a folder of other files, not a store geohsi writes \(a Zarr store or a bundle\); --overwrite replaces only those",
    ),
    # ingest: outputs
    Case("ingest-out-exists", ingest_out_exists, 8, r"out\.zarr already exists; pass --overwrite"),
    Case("ingest-out-under-a-file", ingest_out_under_a_file, 8, r"cannot write .*out\.zarr: .*file is a file, not a directory"),
    Case("ingest-out-readonly", ingest_out_readonly, 8, r"ro.*not writable|ro.*[Rr]ead-only file system"),
    Case("ingest-disk-full", ingest_disk_full, 8, r"no space left while writing .*out\.zarr; free disk space"),
    Case("ingest-disk-full-overwrite", ingest_disk_full_overwrite, 8, r"no space left while writing .*out\.zarr"),
    Case("ingest-disk-full-patched", ingest_disk_full_patched, 8, r"no space left while writing .*out\.zarr"),
    # info
    Case("info-not-a-scene", info_not_a_scene, 3, r"d is not a Zarr v3 store; create a scene with 'geohsi ingest"),
    Case("info-corrupt-bundle-json", info_corrupt_bundle_json, 6, r"bundle\.json is corrupted .*re-create the bundle", BUNDLE),
    # train: options
    Case("split-zero", split_case("per-class:0"), 2, r"split 'per-class:0'.*>= 1", SCENE),
    Case("split-fraction-above-1", split_case("fraction:1.5"), 2, r"split 'fraction:1\.5'.*between 0 and 1", SCENE),
    Case("split-unknown-kind", split_case("thirds:3"), 2, r"split 'thirds:3'.*unknown kind 'thirds'", SCENE),
    Case("split-no-value", split_case("per-class"), 2, r"split 'per-class'.*missing ':'", SCENE),
    Case("split-not-a-number", split_case("per-class:ten"), 2, r"split 'per-class:ten'.*whole number", SCENE),
    Case("window-zero", window_case(0), 2, r"--window must be a positive odd number of pixels, got 0", SCENE),
    Case("window-negative", window_case(-3), 2, r"--window must be a positive odd number of pixels, got -3", SCENE),
    Case("window-even", window_case(4), 2, r"--window must be a positive odd number of pixels, got 4", SCENE),
    Case(
        "input-size-not-patches",
        lambda ws, fx, env: train_args(ws, fx, "--split", "per-class:3", "--input-size", "20"),
        2,
        r"--input-size must be a positive multiple of 8 pixels \(the model's patch edge\), got 20",
        SCENE,
    ),
    Case(
        "window-larger-than-scene",
        window_case(101),
        2,
        r"window size 101 is larger than the scene's height of 40 pixels; use --window 39 or less",
        SCENE,
    ),
    Case("train-missing-config", train_missing_config, 2, r"config file .*nope\.yaml does not exist", SCENE),
    Case(
        "train-config-wrong-type", train_config_wrong_type, 2, r"training option rank must be a whole number, not 'lots'", SCENE
    ),
    # train: data
    Case("class-missing-from-split", class_missing_from_split, 9, r"per-class:3.*class_5.*2"),
    Case("all-nodata-scene", all_nodata, 9, r"no (valid|labelled) pixels"),
    Case("all-nan-scene", all_nan, 9, r"no (valid|labelled) pixels"),
    Case(
        "train-scene-missing",
        train_scene_missing,
        3,
        r"scene .*nope\.zarr does not exist; check the path \(a scene store, or any file",
    ),
    # train: model files
    Case(
        "corrupted-safetensors",
        corrupted_safetensors,
        6,
        r"bb\.safetensors is not a readable safetensors file .*header too large.*check the file or re-save it",
        SCENE + ("backbone_a",),
    ),
    Case(
        "truncated-safetensors",
        truncated_safetensors,
        6,
        r"bb\.safetensors is not a readable safetensors file .*incomplete metadata.*check the file or re-save it",
        SCENE + ("backbone_a",),
    ),
    Case(
        "pickled-pth",
        pickled_pth,
        6,
        r"evil\.pth is not a plain weights file \(it pickles \w+\); geohsi will not unpickle arbitrary objects",
        SCENE,
    ),
    Case(
        "pickled-pth-protocol-5",
        pickled_pth_protocol5,
        6,
        r"evil5\.pth is not a (plain weights file|readable PyTorch checkpoint)",
        SCENE,
    ),
    Case("train-missing-backbone", train_missing_backbone, 3, r"nope\.safetensors does not exist", SCENE),
    Case("train-out-exists", train_out_exists, 8, r"b already exists; pass --overwrite", BUNDLE),
    Case("train-out-under-a-file", train_out_under_a_file, 8, r"runs is a file, not a directory", SCENE),
    # evaluate: bundles
    Case("bundle-missing-file", bundle_missing_file, 6, r"bundle .*b is missing split\.npz; copy the whole bundle", BUNDLE),
    Case("bundle-corrupted-adapter", bundle_corrupted_adapter, 6, r"adapter\.safetensors was modified or corrupted", BUNDLE),
    Case(
        "adapter-of-another-backbone",
        adapter_of_another_backbone,
        6,
        r"backbone .*tiny_b\.safetensors .* is not the one bundle .* was trained on",
        BUNDLE + ("backbone_b", "backbone_a"),
    ),
    Case(
        "backbone-moved",
        backbone_moved,
        6,
        r"trained on backbone .*moved/tiny_a\.safetensors, which is missing; pass its new location with --backbone",
        BUNDLE,
    ),
    Case(
        "evaluate-smaller-than-the-window",
        evaluate_smaller_than_the_window,
        2,
        r"small\.zarr is 8×8 pixels, smaller than the 15-pixel windows of patch bundle .*; give a scene at least 15 pixels",
        BUNDLE,
    ),
    Case(
        "classify-backbone-moved",
        classify_backbone_moved,
        6,
        r"trained on backbone .*moved/tiny_a\.safetensors, which is missing; pass its new location with --backbone",
        BUNDLE,
    ),
    Case(
        "classify-backbone-another",
        classify_backbone_given_is_another,
        6,
        r"backbone .*tiny_b\.safetensors \(sha256 .*\) is not the one bundle .* was trained on",
        ("scene", "bundle", "backbone_b"),
    ),
    Case("evaluate-fewer-bands", evaluate_fewer_bands, 5, r"fewer\.zarr has 190 bands.*200", ("bundle", "fewer_bands")),
    Case("evaluate-no-labels", evaluate_no_labels, 9, r"nolab\.zarr has no labels", BUNDLE),
    Case("evaluate-out-exists", evaluate_out_exists, 8, r"m\.json already exists; pass --overwrite", BUNDLE),
    Case(
        "classify-zarr-out-is-a-folder-of-files",
        classify_zarr_out_is_a_folder_of_files,
        8,
        r"maps\.zarr is a folder of other files, not a store geohsi writes",
        BUNDLE,
    ),
    Case(
        "evaluate-out-is-a-directory",
        evaluate_out_is_a_directory,
        8,
        r"runs is a directory and this output is a file; --overwrite replaces an output only with one of its kind",
        BUNDLE,
    ),
    Case(
        "evaluate-out-png",
        evaluate_out_png,
        2,
        r"--out .*m\.png names the JSON report .*give a \.json path such as .*m\.json",
        BUNDLE,
    ),
    Case("evaluate-csv-exists", evaluate_csv_exists, 8, r"m\.csv already exists; pass --overwrite", BUNDLE),
    Case(
        "evaluate-out-in-the-bundle",
        evaluate_out_in_the_bundle,
        2,
        r"--out .*b/metrics\.json is inside the bundle .*b; write it beside the bundle",
        BUNDLE,
    ),
    Case("baseline-even-window", baseline_even_window, 2, r"window size 4 must be an odd integer >= 1", SCENE),
    Case(
        "selector-without-stac",
        selector_without_stac,
        2,
        r"--bbox, --datetime select\(s\) STAC items and need --stac URL; give the API, or leave them out",
        SCENE,
    ),
    Case(
        "stac-out-is-a-directory",
        stac_out_is_a_directory,
        8,
        r"item\.json is a directory and this output is a file; --overwrite replaces an output only with one of its kind",
        BUNDLE,
    ),
    Case("evaluate-disk-full-patched", evaluate_disk_full_patched, 8, r"no space left while writing .*m\.(json|csv|png)", BUNDLE),
    # classify
    Case(
        "no-crs-to-geotiff",
        no_crs_to_geotiff,
        4,
        r"grid\.zarr is a pixel-grid scene without a CRS, so .*map\.tif cannot be a georeferenced GeoTIFF; write it as a Zarr map \(.*/map\.zarr; a batch: --format auto or zarr\) instead, or re-ingest the scene with --crs and --transform",
        ("grid_scene", "bundle"),
    ),
    Case("classify-fewer-bands", classify_fewer_bands, 5, r"fewer\.zarr has 190 bands.*200", ("bundle", "fewer_bands")),
    Case(
        "train-vector-outside-every-scene",
        train_vector_outside,
        9,
        r"no feature of .*fields\.gpkg \(100000, 100000, 100020, 100000 in EPSG:32616\) falls on a valid pixel of the scenes \(scene: 500000, 4\.4992e\+06, 500800, 4\.5e\+06 in EPSG:32616\)",
        SCENE,
    ),
    Case(
        "train-vector-unknown-field",
        train_vector_unknown_field,
        2,
        r"fields\.gpkg has no field 'kind'; its fields are 'crop'; pass one with --label-field",
        SCENE,
    ),
    Case(
        "train-vector-no-classes",
        train_vector_no_classes,
        9,
        r"fields\.gpkg: no feature has a class in field 'crop' \(2 empty, NaN or 0\); fill the field",
        SCENE,
    ),
    Case(
        "train-labels-without-crs",
        train_labels_without_crs,
        4,
        r"labels .*scene\.tif have no CRS but scene .*scene\.zarr is in EPSG:32616",
        SCENE,
    ),
    Case(
        "train-pca-two-band-tables",
        train_pca_two_band_tables,
        5,
        r"PCA needs one band table, but .*fewer\.zarr \(190 bands\) and .*scene\.zarr \(200 bands\) differ; train with --spectral s2",
        ("scene", "fewer_bands"),
    ),
    Case(
        "classify-inflated-widths",
        classify_inflated_widths,
        3,
        r"inflated\.zarr has band widths up to 14,620 nm, more than half .*re-ingest the source with --overwrite",
        ("s2_bundle", "inflated_widths"),
    ),
    Case(
        "train-inflated-widths",
        train_inflated_widths,
        3,
        r"inflated\.zarr has band widths up to 14,620 nm.*re-ingest the source with --overwrite",
        ("inflated_widths",),
    ),
    Case(
        "classify-s2-uncovered",
        classify_s2_uncovered,
        5,
        r"Sentinel-2 bands B11 \(1568–1659 nm\), B12 \(2115–2290 nm\) are not covered by the good bands of \S*vnir\.zarr \(400\.0–1000\.0 nm",
        ("s2_bundle", "vnir_scene"),
    ),
    Case(
        "classify-shifted-wavelengths",
        classify_shifted_wavelengths,
        5,
        r"shift\.zarr band \d+ is at [\d.]+ nm but the spectral transform expects [\d.]+ nm .*retrain on this scene",
        BUNDLE,
    ),
    Case("classify-out-exists", classify_out_exists, 8, r"map\.tif already exists; pass --overwrite", BUNDLE),
    Case("classify-probabilities-exist", classify_probabilities_exist, 8, r"p\.zarr already exists; pass --overwrite", BUNDLE),
    Case(
        "classify-scheduler-nothing",
        classify_scheduler_nothing,
        7,
        r"cannot reach a Dask scheduler at tcp://127\.0\.0\.1:\d+.*drop --scheduler",
        BUNDLE,
    ),
    Case(
        "classify-scheduler-garbage",
        classify_scheduler_garbage,
        2,
        r"--scheduler 'not-an-address' is not a Dask scheduler address .*use tcp://HOST:PORT",
        BUNDLE,
    ),
    Case("classify-zero-chunks", classify_zero_chunks, 2, r"--chunks .*0", BUNDLE),
    Case("classify-bad-suffix", classify_bad_suffix, 2, r"map\.png.*\.tif.*\.zarr", BUNDLE),
    Case("classify-out-readonly", classify_out_readonly, 8, r"ro.*not writable|[Rr]ead-only", BUNDLE),
    Case("classify-missing-bundle", classify_missing_bundle, 3, r"bundle .*no-bundle does not exist", SCENE),
    # pretrain
    Case("pretrain-zero-window", pretrain_zero_window, 2, r"--window .*0", SCENE),
    Case("pretrain-mask-ratio", pretrain_mask_ratio, 2, r"--mask-ratio .*1\.5", SCENE),
    Case("pretrain-out-exists", pretrain_out_exists, 8, r"w\.safetensors already exists; pass --overwrite", SCENE),
    Case("pretrain-missing-scene", pretrain_missing_scene, 3, r"nope\.zarr", ()),
    # search
    Case("search-unreachable", search_unreachable, 3, r"STAC API http://127\.0\.0\.1:\d+ cannot be reached"),
    Case("search-bad-bbox", search_bad_bbox, 2, r"--bbox '13,52,12' must be four numbers W,S,E,N"),
    Case(
        "search-missing-geometry",
        search_missing_geometry,
        3,
        r"--intersects file .*aoi\.geojson does not exist; give a GeoJSON file",
    ),
]

_MOUNT_CASES = {"ingest-out-readonly", "ingest-disk-full", "ingest-disk-full-overwrite", "classify-out-readonly"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case, inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.id in _MOUNT_CASES and not _can_mount():
        pytest.skip("needs root to mount a tmpfs; the patched-writer cases cover the same path")
    if case.id == "search-unreachable":
        pytest.importorskip("pystac_client")
    ws = tmp_path / "ws"
    ws.mkdir()
    shared = [getattr(inputs, name) for name in case.shared]  # build shared inputs before hashing
    with contextlib.ExitStack() as stack:
        args = case.setup(ws, inputs, Env(monkeypatch, stack))
        before = tree_state(ws, *shared)
        r = cli(capsys, *args)
        after = tree_state(ws, *shared)
        monkeypatch.undo()
    assert "Traceback" not in r.err + r.out, r.err
    assert r.code == case.code, f"exit {r.code}, expected {case.code}: {r.err}"
    # Progress lines may precede it (e.g. the split summary of train); the error is one last line.
    errors = [x for x in r.lines if x.startswith("geohsi:")]
    assert len(errors) == 1 and r.lines[-1] == errors[0], r.err
    line = errors[0]
    assert line.startswith("geohsi: error: "), line
    assert re.search(case.message, line), f"{line!r} does not match {case.message!r}"
    if os.environ.get("GEOHSI_DUMP_MESSAGES"):  # regenerates the table of docs/reliability.md
        with open(os.environ["GEOHSI_DUMP_MESSAGES"], "a") as f:
            f.write(
                json.dumps(
                    {"id": case.id, "code": r.code, "line": line.replace(str(tmp_path), "…").replace(str(inputs.root), "…")}
                )
                + "\n"
            )
    # Nothing overwritten, nothing partial: every file is as it was and no file appeared.
    assert after == before, f"files changed: {sorted(set(after.items()) ^ set(before.items()))[:5]}"
    if case.id.startswith("pickled-pth"):
        assert not (ws / "PWNED").exists()  # the pickled object's code never ran


def test_the_suite_has_at_least_30_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------- NaN / Inf inside valid pixels


def test_nan_and_inf_pixels_are_nodata_in_training_and_in_maps(inputs: Inputs, tmp_path: Path) -> None:
    """Non-finite values in a good band make the pixel invalid: never trained on, nodata (0) in the map."""
    import dask

    from geohsi.classification import predict_map
    from geohsi.scene import open_scene, valid_mask
    from geohsi.splits import Split
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    cube, lab, _, _ = inputs.ip
    c = cube.copy()
    rows, cols = np.nonzero(lab > 0)
    bad = [(rows[k], cols[k]) for k in range(0, 60, 6)]  # ten labelled pixels
    for n, (r, q) in enumerate(bad):
        c[(n * 17) % 200, r, q] = (np.nan, np.inf, -np.inf)[n % 3]
    scene = inputs.make("naninf.zarr", cube=c, where=tmp_path)
    ds = open_scene(scene)
    valid = valid_mask(ds).values
    assert not any(valid[r, q] for r, q in bad) and valid.sum() == 40 * 40 - len(bad)
    out = train(
        scene,
        resolve_train_config(
            adapter="linear", epochs=1, split="fraction:0.5", model="tiny", device="cpu", batch_size=64, head="patch"
        ),
        out=tmp_path / "b",
        progress=False,
        log=lambda m: None,
    )
    split = Split.load(out / "split.npz")
    used = set(np.concatenate([split.train, split.val, split.test]).tolist())
    assert not used & {r * 40 + q for r, q in bad}
    assert len(used) == int(((lab > 0) & valid).sum())
    with dask.config.set(scheduler="synchronous"):
        m = predict_map(scene, out).values
    assert all(m[r, q] == 0 for r, q in bad)
    assert (m[valid] > 0).all()


# --------------------------------------------------------------------------- the real entry point


def test_debug_shows_an_unexpected_error_with_its_exit_code(capsys: pytest.CaptureFixture, monkeypatch) -> None:
    import geohsi.cli.main as entry

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(entry.cli, "main", fail)
    r = cli(capsys, "--debug", "info")
    assert r.code == 70 and "Traceback" in r.err and "RuntimeError: boom" in r.err
    assert "rerun with --debug" not in r.err  # it was given: no advice to give it
    monkeypatch.delenv("GEOHSI_DEBUG", raising=False)
    r = cli(capsys, "info")
    assert (
        r.code == 70
        and "Traceback" not in r.err
        and r.lines == ["geohsi: unexpected error: RuntimeError: boom (rerun with --debug for the traceback)"]
    )


def test_cli_subprocess_one_line_and_exit_code(inputs: Inputs, tmp_path: Path) -> None:
    """The same contract through ``python -m geohsi.cli.main``: one line, the class's exit code, no traceback."""
    r = run_cli("classify", inputs.grid_scene, "--bundle", inputs.bundle, "--out", tmp_path / "map.tif")
    assert r.returncode == 4 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "write it as a Zarr map" in r.stderr
    r = run_cli("--debug", "ingest", tmp_path / "missing.tif", "--out", tmp_path / "o.zarr")
    assert "Traceback" in r.stderr and "InputFormatError" in r.stderr  # --debug shows it
    assert r.returncode == 3  # and keeps the class's exit code (it was Python's 1)
    assert not list(tmp_path.iterdir())


def test_an_exception_python_cannot_raise_stays_off_stderr_unless_debugging(monkeypatch) -> None:
    """An object cleaned up after its work was abandoned (an object-store client's coroutine after an
    outage) raises where nobody can catch it: Python prints "Exception ignored … Traceback" on stderr,
    after the command's one line; geohsi sends it to its debug log unless --debug."""
    import subprocess
    import sys

    code = (
        "import gc, sys\n"
        "from geohsi.cli.main import main\n"
        "class Abandoned:\n"
        "    def __del__(self):\n"
        "        raise ValueError('cleaned up in another context')\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "a = Abandoned()\n"
        "del a\n"
        "gc.collect()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GEOHSI_DEBUG"}
    quiet = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = subprocess.run(
        [sys.executable, "-c", code, "--debug", "--version"], capture_output=True, text=True, env=env, timeout=120
    )
    assert "Exception ignored" in loud.stderr and "cleaned up in another context" in loud.stderr
