"""A supervised band reduction: Fisher's discriminant directions of the training pixels, then principal
components orthogonal to them (``--spectral lda``).

PCA keeps the directions in which the spectra vary most; over a scene these are brightness and
broad shape, while what separates two land-cover classes may be a small feature elsewhere in the
spectrum. With labelled training pixels, linear discriminant analysis (Fisher 1936; Hastie,
Tibshirani & Friedman, *The Elements of Statistical Learning*, §4.3.3) finds the directions ``w``
that maximise the between-class scatter ``wᵀ S_b w`` against the within-class scatter ``wᵀ S_w w``:
the generalised eigenvectors of ``S_b w = λ S_w w``. There are at most C − 1 of them for C
classes. The reduction's first ``m = min(C − 1, k // 2)`` channels are these directions (largest λ
first); the remaining ``k − m`` channels — at least half of them — are the scene's principal
components with the span of the discriminants taken out (Gram–Schmidt, in PCA's order), so the
channels still carry the spectra's main variance. Why at most half (:data:`MAX_SHARE`): on Indian
Pines (16 classes) twelve discriminant channels and no principal component lost 2–4 points of OA to
PCA (seed 0: 95.71 against 97.70 % on ``fraction:0.1``, 76.04 against 79.89 % on ``per-class:10``);
six and six scored 97.96 and 79.33 %, and over seeds 0–2 97.63 and 80.96 % against PCA's 97.67 and
80.08 % (KronA+, ``small`` dense, 150 epochs; docs/training.md). Signs: a discriminant's largest loading is positive (PCA's rule); a remaining
component points the way of the principal axis it comes from, so that channel keeps the meaning the
PCA-pretrained backbone learned for it as far as it can.

``S_w`` is estimated from the training pixels alone and has as many dimensions as good bands
(100–450), so it is regularised towards a multiple of the identity (a ridge of
:data:`RIDGE` × its mean eigenvalue), which keeps the problem well posed when a class has fewer
pixels than there are bands.

The result is an affine map like PCA's (:class:`~geohsi.spectral.pca.PCAParams` with
``discriminants = m``): a bundle replays it on any scene of the sensor. Only the discriminant
directions use labels, and only the training pixels' (the split's validation and test pixels never
reach them). The centre, the principal components and the channel normaliser are fitted like
``--spectral pca``'s: on the scenes' pixels without their labels, held-out tiles included.

.. versionadded:: 0.3
"""

from __future__ import annotations

import dataclasses

import numpy as np

from geohsi.errors import DataError
from geohsi.spectral.pca import PCAParams, _fix_signs, _frozen

#: ridge added to the within-class scatter, as a share of its mean eigenvalue.
RIDGE = 1e-3
#: at most this share of the channels are discriminants; the others stay principal components.
MAX_SHARE = 0.5


def _scatter(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(S_w, S_b)``: within- and between-class scatter of the rows of ``x``, per pixel."""
    mu = x.mean(axis=0)
    b = x.shape[1]
    sw, sb = np.zeros((b, b)), np.zeros((b, b))
    for c in np.unique(labels):
        xc = x[labels == c]
        d = xc.mean(axis=0) - mu
        centred = xc - xc.mean(axis=0)
        sw += centred.T @ centred
        sb += len(xc) * np.outer(d, d)
    return sw / len(x), sb / len(x)


def fit_discriminant(pca: PCAParams, values: np.ndarray, labels: np.ndarray) -> PCAParams:
    """Replace the leading channels of a fitted PCA by the discriminant directions of labelled pixels.

    Args:
        pca: the PCA fitted on the scenes (its band selection, centre and components are used).
        values: ``[n, B_in]`` physical spectra of the labelled training pixels (rows with a
            non-finite value are left out).
        labels: ``[n]`` their class ids.

    Returns:
        The projection: ``m = min(C − 1, k // 2)`` unit-norm discriminant directions (largest
        eigenvalue first), then ``k − m`` principal components orthogonal to them;
        ``explained_variance`` holds the variance of the labelled pixels along each channel.

    Raises:
        DataError: fewer than two classes among the labelled pixels, no class with two different
            spectra (no within-class spread to regularise), or fewer than two channels.
    """
    import scipy.linalg

    x = np.asarray(values, dtype="float64")[:, pca.band_indices]
    ok = np.isfinite(x).all(axis=1)
    x, y = x[ok], np.asarray(labels)[ok]
    n_classes = np.unique(y).size
    if n_classes < 2:
        raise DataError(
            f"--spectral lda needs training pixels of at least two classes, found {n_classes}; label more classes or use pca"
        )
    k = pca.n_components
    if k < 2:
        raise DataError(f"--spectral lda needs at least 2 channels to share between discriminants and PCA, got {k}; use pca")
    sw, sb = _scatter(x, y)
    if not np.trace(sw) > 0:
        raise DataError(
            "--spectral lda needs the spread of a class: every training class holds one spectrum only; "
            "label more pixels per class (e.g. --split per-class:5) or use pca"
        )
    sw[np.diag_indices_from(sw)] += RIDGE * np.trace(sw) / sw.shape[0]
    _, vectors = scipy.linalg.eigh(sb, sw)
    m = min(n_classes - 1, int(k * MAX_SHARE))
    directions = vectors[:, ::-1][:, :m]
    directions = directions / np.linalg.norm(directions, axis=0)
    basis = np.linalg.qr(np.concatenate([directions, np.asarray(pca.components).T], axis=1))[0]
    rest = basis[:, m:k].T  # row j: principal axis j without the discriminants' span (Gram–Schmidt in PCA's order)
    rest = rest * np.where((rest * np.asarray(pca.components)[: k - m]).sum(axis=1) < 0, -1.0, 1.0)[:, None]
    components = np.concatenate([_fix_signs(directions.T), rest])
    variance = ((x - pca.mean) @ components.T).var(axis=0, ddof=1)
    total = ((x - x.mean(axis=0)) ** 2).sum() / max(len(x) - 1, 1)
    return dataclasses.replace(
        pca,
        components=_frozen(components),
        explained_variance=_frozen(variance),
        explained_variance_ratio=_frozen(variance / total),
        n_samples=int(len(x)),
        discriminants=m,
    )


__all__ = ["MAX_SHARE", "RIDGE", "fit_discriminant"]
