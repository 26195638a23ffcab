"""SIGTERM (what SLURM, Kubernetes and ``timeout`` send) stops every long command like Ctrl-C: within
seconds, exit code 143, one line, no half-written final output, no leaked semaphores, and the same
command resumes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import run_cli

STOP_WITHIN_S = 30


def _start(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "geohsi.cli.main", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _terminate_when(p: subprocess.Popen, cond, timeout: float = 300) -> tuple[int, str, float]:
    """Wait for ``cond()``, send SIGTERM, and return ``(exit code, stderr, seconds to stop)``."""
    t0 = time.time()
    try:
        while not cond():
            if p.poll() is not None:
                raise AssertionError(f"the command ended (rc {p.returncode}) before it could be stopped: {p.stderr.read()}")
            if time.time() - t0 > timeout:
                raise AssertionError("timed out waiting for the command to get going")
            time.sleep(0.05)
        t1 = time.time()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=STOP_WITHIN_S + 30)
        return p.returncode, err, time.time() - t1
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _check_clean_stop(rc: int, err: str, seconds: float) -> None:
    assert rc == 143, err
    assert seconds < STOP_WITHIN_S, f"took {seconds:.1f} s to stop"
    assert "Traceback" not in err and "leaked semaphore" not in err, err
    assert err.strip().splitlines()[-1].startswith("geohsi: interrupted (SIGTERM)"), err


@pytest.mark.slow
def test_train_stops_on_sigterm_and_resumes(tmp_path, ip_scene):
    out = tmp_path / "run"
    args = ["train", ip_scene, "--adapter", "lora", "--model", "tiny", "--head", "patch", "--epochs", "12",
            "--split", "per-class:5", "--out", out]  # fmt: skip
    work = tmp_path / ".run.work"
    rc, err, s = _terminate_when(_start(*args), lambda: (work / "checkpoint.pt").exists())
    _check_clean_stop(rc, err, s)
    assert err.strip().endswith("rerun it with --resume to continue"), err  # the same command is refused
    assert not out.exists() and (work / "checkpoint.pt").exists()
    r = run_cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert (out / "bundle.json").exists()


@pytest.mark.slow
def test_pretrain_stops_on_sigterm_and_resumes(tmp_path, ip_scene):
    out = tmp_path / "enc.safetensors"
    args = ["pretrain", ip_scene, "--model", "tiny", "--steps", "400", "--batch-size", "16", "--out", out]
    work = tmp_path / ".enc.work"
    rc, err, s = _terminate_when(_start(*args), lambda: (work / "checkpoint.pt").exists())
    _check_clean_stop(rc, err, s)
    assert err.strip().endswith("rerun it with --resume to continue"), err
    assert not out.exists()
    r = run_cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert out.exists()


@pytest.mark.slow
def test_ingest_stops_on_sigterm_without_a_half_written_store(tmp_path):
    raw = tmp_path / "big.bsq"
    h, w, b = 1536, 1536, 64
    rng = np.random.default_rng(0)
    with open(raw, "wb") as f:
        for _ in range(b):
            f.write(rng.integers(0, 10000, size=(h, w), dtype=np.int16).tobytes())
    (tmp_path / "big.hdr").write_text(
        f"ENVI\nsamples = {w}\nlines = {h}\nbands = {b}\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 2\ninterleave = bsq\nbyte order = 0\n"
        "wavelength = {" + ", ".join(f"{400 + 30 * i}" for i in range(b)) + "}\nwavelength units = Nanometers\n"
    )
    out = tmp_path / "big.zarr"
    p = _start("ingest", raw, "--out", out, "--crs", "none")
    rc, err, s = _terminate_when(p, lambda: any(tmp_path.glob(".big.zarr.tmp-*/*")))
    _check_clean_stop(rc, err, s)
    assert not out.exists() and not list(tmp_path.glob(".big.zarr.tmp-*"))


@pytest.mark.slow
def test_classify_stops_on_sigterm_and_resumes(tmp_path, ip_scene):
    from tests.classification.conftest import _train

    bundle = _train(ip_scene, tmp_path / "bundle")
    out = tmp_path / "map.zarr"
    args = ["classify", ip_scene, "--bundle", bundle, "--out", out, "--chunks", "16", "--workers", "1", "--no-progress"]
    inter = tmp_path / ".map.zarr.parts.zarr"
    rc, err, s = _terminate_when(_start(*args), lambda: len(list((inter / "done").glob("*.json"))) >= 3)
    _check_clean_stop(rc, err, s)
    assert not out.exists()
    done = len(list((inter / "done").glob("*.json")))
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert f"{done} of 100 chunks were completed by an earlier run" in " ".join(r.stderr.split())
    assert out.exists() and not inter.exists()
