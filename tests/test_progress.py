"""Progress that reads well in a log: plain lines every GEOHSI_PROGRESS_INTERVAL seconds when stderr is not a terminal.

On a terminal the display is a live rich bar; redirected (CI, ``nohup``, SLURM: ``geohsi … > log.txt 2>&1``)
it must be one line per update period, each ending in a newline — not a run of carriage returns.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geohsi.console import progress, progress_interval
from geohsi.errors import UsageError

#: A plain progress line: label, count, share, the loop's fields, elapsed and remaining time.
LINE = re.compile(
    r"^(?P<label>.+?)  (?P<done>\d+)/(?P<total>\d+) (?P<unit>\w+) \(\d+ %\)  (?:.*  )?\d+:\d\d elapsed, (?:(?:\d+:)?\d+:\d\d|-:--) left$"
)


def _progress_lines(text: str, unit: str) -> list[re.Match]:
    return [m for line in text.split("\n") if (m := LINE.match(line)) and m["unit"] == unit]


def test_plain_progress_prints_one_line_per_period_and_a_final_line(monkeypatch, capsys) -> None:
    monkeypatch.setenv("GEOHSI_PROGRESS_INTERVAL", "0.05")
    with progress("epoch {task.fields[epoch]}", 20, detail="loss {task.fields[loss]:.3f}", epoch=1, loss=1.0) as update:
        for step in range(20):
            time.sleep(0.01)
            update(advance=1, epoch=step // 10 + 1, loss=1.0 / (step + 1))
    err = capsys.readouterr().err
    assert "\r" not in err and err.endswith("\n")
    lines = _progress_lines(err, "steps")
    assert len(lines) == len(err.splitlines())  # nothing but progress lines
    assert lines[0].group(0).startswith("epoch 1  0/20 steps (0 %)  loss 1.000  0:00 elapsed")
    assert lines[-1].group(0).startswith("epoch 2  20/20 steps (100 %)  loss 0.050")
    assert 3 <= len(lines) <= 12  # about one per 0.05 s of a 0.2 s loop, not one per update


def test_plain_progress_waits_for_its_period(monkeypatch, capsys) -> None:
    monkeypatch.setenv("GEOHSI_PROGRESS_INTERVAL", "3600")
    with progress("classify", 100, unit="chunks") as update:
        for _ in range(100):
            update(advance=1)
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split("  ")[:2] for ln in lines] == [["classify", "0/100 chunks (0 %)"], ["classify", "100/100 chunks (100 %)"]]


def test_progress_interval_is_a_positive_number_of_seconds(monkeypatch) -> None:
    monkeypatch.delenv("GEOHSI_PROGRESS_INTERVAL", raising=False)
    assert progress_interval() == 30.0
    monkeypatch.setenv("GEOHSI_PROGRESS_INTERVAL", "soon")
    with pytest.raises(UsageError, match="GEOHSI_PROGRESS_INTERVAL='soon'"):
        progress_interval()


# -- the commands, with stdout and stderr redirected to a log file -------------------------------------


def _run_logged(tmp_path: Path, *args: object, interval: str = "0.1") -> str:
    """``geohsi ARGS > log.txt 2>&1``; returns the log."""
    log = tmp_path / "log.txt"
    env = {**os.environ, "GEOHSI_PROGRESS_INTERVAL": interval}
    with log.open("w") as f:
        r = subprocess.run(
            [sys.executable, "-m", "geohsi.cli.main", *map(str, args)], stdout=f, stderr=subprocess.STDOUT, env=env, timeout=600
        )
    text = log.read_text()
    assert r.returncode == 0, text
    return text


def _assert_readable(text: str, unit: str) -> list[re.Match]:
    assert "\r" not in text, "carriage returns in the log"
    lines = _progress_lines(text, unit)
    assert len(lines) >= 2 and lines[-1]["done"] == lines[-1]["total"], text
    counts = [int(m["done"]) for m in lines]
    assert counts == sorted(counts)
    return lines


@pytest.fixture(scope="module")
def logged_train(ip_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``geohsi train`` (tiny, dense, 3 epochs) into a log file: the bundle and the log."""
    work = tmp_path_factory.mktemp("progress")
    args = ("--model", "tiny", "--epochs", "3", "--split", "per-class:5", "--device", "cpu", "--out", work / "bundle")
    text = _run_logged(work, "train", ip_scene, "--adapter", "krona+", *args)
    return work / "bundle", text


def test_train_progress_in_a_log_is_line_by_line(logged_train: tuple[Path, str]) -> None:
    _, text = logged_train
    lines = _assert_readable(text, "steps")
    assert all(re.search(r" loss (-|\d+\.\d{4}) lr \d\.\d\de[+-]\d\d val OA ", m.group(0)) for m in lines)
    assert lines[0]["label"] == "epoch 1" and lines[-1]["label"] == "epoch 3"


def test_classify_progress_in_a_log_is_line_by_line(logged_train: tuple[Path, str], ip_scene: Path, tmp_path: Path) -> None:
    from geohsi.scene import open_scene, write_scene

    crop = write_scene(open_scene(ip_scene).isel(y=slice(0, 48), x=slice(0, 48)), tmp_path / "crop.zarr", chunks=16)
    bundle, _ = logged_train
    text = _run_logged(
        tmp_path, "classify", crop, "--bundle", bundle, "--out", tmp_path / "map.zarr", "--workers", "1", "--chunks", "16"
    )
    lines = _assert_readable(text, "chunks")
    assert {m["label"] for m in lines} == {"classify"} and lines[-1]["total"] == "9"


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("[yellow]warning:[/] class Water [lake] of runs/[old]/f.gpkg", "warning: class Water [lake] of runs/[old]/f.gpkg"),
        ("[red]failed:[/] Built-up [bold]x", "failed: Built-up [bold]x"),
        ("[2/5] Forest [/]: done", "[2/5] Forest [/]: done"),  # a tag in the data: shown as written
        ("wrote C:\\data\\[old]\\", "wrote C:\\data\\[old]\\"),
        ("[yellow]warning:[/] C:\\runs\\", "warning: C:\\runs\\"),
    ],
)
def test_messages_show_names_and_paths_as_written(message, shown, capsys):
    """Rich markup dropped ``[lake]`` and styled ``[bold]`` inside names, and failed on ``[/]``."""
    from geohsi.console import say, styled

    text = styled(message)
    assert text.plain == shown
    assert [s.style for s in text.spans] in ([], ["yellow"], ["red"])
    say(message)
    assert capsys.readouterr().err.strip() == shown
