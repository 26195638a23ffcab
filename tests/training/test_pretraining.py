"""geohsi.pretrain (geohsi.training.pretraining): the loss falls on real scenes, outputs load strictly, resume replays exactly,
errors name the fix; the shipped default backbone."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from geohsi.datasets.jasper_ridge import jasper_ridge_scene
from geohsi.errors import DataError, InputFormatError, ModelError, OutputError, UsageError
from geohsi.models import SpectralGPTClassifier, load_backbone
from geohsi.training.pretraining import pretrain

# Small and fast: tiny config, small crops of real scenes, a few steps.
FAST = dict(
    model="tiny", batch_size=16, holdout_per_scene=4, eval_every=5, checkpoint_every=5, progress=False, log=lambda m: None
)


@pytest.fixture(scope="module")
def scenes(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 48×48 crop of Indian Pines (ingested through the registry) and one of Jasper Ridge."""
    from geohsi.datasets.registry import ingest_dataset
    from geohsi.scene import open_scene, write_scene

    os.environ.setdefault("GEOHSI_DATA_DIR", str(data_dir))
    d = tmp_path_factory.mktemp("pretrain_scenes")
    ip = open_scene(ingest_dataset("indian_pines", d / "ip_full.zarr"))
    write_scene(ip.isel(y=slice(40, 88), x=slice(60, 108)).drop_vars("labels"), d / "ip.zarr")
    jr = jasper_ridge_scene(data_dir / "jasper_ridge" / "jasperRidge2_R198.mat")
    write_scene(jr.isel(y=slice(0, 40), x=slice(0, 40)), d / "jr.zarr")
    return [d / "ip.zarr", d / "jr.zarr"]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


def test_loss_decreases_and_outputs_are_complete(scenes: list[Path], tmp_path: Path) -> None:
    out = pretrain(scenes, out=tmp_path / "bb.safetensors", steps=30, lr=2e-3, seed=0, **FAST)
    meta = json.loads((tmp_path / "bb.json").read_text())
    train = meta["history"]["train"]
    assert len(train) == 30
    assert np.mean(train[-5:]) < 0.92 * np.mean(train[:5]), train
    assert meta["losses"]["val_end"] < meta["losses"]["val_start"]
    # the sidecar identifies the weights and records one fitted transform per scene
    assert meta["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert meta["size_bytes"] == out.stat().st_size
    assert [s["spectral_transform"]["reduction"] for s in meta["scenes"]] == ["pca", "pca"]
    assert meta["scenes"][0]["spectral_transform"] != meta["scenes"][1]["spectral_transform"]
    assert meta["labels_used"] is False and meta["command"].startswith("geohsi pretrain")
    for png in meta["figures"]:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the encoder loads strictly into a classifier's encoder, its norm into the head
    clf = SpectralGPTClassifier("tiny", 3)
    load_backbone(out, clf.encoder, allow_missing=())
    load_backbone(out, clf, allow_missing=("head.fc.*",))
    assert not torch.allclose(clf.head.norm.weight, torch.ones_like(clf.head.norm.weight))
    assert not (tmp_path / ".bb.work").exists()


def test_resume_gives_the_weights_of_an_uninterrupted_run(scenes: list[Path], tmp_path: Path) -> None:
    opts = dict(steps=8, seed=3, checkpoint_every=2, **{k: v for k, v in FAST.items() if k != "checkpoint_every"})
    full = pretrain(scenes, out=tmp_path / "a.safetensors", **opts)

    class Stop(Exception):
        pass

    def stop_at_5(step: int, loss: float) -> None:
        if step == 3:
            time.sleep(3.0)  # the interrupted session trains ≥ 3 s before its step-4 checkpoint
        if step == 5:
            raise Stop

    with pytest.raises(Stop):
        pretrain(scenes, out=tmp_path / "b.safetensors", on_step=stop_at_5, **opts)
    assert not (tmp_path / "b.safetensors").exists()  # nothing final until the run completes
    with pytest.raises(UsageError, match=r"other options or data \(lr 0\.001 → 0\.0005\)"):  # names what differs
        pretrain(scenes, out=tmp_path / "b.safetensors", resume=True, **{**opts, "lr": 5e-4})
    with pytest.raises(UsageError, match=r"other options or data \(scenes\)"):  # other scenes, the same options
        pretrain(scenes[:1], out=tmp_path / "b.safetensors", resume=True, **opts)
    resumed = pretrain(scenes, out=tmp_path / "b.safetensors", resume=True, **opts)  # restarts after step 4
    a, b = _tensors(full), _tensors(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ha = json.loads((tmp_path / "a.json").read_text())["history"]
    hb = json.loads((tmp_path / "b.json").read_text())["history"]
    assert ha == hb
    # the run's wall time counts the interrupted session to its checkpoint (it had been the last session's only)
    assert json.loads((tmp_path / "b.json").read_text())["wall_seconds"] >= 3.0
    # and another seed really gives other weights (the comparison above can fail)
    other = pretrain(scenes, out=tmp_path / "c.safetensors", **{**opts, "seed": 4})
    assert not torch.equal(_tensors(other)["blocks.0.attn.q.weight"], a["blocks.0.attn.q.weight"])


def test_a_non_finite_loss_read_late_names_its_step(scenes: list[Path], tmp_path: Path, monkeypatch) -> None:
    """Losses are read in groups (at evaluations and checkpoints, not every step); a NaN among them
    still stops the run with the step it happened at."""
    from geohsi.training.runner import Runner

    real_step, calls = Runner.step, []

    def step(self, loss):
        calls.append(1)
        out = real_step(self, loss)
        return torch.full_like(out, float("nan")) if len(calls) == 3 else out

    monkeypatch.setattr(Runner, "step", step)
    with pytest.raises(DataError, match="loss became nan at step 3; lower --lr"):
        pretrain(scenes[:1], out=tmp_path / "nan.safetensors", steps=5, seed=0, **FAST)
    assert len(calls) == 5  # read at the step-5 evaluation, not after every step


def test_user_errors_name_the_fix(scenes: list[Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\.safetensors"):
        pretrain(scenes, out=tmp_path / "x.pt", steps=1, **FAST)
    with pytest.raises(UsageError, match="either --epochs or --steps"):
        pretrain(scenes, out=tmp_path / "x.safetensors", steps=1, epochs=1, **FAST)
    with pytest.raises(InputFormatError, match="not a dataset name"):
        pretrain([tmp_path / "nope.zarr"], out=tmp_path / "x.safetensors", steps=1, **FAST)
    with pytest.raises(UsageError, match="nothing to resume"):
        pretrain(scenes, out=tmp_path / "x.safetensors", steps=1, resume=True, **FAST)
    notes: list[str] = []
    for bad, match in (({"steps": 0}, "--steps must be at least 1"), ({"mask_ratio": 1.0}, "strictly between 0 and 1"),
                       ({"mask_ratio": 0.9999}, "masks 64 of 64 tokens")):  # fmt: skip
        with pytest.raises(UsageError, match=match):
            pretrain(scenes, out=tmp_path / "x.safetensors", **{**FAST, "steps": 1, **bad, "log": notes.append})
    assert notes == []  # refused before any scene's transform was fitted (it had been after)
    with pytest.raises(UsageError, match="unknown pretraining option"):
        pretrain(scenes, out=tmp_path / "x.safetensors", steps=1, warmup=3, **FAST)
    with pytest.raises(UsageError, match=r"scene .* is given twice"):  # each copy's held-out pixels trained the other
        pretrain([scenes[0], Path(str(scenes[0]) + "/")], out=tmp_path / "x.safetensors", steps=1, **FAST)
    from geohsi.training.pretrain_data import resolve_scenes

    both = resolve_scenes(["jasper_ridge", scenes[0]], tmp_path / "cache")  # a dataset name beside a store (exit 70 once)
    assert [r.get("dataset", "store") for _, r in both] == ["jasper_ridge", "store"]
    with pytest.raises(UsageError, match=r"scene jasper_ridge is given twice"):
        resolve_scenes(["jasper_ridge", "Jasper-Ridge"], tmp_path / "cache")
    with pytest.raises(UsageError, match="--epochs must be a positive number, got inf"):
        pretrain(scenes, out=tmp_path / "x.safetensors", epochs=float("inf"), **FAST)
    (tmp_path / "x.safetensors").write_bytes(b"old")
    with pytest.raises(OutputError, match="--overwrite"):
        pretrain(scenes, out=tmp_path / "x.safetensors", steps=1, **FAST)
    assert (tmp_path / "x.safetensors").read_bytes() == b"old"
    (tmp_path / "y.loss.png").write_bytes(b"a user's figure")  # the figures are outputs too
    with pytest.raises(OutputError, match=r"y\.loss\.png already exists"):
        pretrain(scenes, out=tmp_path / "y.safetensors", steps=1, **FAST)
    assert (tmp_path / "y.loss.png").read_bytes() == b"a user's figure" and not (tmp_path / "y.safetensors").exists()


def test_cli_pretrain(scenes: list[Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from geohsi.cli.main import cli

    out = tmp_path / "cli.safetensors"
    r = CliRunner().invoke(
        cli,
        [
            "pretrain",
            *map(str, scenes),
            "--model",
            "tiny",
            "--out",
            str(out),
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--mask-ratio",
            "0.75",
            "--seed",
            "1",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["config"]["mask_ratio"] == 0.75 and meta["config"]["steps"] == 2
    assert "--mask-ratio 0.75" in meta["command"]
    # the weights are readable like any file the user writes (safetensors creates 0600 files)
    mode = out.stat().st_mode & 0o777
    assert mode == out.with_suffix(".json").stat().st_mode & 0o777 and mode & 0o044, oct(mode)


def test_the_recorded_command_names_urls_without_their_credentials(tmp_path: Path) -> None:
    from geohsi.training.config import PretrainConfig
    from geohsi.training.pretraining import command_line

    cfg = PretrainConfig.from_dict({"model": "tiny", "steps": 2})
    line = command_line(["https://alice:S3CRETpw@host.example/s.zarr?sig=TOKEN"], "s3://b/w.safetensors", cfg)
    assert "S3CRET" not in line and "TOKEN" not in line
    assert line.startswith("geohsi pretrain https://host.example/s.zarr --model tiny --out s3://b/w.safetensors")


# --------------------------------------------------------------------------------------------------
# The shipped default backbone (geohsi.models.default)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spectral", ["pca", "s2"])
def test_default_backbone_small_is_shipped_and_verified(monkeypatch: pytest.MonkeyPatch, spectral: str) -> None:
    """One shipped ``small`` backbone per front end, each pretrained on that front end's channels."""
    from geohsi.models import default

    monkeypatch.delenv("GEOHSI_BACKBONE", raising=False)
    path = default.default_backbone_path("small", spectral)
    if path is None or not path.is_file():
        pytest.fail(f"no shipped {spectral} backbone for 'small'; see docs/pretraining.md")
    record = json.loads(path.with_suffix(".json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == default.SHIPPED[("small", spectral)][1] == record["sha256"]
    assert record["labels_used"] is False and record["config"]["spectral"] == spectral
    assert {s["spectral_transform"]["reduction"] for s in record["scenes"]} == {spectral}
    assert default.pretrained_front_end(path) == spectral
    clf = SpectralGPTClassifier("small", 16)
    load_backbone(path, clf.encoder, allow_missing=())
    assert default.default_backbone_path("tiny", spectral) is None  # tests use random tiny backbones
    monkeypatch.setenv("GEOHSI_BACKBONE", "/some/where.safetensors")
    assert default.default_backbone_path("small", spectral) == Path("/some/where.safetensors")


def test_the_s2_and_pca_defaults_are_different_files_and_lda_runs_use_the_pca_one() -> None:
    from geohsi.models import default

    assert default.default_backbone_path("small") == default.default_backbone_path("small", "pca")
    assert default.default_backbone_path("small", "s2") != default.default_backbone_path("small", "pca")
    assert default.default_backbone_path("small", "lda") == default.default_backbone_path("small", "pca")


def test_a_backbone_pretrained_on_other_channels_is_recorded_and_warned_about(
    scenes: list[Path], ip_scene: Path, tmp_path: Path
) -> None:
    """The bundle records the front end its backbone was pretrained on; fine-tuning it with the other
    front end warns (channel i of an s2 backbone is a Sentinel-2 band, of a PCA one a component); an
    ``lda`` run is pointed to the PCA backbone, the one its default is."""
    from geohsi.bundle import load_bundle
    from geohsi.training.finetune import train

    bb = pretrain(scenes[:1], out=tmp_path / "s2.safetensors", steps=2, spectral="s2", seed=0, **FAST)
    msgs: dict[str, list[str]] = {}
    for spectral in ("s2", "pca", "lda"):
        msgs[spectral] = []
        out = train(ip_scene, adapter="lora", model="tiny", head="dense", epochs=1, split="per-class:5", spectral=spectral,
                    backbone=str(bb), out=tmp_path / spectral, progress=False, log=msgs[spectral].append)  # fmt: skip
        assert load_bundle(out).meta.backbone.pretrained_on == "s2"
    assert not any("WARNING" in m for m in msgs["s2"])
    warned = [m for m in msgs["pca"] if "pretrained on s2 channels but this run uses --spectral pca" in m]
    assert len(warned) == 1 and "--spectral pca" in warned[0]
    warned = [m for m in msgs["lda"] if "pretrained on s2 channels but this run uses --spectral lda" in m]
    assert len(warned) == 1 and "pretrained with --spectral pca" in warned[0]
    assert any(m.startswith("spectral lda: discriminants of") for m in msgs["lda"])


def test_a_backbone_of_another_model_size_names_the_model_it_was_pretrained_as(
    scenes: list[Path], ip_scene: Path, tmp_path: Path
) -> None:
    """A tiny backbone in a small model had been refused with a fix naming config fields (embed_dim, depth, …)
    that no command takes; its pretraining record names the --model that fits."""
    from geohsi.errors import ModelError
    from geohsi.training.finetune import train

    bb = pretrain(scenes[:1], out=tmp_path / "t.safetensors", steps=2, seed=0, **FAST)
    with pytest.raises(
        ModelError,
        match=r"^t\.safetensors was pretrained with --model tiny and does not fit --model small; train with --model tiny",
    ):
        train(ip_scene, adapter="lora", model="small", epochs=1, split="per-class:5", backbone=str(bb),
              out=tmp_path / "b", progress=False, log=lambda m: None)  # fmt: skip
    assert not (tmp_path / "b").exists()
    # an official-layout .pth that does not fit keeps its one-line ModelError (reading its record had crashed, exit 70)
    import torch

    torch.save({"model": {"blocks.0.attn.qkv.weight": torch.zeros(3, 3)}}, tmp_path / "other.pth")
    with pytest.raises(ModelError, match="does not fit SpectralGPT"):
        train(ip_scene, adapter="lora", model="tiny", epochs=1, split="per-class:5", backbone=str(tmp_path / "other.pth"),
              out=tmp_path / "c", progress=False, log=lambda m: None)  # fmt: skip


def test_default_backbone_refuses_a_corrupted_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geohsi.models import default

    monkeypatch.delenv("GEOHSI_BACKBONE", raising=False)
    fake = tmp_path / default.SHIPPED[("small", "pca")][0]
    fake.write_bytes(b"not the weights")
    monkeypatch.setattr(default, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(default, "_verified", {})
    with pytest.raises(ModelError, match="sha256"):
        default.default_backbone_path("small")
    fake.unlink()
    with pytest.raises(ModelError, match="GEOHSI_BACKBONE"):
        default.default_backbone_path("small")


def test_pretraining_refuses_the_supervised_front_end(scenes: list[Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no labels to fit --spectral lda"):
        pretrain(scenes[:1], out=tmp_path / "lda.safetensors", steps=1, spectral="lda", seed=0, **FAST)
    assert not (tmp_path / "lda.safetensors").exists()


def test_the_progress_line_shows_a_loss_soon_and_never_nan(scenes: list[Path], tmp_path: Path, monkeypatch, capsys) -> None:
    """Losses are read in groups; the progress line shows "-" until one is read, then the last one,
    read at least every 10 steps (it showed "loss nan" until the next evaluation or checkpoint)."""
    monkeypatch.setenv("GEOHSI_PROGRESS_INTERVAL", "0.000001")  # a plain line per step
    opts = {**FAST, "progress": True, "eval_every": 100, "checkpoint_every": 100}
    pretrain(scenes[:1], out=tmp_path / "p.safetensors", steps=12, seed=0, **opts)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "steps" in ln and "loss" in ln]
    assert lines and "nan" not in err, err
    assert re.search(r"\b10/12 .*loss \d+\.\d{4}", err), err
    assert re.search(r"\b[1-9]/12 .*loss - ", err), err
