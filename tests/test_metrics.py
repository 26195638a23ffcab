"""Metric functions against scikit-learn (the oracle) and the report/CSV writers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from geohsi.errors import DataError, OutputError, UsageError
from geohsi.metrics import (
    average_accuracy,
    classification_report,
    confusion_matrix,
    kappa,
    overall_accuracy,
    per_class,
    table_path,
    write_metrics,
)


@st.composite
def label_pairs(draw):
    """Random (y_true, y_pred, labels) with class ids 1..K, some classes possibly never predicted."""
    k = draw(st.integers(2, 7))
    n = draw(st.integers(1, 60))
    ids = st.integers(1, k)
    y_true = np.array(draw(st.lists(ids, min_size=n, max_size=n)))
    # Predictions drawn from a random subset of the classes, so some classes are missing from them.
    allowed = draw(st.lists(st.integers(1, k), min_size=1, max_size=k, unique=True))
    y_pred = np.array(draw(st.lists(st.sampled_from(allowed), min_size=n, max_size=n)))
    return y_true, y_pred, list(range(1, k + 1))


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn's single-label/undefined-kappa notices
@settings(max_examples=150, deadline=None)
@given(label_pairs())
def test_metrics_equal_sklearn(pair):
    y_true, y_pred, labels = pair
    cm = confusion_matrix(y_true, y_pred, labels)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=labels))
    assert overall_accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))

    present = np.unique(y_true)
    sk_aa = skm.recall_score(y_true, y_pred, labels=present, average=None, zero_division=0).mean()
    assert average_accuracy(y_true, y_pred, labels) == pytest.approx(sk_aa)

    sk_kappa = skm.cohen_kappa_score(y_true, y_pred)
    if np.isnan(sk_kappa):  # only when both are the same single class (documented: we give 1.0)
        assert np.unique(np.r_[y_true, y_pred]).size == 1
        assert kappa(y_true, y_pred) == 1.0
    else:
        assert kappa(y_true, y_pred, labels) == pytest.approx(sk_kappa, abs=1e-12)

    pc = per_class(y_true, y_pred, labels)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(pc["precision"], p)
    np.testing.assert_allclose(pc["recall"], r)
    np.testing.assert_allclose(pc["f1"], f)
    np.testing.assert_array_equal(pc["support"], s)
    iou = skm.jaccard_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    np.testing.assert_allclose(pc["iou"], iou)


@pytest.mark.parametrize(
    ("n_major", "n_minor"), [(199_998, 2), (100_000, 1), (10**7, 3)], ids=["two-minor", "one-minor", "ten-million"]
)
def test_kappa_of_a_model_that_always_predicts_the_majority_class_is_zero(n_major: int, n_minor: int) -> None:
    """Chance agreement within 1e-5 of 1 is not perfect agreement: κ is 0 (sklearn), not 1."""
    y_true = np.r_[np.ones(n_major, np.int64), np.full(n_minor, 2)]
    y_pred = np.ones_like(y_true)
    assert kappa(y_true, y_pred, [1, 2]) == 0.0
    assert kappa(y_true, y_pred, [1, 2]) == pytest.approx(skm.cohen_kappa_score(y_true, y_pred), abs=1e-12)
    assert kappa(np.ones(n_major, np.int64), np.ones(n_major, np.int64)) == 1.0  # one class, always right


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_sklearn_large_random(seed):
    rng = np.random.default_rng(seed)
    k = 16
    y_true = rng.integers(1, k + 1, size=5000)
    # 70 % correct, the rest random; class 16 never predicted.
    y_pred = np.where(rng.random(5000) < 0.7, y_true, rng.integers(1, k + 1, size=5000))
    y_pred[y_pred == 16] = 1
    labels = list(range(1, k + 1))
    assert overall_accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert kappa(y_true, y_pred) == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))
    assert average_accuracy(y_true, y_pred) == pytest.approx(skm.recall_score(y_true, y_pred, average=None).mean())
    assert per_class(y_true, y_pred, labels)["precision"][15] == 0.0


def test_labels_order_and_int_and_default():
    y_true = np.array([3, 1, 2, 2])
    y_pred = np.array([3, 2, 2, 1])
    order = [3, 1, 2]
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, order), skm.confusion_matrix(y_true, y_pred, labels=order))
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred), skm.confusion_matrix(y_true, y_pred))
    assert confusion_matrix(y_true, y_pred, 4).shape == (4, 4)
    # 2-D maps are flattened, and integer-valued floats (labels stored as float32) accepted
    assert confusion_matrix(y_true.reshape(2, 2).astype(np.float32), y_pred.reshape(2, 2), 4).sum() == 4


def test_aa_ignores_classes_absent_from_truth():
    y_true = np.array([1, 1, 2, 2])
    y_pred = np.array([1, 1, 2, 3])
    # class 3 is only predicted; AA = mean(1.0, 0.5), not mean(1.0, 0.5, 0.0)
    assert average_accuracy(y_true, y_pred, [1, 2, 3]) == pytest.approx(0.75)


def test_errors():
    with pytest.raises(DataError, match=r"y_pred holds class ids \[9\] outside the labels"):
        confusion_matrix([1, 2], [1, 9], [1, 2])
    with pytest.raises(DataError, match="y_true has 2 values but y_pred has 3"):
        confusion_matrix([1, 2], [1, 2, 2])
    with pytest.raises(DataError, match="no pixels to score"):
        overall_accuracy([], [])
    with pytest.raises(DataError, match="non-integer"):
        confusion_matrix([1.5], [1])
    with pytest.raises(UsageError, match="distinct"):
        confusion_matrix([1], [1], [1, 1])
    with pytest.raises(UsageError, match="2 class names for 3 class ids"):
        classification_report([1], [1], [1, 2, 3], ["a", "b"])


def _report():
    rng = np.random.default_rng(1)
    y_true = rng.integers(1, 4, size=200)
    y_pred = np.where(rng.random(200) < 0.8, y_true, 2)
    return y_true, y_pred, classification_report(y_true, y_pred, [1, 2, 3], ["Corn", "Oats", "Woods"])


def test_classification_report_content():
    y_true, y_pred, rep = _report()
    assert rep["n_test"] == 200
    assert rep["class_names"] == ["Corn", "Oats", "Woods"]
    assert rep["overall_accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert rep["kappa"] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))
    assert rep["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=[1, 2, 3]).tolist()
    f1 = skm.f1_score(y_true, y_pred, labels=[1, 2, 3], average=None)
    assert [rep["per_class"][n]["f1"] for n in rep["class_names"]] == pytest.approx(f1.tolist())
    assert rep["per_class"]["Oats"]["support"] == int((y_true == 2).sum())
    # names as a mapping; an unpredicted, absent class gets zeros, not NaN
    rep2 = classification_report([1, 1], [1, 1], [1, 2], {1: "a", 2: "b"})
    assert rep2["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0, "support": 0}
    json.dumps(rep2, allow_nan=False)


def test_write_metrics_json_and_csv(tmp_path):
    _, _, rep = _report()
    pj, pc = write_metrics(rep, tmp_path / "metrics.json")
    assert pc == tmp_path / "metrics.csv"
    assert json.loads(pj.read_text()) == rep
    rows = list(csv.DictReader(pc.open()))
    assert [r["class_name"] for r in rows[:3]] == ["Corn", "Oats", "Woods"]
    assert float(rows[0]["recall"]) == pytest.approx(rep["per_class"]["Corn"]["recall"])
    summary = {r["class_name"]: r["value"] for r in rows[3:]}
    assert float(summary["overall_accuracy"]) == pytest.approx(rep["overall_accuracy"])
    assert float(summary["kappa"]) == pytest.approx(rep["kappa"])
    assert int(summary["n_test"]) == 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "metrics.json"]  # no temp files


@pytest.mark.parametrize(
    ("name", "table"),
    [("metrics.json", "metrics.csv"), ("m.", "m.csv"), ("run.v2", "run.csv"), (".json", ".json.csv"), ("m.CSV", "m.CSV.csv")],
)
def test_the_table_written_is_the_one_evaluate_names(tmp_path, name, table):
    """evaluate checks and prints ``metrics_paths``; write_metrics must write the CSV under that name."""
    from geohsi.evaluation import metrics_paths

    _, _, rep = _report()
    _, pc = write_metrics(rep, tmp_path / name)
    assert pc == tmp_path / table
    assert pc.is_file()
    assert table_path(f"s3://b/run/{name}") == f"s3://b/run/{table}"
    if not name.lower().endswith(".csv"):  # evaluate refuses a .csv --out
        assert metrics_paths(tmp_path / name)[1] == str(pc)


def test_write_metrics_refuses_to_overwrite(tmp_path):
    _, _, rep = _report()
    (tmp_path / "metrics.csv").write_text("keep me")
    with pytest.raises(OutputError, match="already exists"):
        write_metrics(rep, tmp_path / "metrics.json")
    assert not (tmp_path / "metrics.json").exists()  # nothing half-written
    assert (tmp_path / "metrics.csv").read_text() == "keep me"
    write_metrics(rep, tmp_path / "metrics.json", overwrite=True)
    assert (tmp_path / "metrics.csv").read_text().startswith("class_id,")
    with pytest.raises(UsageError, match="lacks kappa"):
        write_metrics({k: v for k, v in rep.items() if k != "kappa"}, tmp_path / "m2.json")
