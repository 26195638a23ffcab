"""geohsi train / evaluate / bundle on the real Indian Pines scene with the tiny config."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from geohsi.bundle import load_bundle
from geohsi.errors import BandMismatchError, DataError, ModelError, UsageError
from geohsi.evaluation import evaluate
from geohsi.training.config import ADAPTERS, TrainConfig, resolve_train_config
from geohsi.training.finetune import train
from tests.conftest import run_cli

FAST = {"epochs": 2, "split": "per-class:5", "batch_size": 32, "model": "tiny", "head": "patch"}


def _tree_hash(p: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(p)).encode() + f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_each_adapter_trains_and_evaluates_through_the_cli(adapter: str, ip_scene: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    r = run_cli(
        "train",
        ip_scene,
        "--adapter",
        adapter,
        "--epochs",
        2,
        "--split",
        "per-class:5",
        "--batch-size",
        32,
        "--model",
        "tiny",
        "--out",
        bundle,
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert "WARNING: no pretrained backbone" in r.stderr  # no --backbone and no default for tiny: said loudly
    assert "[bold" not in r.stderr and "[/]" not in r.stderr  # styled, not printed as markup
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["adapter"]["method"] == adapter
    assert len(meta["classes"]) == 16 and meta["train_config"]["epochs"] == 2
    log = [json.loads(x) for x in (bundle / "train_log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1, 2]
    r = run_cli("evaluate", bundle, ip_scene, "--out", tmp_path / "eval" / "metrics.json")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for k in ("overall_accuracy", "average_accuracy", "kappa", "per_class", "confusion_matrix", "n_test"):
        assert k in m
    assert m["n_test"] == 10249 - 16 * 5
    assert set(m["per_class"]) == set(json.loads((bundle / "bundle.json").read_text())["classes"][i]["name"] for i in range(16))
    # evaluate on the training scene scores exactly the bundle's test pixels, like the training run did
    assert m["overall_accuracy"] == pytest.approx(meta["metrics"]["overall_accuracy"], abs=1e-12)
    assert (tmp_path / "eval" / "metrics.csv").stat().st_size > 0
    assert (tmp_path / "eval" / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_input_size_sets_the_dense_tiles_of_training_and_mapping(ip_scene: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b16"
    args = ("--epochs", 1, "--split", "per-class:5", "--model", "tiny", "--input-size", 16, "--out", bundle, "--quiet")
    r = run_cli("train", ip_scene, *args)
    assert r.returncode == 0, r.stderr
    b = load_bundle(bundle)
    assert b.meta.train_config["input_size"] == 16
    assert tuple(b.build_model().config.input_size) == (16, 16)  # the map is cut into the tiles it trained on


def test_val_fraction_zero_trains_on_every_training_pixel(ip_scene: Path, tmp_path: Path) -> None:
    """``--val-fraction 0`` (what the held-out-tile runs use): no validation pixel, all of them train."""
    args = ("--epochs", 1, "--split", "per-class:5", "--model", "tiny", "--val-fraction", 0, "--out", tmp_path / "b")
    r = run_cli("train", ip_scene, *args)
    assert r.returncode == 0, r.stderr
    assert "split per-class:5: 80 train / 0 val" in r.stderr
    assert load_bundle(tmp_path / "b").meta.train_config["val_fraction"] == 0
    r = run_cli("train", ip_scene, *args[:-1], tmp_path / "c", "--val-fraction", 1.5)
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "--val-fraction must be in [0, 1), got 1.5" in r.stderr


def test_an_lda_bundle_keeps_its_discriminants_and_maps_the_scene(ip_scene: Path, tmp_path: Path) -> None:
    """``--spectral lda`` on Indian Pines' 16 classes: of 15 discriminant directions the 6 strongest
    are the first half of the channels, principal components the rest; the bundle replays them on the
    scene it maps."""
    import xarray as xr

    bundle = tmp_path / "lda"
    args = ("--spectral", "lda", "--epochs", 1, "--split", "per-class:15", "--model", "tiny", "--out", bundle)
    r = run_cli("train", ip_scene, *args)
    assert r.returncode == 0, r.stderr
    n_train = re.search(r"split per-class:15: (\d+) train / (\d+) val", r.stderr)
    assert n_train and int(n_train[2]) > 0  # the validation pixels are not the discriminants' …
    assert f"spectral lda: discriminants of {n_train[1]} training pixels" in r.stderr  # … only the training pixels are
    b = load_bundle(bundle)
    names = [f"LD{i}" for i in range(1, 7)] + [f"PC{i}" for i in range(1, 7)]
    assert b.transform.reduction == "lda" and b.transform.channel_names == names
    assert b.meta.train_config["spectral"] == "lda"
    r = run_cli("classify", ip_scene, "--bundle", bundle, "--out", tmp_path / "map.zarr", "--workers", "1")
    assert r.returncode == 0, r.stderr
    classes = xr.open_zarr(tmp_path / "map.zarr")["classes"].values
    assert classes.shape == (145, 145) and classes.max() > 0


def test_adapter_training_changes_only_trainable_weights_and_helps(ip_scene: Path, tmp_path: Path) -> None:
    out = train(ip_scene, resolve_train_config(adapter="lora", **FAST), out=tmp_path / "b", progress=False, log=lambda m: None)
    b = load_bundle(out)
    model = b.build_model(merge=False)
    fresh = b.build_model(merge=False)
    # the head is trained (near-zero init → non-trivial now)
    assert model.head.fc.weight.abs().max() > 1e-3
    torch.testing.assert_close(model.encoder.patch_embed.proj.weight, fresh.encoder.patch_embed.proj.weight)


def test_resume_gives_the_same_final_weights(ip_scene: Path, tmp_path: Path) -> None:
    cfg = resolve_train_config(adapter="krona+", **FAST)
    full = train(ip_scene, cfg, out=tmp_path / "full", progress=False, log=lambda m: None)

    class Stop(Exception):
        pass

    def interrupt(epoch: int, row: dict) -> None:
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train(ip_scene, cfg, out=tmp_path / "resumed", progress=False, log=lambda m: None, on_epoch_end=interrupt)
    assert not (tmp_path / "resumed").exists()  # interrupted: no bundle, only the work directory
    assert (tmp_path / ".resumed.work" / "checkpoint.pt").is_file()
    resumed = train(ip_scene, cfg, out=tmp_path / "resumed", resume=True, progress=False, log=lambda m: None)
    a = load_file(str(full / "adapter" / "adapter.safetensors"))
    b = load_file(str(resumed / "adapter" / "adapter.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert not (tmp_path / ".resumed.work").exists()


def test_config_file_with_flag_override_is_saved_in_the_bundle(ip_scene: Path, tmp_path: Path) -> None:
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("adapter: lokr\nepochs: 3\nsplit: per-class:5\nrank: 4\nbatch_size: 32\n")
    r = run_cli("train", ip_scene, "--config", cfg_file, "--epochs", 1, "--model", "tiny", "--out", tmp_path / "b", "--quiet")
    assert r.returncode == 0, r.stderr
    tc = json.loads((tmp_path / "b" / "bundle.json").read_text())["train_config"]
    assert (tc["adapter"], tc["epochs"], tc["rank"]) == ("lokr", 1, 4)


def test_default_out_goes_to_runs_and_latest(ip_scene: Path, tmp_path: Path) -> None:
    r = run_cli(
        "train",
        ip_scene,
        "--adapter",
        "linear",
        "--epochs",
        1,
        "--split",
        "per-class:5",
        "--model",
        "tiny",
        "--quiet",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    latest = tmp_path / "runs" / "latest"
    assert latest.is_symlink() and (latest / "bundle.json").is_file()
    assert latest.resolve().name.endswith("-linear")


# -- errors: one line, exit code != 0, nothing overwritten ---------------------------------------------


def _one_line_error(r) -> str:
    assert r.returncode != 0
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_scene_without_labels(tmp_path: Path, data_dir: Path) -> None:
    from geohsi.ingestion import ingest

    scene = ingest(data_dir / "pika_drone" / "pika_reflectance.bip", tmp_path / "pika.zarr")
    msg = _one_line_error(run_cli("train", scene, "--out", tmp_path / "b"))
    assert "has no labels" in msg and "--labels" in msg
    assert not (tmp_path / "b").exists()


def test_class_with_too_few_pixels_is_named(ip_scene: Path, tmp_path: Path) -> None:
    msg = _one_line_error(run_cli("train", ip_scene, "--split", "per-class:25", "--out", tmp_path / "b"))
    assert "Oats" in msg and "per-class" in msg


def test_unknown_adapter(ip_scene: Path, tmp_path: Path) -> None:
    msg = _one_line_error(run_cli("train", ip_scene, "--adapter", "dora", "--out", tmp_path / "b"))
    assert "dora" in msg
    with pytest.raises(UsageError):
        TrainConfig(adapter="dora")


@pytest.fixture(scope="module")
def small_bundle(ip_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "b"
    return train(
        ip_scene,
        resolve_train_config(adapter="krona", epochs=1, split="per-class:5", model="tiny", head="patch"),
        out=out,
        progress=False,
        log=lambda m: None,
    )


def test_existing_bundle_is_not_overwritten(ip_scene: Path, small_bundle: Path) -> None:
    before = _tree_hash(small_bundle)
    msg = _one_line_error(run_cli("train", ip_scene, "--epochs", 1, "--model", "tiny", "--out", small_bundle))
    assert "already exists" in msg and "--overwrite" in msg
    assert _tree_hash(small_bundle) == before


def test_bundle_missing_a_file(small_bundle: Path, ip_scene: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(small_bundle, broken)
    (broken / "split.npz").unlink()
    msg = _one_line_error(run_cli("evaluate", broken, ip_scene))
    assert "missing split.npz" in msg
    with pytest.raises(ModelError):
        load_bundle(broken)
    (broken / "bundle.json").unlink()
    assert "not a geohsi bundle" in _one_line_error(run_cli("evaluate", broken, ip_scene))


def test_corrupted_adapter_weights_are_refused(small_bundle: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(small_bundle, broken)
    f = broken / "adapter" / "adapter.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ModelError, match="modified or corrupted"):
        load_bundle(broken)


def test_evaluate_refuses_a_scene_with_other_bands(small_bundle: Path, tmp_path: Path, data_dir: Path) -> None:
    from geohsi.scene import add_labels, make_scene, open_scene, write_scene

    ds = open_scene(load_bundle(small_bundle).meta.train_config["scene"])
    # PCA input width differs: drop 10 bands
    fewer = make_scene(ds["reflectance"].data[:190], wavelength=ds.wavelength.values[:190], fwhm=ds.fwhm.values[:190])
    fewer = add_labels(fewer, ds["labels"].values)
    write_scene(fewer, tmp_path / "fewer.zarr")
    msg = _one_line_error(run_cli("evaluate", small_bundle, tmp_path / "fewer.zarr", "--out", tmp_path / "m.json"))
    assert "190 bands" in msg and "200" in msg
    assert not (tmp_path / "m.json").exists()
    # same band count, shifted wavelengths
    shifted = make_scene(ds["reflectance"].data, wavelength=ds.wavelength.values + 25.0, fwhm=ds.fwhm.values)
    shifted = add_labels(shifted, ds["labels"].values)
    write_scene(shifted, tmp_path / "shifted.zarr")
    with pytest.raises(BandMismatchError, match="nm"):
        evaluate(small_bundle, tmp_path / "shifted.zarr")


@pytest.mark.parametrize("batch_size", [0, -5])
def test_evaluate_refuses_a_batch_size_below_one(small_bundle: Path, batch_size: int) -> None:
    """A negative batch had tiled nothing: every pixel kept its default and the metrics (OA 0.0036) came out, exit 0."""
    from geohsi.errors import UsageError

    scene = load_bundle(small_bundle).meta.train_config["scene"]
    with pytest.raises(UsageError, match=f"--batch-size must be at least 1, got {batch_size}"):
        evaluate(small_bundle, scene, batch_size=batch_size)


def test_evaluate_refuses_a_backbone_for_a_bundle_that_carries_its_own(small_bundle: Path, tmp_path: Path) -> None:
    """--backbone had been ignored without a word for such a bundle (classify already refused it)."""
    from geohsi.errors import UsageError

    scene = load_bundle(small_bundle).meta.train_config["scene"]
    with pytest.raises(UsageError, match="carries its own backbone; --backbone is for bundles trained on a backbone file"):
        evaluate(small_bundle, scene, backbone=tmp_path / "moved.safetensors")


def test_evaluate_warns_when_the_training_image_comes_with_other_labels(small_bundle: Path, tmp_path: Path) -> None:
    """The training image is recognised by its labels' digest: one pixel relabelled, every labelled pixel was
    scored, training pixels included, without a word (only n told: 10,247 instead of 5,121)."""
    import rasterio

    from geohsi.scene import open_scene

    scene = load_bundle(small_bundle).meta.train_config["scene"]
    labels = open_scene(scene)["labels"].values.astype("uint16")
    fixed = labels.copy()
    fixed[tuple(np.argwhere(labels > 0)[0])] = 0
    for folder, grid in (("same", labels), ("fix", fixed)):
        (tmp_path / folder).mkdir()
        with rasterio.open(tmp_path / folder / f"{Path(scene).stem}.tif", "w", driver="GTiff", width=grid.shape[1],
                           height=grid.shape[0], count=1, dtype="uint16") as dst:  # fmt: skip
            dst.write(grid, 1)
    same = run_cli("evaluate", small_bundle, scene, "--labels", tmp_path / "same" / "*.tif")
    fix = run_cli("evaluate", small_bundle, scene, "--labels", tmp_path / "fix" / "*.tif")
    assert same.returncode == 0 and fix.returncode == 0, fix.stderr
    assert "warning" not in same.stderr, same.stderr
    assert "is an image" in fix.stderr and "with other labels than it trained with: every labelled pixel is scored" in fix.stderr
    n = [int(re.search(r"n = (\d+)", r.stdout).group(1)) for r in (same, fix)]
    assert n[1] == int((fixed > 0).sum()) > n[0]


def test_evaluate_on_another_scene_scores_all_labelled_pixels(small_bundle: Path, tmp_path: Path) -> None:
    from geohsi.scene import add_labels, make_scene, open_scene, write_scene

    ds = open_scene(load_bundle(small_bundle).meta.train_config["scene"])
    lab = ds["labels"].values.copy()
    lab[:10] = 0  # a different label grid → "another scene"
    other = add_labels(make_scene(ds["reflectance"].data, wavelength=ds.wavelength.values, fwhm=ds.fwhm.values), lab)
    write_scene(other, tmp_path / "other.zarr")
    r = evaluate(small_bundle, tmp_path / "other.zarr")
    assert r["n_test"] == int((lab > 0).sum())
    lab[0, 0] = 17
    with pytest.raises(DataError, match="17"):
        evaluate(
            small_bundle,
            _write(add_labels(make_scene(ds["reflectance"].data, wavelength=ds.wavelength.values), lab), tmp_path / "o2.zarr"),
        )


def _write(ds, path: Path) -> Path:
    from geohsi.scene import write_scene

    return write_scene(ds, path)


def test_krona_plus_bundle_on_base_is_small(tmp_path: Path, ip_scene: Path) -> None:
    """The KronA+ bundle of ViT-B with a 16-class head: ≤ 0.3 MB plus the spectral transform."""
    from geohsi.adapters import apply_adapter
    from geohsi.bundle import BackboneRecord, BundleMeta, write_bundle
    from geohsi.heads import PatchHead
    from geohsi.models.spectralgpt import build_classifier
    from geohsi.scene import Legend, open_scene
    from geohsi.spectral.transform import SpectralTransform
    from geohsi.splits import make_split

    ds = open_scene(ip_scene)
    model = build_classifier("base", 16)
    apply_adapter(model, "krona+", "qv", lr_ratio=16.0)
    transform = SpectralTransform.fit(ds, "pca", 12, "standard")
    split = make_split(ds["labels"].values, "per-class:5")
    meta = BundleMeta(
        model_config=model.config.to_dict(),
        head=PatchHead(window=15, input_size=32),
        classes=Legend.from_list([{"id": i, "name": f"c{i}", "color": "#000000"} for i in range(1, 17)]),
        adapter={},
        backbone=BackboneRecord("file", {"name": "spectralgpt_base"}, "/x/SpectralGPT+.pth", "0" * 64),
        spectral=transform.to_dict(),
    )
    out = write_bundle(tmp_path / "b", meta, model=model, split=split)
    spectral_bytes = len(json.dumps(transform.to_dict(), indent=1))
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and f.name != "split.npz")
    assert total - spectral_bytes <= 300_000, total
    assert (out / "adapter" / "adapter.safetensors").stat().st_size <= 0.3e6


def test_baseline_matches_split_and_is_reasonable(ip_scene: Path, tmp_path: Path) -> None:
    from geohsi.training.baselines import baseline

    r = baseline(ip_scene, method="svm", split="fraction:0.1", out=tmp_path / "svm.json")
    assert r["n_test"] == 9222  # the same test pixels as `geohsi train --split fraction:0.1 --seed 0`
    assert 0.7 < r["overall_accuracy"] < 0.95
    assert json.loads((tmp_path / "svm.json").read_text())["overall_accuracy"] == pytest.approx(r["overall_accuracy"])
    r2 = baseline(ip_scene, method="rf", split="per-class:5")
    assert r2["n_test"] == 10249 - 80 and 0.2 < r2["overall_accuracy"] < 0.9
    assert np.isfinite(r2["kappa"])


def test_baseline_checks_its_json_and_csv_before_fitting(ip_scene: Path, tmp_path: Path) -> None:
    """--out b.csv had written the JSON as b.csv and the table as b.csv.csv; an existing CSV beside the JSON
    was refused only after the classifier was fitted."""
    from geohsi.errors import OutputError, UsageError
    from geohsi.training.baselines import baseline

    with pytest.raises(
        UsageError, match=r"--out .*b\.csv names the JSON report \(its \.csv is written beside it\); give a \.json path"
    ):
        baseline(ip_scene, method="rf", out=tmp_path / "b.csv")
    (tmp_path / "m.csv").write_text("mine")
    with pytest.raises(OutputError, match=r"m\.csv already exists"):
        baseline(ip_scene, method="rf", split="blocks:200", out=tmp_path / "m.json")  # refused before the split
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


def test_sensor_augmentation_trains_on_random_sensor_views_and_is_recorded(ip_scene: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    opts = {**FAST, "epochs": 1, "spectral": "s2", "backbone": "random"}
    out = train(ip_scene, resolve_train_config(sensor_augment=3, **opts), out=tmp_path / "aug", progress=False, log=lines.append)
    plain = train(ip_scene, resolve_train_config(**opts), out=tmp_path / "plain", progress=False, log=lambda m: None)
    assert any("the scene and 3 random sensors' views" in m for m in lines)
    b, p = load_bundle(out), load_bundle(plain)
    assert b.meta.train_config["sensor_augment"] == 3 and p.meta.train_config["sensor_augment"] == 0
    # Same seed, same init and batches: only the inputs' versions differ, so the weights do.
    assert not torch.equal(b.build_model().head.fc.weight, p.build_model().head.fc.weight)
    from geohsi.inspection import bundle_info

    assert "sensor augmentation: the scene and 3 random sensors" in bundle_info(out)["training"]
    assert "sensor augmentation" not in bundle_info(plain)["training"]


def test_early_stopping_without_validation_keeps_a_trained_model(ip_scene: Path, tmp_path: Path) -> None:
    """With --val-fraction 0 the score is minus the training loss; it started below the initial best
    (-1), so no epoch ever improved and the untrained weights (KronA's zero factor B) were restored."""
    cfg = resolve_train_config(adapter="krona+", **{**FAST, "epochs": 3}, val_fraction=0.0, patience=2)
    notes: list[str] = []
    out = train(ip_scene, cfg, out=tmp_path / "b", progress=False, log=notes.append)
    a = load_file(str(out / "adapter" / "adapter.safetensors"))
    zero_init = [v for k, v in a.items() if k.endswith("krona_B")]
    assert zero_init and all(v.abs().max() > 0 for v in zero_init)  # trained, not the initial zeros
    assert not any("early stop" in n and "validation OA" in n for n in notes), notes


def test_resume_refuses_other_data(ip_scene: Path, tmp_path: Path) -> None:
    """A checkpoint remembers the scenes and labels: resuming on other labels would train on pixels the
    new split tests on."""
    import shutil

    import zarr

    from geohsi.errors import UsageError

    cfg = resolve_train_config(adapter="krona+", **FAST)

    def interrupt(epoch: int, row: dict) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(ip_scene, cfg, out=tmp_path / "r", progress=False, log=lambda m: None, on_epoch_end=interrupt)
    other = shutil.copytree(ip_scene, tmp_path / "indian_pines.zarr")
    labels = zarr.open_group(str(other), mode="r+")["labels"]
    labels[0, 0] = 3 if labels[0, 0] != 3 else 4
    with pytest.raises(UsageError, match=r"made with other options or data \(scenes\)"):  # names what differs
        train(other, cfg, out=tmp_path / "r", resume=True, progress=False, log=lambda m: None)


def test_an_interrupted_runs_checkpoint_is_not_replaced_without_overwrite(ip_scene: Path, tmp_path: Path) -> None:
    from geohsi.errors import UsageError

    cfg = resolve_train_config(adapter="krona+", **FAST)

    def interrupt(epoch: int, row: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(ip_scene, cfg, out=tmp_path / "r", progress=False, log=lambda m: None, on_epoch_end=interrupt)
    checkpoint = tmp_path / ".r.work" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    with pytest.raises(UsageError, match=r"left its checkpoint at .*; pass --resume to continue it, or --overwrite"):
        train(ip_scene, cfg, out=tmp_path / "r", progress=False, log=lambda m: None)
    assert checkpoint.read_bytes() == before
    with pytest.raises(UsageError, match="pass the --out of the interrupted run"):
        train(ip_scene, cfg, resume=True, progress=False, log=lambda m: None)
    assert train(ip_scene, cfg, out=tmp_path / "r", overwrite=True, progress=False, log=lambda m: None).is_dir()


def test_an_interrupted_run_with_the_default_out_names_the_out_that_resumes_it(
    ip_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --out the run's folder is a timestamp: the interruption names it (--resume needs it)."""
    monkeypatch.chdir(tmp_path)
    cfg = resolve_train_config(adapter="krona+", **FAST)

    def interrupt(epoch: int, row: dict) -> None:
        raise KeyboardInterrupt

    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(ip_scene, cfg, progress=False, log=said.append, on_epoch_end=interrupt)
    hint = [m for m in said if "checkpoint is kept" in m]
    assert len(hint) == 1, said
    out = re.search(r"pass --out (\S+) --resume$", hint[0])[1]
    assert train(ip_scene, cfg, out=out, resume=True, progress=False, log=lambda m: None).is_dir()


def test_baseline_takes_the_val_fraction_of_the_train_run_it_matches(ip_scene: Path, tmp_path: Path) -> None:
    """Under blocks:S the validation share decides which blocks are tested; baseline had no --val-fraction, so it
    could not match 'geohsi train --split blocks:32 --val-fraction 0' (3574 test pixels instead of train's)."""
    from geohsi.training.data import load_training_data
    from tests.conftest import run_cli

    data = load_training_data([ip_scene])
    want = {v: data.split("blocks:32", seed=0, val_fraction=v, window=15).test.size for v in (0.0, 0.1)}
    assert want[0.0] != want[0.1]  # the test blocks do depend on it
    for v in ("0", "0.1"):
        r = run_cli(
            "baseline", ip_scene, "--method", "rf", "--split", "blocks:32", "--val-fraction", v, "--out", tmp_path / f"{v}.json"
        )
        assert r.returncode == 0, r.stderr
        report = json.loads((tmp_path / f"{v}.json").read_text())
        assert report["n_test"] == want[float(v)] and report["val_fraction"] == float(v)
    bad = run_cli("baseline", ip_scene, "--val-fraction", "1")
    assert bad.returncode == 2 and "--val-fraction must be in [0, 1), got 1.0" in bad.stderr


def test_runs_latest_follows_a_run_resumed_into_runs(ip_scene: Path, tmp_path: Path) -> None:
    """An interrupted default run is continued with '--out runs/<stamp> --resume' (what its message says); runs/latest
    had stayed on the run before it, so a later 'evaluate runs/latest' used the older model."""
    from tests.conftest import run_cli

    tiny = ("--model", "tiny", "--backbone", "random", "--epochs", "1", "--quiet")
    assert run_cli("train", ip_scene, *tiny, cwd=tmp_path).returncode == 0
    first = (tmp_path / "runs" / "latest").resolve()
    r = run_cli("train", ip_scene, *tiny, "--out", "runs/20990101-000000-kronaplus", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "runs" / "latest").resolve() == tmp_path / "runs" / "20990101-000000-kronaplus" != first
    assert run_cli("train", ip_scene, *tiny, "--out", "elsewhere/b", cwd=tmp_path).returncode == 0
    assert (tmp_path / "runs" / "latest").resolve().name == "20990101-000000-kronaplus"  # outside runs/: left alone
