"""geohsi.files: what ``--overwrite`` may replace."""

from __future__ import annotations

import pytest

from geohsi.errors import OutputError
from geohsi.files import atomic_output, check_output


def _write_store(tmp) -> None:
    tmp.mkdir()
    (tmp / "zarr.json").write_text("{}")


def test_overwrite_never_removes_a_folder_of_the_users_files(tmp_path):
    """The inputs' folder given as --out with --overwrite had been replaced, inputs and all."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "scene.tif").write_bytes(b"II*\0")
    with pytest.raises(OutputError, match="folder of other files, not a store geohsi writes"):
        check_output(raw, overwrite=True, directory=True)
    with pytest.raises(OutputError, match="folder of other files"), atomic_output(raw, overwrite=True) as tmp:
        _write_store(tmp)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no temporary left
    assert [p.name for p in raw.iterdir()] == ["scene.tif"]


@pytest.mark.parametrize("marker", [None, "zarr.json", ".zgroup", "bundle.json", "adapter.json"])
def test_overwrite_replaces_an_empty_folder_or_a_store_geohsi_writes(tmp_path, marker):
    out = tmp_path / "out.zarr"
    out.mkdir()
    if marker:
        (out / marker).write_text("{}")
        (out / "c").mkdir()
    check_output(out, overwrite=True, directory=True)
    with atomic_output(out, overwrite=True) as tmp:
        _write_store(tmp)
    assert sorted(p.name for p in out.iterdir()) == ["zarr.json"]


def test_folders_of_an_output_are_made_when_it_is_written_not_when_it_is_checked(tmp_path):
    """A refused or failed run had left the --out folders that check_output created up front."""
    out = tmp_path / "new" / "sub" / "out.json"
    assert check_output(out, overwrite=False, directory=False) == out
    assert list(tmp_path.iterdir()) == []
    with atomic_output(out) as tmp:
        tmp.write_text("{}")
    assert out.read_text() == "{}"


def test_a_file_output_inside_a_bundle_or_a_store_is_refused(tmp_path) -> None:
    """A bundle hashes its files: evaluate/baseline --out run/metrics.json --overwrite had left it unreadable."""
    from geohsi.errors import UsageError
    from geohsi.files import check_outside_stores

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "bundle.json").write_text("{}")
    (tmp_path / "s.zarr" / "reflectance").mkdir(parents=True)
    (tmp_path / "s.zarr" / "zarr.json").write_text("{}")
    with pytest.raises(UsageError, match=r"--out .*run/metrics\.json is inside the bundle .*run; write it beside the bundle"):
        check_outside_stores([tmp_path / "eval.json", tmp_path / "run" / "metrics.json"])
    with pytest.raises(UsageError, match=r"is inside the store .*s\.zarr"):
        check_outside_stores([tmp_path / "s.zarr" / "reflectance" / "m.csv"])
    check_outside_stores([tmp_path / "run-eval" / "metrics.json", "s3://bucket/run/metrics.json"])  # beside it: fine
