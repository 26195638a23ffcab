"""geohsi.catalog (``geohsi search``) against a real STAC API: stac-fastapi-geoparquet on 127.0.0.1 (tests/stac_fixtures.py)."""

from __future__ import annotations

import json
import re
import socket
import time
import warnings

import pytest

from geohsi.catalog import PRESETS, load_catalogs, resolve_catalog, search
from geohsi.errors import DataError, GeohsiWarning, InputFormatError
from tests.conftest import run_cli


def _intersects(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def test_bbox_returns_exactly_the_tiles_it_touches(stac_api):
    ref = stac_api.enmap[7]["bbox"]
    cx, cy = (ref[0] + ref[2]) / 2, (ref[1] + ref[3]) / 2
    box = [cx - 0.001, cy - 0.001, cx + 0.001, cy + 0.001]
    expected = {it["id"] for it in stac_api.enmap if _intersects(it["bbox"], box)}
    got = {it.id for it in search(stac_api.url, "enmap-potsdam", bbox=",".join(map(str, box)), max_items=None)}
    assert stac_api.enmap[7]["id"] in got
    assert got == expected and 0 < len(got) < 18


def test_datetime_interval_and_cql2_filter(stac_api):
    got = [it.id for it in search(stac_api.url, "synthetic", datetime="2023-01-05/2023-01-09", max_items=None)]
    assert sorted(got) == [f"synthetic-{i:03d}" for i in range(4, 9)]
    low = {it.id for it in search(stac_api.url, "synthetic", filter="eo:cloud_cover < 5", max_items=None)}
    assert low == {f"synthetic-{i:03d}" for i in range(5)}
    enmap_day = search(stac_api.url, "enmap-potsdam", datetime="2022-07-24", max_items=None)
    assert len(enmap_day) == 18


def test_paging_over_many_pages(stac_api):
    items = search(stac_api.url, "synthetic", page_size=7, max_items=None)
    ids = [it.id for it in items]
    assert len(ids) == 60 and len(set(ids)) == 60  # 9 pages of 7 followed through `next` links
    with pytest.warns(GeohsiWarning, match=r"more than 25 items match; the first 25 are used: raise --max-items"):
        assert len(search(stac_api.url, "synthetic", page_size=7, max_items=25)) == 25  # the cut had been silent
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeohsiWarning)  # all 60 fit: nothing to say
        assert len(search(stac_api.url, "synthetic", page_size=7, max_items=60)) == 60


def test_cli_json_parses_and_table_prints(stac_api):
    r = run_cli("search", "--url", stac_api.url, "--collection", "synthetic", "--page-size", "7", "--max-items", "25", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 25
    assert r.stderr.count("more than 25 items match") == 1
    assert doc["features"][0]["id"] == "synthetic-000"
    r = run_cli("search", "--url", stac_api.url, "--collection", "enmap-potsdam", "--max-items", "3", env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "enmap_potsdam_tile" in r.stdout and "224" in r.stdout


def test_catalogue_presets_from_config(tmp_path, monkeypatch, stac_api):
    cfg = tmp_path / "catalogs.toml"
    cfg.write_text(f'[catalogs.local]\nurl = "{stac_api.url}"\ncollection = "enmap-potsdam"\n')
    monkeypatch.setenv("GEOHSI_CATALOGS", str(cfg))
    assert resolve_catalog("local") == (stac_api.url, "enmap-potsdam")
    assert "dlr-enmap" in load_catalogs() and load_catalogs()["local"]["source"] == str(cfg)
    assert len(search("local", max_items=None)) == 18


def test_list_catalogs_prints_the_names_url_accepts_without_a_url(tmp_path):
    cfg = tmp_path / "catalogs.toml"
    cfg.write_text('[catalogs.ours]\nurl = "http://127.0.0.1:9/api"\ncollection = "hsi-l2a"\n')
    r = run_cli("search", "--list-catalogs", env={"GEOHSI_CATALOGS": str(cfg)})
    assert r.returncode == 0, r.stderr
    names = [line.split("\t")[0] for line in r.stdout.splitlines()[:-1]]
    assert names == [*PRESETS, "ours"]  # the built-in presets, then the user's entry
    assert "http://127.0.0.1:9/api (collection hsi-l2a)" in r.stdout and str(cfg) in r.stdout
    cfg.write_text("[catalogs.broken]\n")
    assert "has no url" in _one_line_error(run_cli("search", "--list-catalogs", env={"GEOHSI_CATALOGS": str(cfg)}))


# --------------------------------------------------------------------------- ingest


# --------------------------------------------------------------------------- errors through the CLI


def _one_line_error(r) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("geohsi: error:")
    return lines[0]


def test_unreachable_api_fails_fast(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    t0 = time.perf_counter()
    r = run_cli("search", "--url", f"http://127.0.0.1:{port}", "--collection", "x", "--timeout", "3")
    assert time.perf_counter() - t0 < 30
    assert "cannot be reached" in _one_line_error(r)


def test_unknown_collection(stac_api):
    line = _one_line_error(run_cli("search", "--url", stac_api.url, "--collection", "no-such-thing"))
    assert "no-such-thing" in line and "enmap-potsdam" in line


def test_bbox_with_no_items(stac_api):
    line = _one_line_error(run_cli("search", "--url", stac_api.url, "--collection", "enmap-potsdam", "--bbox", "-60,-30,-59,-29"))
    assert "no items" in line and "enmap-potsdam" in line
    with pytest.raises(DataError):
        search(stac_api.url, "enmap-potsdam", bbox=[-60, -30, -59, -29])


def test_a_search_that_hangs_fails_after_the_timeout(stac_api):
    """--timeout bounds every request: pystac-client's Client.open had reset it to none, so a hung
    search waited as long as the server did."""
    from tests.s3_fixtures import FaultProxy

    proxy = FaultProxy(stac_api.url, stall="/search", stall_s=30)
    try:
        t0 = time.perf_counter()
        with pytest.raises(InputFormatError, match=r"cannot be reached .*raise --timeout"):
            search(proxy.endpoint, "enmap-potsdam", timeout=2)
        assert time.perf_counter() - t0 < 15
    finally:
        proxy.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--timeout", "0"), r"--timeout must be a positive number of seconds, got 0"),
        (
            ("--datetime", "2024-13-45"),
            r"--datetime '2024-13-45' is not an RFC 3339 instant or A/B interval \(month must be in 1\.\.12\)",
        ),
        (("--page-size", "0"), r"--page-size must be positive, got 0"),
        # valid instants the wrong way round: had been sent, and the API's refusal blamed on RFC 3339
        (("--datetime", "2023-02-01/2023-01-01"), r"--datetime '2023-02-01/2023-01-01' starts after it ends; give"),
    ],
    ids=["timeout", "datetime", "page-size", "datetime-reversed"],
)
def test_bad_search_options_are_named_before_any_request(args, message):
    """Refused before the API is contacted (the URL goes nowhere): the option is named, not the API."""
    line = _one_line_error(run_cli("search", "--url", "http://127.0.0.1:9", "--collection", "x", *args))
    assert re.search(message, line), line


def test_intersects_must_be_a_geometry_object(tmp_path):
    from geohsi.catalog import load_geometry

    for i, doc in enumerate(([1, 2], {"type": "Polygon"}, "a string")):
        (tmp_path / f"g{i}.json").write_text(json.dumps(doc))
        with pytest.raises(InputFormatError, match="has no GeoJSON geometry"):
            load_geometry(tmp_path / f"g{i}.json")


def test_the_table_shows_a_cloud_cover_the_server_sent_as_text(monkeypatch):
    """A server's ``"eo:cloud_cover": "3.5"`` (a string) is shown as it came, not an unexpected error."""
    import datetime as dt

    import pystac
    from click.testing import CliRunner

    import geohsi.catalog
    from geohsi.cli.main import cli

    items = []
    for i, cc in enumerate(("3.5", 12.25, None)):
        props = {} if cc is None else {"eo:cloud_cover": cc}
        items.append(pystac.Item(f"it{i}", None, None, dt.datetime(2024, 6, 1, tzinfo=dt.UTC), props))
    monkeypatch.setattr(geohsi.catalog, "search", lambda *a, **k: items)
    r = CliRunner().invoke(cli, ["search", "--url", "http://127.0.0.1:9", "-c", "x"])
    assert r.exit_code == 0, r.output
    assert "3.5" in r.output and "12.25" in r.output and "it2" in r.output


def test_a_query_the_api_does_not_declare_is_warned_in_one_line(stac_api):
    """This server has no Query extension: -q came back as every item, with only pystac-client's
    Python warning (file and line) to tell; --filter, which it declares, selects."""
    r = run_cli("search", "--url", stac_api.url, "-c", "synthetic", "-q", "eo:cloud_cover<3", "--max-items", "100", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"geohsi: warning: {stac_api.url} does not declare the STAC query extension, so it may ignore --query and "
        "return every item; check the results, or select with --filter or --bbox/--datetime"
    ]
    every = len(json.loads(r.stdout)["features"])
    r = run_cli("search", "--url", stac_api.url, "-c", "synthetic", "--filter", "eo:cloud_cover < 3", "--json")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    assert 0 < len(json.loads(r.stdout)["features"]) < every
