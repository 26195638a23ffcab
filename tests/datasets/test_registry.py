"""Dataset registry: checksums of the shared files, download path with file:// URLs, atomicity."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from geohsi.datasets import registry
from geohsi.errors import InputFormatError, OutputError, UsageError


def test_registry_checksums_match_shared_files(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("GEOHSI_DATA_DIR", str(data_dir))
    for name in ("indian_pines", "enmap_potsdam", "aviris_ng", "jasper_ridge"):
        paths = registry.fetch(name, download_dir=Path("/nonexistent-never-used"))
        assert len(paths) == len(registry.get(name).files)
        for rel, p in paths.items():
            assert p == data_dir / rel


def test_indian_pines_bands_are_the_200_kept_aviris_channels() -> None:
    wl, fwhm = registry.indian_pines_bands()
    assert len(wl) == len(fwhm) == 200
    assert wl[0] == pytest.approx(400.02) and wl[-1] == pytest.approx(2489.11)
    # AVIRIS has four spectrometers whose ranges overlap: the centres step back exactly twice.
    steps_back = [i for i, (a, b) in enumerate(zip(wl, wl[1:], strict=False)) if b <= a]
    assert steps_back == [30, 93]


def _fake_dataset(tmp_path: Path, payload: bytes, sha: str) -> registry.Dataset:
    src = tmp_path / "server" / "scene.bin"
    src.parent.mkdir()
    src.write_bytes(payload)
    f = registry.DatasetFile("fake/scene.bin", src.as_uri(), sha)
    return registry.Dataset(name="fake", title="fake", files=(f,), images=("fake/scene.bin",))


def test_download_verifies_checksum_and_renames(tmp_path: Path, monkeypatch) -> None:
    payload = b"hyperspectral" * 1000
    ds = _fake_dataset(tmp_path, payload, hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(registry.DATASETS, "fake", ds)
    monkeypatch.delenv("GEOHSI_DATA_DIR", raising=False)
    out = registry.fetch("fake", download_dir=tmp_path / "cache")
    assert out["fake/scene.bin"].read_bytes() == payload
    assert [p.name for p in (tmp_path / "cache" / "fake").iterdir()] == ["scene.bin"]
    # second fetch finds it locally (source removed: no download possible)
    (tmp_path / "server" / "scene.bin").unlink()
    assert registry.fetch("fake", download_dir=tmp_path / "cache")["fake/scene.bin"].read_bytes() == payload


def test_download_with_bad_checksum_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    ds = _fake_dataset(tmp_path, b"corrupted bytes", "0" * 64)
    monkeypatch.setitem(registry.DATASETS, "fake", ds)
    monkeypatch.delenv("GEOHSI_DATA_DIR", raising=False)
    with pytest.raises(InputFormatError, match="checksum mismatch"):
        registry.fetch("fake", download_dir=tmp_path / "cache")
    assert list((tmp_path / "cache" / "fake").iterdir()) == []


def test_unreachable_url_is_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    f = registry.DatasetFile("fake/x.bin", (tmp_path / "missing.bin").as_uri(), "0" * 64)
    monkeypatch.setitem(registry.DATASETS, "fake", registry.Dataset("fake", "fake", (f,), ("fake/x.bin",)))
    monkeypatch.delenv("GEOHSI_DATA_DIR", raising=False)
    with pytest.raises(InputFormatError, match="cannot download") as e:
        registry.fetch("fake", download_dir=tmp_path / "cache")
    assert "\n" not in str(e.value)


def test_a_download_dir_that_cannot_be_made_is_an_output_error(tmp_path: Path, monkeypatch) -> None:
    """A --dir under a file had been an unexpected FileExistsError/NotADirectoryError (exit 70)."""
    payload = b"hyperspectral"
    monkeypatch.setitem(registry.DATASETS, "fake", _fake_dataset(tmp_path, payload, hashlib.sha256(payload).hexdigest()))
    monkeypatch.delenv("GEOHSI_DATA_DIR", raising=False)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError, match=r"cannot create .*file/cache/fake: .*; choose a writable --dir"):
        registry.fetch("fake", download_dir=tmp_path / "file" / "cache")


def test_unknown_dataset() -> None:
    with pytest.raises(UsageError, match="known datasets: indian_pines"):
        registry.get("salinas")


def test_jasper_ridge_ingests_through_the_cli(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """``geohsi datasets ingest jasper_ridge``: the layout the generic reader refuses goes through the dataset's builder."""
    import numpy as np

    from geohsi.datasets.jasper_ridge import jasper_ridge_scene
    from geohsi.scene import cube, open_scene
    from tests.test_bad_inputs import cli

    monkeypatch.setenv("GEOHSI_DATA_DIR", str(data_dir))
    out = tmp_path / "jr.zarr"
    res = cli(capsys, "datasets", "ingest", "jasper_ridge", "--out", out)
    assert res.code == 0, res.err
    expected = jasper_ridge_scene(data_dir / "jasper_ridge" / "jasperRidge2_R198.mat")
    np.testing.assert_array_equal(cube(open_scene(out)).values, cube(expected).values)
    again = cli(capsys, "datasets", "ingest", "jasper_ridge", "--out", out)
    assert again.code != 0 and len(again.lines) == 1 and "--overwrite" in again.err  # never replaced without it


def test_ingesting_a_dataset_checks_its_out_first(tmp_path: Path) -> None:
    """``datasets ingest NAME --out x.tif`` had written a Zarr folder called x.tif (ingest's check was skipped)."""
    with pytest.raises(UsageError, match=r"--out .*x\.tif names a \.tif file, but a scene is a Zarr store"):
        registry.ingest_dataset("jasper_ridge", tmp_path / "x.tif")  # built in code, not by ingest
    assert list(tmp_path.iterdir()) == []
