"""The ``geohsi`` entry point: what it prints around a command, whatever the command."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A coroutine left unstarted when the command ends, as zarr's event loop leaves one when SIGTERM
# lands between scheduling a store call and running it; Python reports it as the process exits.
_ABANDONED = """
import sys
from geohsi.cli.main import main

async def _runner():
    pass

left = _runner()
main(sys.argv[1:])
"""


@pytest.mark.parametrize("debug", [False, True])
def test_a_coroutine_abandoned_at_exit_is_reported_only_with_debug(debug: bool) -> None:
    args = ["--debug", "--version"] if debug else ["--version"]
    p = subprocess.run([sys.executable, "-c", _ABANDONED, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("geohsi, version")
    assert ("coroutine '_runner' was never awaited" in p.stderr) is debug, p.stderr


def test_an_interrupted_run_is_told_to_resume_only_once_it_saved_a_checkpoint(tmp_path) -> None:
    """Stopped before its first checkpoint, train had been told '--resume', which then failed: nothing to resume."""
    from geohsi.cli.main import _again
    from geohsi.training.runner import CHECKPOINT_NAME, work_dir

    out = tmp_path / "run"
    for args in (["train", "s.zarr", "--out", str(out)], ["pretrain", "s.zarr", f"--out={out}"]):
        assert _again(args) == "no checkpoint was saved yet: rerun the same command to start again"
    work_dir(out).mkdir()
    (work_dir(out) / CHECKPOINT_NAME).write_bytes(b"saved")
    assert _again(["train", "s.zarr", "-o", str(out)]) == "rerun it with --resume to continue"
    assert _again(["pretrain", "s.zarr", "--out", f"{out}.safetensors"]) == "rerun it with --resume to continue"
    assert _again(["train", "s.zarr", "--out", str(out), "--resume"]) == "rerun the same command to resume"
    assert _again(["classify", "s.zarr", "--out", "m.tif"]) == "rerun the same command to resume"
    assert "--out RUN --resume" in _again(["train", "s.zarr"])  # a plain --resume had been refused: no --out named
