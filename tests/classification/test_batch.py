"""Batch mapping (``geohsi classify SCENE... --out-dir``) on real files, a real embedded cluster, a real
STAC API and a real scheduler: maps equal single-scene maps, the catalogue validates, areas add up,
failures are per scene, interrupted batches resume without recomputing finished work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geohsi.errors import UsageError
from tests.conftest import run_cli

PIXEL_AREA_M2 = 30.0 * 30.0  # EnMAP L2A: 30 m pixels in EPSG:32633


def _tiles(data_dir: Path) -> list[Path]:
    tiles = sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))
    assert len(tiles) == 18
    return tiles


def _mat(data_dir: Path) -> Path:
    return data_dir / "indian_pines" / "Indian_pines_corrected.mat"


def _labels(path: Path) -> np.ndarray:
    if path.suffix == ".zarr":
        import xarray as xr

        with xr.open_zarr(path, consolidated=False, mask_and_scale=False) as ds:
            return ds["classes"].values
    with rasterio.open(path) as src:
        return src.read(1)


def _summary(out_dir: Path) -> dict:
    return json.loads((out_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def file_batch(tmp_path_factory, data_dir, enmap_bundle, ip_bundle):
    """The acceptance batch: 18 EnMAP tiles (GeoTIFF, no ingest) + Indian Pines (.mat, no CRS), two
    bundles, one ``geohsi classify`` command on the embedded cluster."""
    out = tmp_path_factory.mktemp("batch") / "maps"
    scenes = [*_tiles(data_dir), _mat(data_dir)]
    r = run_cli(
        "classify", *scenes, "--bundle", enmap_bundle, "--bundle", ip_bundle, "--out-dir", out, "--workers", "2", "--confidence"
    )
    assert r.returncode == 0, r.stderr
    return out, scenes, r


def test_every_batch_map_equals_the_map_of_that_scene_alone(tmp_path, file_batch, enmap_bundle, ip_bundle):
    from distributed import Client, LocalCluster

    import geohsi

    out, scenes, _ = file_batch
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, Client(lc) as client:
        for src in scenes:
            kind = "zarr" if src.suffix == ".mat" else "tif"
            single = tmp_path / f"{src.stem}.{kind}"
            bundle = ip_bundle if src.suffix == ".mat" else enmap_bundle
            geohsi.classify(src, single, bundle, client=client, progress=False, log=lambda m: None)
            np.testing.assert_array_equal(_labels(out / f"{src.stem}.{kind}"), _labels(single), err_msg=src.name)


def test_the_catalogue_validates_and_lists_18_cog_items(file_batch):
    import pystac
    from pystac.validation import validate_dict

    out, scenes, _ = file_batch
    cat = pystac.read_file(out / "catalog.json")
    assert isinstance(cat, pystac.Collection)
    validate_dict(json.loads((out / "catalog.json").read_text()), extensions=[])
    items = list(cat.get_items())
    assert sorted(i.id for i in items) == sorted(s.stem for s in scenes)
    cogs = [i for i in items if "cloud-optimized" in (i.assets["map"].media_type or "")]
    assert len(cogs) == 18
    for it in items:
        validate_dict(it.to_dict(transform_hrefs=False), extensions=[])
        assert Path(it.assets["map"].get_absolute_href()).exists()
        rels = {ln.rel: ln.target for ln in it.links}
        assert "derived_from" in rels and "via" in rels
        assert it.properties["geohsi:bundle_sha256"]
    # the collection's extent covers every georeferenced map
    bbox = cat.extent.spatial.bboxes[0]
    for it in cogs:
        assert bbox[0] <= it.bbox[0] and bbox[1] <= it.bbox[1] and bbox[2] >= it.bbox[2] and bbox[3] >= it.bbox[3]
    ip = next(i for i in items if i.id == "Indian_pines_corrected")
    assert ip.geometry is None and ip.assets["map"].media_type == "application/vnd+zarr"


def test_class_areas_add_up_to_valid_pixels_times_pixel_area(file_batch):
    out, _, r = file_batch
    summary = _summary(out)
    assert summary["scenes_by_status"] == {"done": 19}
    for s in summary["scenes"]:
        labels = _labels(Path(s["outputs"][0]))
        assert s["valid_pixels"] == int((labels != 0).sum()) == sum(c["pixels"] for c in s["classes"])
        for c in s["classes"]:
            assert c["pixels"] == int((labels == c["id"]).sum()), (s["name"], c)
        if s["name"] == "Indian_pines_corrected":
            assert all(c["area_ha"] is None for c in s["classes"]) and "no CRS" in s["area_note"]
            continue
        total_ha = sum(c["area_ha"] for c in s["classes"])
        assert total_ha == pytest.approx(s["valid_pixels"] * PIXEL_AREA_M2 / 1e4, rel=1e-6)
        assert sum(c["percent"] for c in s["classes"]) == pytest.approx(100.0, abs=0.01)
    # the printed table names every scene
    for s in summary["scenes"]:
        assert s["name"][:12] in r.stderr
    assert "wrote" in r.stdout and "catalog.json" in r.stdout


def test_map_tags_record_the_bundle_and_scene(file_batch, enmap_bundle):
    from geohsi.bundle import load_bundle
    from geohsi.export.maps import read_identity

    out, scenes, _ = file_batch
    tags = read_identity(out / f"{scenes[0].stem}.tif")
    assert tags["bundle_sha256"] == load_bundle(enmap_bundle).hash
    item = json.loads((out / f"{scenes[0].stem}.json").read_text())
    assert item["properties"]["geohsi:scene_identity"] == tags["scene_identity"]
    assert (out / f"{scenes[0].stem}.confidence.tif").exists() and "confidence" in item["assets"]


def test_a_rerun_skips_every_complete_scene(file_batch, enmap_bundle, ip_bundle):
    out, scenes, _ = file_batch
    before = {
        p.name: p.stat().st_mtime_ns
        for p in out.iterdir()
        if p.suffix in (".tif", ".json") and p.name not in ("summary.json", "catalog.json")
    }
    r = run_cli(
        "classify", *scenes, "--bundle", enmap_bundle, "--bundle", ip_bundle, "--out-dir", out, "--workers", "1", "--confidence"
    )
    assert r.returncode == 0, r.stderr
    s = _summary(out)
    assert s["scenes_by_status"] == {"skipped": 19} and s["model_tasks"] == 0
    after = {n: (out / n).stat().st_mtime_ns for n in before}
    assert after == before
    assert all(sc["classes"] for sc in s["scenes"])  # the class table comes back from the items


def test_the_same_batch_from_a_stac_api_gives_identical_maps(tmp_path, file_batch, stac_api, enmap_bundle):
    out, scenes, _ = file_batch
    stac_out = tmp_path / "maps"
    r = run_cli(
        "classify",
        "--stac",
        stac_api.url,
        "--collection",
        "enmap-potsdam",
        "--bundle",
        enmap_bundle,
        "--out-dir",
        stac_out,
        "--workers",
        "2",
    )
    assert r.returncode == 0, r.stderr
    assert _summary(stac_out)["scenes_by_status"] == {"done": 18}
    for src in scenes[:-1]:
        np.testing.assert_array_equal(_labels(stac_out / f"{src.stem}.tif"), _labels(out / f"{src.stem}.tif"), err_msg=src.name)
    item = json.loads((stac_out / f"{scenes[0].stem}.json").read_text())
    derived = [ln["href"] for ln in item["links"] if ln["rel"] == "derived_from"]
    assert derived and derived[0].startswith(stac_api.url)


def test_the_python_twin_takes_pystac_items(tmp_path, stac_api, enmap_bundle, file_batch):
    import geohsi

    out, scenes, _ = file_batch
    items = geohsi.search(stac_api.url, "enmap-potsdam", max_items=2)
    res = geohsi.classify_many(items, enmap_bundle, tmp_path / "m", workers=1, log=lambda m: None)
    assert [s.status for s in res.scenes] == ["done", "done"]
    assert res.summary == tmp_path / "m" / "summary.json" and res.catalog is not None
    for s in res.scenes:
        np.testing.assert_array_equal(_labels(Path(s.outputs[0])), _labels(out / f"{s.name}.tif"))


def test_failures_are_per_scene_and_the_batch_goes_on(tmp_path, data_dir, enmap_bundle):
    tiles = _tiles(data_dir)
    bad = tmp_path / "bad"
    bad.mkdir()
    truncated = bad / "truncated.tif"
    truncated.write_bytes(tiles[1].read_bytes()[:400_000])
    with rasterio.open(tiles[2]) as src:
        profile = dict(src.profile, count=100)
        with rasterio.open(bad / "fewbands.tif", "w", **profile) as dst:
            dst.write(src.read()[:100])
    out = tmp_path / "maps"
    r = run_cli(
        "classify",
        tiles[0],
        truncated,
        bad / "fewbands.tif",
        tiles[3],
        "--bundle",
        enmap_bundle,
        "--out-dir",
        out,
        "--workers",
        "2",
    )
    assert r.returncode == 10, r.stderr
    assert "Traceback" not in r.stderr and "Compute Failed" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("geohsi: error: 2 of 4 scenes failed") and str(out / "summary.json") in last
    s = {sc["name"]: sc for sc in _summary(out)["scenes"]}
    assert s[tiles[0].stem]["status"] == s[tiles[3].stem]["status"] == "done"
    assert s["truncated"]["status"] == "failed" and "truncated" in s["truncated"]["message"]
    assert s["fewbands"]["status"] == "failed" and "100 bands" in s["fewbands"]["message"]
    assert (out / f"{tiles[3].stem}.tif").exists() and not (out / "truncated.tif").exists()


def test_bad_batch_options_are_one_line_errors(tmp_path, data_dir, enmap_bundle):
    tiles = _tiles(data_dir)
    cases = [
        (["classify", tiles[0], tiles[1], "--out", tmp_path / "m.tif"], "--out-dir"),
        (["classify", tiles[0], "--out", tmp_path / "m.tif", "--out-dir", tmp_path / "d"], "not both"),
        (["classify", str(tmp_path / "nothing" / "*.tif"), "--out-dir", tmp_path / "d"], "no file matches"),
        (
            ["classify", tiles[0], tiles[0].parent / ".." / "images" / tiles[0].name, "--out-dir", tmp_path / "d"],
            "both be mapped",
        ),
        (["classify", tiles[0], "--out-dir", tmp_path / "d", "--probabilities", tmp_path / "p.tif"], "--with-probabilities"),
        (["classify", tiles[0], "--out-dir", tmp_path / "d", "--scenes-in-flight", "0"], "--scenes-in-flight"),
        # one scene with --out: STAC selectors and batch pacing had been ignored, the whole scene mapped, exit 0
        (["classify", tiles[0], "--out", tmp_path / "m.tif", "--bbox", "1,2,3,4"], "--bbox select or pace STAC items"),
        (
            ["classify", tiles[0], "--out", tmp_path / "m.tif", "-c", "enmap", "--scenes-in-flight", "2"],
            "--collection, --scenes-in-flight select or pace",
        ),  # fmt: skip
        (["classify", tiles[0], "--out", tmp_path / "m.tif", "--max-items", "5"], "--max-items select or pace"),
        (["classify", tiles[0], "--out-dir", tmp_path / "d", "--max-items", "5"], "--max-items select(s) STAC items"),
    ]
    for args, needle in cases:
        r = run_cli(*args, "--bundle", enmap_bundle)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip().count("\n") == 0 and needle in r.stderr, (args, r.stderr)


def test_from_list_and_globs(tmp_path, data_dir, enmap_bundle):
    from geohsi.classification.batch import expand_scenes

    tiles = _tiles(data_dir)
    lst = tmp_path / "scenes.txt"
    lst.write_text(f"# two tiles\n{tiles[0]}\n\n{tiles[1].parent}/*_96_*.tif\n")
    got = expand_scenes([], lst)
    assert got[0] == str(tiles[0]) and len(got) == 1 + 4 and len(set(got)) == len(got)
    lst.write_text("# nothing yet\n\n")  # had been told 'no scenes given; pass … --from-list FILE'
    with pytest.raises(UsageError, match=r"--from-list .*scenes\.txt lists no scene; give one path or URL per line"):
        expand_scenes([], lst)
    assert expand_scenes([str(tiles[0])], lst) == [str(tiles[0])]  # scenes given beside it: an empty list adds none


def _wait_for(cond, timeout: float, what: str) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.slow
def test_sigterm_mid_batch_then_rerun_recomputes_nothing_finished(tmp_path, data_dir, enmap_bundle):
    tiles = _tiles(data_dir)[:8]
    out = tmp_path / "maps"
    args = [*tiles, "--bundle", enmap_bundle, "--out-dir", out, "--workers", "1", "--chunks", "8", "--scenes-in-flight", "1"]
    p = subprocess.Popen(
        [sys.executable, "-m", "geohsi.cli.main", "classify", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # stop once two maps are complete and a third scene has completed chunks
        _wait_for(
            lambda: (
                len(list(out.glob("*_*_*.json"))) >= 2
                and any(d.is_dir() and any(d.glob("done/*.json")) for d in out.glob(".*.parts.zarr"))
            ),
            300,
            "two complete maps and a partial one",
        )
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, err
    assert "Traceback" not in err and "leaked semaphore" not in err and "CancelledError" not in err, err
    first = _summary(out)
    done = {s["name"] for s in first["scenes"] if s["status"] == "done"}
    assert len(done) >= 2 and {s["status"] for s in first["scenes"]} <= {"done", "interrupted", "not started"}
    assert not list(out.glob("*.tmp*")) and not list(out.glob(".*.tmp*"))  # no half-written final output
    for s in first["scenes"]:
        if s["status"] != "done":
            assert not (out / f"{s['name']}.tif").exists() and not (out / f"{s['name']}.json").exists()
    partial = sum(len(list(d.glob("done/*.json"))) for d in out.glob(".*.parts.zarr"))
    mtimes = {n: (out / f"{n}.tif").stat().st_mtime_ns for n in done}

    r = run_cli("classify", *args)
    assert r.returncode == 0, r.stderr
    second = _summary(out)
    by = {s["name"]: s for s in second["scenes"]}
    assert {n for n, s in by.items() if s["status"] == "skipped"} == done
    assert all(by[n]["status"] == "done" for n in by if n not in done)
    assert sum(s["reused"] for s in by.values()) == partial > 0
    computed = sum(s["computed"] for s in by.values())
    assert computed == 16 * (len(tiles) - len(done)) - partial
    assert second["model_tasks"] == computed  # the workers ran exactly the missing chunks' model tasks
    assert {n: (out / f"{n}.tif").stat().st_mtime_ns for n in done} == mtimes
    assert not list(out.glob(".*.parts.zarr"))


@pytest.mark.slow
def test_a_worker_killed_mid_batch_still_gives_identical_maps(tmp_path, file_batch, enmap_bundle):
    from tests.classification.test_cluster import RealCluster

    out_ref, scenes, _ = file_batch
    tiles = scenes[:-1]
    cluster = RealCluster(tmp_path)
    out = tmp_path / "maps"
    try:
        victim_addr, victim_pid = next(iter(cluster.worker_pids.items()))
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "geohsi.cli.main",
                "classify",
                *map(str, tiles),
                "--bundle",
                str(enmap_bundle),
                "--out-dir",
                str(out),
                "--scheduler",
                cluster.address,
                "--chunks",
                "8",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for(lambda: len(list(out.glob("*_*_*.json"))) >= 2, 300, "two complete maps")
        os.kill(victim_pid, signal.SIGKILL)
        assert len(list(out.glob("*_*_*.json"))) < len(tiles), "the batch ended before the worker was killed"
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    finally:
        cluster.close()
    assert _summary(out)["scenes_by_status"] == {"done": 18}
    for src in tiles:
        np.testing.assert_array_equal(_labels(out / f"{src.stem}.tif"), _labels(out_ref / f"{src.stem}.tif"), err_msg=src.name)


def test_scene_name():
    from geohsi.classification.batch import scene_name

    assert scene_name("/x/a.tif") == "a" and scene_name("/x/s.zarr") == "s" and scene_name("/x/raw_img") == "raw_img"
    assert scene_name("/x/cube.bip.hdr") == "cube.bip"


def test_a_scene_named_like_the_batchs_own_files_or_outside_its_folder_is_refused(tmp_path, data_dir, enmap_bundle):
    """A tile called catalog.tif had its item replaced by the catalogue (exit 0); a STAC item id '../x' was written
    outside --out-dir. Both are refused in one line before anything is written."""
    import types

    from geohsi.classification.batch import _names

    tile = _tiles(data_dir)[0]
    (tmp_path / "catalog.tif").symlink_to(tile)
    r = run_cli("classify", tmp_path / "catalog.tif", _tiles(data_dir)[1], "--bundle", enmap_bundle, "--out-dir", tmp_path / "m")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "would be mapped to 'catalog', the batch's own catalogue and summary" in r.stderr and not (tmp_path / "m").exists()
    items = [types.SimpleNamespace(id=i, assets={}) for i in ("../escape", "sub/dir", ".hidden")]
    for item in items:
        with pytest.raises(UsageError, match=r"a name that is no plain file name; rename the file, or map it alone"):
            _names([item])
    assert _names(["a..b.tif", "x/Catalogue.tif"]) == ["a..b", "Catalogue"]
    # a bad --chunks is one usage error, not one failure per scene after the cluster started
    r = run_cli("classify", *_tiles(data_dir)[:2], "--bundle", enmap_bundle, "--out-dir", tmp_path / "m", "--chunks", "0")
    assert r.returncode == 2 and "--chunks must be a positive pixel count, got 0" in r.stderr and not (tmp_path / "m").exists()


def test_each_worker_loads_the_bundle_once_for_the_whole_batch(tmp_path, data_dir, enmap_bundle):
    from distributed import Client, LocalCluster

    import geohsi
    from geohsi.classification.worker import worker_stats

    tiles = _tiles(data_dir)[:6]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, Client(lc) as client:
        res = geohsi.classify_many(tiles, enmap_bundle, tmp_path / "maps", client=client, log=lambda m: None)
        loads = {w: s["model_loads"] for w, s in client.run(worker_stats).items()}

    assert [s.status for s in res.scenes] == ["done"] * 6 and res.model_tasks == 6
    assert all(n <= 1 for n in loads.values()) and sum(loads.values()) >= 1, loads


def test_input_warnings_are_recorded_per_scene(tmp_path, data_dir, enmap_scene):
    """A scene mapped by an s2 bundle through another band table whose widths are 1000 nm: the band table
    passes the refusals but is warned about, the model input is unlike the training data, and the batch
    summary records both warnings for that scene only."""
    from geohsi.classification.batch import classify_many
    from geohsi.ingestion import open_source
    from geohsi.scene import write_scene
    from geohsi.spectral.simulate import simulate_sensor
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    cfg = resolve_train_config(adapter="lora", epochs=1, split="per-class:5", model="tiny", head="patch", spectral="s2")
    bundle = train(enmap_scene, cfg, out=tmp_path / "s2", progress=False, log=lambda m: None)
    tiles = _tiles(data_dir)
    av = open_source(data_dir / "aviris_ng" / "ang20160910t185702_2rdn_img.hdr")
    sim = simulate_sensor(open_source(tiles[3]), av["wavelength"].values, np.full(425, 1000.0), good_band=av["good_band"].values)
    wide = write_scene(sim, tmp_path / "wide.zarr")
    lines: list[str] = []
    res = classify_many([tiles[0], wide], bundle, tmp_path / "maps", workers=1, log=lines.append)
    rec = {r["name"]: r for r in _summary(tmp_path / "maps")["scenes"]}
    assert res.failed == [] and rec[tiles[0].stem]["warnings"] == []
    said = rec["wide"]["warnings"]
    assert len(said) == 2 and "wider than 4× their band spacing" in said[0], said
    assert "does not look like the model's training data" in said[1] and "wrong unit" in said[1]
    assert sum("warning:" in x for x in lines) == 2


def test_a_map_never_replaces_its_own_scene_even_with_overwrite(tmp_path, data_dir, enmap_bundle):
    """--out-dir set to the scenes' own folder names each map like its input: refused, inputs untouched."""
    import hashlib

    folder = tmp_path / "inp"
    folder.mkdir()
    scenes = [folder / t.name for t in _tiles(data_dir)[:2]]
    for t, s in zip(_tiles(data_dir)[:2], scenes, strict=True):
        s.write_bytes(t.read_bytes())
    digest = {s: hashlib.sha256(s.read_bytes()).hexdigest() for s in scenes}
    r = run_cli("classify", *scenes, "--bundle", enmap_bundle, "--out-dir", folder, "--overwrite", "--workers", "1")
    assert r.returncode == 10 and "is the scene being classified" in r.stderr, r.stderr
    r = run_cli("classify", scenes[0], "--bundle", enmap_bundle, "--out", scenes[0], "--overwrite")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "is the scene being classified" in r.stderr, r.stderr
    assert all(hashlib.sha256(s.read_bytes()).hexdigest() == digest[s] for s in scenes)


def test_a_batch_into_a_folder_adds_to_its_catalogue(tmp_path, data_dir, enmap_bundle):
    """Two batches of other scenes into one folder: the second had written a catalogue of its own scenes
    only, so the first batch's maps, still on disk, were gone from catalog.json and from sample --catalog."""
    from distributed import Client, LocalCluster

    import geohsi
    from geohsi.assessment.maps import catalog_maps

    tiles, out = _tiles(data_dir)[:3], tmp_path / "maps"

    def catalogued() -> list[str]:
        doc = json.loads((out / "catalog.json").read_text())
        return sorted(link["title"] for link in doc["links"] if link["rel"] == "item")

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, Client(lc) as client:
        for scenes in (tiles[:2], tiles[2:], tiles[:1]):  # the last: a scene again, the others left as they are
            geohsi.classify_many(scenes, enmap_bundle, out, client=client, log=lambda m: None)
        assert catalogued() == [t.stem for t in tiles]
        assert sorted(p.name for p in catalog_maps(out / "catalog.json")) == [f"{t.stem}.tif" for t in tiles]
        (out / f"{tiles[1].stem}.tif").unlink()  # a map removed by hand leaves the catalogue at the next batch
        geohsi.classify_many(tiles[2:], enmap_bundle, out, client=client, log=lambda m: None)
    assert catalogued() == [tiles[0].stem, tiles[2].stem]
    assert len(_summary(out)["scenes"]) == 1  # the summary is the last run's


@pytest.mark.parametrize("file", ["catalog.json", "summary.json"])
def test_a_catalogue_or_summary_no_batch_wrote_is_kept_without_overwrite(tmp_path, data_dir, enmap_bundle, file):
    """A user's own catalog.json (or summary.json) in --out-dir had been replaced, exit 0."""
    out = tmp_path / "maps"
    out.mkdir()
    (out / file).write_text('{"type": "Catalog", "id": "my-precious", "description": "mine", "links": []}')
    r = run_cli("classify", _tiles(data_dir)[0], "--bundle", enmap_bundle, "--out-dir", out, "--workers", "1")
    assert r.returncode == 8 and r.stderr.count("\n") == 1, r.stderr
    assert f"{out / file} was not written by a geohsi batch; choose another --out-dir, or move the file away" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == [file] and "my-precious" in (out / file).read_text()


def test_a_scene_is_checked_on_local_threads_not_queued_on_the_cluster(data_dir, enmap_bundle):
    """The input guards' sample of a scene ran on the batch's cluster, behind every chunk of the scene before it
    (15.6 s instead of 0.3 s), so scenes were submitted one after another; Ctrl-C there printed an asyncio traceback."""
    from distributed import Client, LocalCluster, get_task_stream

    from geohsi.bundle import load_bundle
    from geohsi.ingestion import open_source

    b = load_bundle(enmap_bundle)
    assert b.transform.input_range is not None or b.transform.channel_stats is not None  # the guards read a sample
    ds = open_source(_tiles(data_dir)[0])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as lc, Client(lc) as client:
        with get_task_stream(client) as ts:
            b.transform.check_scene(ds, warn=lambda m: None)
        assert ts.data == []


def test_a_map_records_the_run_a_moving_link_points_at(tmp_path, data_dir, enmap_bundle):
    """Mapped with runs/latest, the map's tags and item named runs/latest, which the next 'geohsi train' moves on."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(Path(enmap_bundle).resolve())
    r = run_cli("classify", _tiles(data_dir)[0], "--out-dir", tmp_path / "maps", "--workers", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    tile = _tiles(data_dir)[0].stem
    with rasterio.open(tmp_path / "maps" / f"{tile}.tif") as src:
        assert src.tags()["GEOHSI_BUNDLE"] == str(Path(enmap_bundle).resolve())
    item = json.loads((tmp_path / "maps" / f"{tile}.json").read_text())
    assert "latest" not in json.dumps(item)


def test_a_list_of_scenes_with_out_is_told_it_is_a_batch(tmp_path, enmap_bundle):
    """A --from-list (or --stac) batch given --out had been told '0 scenes need --out-dir DIR'."""
    (tmp_path / "list.txt").write_text("a.tif\n")
    r = run_cli("classify", "--from-list", tmp_path / "list.txt", "--bundle", enmap_bundle, "--out", tmp_path / "m.tif")
    assert r.returncode == 2 and "a STAC search or --from-list is a batch: it needs --out-dir DIR" in r.stderr, r.stderr
