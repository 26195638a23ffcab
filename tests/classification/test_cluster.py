"""Real clusters: a ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 driven by the CLI,
a worker killed mid-run, an interrupted run resumed, and the bad-input failures of the CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio

from tests.classification.conftest import reference_labels, reference_probabilities
from tests.conftest import run_cli

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(cond, timeout: float, what: str) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RealCluster:
    """A scheduler and N single-thread workers, each its own OS process (no nanny, so a kill is final).

    ``extra`` is added to every ``dask worker`` command line (e.g. ``--resources GPU=1``), ``env`` to
    the processes' environment. ``private`` gives each worker its own empty working directory,
    ``HOME``, ``TMPDIR`` and geohsi cache (``tmp/w<k>``): a cluster that shares no disk with the client."""

    def __init__(
        self, tmp: Path, n_workers: int = 2, *, extra: list[str] = (), env: dict[str, str] | None = None, private: bool = False
    ) -> None:
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.log = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, DASK_LOGGING__DISTRIBUTED="warning", **(env or {}))
        self.scheduler = subprocess.Popen(
            [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=open(tmp / "scheduler.log", "w"),  # noqa: SIM115 - the process owns its log file
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.workers = [
            subprocess.Popen(
                [
                    BIN / "dask",
                    "worker",
                    self.address,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--name",
                    f"w{k}",
                    "--memory-limit",
                    "2GB",
                    *extra,
                ],
                stdout=open(tmp / f"worker{k}.log", "w"),  # noqa: SIM115 - the process owns its log file
                stderr=subprocess.STDOUT,
                env=dict(env, **self.private_env(k)) if private else env,
                cwd=self.home(k) if private else None,
            )
            for k in range(n_workers)
        ]
        from distributed import Client

        _wait_for(lambda: self._connectable(), 60, "the scheduler")
        with Client(self.address, timeout=30) as c:
            c.wait_for_workers(n_workers, timeout=90)
            self.worker_pids = c.run(os.getpid)  # address → pid

    def home(self, k: int) -> Path:
        """Worker ``k``'s private folder (its working directory, ``HOME`` and ``TMPDIR``)."""
        d = self.log / f"w{k}"
        (d / "tmp").mkdir(parents=True, exist_ok=True)
        return d

    def private_env(self, k: int) -> dict[str, str]:
        d = self.home(k)
        return {"HOME": str(d), "TMPDIR": str(d / "tmp"), "GEOHSI_CACHE_DIR": str(d / "cache")}

    def _connectable(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", int(self.address.rsplit(":", 1)[1]))) == 0

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.terminate()
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def cluster(tmp_path):
    c = RealCluster(tmp_path)
    yield c
    c.close()


@pytest.fixture(scope="module")
def ip_mid_reference(ip_mid, ip_bundle):
    from geohsi.bundle import load_bundle

    return reference_labels(reference_probabilities(ip_mid, ip_bundle), load_bundle(ip_bundle).class_ids)


def _zarr_map(path: Path) -> np.ndarray:
    import xarray as xr

    return xr.open_zarr(path, mask_and_scale=False, consolidated=False)["classes"].values


@pytest.mark.slow
def test_cli_on_a_real_scheduler_with_two_worker_processes(tmp_path, cluster, ip_crop_geo, ip_bundle):
    out = tmp_path / "map.tif"
    r = run_cli(
        "classify",
        ip_crop_geo,
        "--bundle",
        ip_bundle,
        "--out",
        out,
        "--scheduler",
        cluster.address,
        "--chunks",
        "10",
        "--confidence",
    )
    assert r.returncode == 0, r.stderr
    assert "Dask dashboard" in r.stderr or "dashboard" in (r.stdout + r.stderr).lower()
    assert f"wrote {out}" in r.stdout
    from geohsi.bundle import load_bundle

    ref = reference_labels(reference_probabilities(ip_crop_geo, ip_bundle), load_bundle(ip_bundle).class_ids)
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), ref)
        assert src.crs.to_epsg() == 32616


@pytest.mark.slow
def test_killing_a_worker_mid_run_keeps_the_map_identical(tmp_path, cluster, ip_mid, ip_bundle, ip_mid_reference):
    out = tmp_path / "map.zarr"
    done = tmp_path / f".{out.name}.parts.zarr" / "done"
    cmd = [
        sys.executable,
        "-m",
        "geohsi.cli.main",
        "classify",
        str(ip_mid),
        "--bundle",
        str(ip_bundle),
        "--out",
        str(out),
        "--scheduler",
        cluster.address,
        "--chunks",
        "12",
        "--no-progress",
    ]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # kill the second worker once it has finished a chunk (its model is loaded and tasks are flowing)
        victim_addr = next(a for a in cluster.worker_pids if a)
        victim_pid = cluster.worker_pids[victim_addr]

        def victim_wrote() -> bool:
            return done.is_dir() and any(json.loads(f.read_text())["pid"] == victim_pid for f in done.glob("*.json"))

        _wait_for(victim_wrote, 240, "a chunk written by the worker to kill")
        n_before = len(list(done.glob("*.json")))
        os.kill(victim_pid, signal.SIGKILL)
        stdout, stderr = p.communicate(timeout=400)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, stderr
    assert n_before < 36, "the run ended before the worker was killed; use smaller chunks"
    np.testing.assert_array_equal(_zarr_map(out), ip_mid_reference)


@pytest.mark.slow
def test_interrupted_run_resumes_without_recomputing_completed_chunks(tmp_path, ip_mid, ip_bundle, ip_mid_reference):
    import zarr

    out = tmp_path / "map.zarr"
    inter = tmp_path / f".{out.name}.parts.zarr"
    args = [
        "classify",
        str(ip_mid),
        "--bundle",
        str(ip_bundle),
        "--out",
        str(out),
        "--chunks",
        "12",
        "--workers",
        "1",
        "--no-progress",
    ]
    p = subprocess.Popen(
        [sys.executable, "-m", "geohsi.cli.main", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: len(list((inter / "done").glob("*.json"))) >= 4 if (inter / "done").is_dir() else False,
            240,
            "four completed chunks",
        )
    finally:
        os.killpg(p.pid, signal.SIGKILL)  # the CLI and its LocalCluster processes: an abrupt interruption
        p.wait()
    assert not out.exists()
    done = sorted(tuple(map(int, f.stem.split("_"))) for f in (inter / "done").glob("*.json"))
    assert 4 <= len(done) < 36
    # Tamper with every completed chunk: if the rerun recomputed any of them, the sentinel would vanish.
    classes = zarr.open_group(str(inter), mode="r+")["classes"]
    for i, j in done:
        classes[i * 12 : (i + 1) * 12, j * 12 : (j + 1) * 12] = 200
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert f"resuming {ip_mid}: {len(done)} of 36 chunks" in r.stderr.replace("\n", " ")
    assert f"classified {36 - len(done)} of 36 chunks" in r.stderr.replace("\n", " ")
    m = _zarr_map(out)
    sentinel = np.zeros(m.shape, bool)
    for i, j in done:
        sentinel[i * 12 : (i + 1) * 12, j * 12 : (j + 1) * 12] = True
    assert np.all(m[sentinel] == 200)
    np.testing.assert_array_equal(m[~sentinel], ip_mid_reference[~sentinel])
    assert not inter.exists()
    # --no-resume (and --overwrite) recomputes everything
    r = run_cli(*args, "--overwrite", "--no-resume")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(_zarr_map(out), ip_mid_reference)


def test_unreachable_scheduler_fails_fast_with_one_line(tmp_path, ip_crop_geo, ip_bundle):
    t0 = time.time()
    r = run_cli(
        "classify",
        ip_crop_geo,
        "--bundle",
        ip_bundle,
        "--out",
        tmp_path / "m.tif",
        "--scheduler",
        f"tcp://127.0.0.1:{_free_port()}",
    )
    assert r.returncode == 7, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "cannot reach a Dask scheduler" in err[0] and "drop --scheduler" in err[0]
    assert time.time() - t0 < 60
    assert not list(tmp_path.iterdir())


def test_closing_the_embedded_cluster_under_a_heartbeat_in_flight_prints_nothing(capfd):
    """dask/distributed#7891: closing a worker while its heartbeat awaits the reply logs a traceback."""
    from geohsi.classification.cluster import open_cluster

    with open_cluster(workers=2) as info:
        scheduler = info.client.cluster.scheduler
        reply = scheduler.handlers["heartbeat_worker"]

        async def late_reply(*args, **kwargs):
            await asyncio.sleep(5)
            return reply(*args, **kwargs)

        scheduler.handlers["heartbeat_worker"] = late_reply
        assert info.client.submit(sum, [1, 2]).result() == 3
        time.sleep(1.5)  # both workers (1 s heartbeat interval) now wait for a reply
    err = capfd.readouterr().err
    assert "heartbeat" not in err and "Traceback" not in err, err


def test_a_running_worker_keeps_its_heartbeat_failures():
    from distributed.core import Status

    from geohsi.classification.cluster import HEARTBEAT_FAILED, _QuietWorkerLog

    def kept(status: Status, msg: str) -> bool:
        record = logging.LogRecord("distributed.worker", logging.ERROR, __file__, 1, msg, None, None)
        return _QuietWorkerLog(SimpleNamespace(status=status)).filter(record)

    assert kept(Status.running, f"{HEARTBEAT_FAILED}.") and kept(Status.paused, f"{HEARTBEAT_FAILED}.")
    assert not kept(Status.closing, f"{HEARTBEAT_FAILED}.") and not kept(Status.closed, f"{HEARTBEAT_FAILED}.")
    assert not kept(Status.running, "Compute Failed\nKey: x")
    assert kept(Status.closing, "Worker stream died during communication: %s")
    cancelled = "Async instruction for <Task finished name='execute(x)'> ended with CancelledError"
    assert not kept(Status.closing, cancelled) and kept(Status.running, cancelled)


def test_cli_bad_inputs(tmp_path, ip_crop_grid, ip_crop_geo, ip_bundle):
    r = run_cli("classify", ip_crop_grid, "--bundle", ip_bundle, "--out", tmp_path / "m.tif")
    assert r.returncode == 4 and f"write it as a Zarr map ({tmp_path / 'm.zarr'};" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "exists.tif").write_bytes(b"x")
    r = run_cli("classify", ip_crop_geo, "--bundle", ip_bundle, "--out", tmp_path / "exists.tif")
    assert r.returncode == 8 and "--overwrite" in r.stderr
    assert (tmp_path / "exists.tif").read_bytes() == b"x"
    r = run_cli("classify", ip_crop_geo, "--out", tmp_path / "m.tif", cwd=tmp_path)
    assert r.returncode == 3 and "runs/latest" in r.stderr


def test_the_embedded_cluster_keeps_each_workers_models_in_a_worker_plugin():
    from geohsi.classification.cluster import open_cluster
    from geohsi.classification.worker import MODEL_CACHE_PLUGIN

    with open_cluster(workers=2) as info:
        found = info.client.run(lambda dask_worker: type(dask_worker.plugins[MODEL_CACHE_PLUGIN].cache).__name__)
    assert list(found.values()) == ["ModelCache", "ModelCache"]


def test_a_run_in_another_precision_does_not_resume_the_parts_of_an_interrupted_one(tmp_path, ip_mid, ip_bundle, monkeypatch):
    """Every chunk of an fp32 run is done when the run stops before its map: a bf16 rerun recomputes
    them all (a map half fp32, half bf16 is no map); an fp32 rerun resumes them."""
    from geohsi.classification import classify
    from geohsi.classification.job import MapJob

    out = tmp_path / "map.zarr"
    finish = MapJob.finish

    def stopped(self, client):  # the run is stopped right before its map is written
        raise KeyboardInterrupt

    monkeypatch.setattr(MapJob, "finish", stopped)
    options = {"bundle": ip_bundle, "out": out, "chunks": 36, "workers": 1, "progress": False}
    with pytest.raises(KeyboardInterrupt):
        classify(ip_mid, **options, log=lambda m: None)
    assert (tmp_path / f".{out.name}.parts.zarr").is_dir() and not out.exists()
    monkeypatch.setattr(MapJob, "finish", finish)
    notes: list[str] = []
    classify(ip_mid, **options, precision="bf16", log=notes.append)
    assert any("recomputing every chunk" in n for n in notes), notes
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(MapJob, "finish", stopped)
        classify(ip_mid, **options, overwrite=True, log=lambda m: None)
    monkeypatch.setattr(MapJob, "finish", finish)
    notes.clear()
    classify(ip_mid, **options, overwrite=True, log=notes.append)
    assert any("4 of 4 chunks" in n for n in notes), notes
