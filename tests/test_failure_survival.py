"""Failure survival under load: worker processes killed at random mid-run, and a worker memory limit.

A real ``dask scheduler`` and two nanny-managed ``dask worker`` processes on 127.0.0.1 run
``geohsi classify --scheduler``. Killing a worker process loses its in-flight task; the nanny starts
a fresh process and the scheduler reruns the lost task elsewhere, so the map must equal the clean
single-process run. Under a worker memory limit, Dask's spill/pause/terminate must either keep the
run alive (identical map) or end it with one ``ClusterError`` line that says how to resume, with
no final map written.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.classification.test_cluster import BIN, _free_port
from tests.test_bad_inputs import Inputs, inputs  # noqa: F401  (session fixture: tiny scene and bundle)

pytestmark = pytest.mark.slow

CHUNK = 8  # 40 × 40 scene → 25 tasks


class NannyCluster:
    """A scheduler and ``n`` single-thread workers, each under a nanny that restarts it when killed."""

    def __init__(self, tmp: Path, n_workers: int = 2, memory_limit: str = "2GB", allowed_failures: int = 20) -> None:
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        env = dict(
            os.environ, DASK_LOGGING__DISTRIBUTED="warning", DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=str(allowed_failures)
        )
        self.procs = [
            subprocess.Popen(
                [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                stdout=open(tmp / "scheduler.log", "w"),  # noqa: SIM115 - the process owns its log file
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        ]
        self.procs += [
            subprocess.Popen(
                [
                    BIN / "dask",
                    "worker",
                    self.address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--name",
                    f"w{k}",
                    "--memory-limit",
                    memory_limit,
                ],
                stdout=open(tmp / f"worker{k}.log", "w"),  # noqa: SIM115 - the process owns its log file
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            for k in range(n_workers)
        ]
        from distributed import Client

        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(n_workers, timeout=120)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture(scope="module")
def clean_map(inputs: Inputs) -> np.ndarray:  # noqa: F811
    """The reference: the same scene and bundle classified in one process, no cluster."""
    import dask

    from geohsi.classification import predict_map

    with dask.config.set(scheduler="synchronous"):
        return np.asarray(predict_map(inputs.scene, inputs.bundle, chunks=CHUNK).values)


def _zarr_map(path: Path) -> np.ndarray:
    import xarray as xr

    return xr.open_zarr(path, mask_and_scale=False, consolidated=False)["classes"].values


def _classify(inputs: Inputs, out: Path, address: str, env: dict[str, str] | None = None) -> subprocess.Popen:  # noqa: F811
    cmd = [
        sys.executable,
        "-m",
        "geohsi.cli.main",
        "classify",
        str(inputs.scene),
        "--bundle",
        str(inputs.bundle),
        "--out",
        str(out),
        "--scheduler",
        address,
        "--chunks",
        str(CHUNK),
        "--no-progress",
        "--batch-size",
        "64",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def test_map_survives_a_third_of_the_workers_killed_at_random(tmp_path: Path, inputs: Inputs, clean_map) -> None:  # noqa: F811
    cluster = NannyCluster(tmp_path)
    out = tmp_path / "map.zarr"
    done = tmp_path / f".{out.name}.parts.zarr" / "done"
    rng = np.random.default_rng(0)
    seen: set[str] = set()
    killed: list[int] = []
    p = _classify(inputs, out, cluster.address)
    try:
        t0 = time.time()
        while p.poll() is None and time.time() - t0 < 500:
            for f in sorted(done.glob("*.json")) if done.is_dir() else []:
                if f.name in seen:
                    continue
                seen.add(f.name)
                pid = json.loads(f.read_text())["pid"]
                # About a third of the completions take their worker process down with the next task in flight.
                if rng.random() < 1 / 3 and pid not in killed:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    except ProcessLookupError:
                        pass
            time.sleep(0.05)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
        cluster.close()
    assert p.returncode == 0, stderr
    assert len(killed) >= 3, f"only {len(killed)} kills happened before the run ended ({len(seen)} chunks seen)"
    np.testing.assert_array_equal(_zarr_map(out), clean_map)
    assert not (tmp_path / f".{out.name}.parts.zarr").exists()


@pytest.mark.parametrize("limit", ["2GB", "150MB"])
def test_worker_memory_limit_keeps_the_run_alive_or_fails_in_one_line(
    tmp_path: Path,
    inputs: Inputs,  # noqa: F811
    clean_map,  # noqa: F811
    limit: str,
) -> None:
    """2 GB: room to run, the map is the clean one. 150 MB: an idle worker process already sits above
    Dask's pause threshold (80 %), so workers pause and never run a task (or, above 95 %, the nanny
    kills them until the scheduler gives up). Either way the run must end with one ``ClusterError``
    line that says what to change and how to resume, and write no map; it must not wait forever."""
    cluster = NannyCluster(tmp_path, memory_limit=limit, allowed_failures=2)
    out = tmp_path / "map.zarr"
    p = _classify(inputs, out, cluster.address, env={"GEOHSI_PAUSED_TIMEOUT": "20"})
    try:
        stdout, stderr = p.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        p.kill()
        stdout, stderr = p.communicate()
        pytest.fail(f"classify under a {limit} worker memory limit hung (paused workers never resumed): {stderr[-500:]}")
    finally:
        cluster.close()
    assert "Traceback" not in stderr
    if p.returncode == 0:
        np.testing.assert_array_equal(_zarr_map(out), clean_map)
    else:
        assert limit != "2GB", stderr
        errors = [x for x in stderr.splitlines() if x.startswith("geohsi:")]
        assert p.returncode == 7 and len(errors) == 1, stderr
        assert re.search(
            r"(distributed classification of \S+ failed|every Dask worker has been paused at its memory limit "
            r"\(\d+ MiB\) for 20 s; give the workers more memory)",
            errors[0],
        ), errors[0]
        assert "rerun the same command to resume" in errors[0]
        assert not out.exists()
