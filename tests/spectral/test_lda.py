"""Discriminant channels (geohsi/spectral/lda.py, ``--spectral lda``): the span scikit-learn's LDA finds,
principal components orthogonal to it, signs by rule, and classes told apart where PCA's leading
channels miss them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from geohsi.errors import DataError, ModelError, UsageError
from geohsi.scene import make_scene
from geohsi.spectral.lda import fit_discriminant
from geohsi.spectral.pca import PCAParams, fit_pca
from geohsi.spectral.transform import SpectralTransform

B = 30


def _pixels(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance spectra whose large variance (brightness, bands 0–4) says nothing of the three
    classes, which differ only in two weak bands (20 and 25)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(1, 4, n)
    x = 0.3 + 0.01 * rng.normal(size=(n, B))
    x[:, :5] += rng.normal(size=(n, 1)) * np.linspace(0.05, 0.1, 5)
    x[:, 20] += 0.03 * (y == 2)
    x[:, 25] += 0.03 * (y == 3)
    return x, y


def _scene(x: np.ndarray):
    return make_scene(x.T[:, None, :].astype("float32"), wavelength=np.linspace(420, 2400, B))


def _nearest_mean_accuracy(channels: np.ndarray, y: np.ndarray) -> float:
    means = np.stack([channels[y == c].mean(axis=0) for c in (1, 2, 3)])
    guess = np.argmin(((channels[:, None, :] - means[None]) ** 2).sum(axis=2), axis=1) + 1
    return float((guess == y).mean())


def test_discriminants_span_what_sklearn_finds_and_separate_what_pca_misses() -> None:
    x, y = _pixels()
    pca = fit_pca(_scene(x), 6)
    lda = fit_discriminant(pca, x, y)
    assert lda.discriminants == 2 and lda.channel_names == ["LD1", "LD2", "PC1", "PC2", "PC3", "PC4"]
    comps = np.asarray(lda.components)
    np.testing.assert_allclose(np.linalg.norm(comps, axis=1), 1.0, atol=1e-12)
    # the same plane as scikit-learn's discriminants (principal angles' cosines ≈ 1)
    ref = LinearDiscriminantAnalysis(solver="eigen").fit(x, y).scalings_[:, :2]
    cosines = np.linalg.svd(np.linalg.qr(comps[:2].T)[0].T @ np.linalg.qr(ref)[0], compute_uv=False)
    assert cosines.min() > 0.999, cosines
    # the principal components that follow are orthonormal, orthogonal to the plane, and point as PCA's axes do
    rest = comps[2:]
    np.testing.assert_allclose(rest @ rest.T, np.eye(4), atol=1e-10)
    np.testing.assert_allclose(rest @ comps[:2].T, 0.0, atol=1e-10)
    assert ((rest * np.asarray(pca.components)[:4]).sum(axis=1) > 0).all()
    assert (comps[np.arange(2), np.abs(comps[:2]).argmax(axis=1)] > 0).all()  # PCA's sign rule
    # the discriminant channels tell the classes apart; PCA's two leading channels do not
    centred = x - pca.mean
    assert _nearest_mean_accuracy(centred @ comps[:2].T, y) > 0.9
    assert _nearest_mean_accuracy(centred @ np.asarray(pca.components)[:2].T, y) < 0.6


def test_an_lda_transform_replays_from_its_record_and_needs_labelled_pixels() -> None:
    x, y = _pixels()
    t = SpectralTransform.fit(_scene(x), "lda", 6, labelled=(x, y))
    assert t.reduction == "lda" and t.channel_names[:2] == ["LD1", "LD2"]
    again = SpectralTransform.from_dict(t.to_dict())
    assert again.projection == t.projection and again.reduction == "lda"
    np.testing.assert_array_equal(again.apply(_scene(x)).values, t.apply(_scene(x)).values)
    assert "discriminants" not in fit_pca(_scene(x), 6).to_dict()  # plain PCA records stay as they were
    assert PCAParams.from_dict(fit_pca(_scene(x), 6).to_dict()).discriminants == 0
    with pytest.raises(UsageError, match="labelled training pixels"):
        SpectralTransform.fit(_scene(x), "lda", 6)
    with pytest.raises(DataError, match="at least two classes"):
        fit_discriminant(fit_pca(_scene(x), 6), x, np.ones(len(y), int))
    record = t.to_dict()
    record["reduction"] = "pca"  # a record whose reduction and projection disagree
    with pytest.raises(ModelError, match="does not match its projection"):
        SpectralTransform.from_dict(record)


def test_lda_refuses_training_classes_of_one_spectrum_each_and_a_single_channel() -> None:
    """``--split per-class:1`` leaves no within-class spread: one clear line instead of a singular eigenproblem."""
    x, y = _pixels()
    one_each = np.concatenate([np.flatnonzero(y == c)[:1] for c in (1, 2, 3)])
    with pytest.raises(DataError, match="one spectrum only"):
        fit_discriminant(fit_pca(_scene(x), 6), x[one_each], y[one_each])
    twice = np.concatenate([one_each, one_each])  # repeated pixels have no spread either
    with pytest.raises(DataError, match="one spectrum only"):
        fit_discriminant(fit_pca(_scene(x), 6), x[twice], y[twice])
    spread = np.r_[one_each, np.flatnonzero(y == 1)[1]]  # one class with two different spectra is enough
    assert fit_discriminant(fit_pca(_scene(x), 6), x[spread], y[spread]).discriminants == 2
    with pytest.raises(DataError, match="at least 2 channels"):
        fit_discriminant(fit_pca(_scene(x), 1), x, y)


def test_at_most_half_the_channels_are_discriminants() -> None:
    """Eight classes give seven directions; of six channels three are discriminants, three principal components."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 8, 4000)
    x = 0.3 + 0.01 * rng.normal(size=(4000, B)) + 0.02 * np.eye(B)[y * 3]
    lda = fit_discriminant(fit_pca(_scene(x), 6), x, y)
    assert lda.discriminants == 3 and lda.channel_names == ["LD1", "LD2", "LD3", "PC1", "PC2", "PC3"]
