"""geohsi info on scenes, model configs (+ adapters) and bundles."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_version_is_the_package_version_the_docs_speak_of() -> None:
    import re

    import geohsi

    r = run_cli("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"geohsi, version {geohsi.__version__}"
    # "versionadded:: 0.3" in the code must not name a version newer than the one users can have
    root = Path(geohsi.__file__).parent
    named = {
        tuple(map(int, m))
        for f in root.rglob("*.py")
        for m in re.findall(r"version(?:added|changed):: (\d+)\.(\d+)", f.read_text())
    }
    assert max(named) <= tuple(map(int, geohsi.__version__.split(".")[:2])), (max(named), geohsi.__version__)


def test_info_model_base_prints_formula_and_built_counts() -> None:
    r = run_cli("info", "--model", "base")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("85,218,048") == 2  # formula and built model agree


@pytest.mark.parametrize(("adapter", "count"), [("lora", "294,912"), ("krona", "38,400"), ("krona+", "38,400")])
def test_info_model_adapter_counts(adapter: str, count: str) -> None:
    r = run_cli("info", "--model", "base", "--adapter", adapter, "--num-classes", 16, "--head", "patch")
    assert r.returncode == 0, r.stderr
    assert count in r.stdout
    head = 768 * 2 + 768 * 16 + 16  # the patch head: LayerNorm + Linear
    total = int(count.replace(",", "")) + head
    assert r.stdout.count(f"{total:,}") == 2


def test_info_scene(enmap_scene: Path) -> None:
    r = run_cli("info", enmap_scene)
    assert r.returncode == 0, r.stderr
    for needle in ("EPSG:32633", "224", "low vegetation", "1694", "-32768"):
        assert needle in r.stdout, needle
    # the grid to the metre: six digits had printed the northing 5809965 as 5.80996e+06
    assert "30, 0, 364095, 0, -30, 5809965" in r.stdout and "e+06" not in r.stdout


def test_info_of_a_scene_refuses_model_options_it_would_ignore(enmap_scene: Path) -> None:
    r = run_cli("info", enmap_scene, "--num-classes", "5", "--head", "patch")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "--num-classes, --head describe a model config: give them with --model NAME" in r.stderr


def test_info_without_path_or_model_is_a_one_line_error() -> None:
    r = run_cli("info")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--model" in r.stderr


def test_info_of_a_scene_refuses_an_adapter_it_would_ignore(enmap_scene: Path) -> None:
    r = run_cli("info", enmap_scene, "--adapter", "lora")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "--adapter counts the parameters of a model config: give it with --model NAME" in r.stderr


def test_info_scene_prints_the_band_table_and_flags_inflated_widths(enmap_scene: Path, tmp_path: Path) -> None:
    import numpy as np

    from geohsi.scene import make_scene, open_scene, write_scene

    r = run_cli("info", enmap_scene)
    assert r.returncode == 0, r.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in r.stdout.splitlines() if line.count("│") >= 3}
    assert rows["band_table min_nm"] == "418.24" and rows["band_table max_nm"] == "2445.53"
    assert rows["band_table median_fwhm_nm"].startswith("8.") and rows["band_check"] == "ok"
    # a store written before the one unit rule: 8 nm widths read as 8 µm
    ds = open_scene(enmap_scene)
    old = make_scene(ds["reflectance"].data, wavelength=ds["wavelength"].values, fwhm=ds["fwhm"].values * 1000)
    write_scene(old, tmp_path / "old.zarr")
    r = run_cli("info", tmp_path / "old.zarr", env={"COLUMNS": "1000"})  # one table row per line
    assert r.returncode == 0, r.stderr
    assert "band widths up to" in r.stdout and "re-ingest the source with --overwrite" in r.stdout
    assert np.isfinite(open_scene(tmp_path / "old.zarr", check_band_table=False)["fwhm"].values).all()


# -- bundles: one designed line per aspect, the same parameter rows as `geohsi train` and `--model` --------

BUNDLE_ROWS = [
    "created",
    "model",
    "head",
    "backbone",
    "spectral",
    "maps",
    "split",
    "training",
    "test metrics",
    "adapter",
    "adapter weights",
    "head weights",
    "total trainable",
    "adapter file",
]
PARAMETER_ROWS = ["adapter", "adapter weights", "head weights", "total trainable"]


@pytest.fixture(scope="module")
def tiny_bundles(ip_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[str]]]:
    """A tiny KronA+ bundle of each head (one epoch on Indian Pines), with what training logged."""
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    out = tmp_path_factory.mktemp("info_bundles")
    bundles = {}
    for head in ("dense", "patch"):
        cfg = resolve_train_config(adapter="krona+", epochs=1, split="per-class:5", model="tiny", device="cpu", head=head)
        logged: list[str] = []
        bundles[head] = (train(ip_scene, cfg, out=out / head, progress=False, log=logged.append), logged)
    return bundles


def _first_table(stdout: str) -> dict[str, str]:
    """``field → value`` of the first table ``geohsi info`` prints (one row per line at COLUMNS=1000)."""
    lines = stdout.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    cells = [line.split("│") for line in lines[:end] if line.count("│") >= 3]
    return {c[1].strip(): c[2].strip() for c in cells}


@pytest.mark.parametrize("head", ["dense", "patch"])
def test_info_bundle_is_one_designed_line_per_aspect(tiny_bundles: dict, head: str) -> None:
    import re

    bundle, logged = tiny_bundles[head]
    r = run_cli("info", bundle, env={"COLUMNS": "1000"})
    assert r.returncode == 0, r.stderr
    rows = _first_table(r.stdout)
    assert list(rows) == BUNDLE_ROWS
    raw = {k: v for k, v in rows.items() if re.search(r"[{}\[\]]|': |\", ", v)}
    assert not raw, f"rows showing a raw dict or list: {raw}"
    if head == "dense":
        assert rows["head"] == "dense (32 px tiles, overlap 8 px)" and "window" not in r.stdout
    else:
        assert rows["head"] == "patch: per-pixel windows of 15×15 pixels resized to 32×32"
    assert rows["adapter"] == "krona+ on attn.q, attn.v of blocks 0–1 (4 layers): factors A 8×8, B 8×8; λ 16"
    assert rows["adapter weights"] == "512 (0.45 % of the 114 k encoder)"
    on_disk = sum(f.stat().st_size for f in (bundle / "adapter").iterdir())
    assert rows["adapter file"] == f"{on_disk / 1e3:.1f} kB on disk"
    assert re.fullmatch(r"OA 0\.\d{3}, AA 0\.\d{3}, κ -?0\.\d{3} on [\d,]+ test pixels", rows["test metrics"])
    assert r.stdout.count("│ Stone-Steel-Towers ") == 1  # the classes in a table of their own
    # the same parameter rows as `geohsi info --model` and as `geohsi train` logged
    model = _first_table(
        run_cli("info", "--model", "tiny", "--adapter", "krona+", "--head", head, env={"COLUMNS": "1000"}).stdout
    )
    assert {k: model[k] for k in PARAMETER_ROWS} == {k: rows[k] for k in PARAMETER_ROWS}
    train_rows = {line[:15].strip(): line[17:] for text in logged for line in text.splitlines()}
    assert {k: train_rows.get(k) for k in PARAMETER_ROWS} == {k: rows[k] for k in PARAMETER_ROWS}


def test_info_bundle_json_is_the_full_record(tiny_bundles: dict) -> None:
    import json

    bundle, _ = tiny_bundles["dense"]
    r = run_cli("info", bundle, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    params = got.pop("parameters")
    assert got == json.loads((bundle / "bundle.json").read_text())
    assert params["adapter_params"] == 512 and params["trainable_params"] == 512 + params["head_params"]
    assert params["file_bytes"] == sum(f.stat().st_size for f in (bundle / "adapter").iterdir())
    assert json.loads(run_cli("info", "--model", "tiny", "--json").stdout)["encoder params (built)"] == "113,600"


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_info_of_a_map_shows_its_legend_origin_and_class_pixels(tiny_bundles: dict, ip_scene: Path, data_dir: Path,
                                                                tmp_path: Path, suffix: str) -> None:  # fmt: skip
    """A map geohsi classify wrote (it had been told to 'create a scene with geohsi ingest')."""
    import json

    import numpy as np
    import xarray as xr

    bundle, _ = tiny_bundles["dense"]
    scene, out = ip_scene, tmp_path / f"map{suffix}"
    if suffix == ".tif":  # a GeoTIFF needs a CRS: Indian Pines placed on a 20 m UTM grid
        src, scene = data_dir / "indian_pines", tmp_path / "ip_utm.zarr"
        r = run_cli("ingest", src / "Indian_pines_corrected.mat", "--labels", src / "Indian_pines_gt.mat",
                    "--crs", "EPSG:32616", "--transform", "20,0,600000,0,-20,4500000", "--out", scene)  # fmt: skip
        assert r.returncode == 0, r.stderr
    r = run_cli("classify", scene, "--bundle", bundle, "--out", out, "--workers", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    if suffix == ".tif":
        import rasterio

        with rasterio.open(out) as src:
            ids = src.read(1)
    else:
        ids = xr.open_zarr(out)["classes"].values
    r = run_cli("info", out, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["kind"] == ("class map (GeoTIFF)" if suffix == ".tif" else "class map (Zarr)")
    assert got["shape"] == [145, 145] and got["nodata"] == 0
    assert got["crs"] == ("EPSG:32616" if suffix == ".tif" else None)
    assert got["made_from"]["bundle"] == str(bundle.resolve()) and got["made_from"]["scene_identity"]
    counts = np.bincount(ids.reshape(-1).astype(np.int64), minlength=17)
    ha = [counts[i] * 0.04 if suffix == ".tif" else None for i in range(17)]  # 20 m pixels: 0.04 ha
    assert got["nodata_pixels"] == counts[0]
    assert [(c["id"], c["pixels"], c["area_ha"]) for c in got["classes"]] == [(i, counts[i], ha[i]) for i in range(1, 17)]
    assert got["classes"][13]["name"] == "Woods"  # the bundle's legend, kept in the map
    table = run_cli("info", out, env={"COLUMNS": "1000"})
    assert table.returncode == 0 and "│ Woods " in table.stdout and "ingest" not in table.stdout + table.stderr


def test_info_of_a_geographic_map_gives_geodesic_class_areas(tmp_path: Path) -> None:
    """Per-row pixel areas: the classes and nodata add up to the geodesic area of the map's footprint."""
    import json

    import numpy as np
    import rasterio
    from pyproj import Geod

    from tests.assessment.conftest import write_class_tif

    ids = np.zeros((300, 200), np.uint8)
    ids[:100], ids[100:250, :150] = 1, 2  # class 1 in the northern rows, class 2 farther south
    tf = rasterio.Affine(0.01, 0, 10.0, 0, -0.01, 60.0)
    write_class_tif(tmp_path / "g.tif", ids, ("north", "south", "absent"), crs="EPSG:4326", transform=tf)
    r = run_cli("info", tmp_path / "g.tif", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    by_name = {c["name"]: c for c in got["classes"]}
    assert (by_name["north"]["pixels"], by_name["south"]["pixels"], by_name["absent"]["pixels"]) == (20_000, 22_500, 0)

    def box_ha(west: float, east: float, south: float, north: float) -> float:  # edges along parallels, densified
        lon = np.linspace(west, east, 2001)
        ring = ([*lon, *lon[::-1]], [north] * lon.size + [south] * lon.size)
        return abs(Geod(ellps="WGS84").polygon_area_perimeter(*ring)[0]) / 1e4

    north, south = box_ha(10, 12, 59, 60), box_ha(10, 11.5, 57.5, 59)
    assert by_name["north"]["area_ha"] == pytest.approx(north, rel=1e-6)
    assert by_name["south"]["area_ha"] == pytest.approx(south, rel=1e-6)  # a mean pixel area would be 2 % off
    assert by_name["absent"]["area_ha"] == 0
    assert "geodesic" in got["pixel_area"]


def test_info_of_a_hyperspectral_geotiff_still_says_to_ingest_it(data_dir: Path) -> None:
    tile = sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))[0]
    r = run_cli("info", tile)
    assert r.returncode != 0 and "geohsi ingest" in r.stderr and "Traceback" not in r.stderr


def test_info_of_a_missing_map_or_a_plain_map_without_a_legend(tmp_path: Path) -> None:
    """A missing .tif had been told to run 'geohsi ingest SRC --out x.tif' (which refuses it); ids a map does not
    declare had no colour."""
    import json

    import numpy as np
    import rasterio

    r = run_cli("info", tmp_path / "gone.tif")
    assert r.returncode != 0 and "does not exist; give a scene .zarr, a bundle directory or a class map" in r.stderr
    with rasterio.open(tmp_path / "plain.tif", "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=rasterio.Affine(10, 0, 0, 0, -10, 0)) as dst:  # fmt: skip
        dst.write((np.arange(64).reshape(8, 8) % 3).astype("uint8"), 1)
    got = json.loads(run_cli("info", tmp_path / "plain.tif", "--json").stdout)
    colours = [c["color"] for c in got["classes"]]
    assert [c["id"] for c in got["classes"]] == [1, 2] and all(colours) and len(set(colours)) == 2


def test_info_of_a_map_with_an_undeclared_nodata_value_lists_no_negative_class(tmp_path: Path) -> None:
    """-9999 in a map that declares no nodata had been listed as a class, "class_-9999", with 9 ha."""
    import json

    import numpy as np
    import rasterio

    ids = (np.arange(400).reshape(20, 20) % 3 + 1).astype("int16")
    ids[:5] = -9999
    with rasterio.open(tmp_path / "neg.tif", "w", driver="GTiff", width=20, height=20, count=1, dtype="int16",
                       crs="EPSG:32633", transform=rasterio.Affine(30, 0, 0, 0, -30, 0)) as dst:  # fmt: skip
        dst.write(ids, 1)
    r = run_cli("info", tmp_path / "neg.tif", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert [c["id"] for c in got["classes"]] == [1, 2, 3] and sum(c["pixels"] for c in got["classes"]) == 300
    assert got["nodata_pixels"] == 0
    assert "holds negative values (-9999: 100 px)" in r.stderr and "gdal_edit.py -a_nodata -9999" in r.stderr
