"""Splits: exact per-class counts, stratified fractions, leak-free spatial blocks, storage, errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from geohsi.errors import DataError, GeohsiWarning, InputFormatError, OutputError, UsageError
from geohsi.scene import add_labels, make_scene, write_scene
from geohsi.splits import SPLIT_FORMS, Split, SplitSpec, make_split, parse_split


@pytest.fixture(scope="module")
def ip_gt(data_dir: Path) -> np.ndarray:
    return scipy.io.loadmat(data_dir / "indian_pines" / "Indian_pines_gt.mat")["indian_pines_gt"]


def _class_sizes(labels: np.ndarray) -> dict[int, int]:
    u, n = np.unique(labels[labels > 0], return_counts=True)
    return dict(zip(u.tolist(), n.tolist(), strict=True))


def _check_partition(split: Split, labels: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Subsets sorted, int64, disjoint, labelled (and valid) only; stored labels are the grid's."""
    flat = labels.reshape(-1)
    all_idx = []
    for s in ("train", "val", "test"):
        idx = split.indices(s)
        assert idx.dtype == np.int64
        assert np.all(np.diff(idx) > 0)
        assert np.all(flat[idx] > 0)
        if valid is not None:
            assert np.all(valid.reshape(-1)[idx])
        np.testing.assert_array_equal(split.labels_of(s), flat[idx])
        all_idx.append(idx)
    cat = np.concatenate(all_idx)
    assert np.unique(cat).size == cat.size


# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("per-class:10", SplitSpec("per-class", 10)),
        (" Per-Class:5 ", SplitSpec("per-class", 5)),
        ("fraction:0.1", SplitSpec("fraction", 0.1)),
        ("blocks:32", SplitSpec("blocks", 32)),
        ("blocks:32,0.3", SplitSpec("blocks", 32, 0.3)),
    ],
)
def test_parse_split_valid_and_round_trips(text, spec):
    assert parse_split(text) == spec
    assert parse_split(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("per-class:0", "N must be >= 1"),
        ("per-class:2.5", "whole number"),
        ("fraction:1.5", "strictly between 0 and 1"),
        ("fraction:0", "strictly between 0 and 1"),
        ("fraction:abc", "must be a number"),
        ("foo", "missing ':'"),
        ("foo:3", "unknown kind 'foo'"),
        ("blocks:-3", "block size S must be a whole number"),
        ("blocks:32,2", "strictly between 0 and 1"),
        ("", "missing ':'"),
    ],
)
def test_parse_split_invalid_one_line_with_forms(text, why):
    with pytest.raises(UsageError) as e:
        parse_split(text)
    msg = str(e.value)
    assert "\n" not in msg
    assert why in msg and repr(text) in msg
    assert msg.endswith(SPLIT_FORMS)


# -- per-class and fraction on the real Indian Pines ground truth --------------------------------


def test_per_class_10_counts_exact_on_indian_pines(ip_gt):
    sizes = _class_sizes(ip_gt)
    split = make_split(ip_gt, "per-class:10", seed=3)
    _check_partition(split, ip_gt)
    c = split.counts()
    assert sorted(c["train"]) == list(range(1, 17))
    for k, n in sizes.items():
        assert c["train"][k] + c["val"][k] == 10  # the few-shot budget includes validation
        assert c["val"][k] == 1  # val_fraction 0.1 of 10, at least one per class
        assert c["test"][k] == n - 10  # every other labelled pixel is scored
    assert split.spec == "per-class:10" and split.seed == 3 and split.shape == (145, 145)


def test_fraction_is_stratified_on_indian_pines(ip_gt):
    sizes = _class_sizes(ip_gt)
    split = make_split(ip_gt, "fraction:0.1", seed=0, val_fraction=0.2)
    _check_partition(split, ip_gt)
    c = split.counts()
    for k, n in sizes.items():
        side = c["train"][k] + c["val"][k]
        assert abs(side - round(0.1 * n)) <= 1
        assert side >= 1 and c["test"][k] >= 1
        assert c["val"][k] >= 1 or side < 2
        assert c["train"][k] >= 1
    assert c["train"][9] + c["val"][9] == 2  # Oats: 20 pixels


def test_per_class_too_many_names_every_short_class(ip_gt):
    names = {7: "Grass-pasture-mowed", 9: "Oats"}
    with pytest.raises(DataError) as e:
        make_split(ip_gt, "per-class:30", class_names=names)
    msg = str(e.value)
    assert "\n" not in msg
    assert "class 7 (Grass-pasture-mowed) has 28" in msg and "class 9 (Oats) has 20" in msg
    assert "class 1 " not in msg  # Alfalfa has 46: not short
    assert "per-class:19" in msg  # a value that works
    # N equal to a class's size leaves it nothing to test: refused too
    with pytest.raises(DataError, match=r"class 9 has 20"):
        make_split(ip_gt, "per-class:20")


def test_seeds_reproduce_and_differ(ip_gt):
    for spec in ("per-class:10", "fraction:0.05", "blocks:32"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # blocks on Indian Pines warns about confined classes
            a = make_split(ip_gt, spec, seed=7)
            b = make_split(ip_gt, spec, seed=7)
            c = make_split(ip_gt, spec, seed=8)
        assert a == b
        assert not np.array_equal(a.train, c.train)


def test_valid_mask_excludes_pixels(ip_gt):
    valid = np.ones(ip_gt.shape, bool)
    valid[:, :40] = False
    split = make_split(ip_gt, "fraction:0.2", valid=valid)
    _check_partition(split, ip_gt, valid)
    n_used = sum(split.indices(s).size for s in ("train", "val", "test"))
    assert n_used == int(((ip_gt > 0) & valid).sum())


def test_val_fraction_zero_and_float_labels():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(20, 20)).astype(np.float32)
    labels[0, 0] = np.nan  # NaN counts as unlabelled
    split = make_split(labels, "per-class:5", val_fraction=0.0)
    assert split.val.size == 0
    assert all(n == 5 for n in split.counts()["train"].values())
    assert 0 not in split.indices("test")


def test_data_errors():
    with pytest.raises(DataError, match="no labelled pixels"):
        make_split(np.zeros((5, 5), np.uint8), "fraction:0.5")
    labels = np.zeros((5, 5), np.uint8)
    labels[0, :3] = 1
    labels[4, 4] = 2
    with pytest.raises(DataError, match=r"class 2 has 1 labelled pixel"):
        make_split(labels, "fraction:0.5")
    with pytest.raises(DataError, match="negative class id"):
        make_split(-labels.astype(np.int16), "fraction:0.5")
    with pytest.raises(UsageError, match="valid mask has shape"):
        make_split(labels, "fraction:0.5", valid=np.ones((4, 4), bool))
    with pytest.raises(UsageError, match="val_fraction"):
        make_split(labels, "fraction:0.5", val_fraction=1.0)


# -- spatial blocks -----------------------------------------------------------------------------


def _field_map(seed: int, h: int = 48, w: int = 44, field: int = 6, k: int = 5) -> np.ndarray:
    """Fields of ``field``×``field`` pixels with random classes, some left unlabelled."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, k + 1, size=(-(-h // field), -(-w // field)))
    return np.kron(coarse, np.ones((field, field), int))[:h, :w]


@pytest.mark.parametrize(("seed", "window", "size", "gap"), [(0, 5, 12, None), (1, 7, 12, None), (2, 5, 10, 4), (3, 1, 4, None)])
def test_blocks_no_train_pixel_near_held_out_brute_force(seed, window, size, gap):
    labels = _field_map(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        split = make_split(labels, f"blocks:{size}", seed=seed, window=window, gap=gap)
    _check_partition(split, labels)
    g = window // 2 if gap is None else gap
    assert split.gap == g
    tr = np.stack(np.unravel_index(split.train, labels.shape), 1)
    held = np.stack(np.unravel_index(np.r_[split.val, split.test], labels.shape), 1)
    assert tr.size and split.test.size
    cheb = np.abs(tr[:, None, :] - held[None, :, :]).max(-1)
    assert cheb.min() > g  # no training window contains a validation or test pixel

    # whole blocks go to one side
    side_of_block: dict[tuple[int, int], str] = {}
    for s in ("train", "val", "test"):
        for r, c in zip(*np.unravel_index(split.indices(s), labels.shape), strict=True):
            assert side_of_block.setdefault((r // size, c // size), s) == s


def test_a_blocks_split_of_sparse_labels_over_large_scenes_needs_memory_for_the_labels_only():
    """Eight 60,000² scenes with 4,000 labelled pixels: the gap is found among the labelled pixels, so
    no grid of the scenes' 2.9·10¹⁰ pixels is built (the dilation of one took 29 GB); the result
    equals a brute-force check of the gap."""
    from geohsi.splits import LabelledPixels, SceneLayout

    layout = SceneLayout.stacked([(60_000, 60_000)] * 8, align=64, pad=15)
    rng = np.random.default_rng(0)
    rows = np.concatenate([o + rng.integers(0, 60_000, 500) for o in layout.origins])
    idx = np.unique(rows * layout.width + rng.integers(0, 60_000, rows.size))
    near = idx[:50, None] + np.arange(1, 4)  # a few labelled clusters, so the gap has pixels to drop
    idx = np.unique(np.r_[idx, near.reshape(-1)])
    split = make_split(LabelledPixels(idx, rng.integers(1, 4, idx.size), layout), "blocks:64", seed=0, window=7)
    tr = np.stack(np.divmod(split.train, layout.width), 1)
    held = np.stack(np.divmod(np.r_[split.val, split.test], layout.width), 1)
    assert tr.size and held.size and split.train.size + split.val.size + split.test.size < idx.size
    assert all(np.abs(held - t).max(1).min() > 3 for t in tr)


def test_blocks_only_drop_train_pixels_near_held_out():
    labels = _field_map(5)
    split = make_split(labels, "blocks:12", seed=5, window=5)
    flat = labels.reshape(-1)
    used = np.r_[split.train, split.val, split.test]
    dropped = np.setdiff1d(np.flatnonzero(flat > 0), used)
    held = np.stack(np.unravel_index(np.r_[split.val, split.test], labels.shape), 1)
    d = np.stack(np.unravel_index(dropped, labels.shape), 1)
    # every dropped pixel was dropped for a reason: it lies within the gap of a held-out pixel
    assert np.abs(d[:, None, :] - held[None, :, :]).max(-1).min(1).max() <= 2


def test_blocks_on_indian_pines_are_spatial_and_warn_about_confined_classes(ip_gt):
    with pytest.warns(GeohsiWarning, match=r"blocks:32: no .* pixels for class"):
        split = make_split(ip_gt, "blocks:32", seed=0, window=15)
    _check_partition(split, ip_gt)
    assert split.classes == tuple(range(1, 17))
    tr = np.stack(np.unravel_index(split.train, ip_gt.shape), 1)
    te = np.stack(np.unravel_index(split.test, ip_gt.shape), 1)
    assert np.abs(tr[:, None, :] - te[None, :, :]).max(-1).min() > 7
    n = split.train.size + split.val.size
    assert 0.25 < n / (n + split.test.size) < 0.75  # about half on the training side


def test_blocks_smaller_than_gap_span_refused():
    with pytest.raises(UsageError, match=r"use blocks:S with S >= 15"):
        make_split(_field_map(0), "blocks:8", window=15)


# -- storage ------------------------------------------------------------------------------------


def test_save_load_and_dict_round_trip(tmp_path, ip_gt):
    split = make_split(ip_gt, "per-class:5", seed=11)
    p = split.save(tmp_path / "split.npz")
    assert [q.name for q in tmp_path.iterdir()] == ["split.npz"]
    assert Split.load(p) == split
    assert Split.from_dict(json.loads(json.dumps(split.to_dict()))) == split
    with pytest.raises(OutputError, match="already exists"):
        split.save(p)
    split.save(p, overwrite=True)
    other = make_split(ip_gt, "per-class:5", seed=12)
    assert other != split


def test_load_rejects_bad_files(tmp_path, ip_gt):
    with pytest.raises(InputFormatError, match="not found"):
        Split.load(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputFormatError, match="not a geohsi split file"):
        Split.load(tmp_path / "junk.npz")
    d = make_split(ip_gt, "per-class:5").to_dict()
    d["test"] = d["test"][:-1] + d["train"][:1]  # overlap (and unsorted)
    with pytest.raises(InputFormatError):
        Split.from_dict(d)
    d = make_split(ip_gt, "per-class:5").to_dict()
    del d["val"]
    with pytest.raises(InputFormatError, match="lacks val"):
        Split.from_dict(d)


def test_verify_detects_another_scene(ip_gt):
    split = make_split(ip_gt, "per-class:5")
    split.verify(ip_gt)
    changed = ip_gt.copy()
    r, c = np.unravel_index(split.test[0], ip_gt.shape)
    changed[r, c] = 1 if changed[r, c] != 1 else 2
    with pytest.raises(DataError, match=f"first at row {r} col {c}"):
        split.verify(changed, source="other.zarr")
    with pytest.raises(DataError, match="has shape"):
        split.verify(ip_gt[:100])


def test_blocks_that_leave_no_test_pixel_are_refused_before_training(ip_gt, tmp_path):
    """One 200-px block covers Indian Pines: the run had trained every epoch, then failed to score and
    left its checkpoint behind (a plain rerun was then refused); baseline failed with exit 70."""
    from tests.conftest import run_cli

    with pytest.raises(DataError, match=r"leaves no test pixels \(10249 train / 0 val / 0 test pixels\); use smaller blocks"):
        make_split(ip_gt, "blocks:200", seed=0)
    scene = tmp_path / "ip.zarr"
    write_scene(add_labels(make_scene(np.zeros((4, *ip_gt.shape), "uint16"), wavelength=[450, 550, 650, 850]), ip_gt), scene)
    for args in (("train", scene, "--model", "tiny", "--backbone", "random", "--out", tmp_path / "run"),
                 ("baseline", scene, "--method", "rf", "--out", tmp_path / "b.json")):  # fmt: skip
        r = run_cli(*args, "--split", "blocks:200")
        assert r.returncode == 9 and r.stderr.count("\n") == 1 and "leaves no test pixels" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ip.zarr"]
