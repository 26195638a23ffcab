"""Training configuration: one RunConfig nested by TrainConfig and PretrainConfig, flat outside Python."""

from __future__ import annotations

import re

import pytest

from geohsi.errors import GeohsiWarning, UsageError
from geohsi.training.config import PretrainConfig, RunConfig, TrainConfig, resolve_train_config

#: the flat option names every bundle's train_config and every config file have used
TRAIN_KEYS = {
    "adapter",
    "sensor_augment",
    "loader",
    "model",
    "backbone",
    "spectral",
    "n_components",
    "norm",
    "window",
    "input_size",
    "split",
    "val_fraction",
    "epochs",
    "batch_size",
    "lr",
    "lr_ratio",
    "weight_decay",
    "warmup_epochs",
    "rank",
    "alpha",
    "targets",
    "head_hidden",
    "head",
    "tile_overlap",
    "context_dropout",
    "precision",
    "device",
    "grad_clip",
    "patience",
    "augment",
    "seed",
    "extra",
}
PRETRAIN_KEYS = {
    "model",
    "spectral",
    "n_components",
    "norm",
    "window",
    "input_size",
    "steps",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_steps",
    "mask_ratio",
    "norm_pix_loss",
    "decoder_dim",
    "decoder_depth",
    "decoder_heads",
    "augment",
    "grad_clip",
    "holdout_per_scene",
    "eval_every",
    "checkpoint_every",
    "seed",
    "precision",
    "device",
}


def test_both_configs_nest_the_shared_run_options() -> None:
    t, p = TrainConfig(), PretrainConfig()
    assert isinstance(t.run, RunConfig) and isinstance(p.run, RunConfig)
    assert (p.run.batch_size, p.run.lr, p.run.weight_decay) == (256, 1e-3, 0.05)  # pretraining's own defaults


def test_dense_is_the_default_head_and_each_head_brings_its_protocol() -> None:
    dense = TrainConfig()
    assert dense.head == "dense" and (dense.epochs, dense.run.batch_size, dense.run.lr, dense.run.weight_decay) == (
        150,
        8,
        2e-3,
        0.01,
    )
    assert resolve_train_config(adapter="full").run.lr == 5e-4  # full fine-tuning: the results table's lr
    patch = resolve_train_config(head="patch")
    assert (patch.epochs, patch.run.batch_size, patch.run.lr) == (30, 64, 1e-3)  # the paper's protocol
    assert resolve_train_config(head="patch", epochs=2, lr=3e-3).to_dict()["lr"] == 3e-3  # given values win


def test_the_flat_form_is_unchanged_and_round_trips() -> None:
    cfg = resolve_train_config(adapter="lora", lr=2e-3, epochs=3, head="dense", tile_overlap=4)
    d = cfg.to_dict()
    assert set(d) == TRAIN_KEYS and d["lr"] == 2e-3 and cfg.run.lr == 2e-3
    assert TrainConfig.from_dict(d) == cfg
    assert TrainConfig.from_dict({"run": {"lr": 2e-3}, "adapter": "lora"}).run.lr == 2e-3
    p = PretrainConfig.from_dict({"steps": 5, "batch_size": 8})
    assert set(p.to_dict()) == PRETRAIN_KEYS and p.run.batch_size == 8 and p.run.weight_decay == 0.05
    assert PretrainConfig.from_dict(p.to_dict()) == p


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"model": "huge"}, "unknown SpectralGPT config 'huge'; choose one of tiny, small, base"),
        ({"lr": -1}, "--lr must be positive"),
        ({"window": 4}, "--window must be a positive odd"),
        ({"input_size": 12}, "--input-size must be a positive multiple of 8 pixels"),
        ({"input_size": 0}, "--input-size must be a positive multiple of 8 pixels"),
        ({"adapter": "dora"}, "unknown adapter 'dora'"),
        ({"head": "voxel"}, "unknown --head 'voxel'"),
        ({"tile_overlap": 40}, "--tile-overlap 40 must be in"),
        ({"learning_rate": 1.0}, "unknown training option"),
        ({"sensor_augment": 4}, "--sensor-augment needs --spectral s2"),
        ({"sensor_augment": -1, "spectral": "s2"}, "--sensor-augment must be ≥ 0"),
        ({"loader": "disk"}, "unknown --loader 'disk'; use auto, memory or stream"),
        ({"context_dropout": 1.0}, r"--context-dropout must be in \[0, 1\)"),
        ({"context_dropout": 0.5, "head": "patch"}, "--context-dropout is for the dense head"),
    ],
)
def test_each_bad_option_is_one_usage_error_naming_the_flag(options: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        resolve_train_config(**options)


def test_lists_nested_run_options_and_long_whole_numbers() -> None:
    assert resolve_train_config(targets=["attn.q", "mlp.fc1"]).targets == "attn.q,mlp.fc1"
    assert resolve_train_config(seed="12345678901234567891").run.seed == 12345678901234567891  # not through a float
    assert TrainConfig.from_dict({"run": {"batch-size": 4}}).run.batch_size == 4
    with pytest.raises(UsageError, match="unknown training option.*batchsize"):
        TrainConfig.from_dict({"run": {"batchsize": 4}})


def test_numpy_numbers_and_booleans_are_options_like_python_ones() -> None:
    import numpy as np

    cfg = resolve_train_config(epochs=np.int64(20), lr=np.float32(0.5), seed=np.int32(3), augment=np.bool_(False))
    assert (cfg.epochs, cfg.run.lr, cfg.run.seed, cfg.run.augment) == (20, 0.5, 3, False)
    assert type(cfg.epochs) is int and type(cfg.run.augment) is bool
    with pytest.raises(UsageError, match="training option epochs must be a whole number or null, not True"):
        resolve_train_config(epochs=True)


def test_config_files_read_as_users_write_them(tmp_path) -> None:
    """PyYAML reads ``1e-3`` (no dot) as text: it is the learning rate all the same."""
    y = tmp_path / "run.yaml"
    y.write_text("adapter: lora\nlr: 1e-3\nepochs: 20\naugment: false\nbackbone: weights/b.safetensors\nrank: 4.0\n")
    cfg = resolve_train_config(y)
    assert (cfg.run.lr, cfg.epochs, cfg.run.augment, cfg.backbone, cfg.rank) == (1e-3, 20, False, "weights/b.safetensors", 4)
    assert type(cfg.rank) is int and type(cfg.epochs) is int and type(cfg.run.lr) is float
    t = tmp_path / "run.toml"
    t.write_text("lr = 1e-3\nepochs = 20\n")
    assert resolve_train_config(t).run.lr == 1e-3


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("epochs: lots\n", "training option epochs must be a whole number or null, not 'lots'"),
        ("rank: 2.5\n", "training option rank must be a whole number, not 2.5"),
        ("augment: maybe\n", "training option augment must be true or false, not 'maybe'"),
        ("adapter: 3\n", "training option adapter must be text, not 3"),
        ("lr: fast\n", "training option lr must be a number or null, not 'fast'"),
    ],
)
def test_a_config_value_of_another_type_is_one_usage_error_naming_the_option(tmp_path, text: str, match: str) -> None:
    y = tmp_path / "run.yaml"
    y.write_text(text)
    with pytest.raises(UsageError, match=match):
        resolve_train_config(y)


def test_pretraining_checks_its_own_options() -> None:
    with pytest.raises(UsageError, match="--steps must be at least 1"):
        PretrainConfig.from_dict({"steps": 0})
    with pytest.raises(UsageError, match="unknown pretraining option"):
        PretrainConfig.from_dict({"epochs": 3})


def test_options_beside_a_train_section_are_refused(tmp_path) -> None:
    """With a train section, a flat option or a typo beside it was silently ignored."""
    from geohsi.errors import UsageError

    y = tmp_path / "run.yaml"
    y.write_text("train:\n  epochs: 5\nlr: 0.5\nepochz: 3\n")
    with pytest.raises(UsageError, match=r"options outside its 'train' section \(lr, epochz\)"):
        resolve_train_config(y)
    t = tmp_path / "run.toml"
    t.write_text("[train]\nepochs = 5\n[pretrain]\nsteps = 10\n")
    with pytest.raises(UsageError, match=r"outside its 'train' section \(pretrain\)"):
        resolve_train_config(t)
    y.write_text("train:\n  epochs: 5\n  lr: 0.5\n")
    assert (resolve_train_config(y).epochs, resolve_train_config(y).run.lr) == (5, 0.5)


def test_a_negative_patience_is_refused() -> None:
    """--patience -1 had stopped training after the first epoch."""
    with pytest.raises(UsageError, match=re.escape("--patience must be 0 (off) or a number of epochs, got -1")):
        resolve_train_config(patience=-1)


@pytest.mark.parametrize(
    ("options", "message", "field", "default"),
    [
        ({"adapter": "krona+", "rank": 64}, "rank 64 is ignored: krona+ has no rank", "rank", 8),
        ({"adapter": "full", "alpha": 2.0}, "alpha 2.0 is ignored: full has no alpha", "alpha", None),
        ({"adapter": "lora", "lr_ratio": 99.0}, "lr_ratio 99.0 is ignored: lora has no λ", "lr_ratio", 16.0),
        ({"head": "patch", "tile_overlap": 4}, "tile_overlap 4 is ignored: the patch head has no tiles", "tile_overlap", None),
        ({"head": "dense", "head_hidden": 256}, "head_hidden 256 is ignored: the dense head", "head_hidden", 0),
    ],
)
def test_options_a_run_would_ignore_are_warned_about_and_not_recorded(options, message, field, default) -> None:
    """Each had been accepted in silence and recorded in bundle.json as if used. Warned, not refused: a
    config file shared between methods carries them (a flag switching the method overrides the file)."""
    with pytest.warns(GeohsiWarning, match=re.escape(message)):
        cfg = resolve_train_config(**options)
    assert getattr(cfg, field) == default and cfg.to_dict()[field] == default


def test_a_shared_config_file_with_a_method_flag_trains(tmp_path) -> None:
    y = tmp_path / "recipe.yaml"
    y.write_text("adapter: lora\nrank: 16\nalpha: 32\n")
    with pytest.warns(GeohsiWarning) as said:
        cfg = resolve_train_config(y, adapter="krona+")
    assert [str(w.message).split(":")[0] for w in said] == ["rank 16 is ignored", "alpha 32.0 is ignored"]
    assert (cfg.adapter, cfg.rank, cfg.alpha) == ("krona+", 8, None)


def test_options_that_apply_are_kept() -> None:
    cfg = resolve_train_config(adapter="lokr", rank=4, alpha=8.0, patience=3)
    assert (cfg.rank, cfg.alpha, cfg.patience) == (4, 8.0, 3)
    assert resolve_train_config(adapter="krona+", lr_ratio=4.0).lr_ratio == 4.0
    assert resolve_train_config(head="patch", head_hidden=64).head_hidden == 64
