"""Dense-mode training: sparse targets, the loss on training pixels only, blocks splits, the dense bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from geohsi.bundle import load_bundle
from geohsi.evaluation import evaluate
from geohsi.heads.augment import dihedral
from geohsi.heads.dense import IGNORE_INDEX, TileSampler, cut_tiles, dense_loss, held_out_mask
from geohsi.models.decoder import SpectralGPTSegmenter, build_segmenter
from geohsi.splits import make_split
from geohsi.training.config import resolve_train_config
from geohsi.training.finetune import train
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def ip_labels(data_dir) -> np.ndarray:
    import scipy.io

    return scipy.io.loadmat(data_dir / "indian_pines" / "Indian_pines_gt.mat")["indian_pines_gt"].astype(np.int64)


def test_targets_carry_training_labels_only(ip_labels: np.ndarray) -> None:
    split = make_split(ip_labels, "fraction:0.1", seed=0, val_fraction=0.1)
    h, w = ip_labels.shape
    sampler = TileSampler((h, w), 32, split.train, split.train_labels - 1)
    origins = sampler.epoch_origins(0, 0)
    t = sampler.targets(origins)
    train_mask = np.zeros(h * w, bool)
    train_mask[split.train] = True
    for (y, x), tt in zip(origins, t, strict=True):
        tm = train_mask.reshape(h, w)[y : y + 32, x : x + 32]
        assert (tt[~tm] == IGNORE_INDEX).all()  # unlabelled, validation and test pixels are ignored
        assert (tt[tm] == ip_labels[y : y + 32, x : x + 32][tm] - 1).all()
    # one epoch's tiles cover every training pixel
    covered = np.zeros((h, w), bool)
    for y, x in origins:
        covered[y : y + 32, x : x + 32] = True
    assert covered.reshape(-1)[split.train].all()
    assert len(origins) < len(split.train) / 5  # tiles are shared by many training pixels


def test_loss_ignores_every_pixel_but_training_pixels(ip_labels: np.ndarray) -> None:
    split = make_split(ip_labels, "fraction:0.1", seed=0, val_fraction=0.1)
    sampler = TileSampler(ip_labels.shape, 32, split.train, split.train_labels - 1)
    o = sampler.epoch_origins(0, 0)[:4]
    y = torch.from_numpy(sampler.targets(o))
    torch.manual_seed(0)
    logits = torch.randn(4, 16, 32, 32, requires_grad=True)
    loss = dense_loss(logits, y)
    loss.backward()
    ignored = (y == IGNORE_INDEX).unsqueeze(1).expand_as(logits)
    assert (logits.grad[ignored] == 0).all() and logits.grad[~ignored].abs().sum() > 0
    # perturbing the labels of test / unlabelled pixels cannot change the targets: the ground truth
    # there is replaced by noise and a new sampler built from the same split gives the same loss
    noisy = ip_labels.copy()
    others = np.setdiff1d(np.arange(noisy.size), split.train)
    noisy.reshape(-1)[others] = np.random.default_rng(1).integers(0, 17, others.size)
    s2 = TileSampler(ip_labels.shape, 32, split.train, noisy.reshape(-1)[split.train] - 1)
    assert dense_loss(logits, torch.from_numpy(s2.targets(o))).item() == loss.item()
    # ... while a training label does change it
    y3 = y.clone()
    i = torch.nonzero(y3 != IGNORE_INDEX)[0]
    y3[tuple(i)] = (y3[tuple(i)] + 1) % 16
    assert dense_loss(logits, y3).item() != loss.item()


@pytest.mark.filterwarnings("ignore:split blocks")
def test_blocks_split_keeps_held_out_blocks_out_of_every_training_tile(ip_labels: np.ndarray) -> None:
    split = make_split(ip_labels, "blocks:24", seed=0, val_fraction=0.1, window=15)
    h, w = ip_labels.shape
    forbidden = held_out_mask(split)
    assert forbidden.reshape(-1)[split.test].all() and forbidden.reshape(-1)[split.val].all()
    assert not forbidden.reshape(-1)[split.train].any()
    sampler = TileSampler((h, w), 32, split.train, split.train_labels - 1, forbidden)
    held = np.zeros(h * w, bool)
    held[np.concatenate([split.test, split.val])] = True
    n_tiles = 0
    for epoch in range(5):
        for y, x in sampler.epoch_origins(0, epoch):
            assert 0 <= y <= h - 32 and 0 <= x <= w - 32
            assert not forbidden[y : y + 32, x : x + 32].any()
            assert not held.reshape(h, w)[y : y + 32, x : x + 32].any()
            n_tiles += 1
    assert n_tiles > 0 and sampler.coverable.sum() > 0
    assert held_out_mask(make_split(ip_labels, "per-class:5", seed=0)) is None


@pytest.mark.parametrize("with_forbidden", [False, True])
def test_every_pixel_can_be_covered_by_exactly_the_allowed_tiles_that_contain_it(with_forbidden: bool) -> None:
    # Brute force: a tile origin is a candidate for pixel (r, c) when its tile contains (r, c) and no
    # forbidden pixel. Widths that are not multiples of 8 check the bit-packed origins at row ends.
    rng = np.random.default_rng(4)
    h, w, t = 29, 37, 6
    forbidden = rng.random((h, w)) < 0.02 if with_forbidden else None
    idx = np.flatnonzero(rng.random(h * w) < 0.3) if forbidden is None else np.flatnonzero(~forbidden.reshape(-1))[::3]
    sampler = TileSampler((h, w), t, idx, np.zeros(idx.size, np.int64), forbidden)
    ow = w - t + 1
    for k, flat in enumerate(sampler.train_idx):
        r, c = divmod(int(flat), w)
        expected = [
            y * ow + x
            for y in range(max(0, r - t + 1), min(r, h - t) + 1)
            for x in range(max(0, c - t + 1), min(c, w - t) + 1)
            if forbidden is None or not forbidden[y : y + t, x : x + t].any()
        ]
        assert sampler._candidates(r, c).tolist() == expected
        assert sampler.coverable[k] == bool(expected)


def test_augmentation_moves_tiles_and_targets_together() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    y = x[:, 0].long()  # targets equal to channel 0: any mismatch would show
    xa, ya = dihedral(x, torch.Generator().manual_seed(3), y)
    assert (xa[:, 0].long() == ya).all()
    assert not torch.equal(xa, x)  # seed 3 draws a non-identity transform for at least one tile
    assert sorted(xa.flatten().tolist()) == sorted(x.flatten().tolist())


def test_a_few_steps_of_dense_training_on_a_real_crop_lower_the_loss(ip_labels: np.ndarray, data_dir) -> None:
    import scipy.io

    cube = scipy.io.loadmat(data_dir / "indian_pines" / "Indian_pines_corrected.mat")["indian_pines_corrected"]
    crop, lab = cube[:64, :64].astype(np.float32), ip_labels[:64, :64]
    x = crop.reshape(-1, crop.shape[2])
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    z = x @ np.linalg.svd(x, full_matrices=False)[2][:12].T
    chans = ((z - z.mean(0)) / z.std(0)).T.reshape(12, 64, 64).astype(np.float32)
    idx = np.flatnonzero(lab.reshape(-1) > 0)[::3]
    classes = np.unique(lab.reshape(-1)[idx])
    tgt = np.searchsorted(classes, lab.reshape(-1)[idx])
    sampler = TileSampler((64, 64), 32, idx, tgt)
    torch.manual_seed(0)
    m = build_segmenter("tiny", len(classes))
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    o = sampler.epoch_origins(0, 0)
    xb, yb = torch.from_numpy(cut_tiles(chans, o, 32)), torch.from_numpy(sampler.targets(o))
    losses = []
    for _ in range(12):
        loss = dense_loss(m(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_dense_bundle_trains_round_trips_and_evaluates(ip_scene: Path, tmp_path: Path) -> None:
    cfg = resolve_train_config(adapter="lora", model="tiny", head="dense", epochs=3, batch_size=8, split="per-class:10", lr=3e-3)
    out = train(ip_scene, cfg, out=tmp_path / "dense", progress=False, log=lambda m: None)
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["model"]["head"] == "dense" and meta["model"]["dense"]["tile"] == 32
    assert meta["model"]["dense"]["overlap"] == 8 and meta["train_config"]["head"] == "dense"
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    b = load_bundle(out)
    assert b.head.name == "dense" and (b.head.tile, b.head.overlap) == (32, 8)
    model = b.build_model()
    assert isinstance(model, SpectralGPTSegmenter)
    assert model(torch.zeros(1, 12, 32, 32)).shape == (1, 16, 32, 32)
    r = evaluate(out, ip_scene)
    assert r["n_test"] == 10249 - 16 * 10
    assert r["overall_accuracy"] == pytest.approx(meta["metrics"]["overall_accuracy"], abs=1e-12)
    assert r["overall_accuracy"] > 1 / 16 * 1.5  # learned something beyond chance in 3 short epochs


def test_head_dense_through_the_cli(ip_scene: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    r = run_cli(
        "train",
        ip_scene,
        "--head",
        "dense",
        "--adapter",
        "krona+",
        "--epochs",
        1,
        "--batch-size",
        16,
        "--split",
        "per-class:5",
        "--tile-overlap",
        16,
        "--context-dropout",
        0.5,
        "--out",
        bundle,
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["model"]["head"] == "dense" and meta["model"]["dense"]["overlap"] == 16
    assert meta["train_config"]["context_dropout"] == 0.5  # the run records it; the model built for maps never drops
    assert load_bundle(bundle).build_model().head.context_dropout == 0
    r = run_cli("evaluate", bundle, ip_scene)
    assert r.returncode == 0, r.stderr
    r = run_cli("train", ip_scene, "--head", "segment", "--out", tmp_path / "c")
    assert r.returncode != 0 and "segment" in r.stderr
