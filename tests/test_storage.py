"""Object storage: every input and output as an ``s3://`` URL, against a real S3 API server (moto).

The round trip is the user's: real EnMAP tiles uploaded as GeoTIFFs, then ingest → train → classify →
evaluate through the CLI with every path a URL; the map must equal the map of the same bundle and
scene from local files, nothing may land in a local ``s3:`` folder, and the secret key may appear in
no object and no log.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.s3_fixtures import KEY_ID, SECRET, Bucket, FaultProxy, all_objects, s3_env

# ------------------------------------------------------------------------------------------------ units


def test_urls_are_recognised_and_shown_without_secrets() -> None:
    from geohsi.storage import display, is_url, join, name

    assert is_url("s3://b/k.tif") and is_url("gs://b/k") and is_url("az://c/k") and is_url("https://h/x.tif")
    assert not is_url("scene.zarr") and not is_url("/data/s3:/x") and not is_url(Path("s3://b/k"))
    shown = display("https://user:pa55@host.example/a/b.tif?X-Amz-Signature=abc&X-Amz-Credential=k")
    assert shown == "https://host.example/a/b.tif"
    assert join("s3://b/scene.zarr/", "data", "zarr.json") == "s3://b/scene.zarr/data/zarr.json"
    assert name("s3://b/maps/m.tif") == "m.tif"


def test_secrets_in_urls_never_reach_a_message() -> None:
    """A signed URL without a path, a quoted URL inside an HTTP error or a GDAL path: all shown without secrets."""
    from geohsi.storage import display, redact

    assert display("https://host.example?sig=AZSECRET") == "https://host.example"
    quoted = "ClientResponseError: 403, message='Forbidden', url='http://127.0.0.1:9/l.txt?X-Amz-Signature=SIGSECRET&X-Amz-Security-Token=TOK'"
    assert redact(quoted) == "ClientResponseError: 403, message='Forbidden', url='http://127.0.0.1:9/l.txt'"
    gdal = "'/vsicurl/https://h.example/x.tif?se=2026&sig=AZSECRET' not recognized as a supported file format"
    assert "SECRET" not in redact(gdal) and "/vsicurl/https://h.example/x.tif" in redact(gdal)
    assert redact("cannot read s3://b/m.tif: AWSAccessKeyId=AKIA1 denied") == "cannot read s3://b/m.tif: AWSAccessKeyId=… denied"
    assert redact("--expected-ua names class 'turkey'; monkey=3") == "--expected-ua names class 'turkey'; monkey=3"


@pytest.mark.parametrize(
    "args",
    [
        ("ingest", "s3://AKX:SEKRIT@bkt/images/t0.tif", "--out", "ui.zarr"),
        ("ingest", "t0.tif", "--out", "s3://AKX:SEKRIT@bkt/ui.zarr"),
        ("classify", "gs://AKX:SEKRIT@bkt/scene.zarr", "--bundle", "b", "--out", "m.tif"),
        ("bundle", "stac", "s3://AKX:SEKRIT@bkt/bundles/b1"),
    ],
)
def test_credentials_in_an_object_store_url_are_refused_unshown(args: tuple[str, ...], tmp_path: Path) -> None:
    """``s3://KEY:SECRET@bucket/…`` had reached botocore, whose ``Invalid bucket name "KEY:SECRET@bucket"`` came
    out as an unexpected error (exit 70) with the secret in it."""
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2 and "SEKRIT" not in r.stdout + r.stderr and "AKX" not in r.stdout + r.stderr
    assert (
        r.stderr.strip().count("\n") == 0 and "credentials in the URL" in r.stderr and "set them in the environment (" in r.stderr
    )


def test_the_library_refuses_credentials_in_an_object_store_url_but_not_in_http() -> None:
    from geohsi.errors import UsageError
    from geohsi.storage import check_no_credentials, filesystem, gdal_path

    for call in (filesystem, gdal_path):
        with pytest.raises(UsageError, match=r"^s3://bkt/k\.tif was given with credentials") as e:
            call("s3://AKX:SEKRIT@bkt/k.tif")
        assert "SEKRIT" not in str(e.value)
    assert check_no_credentials("https://user:pw@host.example/x.tif") == "https://user:pw@host.example/x.tif"
    assert check_no_credentials("s3://bkt/a@b.tif") == "s3://bkt/a@b.tif"  # an @ in the key is no user info


def test_a_public_bucket_is_read_unsigned_when_gdal_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_NO_SIGN_REQUEST=YES (GDAL's and the AWS CLI's switch) makes fsspec's S3 reads anonymous too."""
    import s3fs

    from geohsi.storage import filesystem

    s3fs.S3FileSystem.clear_instance_cache()
    monkeypatch.delenv("AWS_NO_SIGN_REQUEST", raising=False)
    assert not filesystem("s3://b/k.tif")[0].anon
    monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "YES")
    assert filesystem("s3://b/k.tif")[0].anon
    s3fs.S3FileSystem.clear_instance_cache()


def test_the_cli_keeps_urls_as_urls() -> None:
    from geohsi.cli.paths import PATH_OR_URL

    assert PATH_OR_URL.convert("s3://bucket/scene.zarr", None, None) == "s3://bucket/scene.zarr"
    assert PATH_OR_URL.convert("maps/m.tif", None, None) == Path("maps/m.tif")


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from geohsi.errors import UsageError
    from geohsi.storage import filesystem

    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if gcsfs were not installed
    import fsspec

    monkeypatch.setattr(fsspec.core, "url_to_fs", lambda url, **kw: (_ for _ in ()).throw(ImportError("gcsfs")))
    with pytest.raises(UsageError, match=r"gs://b/k needs the gcsfs package; install it with pip install 'geohsi\[gcs\]'"):
        filesystem("gs://b/k")


# ----------------------------------------------------------------------------------------- with a server


def _upload_tiles(data_dir: Path, bucket: Bucket, n: int = 2) -> list[tuple[str, str]]:
    """The first ``n`` EnMAP tiles and their label tiles, uploaded as they come: (image URL, label URL)."""
    images = sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))[:n]
    out = []
    for img in images:
        lab = data_dir / "enmap_potsdam" / "labels" / img.name
        bucket.fs.put_file(str(img), f"{bucket.url}/images/{img.name}".removeprefix("s3://"))
        bucket.fs.put_file(str(lab), f"{bucket.url}/labels/{img.name}".removeprefix("s3://"))
        out.append((bucket.key("images", img.name), bucket.key("labels", img.name)))
    return out


def _no_secret(bucket: Bucket, *texts: str) -> None:
    for key, blob in all_objects(bucket).items():
        assert SECRET.encode() not in blob, f"the secret key is in {key}"
    for t in texts:
        assert SECRET not in t


TRAIN = ("--adapter", "krona+", "--model", "tiny", "--epochs", "2", "--split", "fraction:0.2", "--device", "cpu", "--quiet")


def test_ingest_train_classify_evaluate_with_every_path_a_url(s3: Bucket, data_dir: Path, tmp_path: Path) -> None:
    import rasterio

    (image, labels), *_ = _upload_tiles(data_dir, s3, 1)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    scene, bundle, cog, metrics = (s3.key("scene.zarr"), s3.key("bundles", "b1"), s3.key("maps", "m.tif"), s3.key("metrics.json"))
    logs = []
    for args in (
        ("ingest", image, "--labels", labels, "--out", scene),
        ("train", scene, *TRAIN, "--out", bundle),
        ("classify", scene, "--bundle", bundle, "--out", cog, "--confidence", "--workers", "1", "--no-progress"),
        ("evaluate", bundle, scene, "--out", metrics),
    ):
        r = run_cli(*args, cwd=cwd)
        assert r.returncode == 0, f"{args[0]}: {r.stderr[-2000:]}"
        logs += [r.stdout, r.stderr]
    assert not list(cwd.iterdir()), f"a URL became a local path: {list(cwd.iterdir())}"
    keys = set(all_objects(s3))
    root = s3.url.removeprefix("s3://")
    for k in (
        "scene.zarr/.geohsi-complete",
        "bundles/b1/.geohsi-complete",
        "bundles/b1/bundle.json",
        "maps/m.tif",
        "maps/m.confidence.tif",
        "maps/m.png",
        "metrics.json",
        "metrics.csv",
        "metrics.png",
    ):
        assert f"{root}/{k}" in keys, f"{k} missing from the bucket"
    # the scene store opens with one metadata object (consolidated)
    meta = json.loads(s3.fs.cat_file(f"{root}/scene.zarr/zarr.json"))
    assert "consolidated_metadata" in meta and meta["consolidated_metadata"]["metadata"]
    # the same bundle and scene from local copies give the same map
    local = tmp_path / "local"
    s3.fs.get(f"{root}/scene.zarr/", str(local / "scene.zarr"), recursive=True)
    s3.fs.get(f"{root}/bundles/b1/", str(local / "b1"), recursive=True)
    r = run_cli(
        "classify", local / "scene.zarr", "--bundle", local / "b1", "--out", local / "m.tif", "--workers", "1", "--no-progress"
    )
    assert r.returncode == 0, r.stderr
    s3.fs.get_file(f"{root}/maps/m.tif", str(tmp_path / "from_bucket.tif"))
    with rasterio.open(tmp_path / "from_bucket.tif") as a, rasterio.open(local / "m.tif") as b:
        assert a.crs == b.crs and a.transform == b.transform
        np.testing.assert_array_equal(a.read(1), b.read(1))
        assert a.profile["tiled"] and a.overviews(1) is not None
    report = json.loads(s3.fs.cat_file(f"{root}/metrics.json"))
    assert 0.0 <= report["overall_accuracy"] <= 1.0
    # what records and messages name is the URL given, not a local path made of it or a cache/staging copy
    assert json.loads(s3.fs.cat_file(f"{root}/bundles/b1/bundle.json"))["train_config"]["scene"] == scene  # had been ./s3:/…
    assert json.loads(s3.fs.cat_file(f"{root}/scene.zarr/labels/zarr.json"))["attributes"]["source"] == labels  # the cache copy
    assert f"→ bundle {bundle}" in logs[2] + logs[3] and "staging" not in "".join(logs)
    _no_secret(s3, *logs)


def test_a_geotiff_url_is_read_in_place_and_equals_the_file(s3: Bucket, data_dir: Path) -> None:
    from geohsi.ingestion import open_source

    (image, _), *_ = _upload_tiles(data_dir, s3, 1)
    remote = open_source(image)
    local = open_source(data_dir / "enmap_potsdam" / "images" / image.rsplit("/", 1)[1])
    np.testing.assert_array_equal(remote["reflectance"].values, local["reflectance"].values)
    np.testing.assert_allclose(remote["wavelength"].values, local["wavelength"].values)
    assert remote.encoding["source"] == image


def test_outputs_exist_only_when_complete_and_are_never_replaced_silently(s3: Bucket, ip_scene: Path, tmp_path: Path) -> None:
    bundle = s3.key("b")
    r = run_cli("train", ip_scene, *TRAIN, "--out", bundle)
    assert r.returncode == 0, r.stderr
    again = run_cli("train", ip_scene, *TRAIN, "--out", bundle)
    assert again.returncode == 8 and again.stderr.strip().count("\n") == 0
    assert "already exists; pass --overwrite" in again.stderr
    # an upload that stopped half-way (no marker) is refused by every reader, in one line
    root = s3.url.removeprefix("s3://")
    s3.fs.rm_file(f"{root}/b/.geohsi-complete")
    r = run_cli("classify", ip_scene, "--bundle", bundle, "--out", tmp_path / "m.zarr", "--workers", "1")
    assert r.returncode == 3 and "is incomplete (no .geohsi-complete marker" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing bucket", "bucket 'no-such-bucket-x' does not exist"),
        ("unreachable endpoint", "check the endpoint (AWS_ENDPOINT_URL"),
        ("http output", "http(s) URLs are read-only"),
        ("wrong credentials", "access denied; check the credentials in the environment"),
    ],
)
def test_store_errors_are_one_line(s3: Bucket, s3_server, ip_scene: Path, case: str, expected: str) -> None:
    env = dict(os.environ)
    out = s3.key("metrics.json")
    proxy = FaultProxy(s3_server.endpoint, deny_key=KEY_ID)  # the tests' key id is unknown behind this proxy
    try:
        if case == "missing bucket":
            out = "s3://no-such-bucket-x/metrics.json"
        elif case == "unreachable endpoint":
            env.update(s3_env("http://127.0.0.1:9"))  # the discard port: nothing listens
        elif case == "http output":
            out = "https://example.org/metrics.json"
        elif case == "wrong credentials":
            env.update(s3_env(proxy.endpoint))
        r = run_cli("baseline", ip_scene, "--split", "per-class:5", "--out", out, env=env)
    finally:
        proxy.close()
    assert r.returncode != 0
    assert expected in r.stderr, r.stderr
    assert SECRET not in r.stderr and KEY_ID not in r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0


# ------------------------------------------------------------------------------ a cluster with no shared disk


def _bucket_bundle(s3: Bucket, data_dir: Path, tiles: list[tuple[str, str]]) -> str:
    """A tiny dense bundle trained on the first tile, read from the bucket and written into it."""
    bundle = s3.key("bundles", "enmap")
    image, labels = tiles[0]
    r = run_cli("train", image, "--labels", labels, *TRAIN, "--out", bundle)
    assert r.returncode == 0, r.stderr[-2000:]
    return bundle


def test_a_batch_on_a_cluster_without_a_shared_disk_maps_from_and_into_the_bucket(
    s3: Bucket, data_dir: Path, tmp_path: Path
) -> None:
    import pystac.validation
    import rasterio

    from tests.classification.test_cluster import RealCluster

    tiles = _upload_tiles(data_dir, s3, 2)
    bundle = _bucket_bundle(s3, data_dir, tiles)
    cluster = RealCluster(tmp_path / "cluster", 2, private=True)
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    try:
        r = run_cli(
            "classify", s3.key("images", "*.tif"), "--bundle", bundle, "--out-dir", s3.key("maps"),
            "--scheduler", cluster.address, "--no-progress", cwd=client_dir,
        )  # fmt: skip
    finally:
        cluster.close()
    assert r.returncode == 0, r.stderr[-3000:]
    assert not list(client_dir.iterdir()), "the client wrote into its working directory"
    root = s3.url.removeprefix("s3://")
    keys = set(all_objects(s3))
    names = [img.rsplit("/", 1)[1].removesuffix(".tif") for img, _ in tiles]
    for n in names:
        assert {f"{root}/maps/{n}.tif", f"{root}/maps/{n}.json", f"{root}/maps/{n}.png"} <= keys
    assert not [k for k in keys if ".parts.zarr" in k], "parts stores were left in the bucket"
    # the workers fetched the bundle from the bucket into their own caches, not from a client path
    fetched = list((tmp_path / "cluster").glob("w*/cache/inputs/*/enmap/bundle.json"))
    assert fetched, "no worker downloaded the bundle: the graph carried a client path"
    # the catalogue is in the bucket, valid, with absolute hrefs
    assert f"{root}/maps/catalog.json" in keys, r.stdout + r.stderr
    catalog = json.loads(s3.fs.cat_file(f"{root}/maps/catalog.json"))
    hrefs = [ln["href"] for ln in catalog["links"]]
    assert all(h.startswith(s3.key("maps")) for h in hrefs), hrefs
    pystac.validation.validate_dict(catalog, extensions=[])  # the core schema, offline (from_dict would follow s3://)
    item = json.loads(s3.fs.cat_file(f"{root}/maps/{names[0]}.json"))
    assert item["assets"]["map"]["href"] == s3.key("maps", f"{names[0]}.tif")
    assert item["assets"]["overview"]["href"] == s3.key("maps", f"{names[0]}.png")
    pystac.validation.validate_dict(item, extensions=[])
    # each map equals the map of the local file with the same bundle
    local_bundle = tmp_path / "enmap"
    s3.fs.get(f"{root}/bundles/enmap/", str(local_bundle), recursive=True)
    for img, _ in tiles[:1]:
        name = img.rsplit("/", 1)[1]
        r = run_cli("classify", data_dir / "enmap_potsdam" / "images" / name, "--bundle", local_bundle,
                    "--out", tmp_path / name, "--workers", "1", "--no-progress")  # fmt: skip
        assert r.returncode == 0, r.stderr
        s3.fs.get_file(f"{root}/maps/{name}", str(tmp_path / f"bucket-{name}"))
        with rasterio.open(tmp_path / name) as a, rasterio.open(tmp_path / f"bucket-{name}") as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
    _no_secret(s3, r.stdout, r.stderr)


# ----------------------------------------------------------------------------------------------- faults


def test_a_store_that_fails_one_request_in_five_gives_identical_maps(
    s3: Bucket, s3_server, data_dir: Path, tmp_path: Path
) -> None:
    import rasterio

    (image, labels), *_ = _upload_tiles(data_dir, s3, 1)
    scene, bundle = s3.key("scene.zarr"), s3.key("b")
    for args in (("ingest", image, "--labels", labels, "--out", scene), ("train", scene, *TRAIN, "--out", bundle)):
        r = run_cli(*args)
        assert r.returncode == 0, r.stderr[-2000:]
    direct = run_cli("classify", scene, "--bundle", bundle, "--out", tmp_path / "direct.tif", "--workers", "1", "--no-progress")
    assert direct.returncode == 0, direct.stderr
    proxy = FaultProxy(s3_server.endpoint, every=5)
    try:
        flaky = {"AWS_ENDPOINT_URL": proxy.endpoint}
        for src, out in ((scene, s3.key("maps", "z.tif")), (image, s3.key("maps", "g.tif"))):  # fsspec and GDAL reads
            r = run_cli("classify", src, "--bundle", bundle, "--out", out, "--workers", "1", "--no-progress", env=flaky)
            assert r.returncode == 0, r.stderr[-2000:]
    finally:
        proxy.close()
    assert proxy.failed >= 5, f"the proxy failed only {proxy.failed} of {proxy.count} requests"
    root = s3.url.removeprefix("s3://")
    with rasterio.open(tmp_path / "direct.tif") as d:
        want = d.read(1)
    for name in ("z.tif", "g.tif"):
        s3.fs.get_file(f"{root}/maps/{name}", str(tmp_path / name))
        with rasterio.open(tmp_path / name) as m:
            np.testing.assert_array_equal(m.read(1), want)


# -------------------------------------------------------------------------------------------- https reads


@pytest.fixture
def http_files(data_dir: Path):
    """A loopback HTTP server with range requests (what GDAL's /vsicurl/ needs) over the EnMAP images."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Ranges(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def send_head(self):  # noqa: ANN202 - http.server's own signature
            rng = self.headers.get("Range")
            path = Path(self.translate_path(self.path))
            if not rng or not path.is_file():
                return super().send_head()
            size = path.stat().st_size
            start, _, end = rng.removeprefix("bytes=").partition("-")
            start, end = int(start), min(int(end) if end else size - 1, size - 1)
            f = open(path, "rb")  # noqa: SIM115 - http.server copies it to the socket and closes it
            f.seek(start)
            self.send_response(206)
            self.send_header("Content-Type", "image/tiff")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            return _Limited(f, end - start + 1)

    class _Limited:
        def __init__(self, f, n: int) -> None:
            self.f, self.n = f, n

        def read(self, k: int = -1) -> bytes:
            k = self.n if k < 0 else min(k, self.n)
            data = self.f.read(k)
            self.n -= len(data)
            return data

        def close(self) -> None:
            self.f.close()

    root = data_dir / "enmap_potsdam" / "images"
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Ranges, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_a_refused_signed_url_is_one_line_without_its_signature(tmp_path: Path) -> None:
    """An HTTP 403 (an expired signed URL) through fsspec: one line, no query string (aiohttp's own
    error text quotes the whole URL)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.conftest import run_cli

    class Denied(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Denied)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        signed = (f"http://127.0.0.1:{server.server_address[1]}/lists/scenes.txt"
                  "?X-Amz-Credential=AKIAX&X-Amz-Security-Token=TOKSECRET&X-Amz-Signature=SIGSECRET")  # fmt: skip
        r = run_cli("classify", "--from-list", signed, "--out-dir", tmp_path / "maps")
    finally:
        server.shutdown()
        server.server_close()
    err = r.stderr.strip()
    assert r.returncode != 0 and err.count("\n") == 0 and err.startswith("geohsi: error:"), err
    assert "SECRET" not in err and "AKIAX" not in err and "lists/scenes.txt" in err, err


def test_a_cog_over_http_is_read_in_place_and_ingests(http_files, tmp_path: Path) -> None:
    from geohsi.ingestion import open_source

    base, root = http_files
    name = sorted(p.name for p in root.glob("*.tif"))[0]
    remote = open_source(f"{base}/{name}")
    local = open_source(root / name)
    np.testing.assert_array_equal(remote["reflectance"].values, local["reflectance"].values)
    assert remote.rio.crs == local.rio.crs
    r = run_cli("ingest", f"{base}/{name}", "--out", tmp_path / "s.zarr")
    assert r.returncode == 0, r.stderr
    out = run_cli("ingest", f"{base}/{name}", "--out", f"{base}/s.zarr")
    assert out.returncode == 2 and "http(s) URLs are read-only" in out.stderr


def test_a_signed_url_is_one_scene_and_its_token_is_recorded_nowhere(http_files) -> None:
    """``?`` in a signed or SAS URL starts its query: the URL is a scene, not a pattern (it had been
    globbed into ``http://http://…`` and reported missing), and no name or record keeps the token."""
    from geohsi.classification.batch import _source_text
    from geohsi.ingestion import open_source
    from geohsi.io.sources import expand_scenes, scene_name

    base, root = http_files
    name = sorted(p.name for p in root.glob("*.tif"))[0]
    signed = f"{base}/{name}?X-Amz-Signature=SECRET123&token=SECRET456"
    assert expand_scenes([signed]) == [signed]
    ds = open_source(signed)
    np.testing.assert_array_equal(ds["reflectance"].values, open_source(root / name)["reflectance"].values)
    for recorded in (_source_text(signed), scene_name(signed), *ds.attrs["source_files"], ds.encoding.get("source", "")):
        assert "SECRET" not in recorded, recorded
    assert _source_text(signed) == f"{base}/{name}" and scene_name(signed) == Path(name).stem


def test_evaluate_on_a_signed_url_prints_no_token(http_files, data_dir: Path, tmp_path: Path) -> None:
    """The metrics table's title had quoted the scene argument whole, signature and credential included."""
    base, root = http_files
    image = sorted(root.glob("*.tif"))[0]
    labels = data_dir / "enmap_potsdam" / "labels" / image.name
    r = run_cli("train", image, "--labels", labels, *TRAIN, "--out", tmp_path / "b")
    assert r.returncode == 0, r.stderr[-2000:]
    signed = f"{base}/{image.name}?X-Amz-Credential=AKIASECRET&X-Amz-Signature=SECRET123"
    r = run_cli("evaluate", tmp_path / "b", signed, "--labels", labels, "--out", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{base}/{image.name}" in r.stdout and "OA" in r.stdout
    assert "SECRET" not in r.stdout + r.stderr + (tmp_path / "m.json").read_text()


def test_names_with_pattern_characters_touch_only_their_own_objects(s3: Bucket, tmp_path: Path) -> None:
    """fsspec reads '[2]' as a pattern that also matches '2': replacing, removing and downloading
    'scene [2].zarr' must leave 'scene 2.zarr' alone and take every object of its own."""
    from geohsi.storage import COMPLETE, local_copy, put, remove_tree

    store = tmp_path / "store.zarr"
    (store / "c").mkdir(parents=True)
    (store / "zarr.json").write_text("{}")
    (store / "c" / "0").write_bytes(b"chunk")
    other, mine = f"{s3.url}/maps/scene 2.zarr", f"{s3.url}/maps/scene [2].zarr"
    put(store, other, overwrite=False)
    put(store, mine, overwrite=False)
    put(store, mine, overwrite=True)  # replaced: its marker first, its objects, then the new ones
    objects = all_objects(s3)
    root = s3.url.removeprefix("s3://")
    for url in (other, mine):
        key = url.removeprefix("s3://")
        assert {f"{key}/zarr.json", f"{key}/c/0", f"{key}/{COMPLETE}"} <= set(objects), (url, sorted(objects))
    copy = local_copy(mine, "map")
    assert (copy / "c" / "0").read_bytes() == b"chunk" and (copy / "zarr.json").exists()
    remove_tree(mine)
    left = set(all_objects(s3))
    assert not any("[2]" in k for k in left) and f"{root}/maps/scene 2.zarr/c/0" in left


def test_files_beside_a_url_output_are_not_replaced_without_overwrite(s3: Bucket, tmp_path: Path) -> None:
    """staged(): the command writes report.png beside report.json; an existing report.png in the
    bucket refuses the upload (before anything is uploaded), as a local one would."""
    from geohsi.errors import OutputError
    from geohsi.storage import staged

    s3.fs.pipe_file(f"{s3.url.removeprefix('s3://')}/eval/report.png", b"PRECIOUS")
    out = f"{s3.url}/eval/report.json"
    with (
        pytest.raises(OutputError, match=r"report.png already exists; pass --overwrite"),
        staged({"out": out}, overwrite=False) as where,
    ):
        where["out"].write_text("{}")
        where["out"].with_name("report.png").write_bytes(b"NEW")
    objects = all_objects(s3)
    assert objects[f"{s3.url.removeprefix('s3://')}/eval/report.png"] == b"PRECIOUS"
    assert not any(k.endswith("report.json") for k in objects)


def test_an_output_written_after_the_first_check_is_not_replaced(s3: Bucket, tmp_path: Path) -> None:
    """The first check lists the bucket; another writer then creates the output: the upload refuses it
    (no cached listing answers for the store)."""
    from geohsi.errors import OutputError
    from geohsi.files import atomic_output

    url = f"{s3.url}/out.json"
    with pytest.raises(OutputError, match="already exists"), atomic_output(url) as tmp:
        s3.fs.pipe_file(url.removeprefix("s3://"), b"THEIRS")  # another run, meanwhile
        tmp.write_text("ours")
    assert all_objects(s3)[url.removeprefix("s3://")] == b"THEIRS"


def test_no_command_turns_a_url_into_a_local_path(s3: Bucket, ip_scene: Path, tmp_path: Path) -> None:
    """Every command given URL outputs writes them to the bucket, or refuses in one line; no local 's3:' folder."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    bundle = s3.key("ip-bundle")
    runs = [
        (0, ("train", ip_scene, *TRAIN, "--out", bundle)),
        (0, ("datasets", "ingest", "indian_pines", "--out", s3.key("ip.zarr"))),
        (0, ("bundle", "stac", bundle, "--out", s3.key("ip-bundle.item.json"))),
        (0, ("baseline", ip_scene, "--split", "per-class:5", "--out", s3.key("svm.json"))),
        (
            0,
            (
                "pretrain",
                ip_scene,
                "--model",
                "tiny",
                "--steps",
                "1",
                "--batch-size",
                "8",
                "--device",
                "cpu",
                "--out",
                s3.key("pre.safetensors"),
            ),
        ),  # fmt: skip
        (0, ("info", bundle)),
        (0, ("info", s3.key("ip.zarr"))),
        (2, ("sample", s3.key("m.tif"), "--n", "10", "--out", s3.key("p.gpkg"))),
        (2, ("assess", s3.key("m.tif"), "--reference", s3.key("p.gpkg"), "--out", s3.key("r.json"))),
    ]
    for code, args in runs:
        r = run_cli(*args, cwd=cwd)
        assert r.returncode == code, f"{args[:2]}: {r.stderr[-1500:]}"
        if code:
            assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert not [p for p in cwd.rglob("*")], f"local files appeared: {list(cwd.rglob('*'))}"
    root = s3.url.removeprefix("s3://")
    keys = set(all_objects(s3))
    for k in ("ip.zarr/.geohsi-complete", "ip-bundle.item.json", "svm.json", "svm.csv", "pre.safetensors", "pre.json"):
        assert f"{root}/{k}" in keys, f"{k} is not in the bucket"
    item = json.loads(s3.fs.cat(f"{root}/ip-bundle.item.json"))  # the bundle's files where they are: the bucket
    assert {a["href"] for a in item["assets"].values()} >= {f"{bundle}/bundle.json", f"{bundle}/adapter/adapter.safetensors"}


@pytest.mark.slow
def test_a_store_that_dies_mid_batch_fails_in_one_line_and_a_rerun_completes(
    s3: Bucket, s3_server, data_dir: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys
    import time

    tiles = _upload_tiles(data_dir, s3, 8)
    bundle = _bucket_bundle(s3, data_dir, tiles)
    root = s3.url.removeprefix("s3://")
    proxy = FaultProxy(s3_server.endpoint)
    port = proxy.server.server_address[1]
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint, "AWS_MAX_ATTEMPTS": "2"}
    args = ["classify", s3.key("images", "*.tif"), "--bundle", bundle, "--out-dir", s3.key("maps"),
            "--workers", "1", "--scenes-in-flight", "1", "--no-progress"]  # fmt: skip
    p = subprocess.Popen([sys.executable, "-m", "geohsi.cli.main", *args], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not s3.fs.exists(f"{root}/maps/{tiles[0][0].rsplit('/', 1)[1].removesuffix('.tif')}.json"):
            s3.fs.invalidate_cache()
            assert time.monotonic() < deadline and p.poll() is None, "the first map never appeared"
            time.sleep(0.2)
        proxy.close()  # the store goes away mid-batch
        out, err = p.communicate(timeout=600)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 10, out + err  # BatchError: scenes failed
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("geohsi: error:"), err
    assert "the catalogue and summary could not be written" in out + err
    assert re.search(r"\d+ done, \d+ failed in ", err), err  # the summary, shown though it could not be stored
    assert SECRET not in out + err
    s3.fs.invalidate_cache()
    # a scene is complete when its item is there (written last): the store may have died between a map and its item
    found = set(s3.fs.find(f"{root}/maps"))
    done_before = {k for k in found if k.endswith(".tif") and k.removesuffix(".tif") + ".json" in found}
    assert 1 <= len(done_before) < 8
    proxy = FaultProxy(s3_server.endpoint, port=port)  # the store is back
    try:
        r = run_cli(*args, env=env)
    finally:
        proxy.close()
    assert r.returncode == 0, r.stderr[-2000:]
    s3.fs.invalidate_cache()
    assert s3.fs.exists(f"{root}/maps/summary.json"), (err[-1500:], r.stdout[-3000:])
    summary = json.loads(s3.fs.cat_file(f"{root}/maps/summary.json"))
    statuses = [sc["status"] for sc in summary["scenes"]]
    assert statuses.count("skipped") == len(done_before) and statuses.count("done") == 8 - len(done_before), statuses


@pytest.mark.slow
def test_the_18_tiles_as_cogs_map_from_the_bucket_into_the_bucket_like_from_disk(
    s3: Bucket, data_dir: Path, tmp_path: Path
) -> None:
    import pystac.validation
    import rasterio
    import rasterio.shutil

    images = sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))
    assert len(images) == 18
    cogs = tmp_path / "cogs"
    cogs.mkdir()
    for img in images:  # as a user would publish them: Cloud-Optimized GeoTIFFs
        rasterio.shutil.copy(img, cogs / img.name, driver="COG", COMPRESS="DEFLATE")
        s3.fs.put_file(str(cogs / img.name), f"{s3.url.removeprefix('s3://')}/cogs/{img.name}")
    bundle = tmp_path / "bundle"
    r = run_cli("train", *images[:6], "--labels", str(data_dir / "enmap_potsdam" / "labels" / "*.tif"), *TRAIN, "--out", bundle)
    assert r.returncode == 0, r.stderr[-2000:]
    local = run_cli("classify", *cogs.glob("*.tif"), "--bundle", bundle, "--out-dir", tmp_path / "maps", "--no-progress")
    assert local.returncode == 0, local.stderr[-2000:]
    remote = run_cli("classify", s3.key("cogs", "*.tif"), "--bundle", bundle, "--out-dir", s3.key("maps"), "--no-progress")
    assert remote.returncode == 0, remote.stderr[-2000:]
    root = s3.url.removeprefix("s3://")
    catalog = json.loads(s3.fs.cat_file(f"{root}/maps/catalog.json"))
    pystac.validation.validate_dict(catalog, extensions=[])
    items = [ln["href"] for ln in catalog["links"] if ln["rel"] == "item"]
    assert len(items) == 18 and all(h.startswith(s3.key("maps") + "/") for h in items)
    for img in images:
        s3.fs.get_file(f"{root}/maps/{img.name}", str(tmp_path / f"bucket-{img.name}"))
        with rasterio.open(tmp_path / "maps" / img.name) as a, rasterio.open(tmp_path / f"bucket-{img.name}") as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
            assert a.crs == b.crs and a.transform == b.transform
    _no_secret(s3, remote.stdout, remote.stderr)


def test_azures_container_at_account_form_is_no_credential() -> None:
    """``abfs://container@account.dfs.core.windows.net/…`` is Azure's documented form; it had been refused as
    credentials, and shown without its container."""
    from geohsi.errors import UsageError
    from geohsi.storage import check_no_credentials, display

    url = "abfs://container@account.dfs.core.windows.net/x/scene.zarr"
    assert check_no_credentials(url) == url and display(url) == url
    with pytest.raises(UsageError, match=r"^abfs://acct/x was given with credentials .*AZURE_STORAGE_ACCOUNT_KEY"):
        check_no_credentials("abfs://KEY:SECRET@acct/x")
    with pytest.raises(UsageError, match="GOOGLE_APPLICATION_CREDENTIALS for gs://"):
        check_no_credentials("gs://KEY@bucket/x")


def test_info_of_a_map_in_a_bucket(s3: Bucket, tmp_path: Path) -> None:
    """It had fallen through to the scene reader: "scene store … is incomplete; write it again with --overwrite"."""
    from tests.assessment.conftest import write_class_tif

    ids = np.repeat(np.arange(1, 5), 2500).reshape(100, 100).astype("uint8")
    write_class_tif(tmp_path / "m.tif", ids, ("a", "b", "c", "d"))
    s3.fs.put_file(str(tmp_path / "m.tif"), f"{s3.url.removeprefix('s3://')}/maps/m.tif")
    r = run_cli("info", s3.key("maps", "m.tif"), "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["path"] == s3.key("maps", "m.tif") and [c["pixels"] for c in got["classes"]] == [2500] * 4
    import rasterio

    with rasterio.open(tmp_path / "img.tif", "w", driver="GTiff", width=8, height=8, count=3, dtype="int16",
                       crs="EPSG:32633", transform=rasterio.Affine(30, 0, 0, 0, -30, 0)) as dst:  # fmt: skip
        dst.write(np.ones((3, 8, 8), "int16"))
    s3.fs.put_file(str(tmp_path / "img.tif"), f"{s3.url.removeprefix('s3://')}/img/t.tif")
    r = run_cli("info", s3.key("img", "t.tif"))  # an image, not a map: said without downloading it
    assert r.returncode == 3 and f"{s3.key('img', 't.tif')} is an image, not a scene store; create a scene with" in r.stderr
    r = run_cli("info", s3.key("img", "gone.tif"))
    assert r.returncode == 3 and "gone.tif does not exist; check the URL" in r.stderr


def test_an_existing_out_is_refused_before_a_url_source_is_downloaded(s3: Bucket, data_dir: Path, tmp_path: Path) -> None:
    """The output checks had moved after the sources' download (a whole .mat fetched, then 'already exists')."""
    root = s3.url.removeprefix("s3://")
    s3.fs.put_file(str(data_dir / "indian_pines" / "Indian_pines_corrected.mat"), f"{root}/in/ip.mat")
    (tmp_path / "exists.zarr").mkdir()
    cache = tmp_path / "cache"
    r = run_cli("ingest", s3.key("in", "ip.mat"), "--crs", "none", "--out", tmp_path / "exists.zarr",
                env={"GEOHSI_CACHE_DIR": str(cache)})  # fmt: skip
    assert r.returncode == 8 and "already exists" in r.stderr
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_a_train_config_in_a_bucket_is_read_from_it(s3: Bucket, tmp_path: Path) -> None:
    """--config takes PATH|URL, but an s3:// config had been read as the local path "s3:/bucket/…" (does not exist)."""
    from geohsi.errors import UsageError
    from geohsi.training.config import resolve_train_config

    root = s3.url.removeprefix("s3://")
    s3.fs.pipe(f"{root}/recipes/tiny.yaml", b"train:\n  split: blocks:16\n  epochs: 3\n  adapter: lokr\n")
    config = resolve_train_config(s3.key("recipes/tiny.yaml"), epochs=2)
    assert (config.split, config.epochs, config.adapter) == ("blocks:16", 2, "lokr")
    with pytest.raises(UsageError, match=rf"config file {s3.url}/recipes/gone\.yaml does not exist"):
        resolve_train_config(s3.key("recipes/gone.yaml"))
