"""``geohsi ingest`` through the real entry point: bad inputs give one line, exit ≠ 0, no traceback,
and leave no store behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import scipy.io as sio
from rasterio.transform import from_origin

from geohsi.cli.main import main
from geohsi.scene import open_scene


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Call the console-script entry point in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("geohsi: error:") and "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


def tile(path: Path, bands: int = 2, crs: str = "EPSG:32633", x0: float = 0.0) -> Path:
    with rasterio.open(
        path, "w", driver="GTiff", width=4, height=4, count=bands, dtype="float32", crs=crs, transform=from_origin(x0, 40, 10, 10)
    ) as dst:
        dst.write(np.ones((bands, 4, 4), "float32"))
    return path


def _ingest_subprocess(src: Path, out: Path) -> subprocess.CompletedProcess:
    """``geohsi ingest SRC --out OUT`` through the installed entry point, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "geohsi.cli.main", "ingest", str(src), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_file_subprocess(tmp_path: Path) -> None:
    # One real subprocess: the installed entry point prints one line on stderr and exits 3.
    r = _ingest_subprocess(tmp_path / "nope.tif", tmp_path / "o.zarr")
    assert_one_line_error(r.returncode, r.stderr, "nope.tif", "does not exist")
    assert r.returncode == 3 and not (tmp_path / "o.zarr").exists()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # writing the file
def test_a_geotiff_without_a_geotransform_gets_geohsis_line_only(tmp_path: Path) -> None:
    """rasterio's two-line NotGeoreferencedWarning (its file and line) had come before the one-line error."""
    with rasterio.open(tmp_path / "plain.tif", "w", driver="GTiff", width=5, height=4, count=3, dtype="uint16") as dst:
        dst.write(np.ones((3, 4, 5), "uint16"))
    r = _ingest_subprocess(tmp_path / "plain.tif", tmp_path / "o.zarr")
    assert_one_line_error(r.returncode, r.stderr, "plain.tif has no CRS", "--crs none")


def test_a_failed_ingest_leaves_no_output_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["ingest", str(tmp_path / "nowhere.tif"), "--out", str(tmp_path / "newdir" / "sub" / "out.zarr")])
    assert e.value.code == 3
    assert not (tmp_path / "newdir").exists()


def test_unknown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "notes.xyz"
    f.write_text("just text\n")
    code, _, err = run_cli(["ingest", f, "--out", tmp_path / "o.zarr"], capsys)
    assert_one_line_error(code, err, "unknown format", "notes.xyz")


def test_mat_without_cube(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "flat.mat"
    sio.savemat(f, {"Y": np.ones((5, 20))})
    code, _, err = run_cli(["ingest", f, "--crs", "none", "--out", tmp_path / "o.zarr"], capsys)
    assert_one_line_error(code, err, "no 3-D numeric array", "flat.mat")


def test_mat_without_crs_flag(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        ["ingest", data_dir / "indian_pines" / "Indian_pines_corrected.mat", "--out", tmp_path / "o.zarr"], capsys
    )
    assert_one_line_error(code, err, "--crs none", "--transform")


@pytest.mark.parametrize("option", [("--layer", "fields"), ("--all-touched",)])
def test_vector_label_options_without_labels_are_refused(
    option: tuple[str, ...], data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They had been accepted and ignored (exit 0), where --label-field alone was refused."""
    mat = data_dir / "indian_pines" / "Indian_pines_corrected.mat"
    code, _, err = run_cli(["ingest", mat, "--crs", "none", *option, "--out", tmp_path / "o.zarr"], capsys)
    assert_one_line_error(code, err, option[0], "add --labels FILE")
    assert not (tmp_path / "o.zarr").exists()


def test_labels_of_another_shape(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = tmp_path / "lab.mat"
    sio.savemat(lab, {"gt": np.ones((10, 12), "uint8")})
    code, _, err = run_cli(
        [
            "ingest",
            data_dir / "indian_pines" / "Indian_pines_corrected.mat",
            "--crs",
            "none",
            "--labels",
            lab,
            "--out",
            tmp_path / "o.zarr",
        ],
        capsys,
    )
    assert_one_line_error(code, err, "(10, 12)", "145×145")
    assert not (tmp_path / "o.zarr").exists()


def test_tiles_with_different_crs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tile(tmp_path / "a.tif"), tile(tmp_path / "b.tif", crs="EPSG:32632", x0=40)
    code, _, err = run_cli(["ingest", a, b, "--out", tmp_path / "o.zarr"], capsys)
    assert_one_line_error(code, err, "b.tif", "EPSG:32632")
    assert code == 4


def test_tiles_with_different_band_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tile(tmp_path / "a.tif"), tile(tmp_path / "b.tif", bands=3, x0=40)
    code, _, err = run_cli(["ingest", a, b, "--out", tmp_path / "o.zarr"], capsys)
    assert_one_line_error(code, err, "b.tif has 3 bands")
    assert code == 5


def test_output_exists_without_overwrite(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = data_dir / "pika_drone" / "pika_reflectance.bip"
    out = tmp_path / "p.zarr"
    code, stdout, _ = run_cli(["ingest", src, "--out", out], capsys)
    assert code == 0 and "EPSG:32615" in stdout and "240 bands" in stdout
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in out.rglob("*")}
    code, _, err = run_cli(["ingest", src, "--out", out, "--sensor", "changed"], capsys)
    assert_one_line_error(code, err, "already exists", "--overwrite")
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in out.rglob("*")} == before
    assert "sensor" not in open_scene(out).attrs
    code, _, _ = run_cli(["ingest", src, "--out", out, "--sensor", "changed", "--overwrite"], capsys)
    assert code == 0 and open_scene(out).attrs["sensor"] == "changed"


def test_unwritable_output(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    code, _, err = run_cli(["ingest", data_dir / "pika_drone" / "pika_reflectance.bip", "--out", blocker / "o.zarr"], capsys)
    assert_one_line_error(code, err, "is a file, not a directory; choose another --out")
    assert code == 8


def test_unwritable_directory(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = run_cli(["ingest", data_dir / "pika_drone" / "pika_reflectance.bip", "--out", ro / "o.zarr"], capsys)
        assert_one_line_error(code, err, "not writable")
    finally:
        ro.chmod(0o700)


def test_failed_ingest_leaves_no_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = tmp_path / "full.tif"
    with rasterio.open(
        full,
        "w",
        driver="GTiff",
        width=64,
        height=64,
        count=3,
        dtype="float32",
        crs="EPSG:32633",
        transform=from_origin(0, 640, 10, 10),
        tiled=True,
        blockxsize=16,
        blockysize=16,
    ) as dst:
        dst.write(np.random.default_rng(0).random((3, 64, 64), dtype="float32"))
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    code, _, err = run_cli(["ingest", cut, "--out", tmp_path / "o.zarr", "--chunks", "16"], capsys)
    assert_one_line_error(code, err, "cut.tif", "truncated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.tif", "full.tif"]
