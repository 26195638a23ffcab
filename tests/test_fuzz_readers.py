"""Fuzzing the readers: corrupted ENVI headers/data, GeoTIFF bytes and ``.mat`` bytes.

Each example writes a mutated copy of a small valid file (bytes flipped, truncated, inserted or
deleted; header lines edited), then runs :func:`geohsi.io.read` and computes a small slice of the
cube. The only acceptable outcomes are a scene or a :class:`geohsi.errors.GeohsiError`: any other
exception (or a crash, or an example slower than the deadline) fails the test. Hypothesis shrinks
a failure to the smallest mutation that shows it.

Seeds: a real 3 × 3 × 240 Pika ENVI file, the real Indian Pines ground-truth ``.mat`` (v5,
compressed) and a small synthetic ``.mat`` v7.3 and GeoTIFFs written here.
"""

from __future__ import annotations

import os
import shutil
import signal
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geohsi.errors import GeohsiError

EXAMPLES = int(os.environ.get("GEOHSI_FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- mutations


@st.composite
def mutations(draw: st.DrawFn, size: int, protect: int = 0) -> list[tuple[str, int, bytes | int]]:
    """A short list of byte edits for a file of ``size`` bytes (offsets ≥ ``protect`` for flips)."""
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        pos = draw(st.integers(min(protect, size - 1), size - 1))
        if kind == "flip":
            ops.append((kind, pos, draw(st.integers(1, 255))))
        elif kind == "set":
            ops.append((kind, pos, draw(st.binary(min_size=1, max_size=8))))
        elif kind == "insert":
            ops.append((kind, pos, draw(st.binary(min_size=1, max_size=16))))
        elif kind == "delete":
            ops.append((kind, pos, draw(st.integers(1, 64))))
        else:
            ops.append((kind, draw(st.integers(0, size - 1)), 0))
    return ops


def mutate(data: bytes, ops: list[tuple[str, int, bytes | int]]) -> bytes:
    b = bytearray(data)
    for kind, pos, arg in ops:
        pos = min(pos, max(len(b) - 1, 0))
        if not b:
            break
        if kind == "flip":
            b[pos] ^= int(arg)
        elif kind == "set":
            b[pos : pos + len(arg)] = arg  # type: ignore[arg-type]
        elif kind == "insert":
            b[pos:pos] = arg  # type: ignore[assignment]
        elif kind == "delete":
            del b[pos : pos + int(arg)]
        else:
            del b[pos:]
    return bytes(b)


def read_some(path: Path, **kwargs) -> None:
    """Read a scene and force the reading of a small corner of its cube (the lazy part)."""
    import dask

    from geohsi.io import read
    from geohsi.scene import cube

    with dask.config.set(scheduler="synchronous"):
        ds = read(path, chunks=4, **kwargs)
        v = cube(ds)
        np.asarray(v.isel(band=slice(0, 3), y=slice(0, 2), x=slice(0, 2)).values)
        np.asarray(v.isel(band=slice(-2, None), y=slice(-2, None), x=slice(-2, None)).values)


class Hang(Exception):
    """An example ran past the hard limit (a hang, not just a slow example)."""


def _alarm(signum, frame):  # pragma: no cover - only on a hang
    raise Hang("reader hung for 20 s")


def only_geohsi_errors(path: Path, **kwargs) -> None:
    # The hypothesis deadline only judges finished examples; the alarm turns a hang into a failure.
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        read_some(path, **kwargs)
    except GeohsiError as e:
        msg = str(e)
        assert msg and "\n" not in msg  # one line, always
    # Anything else propagates and fails the example.
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- seeds


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    import h5py
    import rasterio
    from affine import Affine

    d = tmp_path_factory.mktemp("fuzz_seeds")
    out = {
        "envi_hdr": data_dir / "pika_drone" / "pika_reflectance.bip.hdr",
        "envi_data": data_dir / "pika_drone" / "pika_reflectance.bip",
        "mat5": data_dir / "indian_pines" / "Indian_pines_gt.mat",
    }
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 1000, size=(4, 6, 5)).astype("uint16")
    for name, extra in (("plain", {}), ("tiled", {"tiled": True, "blockxsize": 16, "blockysize": 16, "compress": "deflate"})):
        p = d / f"{name}.tif"
        with rasterio.open(
            p,
            "w",
            driver="GTiff",
            width=5,
            height=6,
            count=4,
            dtype="uint16",
            crs="EPSG:32633",
            transform=Affine(30, 0, 360000, 0, -30, 5800000),
            nodata=0,
            **extra,
        ) as dst:
            dst.write(cube)
            for i in range(4):
                dst.update_tags(i + 1, wavelength=str(500 + 100 * i), wavelength_units="Nanometers")
        out[f"tif_{name}"] = p
    # MATLAB v7.3 = HDF5 with a 512-byte MATLAB preamble
    p = d / "cube73.mat"
    with h5py.File(p, "w", userblock_size=512) as f:
        f.create_dataset("cube", data=cube.transpose(0, 1, 2).astype("float32"))
    with open(p, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .".ljust(116))
        f.seek(124)
        f.write(b"\x00\x02IM")
    out["mat73"] = p
    # warm up imports and GDAL so the first example is not judged on them
    read_some(out["tif_plain"])
    read_some(p)
    return out


def _write(tmp: Path, name: str, data: bytes) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    p = tmp / name
    p.write_bytes(data)
    return p


def test_seeds_are_readable(seeds: dict[str, Path], tmp_path: Path) -> None:
    """The unmutated seeds read cleanly, so every fuzz failure is about the mutation."""
    shutil.copy(seeds["envi_hdr"], tmp_path / "p.bip.hdr")
    shutil.copy(seeds["envi_data"], tmp_path / "p.bip")
    read_some(tmp_path / "p.bip")
    read_some(seeds["tif_plain"])
    read_some(seeds["tif_tiled"])
    read_some(seeds["mat73"])
    from geohsi.io import read_labels

    assert read_labels(seeds["mat5"]).sizes["y"] == 145


# --------------------------------------------------------------------------- ENVI

_HEADER_EDITS = st.sampled_from(
    [
        ("samples", ["0", "-3", "4", "2", "3.7", "x", "", "99999999999"]),
        ("lines", ["0", "4", "1", "1e3", "nan", "{3}"]),
        ("bands", ["239", "241", "0", "-1", "abc"]),
        ("data type", ["1", "2", "3", "5", "6", "9", "12", "15", "99", "-4", "x"]),
        ("interleave", ["bsq", "bil", "BIP", "bsx", "", "{bip}"]),
        ("byte order", ["1", "2", "-1", "x"]),
        ("header offset", ["-8", "8", "100000", "x"]),
        (
            "map info",
            [
                "{UTM, 1, 1}",
                "{UTM, a, b, c, d, e, f}",
                "{Arbitrary, 1, 1, 0, 0, 1, 1}",
                "{UTM, 1, 1, 0, 0, 1, 1, 99, Q, Mars}",
                "{UTM, 1.0, 1.0, 441371.0, 4855941.7, 0.04, 0.04, 15, T, WGS-84, rotation=12}",
            ],
        ),
        ("wavelength", ["{1, 2, x}", "{1, 2, 3}", "{", "{}"]),
        ("wavelength units", ["Micrometers", "GHz", "Index", "??"]),
        ("fwhm", ["{1, 2}", "{a}"]),
        ("bbl", ["{1, 0}", "{x}"]),
        ("data ignore value", ["x", "nan", "-9999", "1e400"]),
        ("reflectance scale factor", ["0", "x", "inf", "-1"]),
        ("coordinate system string", ["{GARBAGE[}", '{PROJCS["x"]}', "{}"]),
        ("band names", ["{a, b}", "{1 nm}"]),
    ]
)


@FUZZ
@given(
    edits=st.lists(st.tuples(_HEADER_EDITS, st.integers(0, 7)), min_size=1, max_size=4),
    drop=st.lists(st.sampled_from(["samples", "lines", "bands", "data type", "interleave", "map info"]), max_size=2),
    data_cut=st.integers(0, 3),
)
def test_envi_header_edits_give_only_geohsi_errors(seeds, tmp_path: Path, edits, drop, data_cut) -> None:
    text = seeds["envi_hdr"].read_text()
    lines = text.splitlines()
    for (key, values), pick in edits:
        new = f"{key} = {values[pick % len(values)]}"
        idx = next((i for i, x in enumerate(lines) if x.split("=")[0].strip().lower() == key), None)
        if idx is None:
            lines.append(new)
        else:
            lines[idx] = new
    lines = [x for x in lines if x.split("=")[0].strip().lower() not in drop]
    d = tmp_path / f"e{abs(hash((tuple(map(str, edits)), tuple(drop), data_cut))) % 10**9}"
    _write(d, "p.bip.hdr", "\n".join(lines).encode())
    data = seeds["envi_data"].read_bytes()
    _write(d, "p.bip", data[: len(data) - data_cut * 4] if data_cut else data)
    only_geohsi_errors(d / "p.bip")


@FUZZ
@given(ops=st.data())
def test_envi_header_bytes_give_only_geohsi_errors(seeds, tmp_path: Path, ops) -> None:
    raw = seeds["envi_hdr"].read_bytes()
    m = ops.draw(mutations(len(raw)))
    d = tmp_path / f"b{abs(hash(str(m))) % 10**9}"
    _write(d, "p.bip.hdr", mutate(raw, m))
    _write(d, "p.bip", seeds["envi_data"].read_bytes())
    only_geohsi_errors(d / "p.bip")


# --------------------------------------------------------------------------- GeoTIFF


@FUZZ
@given(which=st.sampled_from(["tif_plain", "tif_tiled"]), ops=st.data())
def test_geotiff_bytes_give_only_geohsi_errors(seeds, tmp_path: Path, which, ops) -> None:
    raw = seeds[which].read_bytes()
    m = ops.draw(mutations(len(raw)))
    p = _write(tmp_path / f"g{abs(hash((which, str(m)))) % 10**9}", "t.tif", mutate(raw, m))
    only_geohsi_errors(p)


# --------------------------------------------------------------------------- MATLAB


@FUZZ
@given(ops=st.data())
def test_mat_v5_bytes_give_only_geohsi_errors(seeds, tmp_path: Path, ops) -> None:
    """The real (zlib-compressed) Indian Pines ground truth, read as labels and as a cube."""
    from geohsi.io import read_labels

    raw = seeds["mat5"].read_bytes()
    m = ops.draw(mutations(len(raw)))
    p = _write(tmp_path / f"m{abs(hash(str(m))) % 10**9}", "gt.mat", mutate(raw, m))
    try:
        np.asarray(read_labels(p)["reflectance"].values)
    except GeohsiError as e:
        assert "\n" not in str(e)
    only_geohsi_errors(p)


@FUZZ
@given(ops=st.data())
def test_mat_v73_bytes_give_only_geohsi_errors(seeds, tmp_path: Path, ops) -> None:
    raw = seeds["mat73"].read_bytes()
    m = ops.draw(mutations(len(raw)))
    p = _write(tmp_path / f"h{abs(hash(str(m))) % 10**9}", "c.mat", mutate(raw, m))
    only_geohsi_errors(p)
