"""Design-based estimators of map accuracy and class area from a stratified random sample (pure numpy).

Notation (Olofsson et al. 2014): map classes ``i`` are the rows of the error matrix, reference
classes ``j`` its columns; ``n_ij`` sample counts, ``n_i.`` the sample size of stratum ``i``,
``W_i`` the proportion of the mapped area in map class ``i``.

* :func:`stratified_estimate` — strata are the map classes (Olofsson et al. 2014, section 4.3):
  ``p̂_ij = W_i n_ij / n_i.``; overall accuracy ``Ô = Σ p̂_jj``, user's accuracy
  ``Û_i = p̂_ii / p̂_i.``, producer's accuracy ``P̂_j = p̂_jj / p̂_.j``, area proportion
  ``p̂_.k = Σ_i p̂_ik``, each with the paper's variance estimator;
* :func:`stehman_estimate` — strata that are not the map classes (Stehman 2014): every quantity
  is a stratified mean or a ratio of two, from per-point indicators;
* :func:`census_summary` — every labelled pixel as reference: plain proportions, no variance;
* :func:`sample_size` and :func:`allocate` — planning: ``n = (Σ W_i S_i / S(Ô))²`` with
  ``S_i = √(U_i (1 − U_i))`` (Olofsson et al. 2014, eq. 13; Cochran 1977, eq. 5.25), and the
  allocation of ``n`` to the strata.

Variances follow the papers: no finite-population correction (negligible when a stratum's sample is
a small part of its pixels), and a stratum's variance needs at least 2 sample points: with fewer, the
standard errors it enters are ``nan`` and a warning says so. 95 % intervals are ``estimate ± 1.96 SE``.

References:
    Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014).
    Good practices for estimating area and assessing accuracy of land change. Remote Sensing of
    Environment 148, 42–57. Stehman, S. V. (2014). Estimating area and map accuracy for stratified
    random sampling when the strata are different from the map classes. International Journal of
    Remote Sensing 35, 4923–4939. Cochran, W. G. (1977). Sampling Techniques, 3rd ed. Wiley.

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from geohsi.errors import DataError, UsageError

#: the normal quantile of a two-sided 95 % interval.
Z95 = 1.96
#: allocation schemes of :func:`allocate` (``min:K`` carries its K).
ALLOCATIONS = ("proportional", "equal", "min:K", "neyman")


class TooFewPoints(UsageError):
    """A sample size below what the allocation's minimum per stratum needs (``needed`` points)."""

    def __init__(self, message: str, *, needed: int) -> None:
        super().__init__(message)
        self.needed = needed


@dataclass(frozen=True)
class AccuracyEstimate:
    """The estimates of one assessment, classes by position (``K`` classes).

    Attributes:
        estimator: ``olofsson2014``, ``stehman2014`` or ``census``.
        counts: ``[K, K]`` sample counts, rows = map class, columns = reference class.
        proportions: ``[K, K]`` estimated area proportions ``p̂_ij`` (sum 1).
        mapped: ``[K]`` proportion of the mapped area in each map class (``W_i``).
        overall, overall_se: overall accuracy and its standard error.
        users, users_se: ``[K]`` user's accuracy (``nan`` for a class without sample points).
        producers, producers_se: ``[K]`` producer's accuracy (``nan`` for a class the reference never shows).
        area, area_se: ``[K]`` estimated area proportion of each reference class.
        warnings: one-line notes on what could not be estimated, and why.
        z: the normal quantile of the intervals.
    """

    estimator: str
    counts: np.ndarray
    proportions: np.ndarray
    mapped: np.ndarray
    overall: float
    overall_se: float
    users: np.ndarray
    users_se: np.ndarray
    producers: np.ndarray
    producers_se: np.ndarray
    area: np.ndarray
    area_se: np.ndarray
    warnings: tuple[str, ...] = field(default=())
    z: float = Z95

    def interval(self, estimate: float | np.ndarray, se: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` of the symmetric interval ``estimate ± z·SE``."""
        est, s = np.asarray(estimate, float), np.asarray(se, float)
        return est - self.z * s, est + self.z * s


def _names(names: Sequence[str] | None, k: int) -> list[str]:
    return list(names) if names is not None else [f"class {i + 1}" for i in range(k)]


def _per_stratum(n_h: np.ndarray) -> np.ndarray:
    """``1 / (n_h − 1)``, ``nan`` where a stratum has fewer than 2 points (its variance is unknown)."""
    n_h = np.asarray(n_h, float)
    out = np.full(n_h.shape, np.nan)
    np.divide(1.0, n_h - 1.0, out=out, where=n_h >= 2)
    return out


def _stratum_warnings(n_h: np.ndarray, names: list[str], what: str = "map class") -> list[str]:
    out = []
    for name, n in zip(names, n_h, strict=True):
        if n == 0:
            out.append(
                f"{what} '{name}' has no sample point: its pixels are taken as mapped correctly and the standard "
                "errors it enters cannot be estimated; sample it (geohsi sample --allocation min:K)"
            )
        elif n == 1:
            out.append(
                f"{what} '{name}' has 1 sample point: its variance cannot be estimated, so the standard errors and "
                "intervals it enters are left out; give every stratum at least 2 points (a stratum of one pixel cannot "
                "have them: merge its class into another before sampling)"
            )
    return out


def stratified_estimate(
    counts: np.ndarray, mapped: np.ndarray, *, names: Sequence[str] | None = None, z: float = Z95
) -> AccuracyEstimate:
    """The stratified estimator of Olofsson et al. (2014) for strata that are the map classes.

    Args:
        counts: ``[K, K]`` error matrix of sample counts ``n_ij``, rows = map class (stratum),
            columns = reference class.
        mapped: ``[K]`` mapped size of each map class (pixels or area; only proportions matter).
        names: class names for the warnings.
        z: normal quantile of the intervals (1.96: 95 %).

    Returns:
        The estimates; area proportions multiply the total mapped area to give areas.

    Raises:
        UsageError: shapes that do not match, negative counts, or nothing mapped.
    """
    n = np.asarray(counts, float)
    big_n = np.asarray(mapped, float)
    k = big_n.size
    if n.shape != (k, k) or (n < 0).any() or (big_n < 0).any() or big_n.sum() <= 0:
        raise UsageError(
            f"need a [K, K] matrix of non-negative counts and K non-negative mapped sizes (not all 0), got {n.shape} and {big_n.shape}"
        )
    names_ = _names(names, k)
    w = big_n / big_n.sum()
    n_i = n.sum(axis=1)
    sampled = n_i > 0
    frac = np.where(sampled[:, None], n / np.where(sampled, n_i, 1.0)[:, None], np.eye(k))  # unsampled: as mapped
    p = w[:, None] * frac
    inv = _per_stratum(n_i)
    ua = np.where(sampled, np.diag(frac), np.nan)
    ua_var = ua * (1 - ua) * inv
    live = w > 0  # a stratum of no area adds nothing, whatever its sample
    oa = float(np.trace(p))
    oa_var = float(np.sum((w**2 * np.diag(frac) * (1 - np.diag(frac)) * inv)[live]))
    cell_var = np.where(live[:, None], (w**2 * inv)[:, None] * frac * (1 - frac), 0.0)  # [K, K]: stratum i, class k
    area = p.sum(axis=0)
    area_var = cell_var.sum(axis=0)
    pa, pa_var = _producers(p, area, cell_var, ua_var, w)
    warnings = _stratum_warnings(n_i[w > 0], [m for m, ww in zip(names_, w, strict=True) if ww > 0])
    warnings += [
        f"class '{names_[j]}' never appears in the reference sample: its producer's accuracy is undefined"
        for j in range(k)
        if area[j] == 0
    ]
    return AccuracyEstimate(
        "olofsson2014", n.astype(np.int64), p, w, oa, math.sqrt(oa_var) if np.isfinite(oa_var) else math.nan,
        ua, np.sqrt(ua_var), pa, np.sqrt(pa_var), area, np.sqrt(area_var), tuple(warnings), z,
    )  # fmt: skip


def _producers(
    p: np.ndarray, area: np.ndarray, cell_var: np.ndarray, ua_var: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Producer's accuracy ``P̂_j = p̂_jj / p̂_.j`` and its variance (Olofsson et al. 2014, after Card 1982):

    ``V(P̂_j) = [W_j² (1 − P̂_j)² V_j + P̂_j² Σ_{i≠j} W_i² f_ij (1 − f_ij) / (n_i. − 1)] / p̂_.j²`` with
    ``V_j = Û_j (1 − Û_j) / (n_j. − 1)`` and ``f_ij = n_ij / n_i.`` (sizes as proportions: the ratio is scale-free).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        pa = np.where(area > 0, np.diag(p) / area, np.nan)
        off = cell_var.sum(axis=0) - np.diag(cell_var)  # Σ_{i≠j} of the per-stratum cell variances
        own = np.where(w > 0, w**2 * (1 - pa) ** 2 * ua_var, 0.0)
        var = np.where(area > 0, (own + pa**2 * off) / area**2, np.nan)
    return pa, var


# --------------------------------------------------------------------------- strata ≠ map classes


def _stratum_stats(y: np.ndarray, strata: np.ndarray, n_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per stratum: means ``[H, Q]`` and sample variances ``[H, Q]`` (``nan`` below 2 points) of ``y [n, Q]``."""
    h = n_h.size
    sums = np.zeros((h, y.shape[1]))
    np.add.at(sums, strata, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / n_h[:, None]
    sq = np.zeros_like(sums)
    np.add.at(sq, strata, (y - mean[strata]) ** 2)
    return mean, sq * _per_stratum(n_h)[:, None]


def _totals(y: np.ndarray, strata: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimated population proportions ``Σ_h N_h ȳ_h / N`` of each column of ``y`` and their variances
    ``Σ_h N_h² s²_h / n_h / N²`` (Stehman 2014; Cochran 1977, eq. 5.6 without the fpc)."""
    n_h = np.bincount(strata, minlength=sizes.size).astype(float)
    mean, var = _stratum_stats(y, strata, n_h)
    w = sizes / sizes.sum()
    live = w > 0
    est = (w[live, None] * mean[live]).sum(axis=0)
    v = (w[live, None] ** 2 * var[live] / n_h[live, None]).sum(axis=0)
    return est, v


def _ratio(num: np.ndarray, den: np.ndarray, strata: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ratio estimates ``R̂ = Ŷ / X̂`` per column and their variances: the stratified variance of the
    residuals ``y − R̂ x`` divided by ``X̂²`` (Stehman 2014, the ratio estimator)."""
    (y_hat, _), (x_hat, _) = _totals(num, strata, sizes), _totals(den, strata, sizes)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(x_hat > 0, y_hat / x_hat, np.nan)
        _, v = _totals(num - np.nan_to_num(r) * den, strata, sizes)
        return r, np.where(x_hat > 0, v / x_hat**2, np.nan)


def stehman_estimate(
    strata: np.ndarray,
    map_class: np.ndarray,
    reference: np.ndarray,
    stratum_sizes: np.ndarray,
    n_classes: int,
    *,
    mapped: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    stratum_names: Sequence[str] | None = None,
    z: float = Z95,
) -> AccuracyEstimate:
    """The estimator of Stehman (2014) for a stratified random sample whose strata are not the map classes.

    Every target is a stratified mean of a per-point indicator (area proportions, the error matrix,
    overall accuracy) or a ratio of two (user's and producer's accuracy).

    Args:
        strata: ``[n]`` stratum index (0 … H−1) of each sample point.
        map_class: ``[n]`` map class index (0 … K−1) at each point.
        reference: ``[n]`` reference class index (0 … K−1) of each point.
        stratum_sizes: ``[H]`` size of each stratum (pixels).
        n_classes: ``K``.
        mapped: ``[K]`` mapped size of each class, for the ``mapped`` proportions (default: estimated).
        names: class names; stratum_names: stratum names (for the warnings).
        z: normal quantile of the intervals.

    Returns:
        The estimates.

    Raises:
        DataError: a stratum of non-zero size has no sample point (nothing can be estimated for it).
    """
    h_idx, m, r = (np.asarray(a, np.int64) for a in (strata, map_class, reference))
    sizes = np.asarray(stratum_sizes, float)
    k = int(n_classes)
    n_h = np.bincount(h_idx, minlength=sizes.size)
    s_names = _names(stratum_names, sizes.size)
    empty = [s_names[i] for i in np.flatnonzero((n_h == 0) & (sizes > 0))]
    if empty:
        one = len(empty) == 1
        which = f"stratum '{empty[0]}' has" if one else f"strata {', '.join(repr(e) for e in empty)} have"
        raise DataError(
            f"{which} no labelled sample point (none drawn, or every reference left empty), so nothing can be estimated "
            f"for {'it' if one else 'them'}; label at least 2 points of every stratum of the design"
        )
    eye = np.eye(k)
    on_map, in_ref = eye[m], eye[r]  # [n, K] indicators
    correct = on_map * in_ref  # 1[m = r = k]
    cells = (on_map[:, :, None] * in_ref[:, None, :]).reshape(len(m), k * k)
    p, _ = _totals(cells, h_idx, sizes)
    (oa,), (oa_var,) = _totals((m == r)[:, None].astype(float), h_idx, sizes)
    area, area_var = _totals(in_ref, h_idx, sizes)
    ua, ua_var = _ratio(correct, on_map, h_idx, sizes)
    pa, pa_var = _ratio(correct, in_ref, h_idx, sizes)
    w = p.reshape(k, k).sum(axis=1) if mapped is None else np.asarray(mapped, float) / np.sum(mapped)
    warnings = _stratum_warnings(n_h[sizes > 0], [s for s, z_ in zip(s_names, sizes, strict=True) if z_ > 0], "stratum")
    warnings += [
        f"class '{c}' never appears in the reference sample" for c, a in zip(_names(names, k), area, strict=True) if a == 0
    ]
    return AccuracyEstimate(
        "stehman2014", np.bincount(m * k + r, minlength=k * k).reshape(k, k), p.reshape(k, k), w,
        float(oa), math.sqrt(oa_var) if np.isfinite(oa_var) else np.nan,
        ua, np.sqrt(ua_var), pa, np.sqrt(pa_var), area, np.sqrt(area_var), tuple(warnings), z,
    )  # fmt: skip


def census_summary(counts: np.ndarray, *, z: float = Z95) -> AccuracyEstimate:
    """Accuracy of a map against every labelled pixel (a census of the labels, not a probability sample).

    Proportions are ``n_ij / n``; nothing is weighted and no variance is estimated (standard errors
    are ``nan``): the labelled pixels were not drawn at random from the map, so no design-based
    interval applies to the whole map.

    Args:
        counts: ``[K, K]`` pixel counts, rows = map class, columns = reference (label) class.
        z: kept for a uniform result.

    Returns:
        The summary (``estimator="census"``).
    """
    n = np.asarray(counts, np.int64)
    k = n.shape[0]
    total = n.sum()
    if total == 0:
        raise DataError("no labelled pixel lies on a mapped pixel; check that the scene and the maps cover the same ground")
    p = n / total
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ua = np.where(rows > 0, np.diag(p) / rows, np.nan)
        pa = np.where(cols > 0, np.diag(p) / cols, np.nan)
    nan = np.full(k, np.nan)
    return AccuracyEstimate("census", n, p, rows, float(np.trace(p)), np.nan, ua, nan, pa, nan.copy(), cols, nan.copy(), (), z)


# --------------------------------------------------------------------------- planning


def user_accuracy_sd(expected_ua: np.ndarray) -> np.ndarray:
    """``S_i = √(U_i (1 − U_i))``: the standard deviation of a stratum's correct/incorrect indicator."""
    u = np.asarray(expected_ua, float)
    if ((u < 0) | (u > 1)).any():
        raise UsageError(f"expected user's accuracies must lie in [0, 1], got {u.tolist()}")
    return np.sqrt(u * (1 - u))


def sample_size(weights: np.ndarray, expected_ua: np.ndarray, target_se: float) -> int:
    """Total sample size for a target standard error of overall accuracy (Olofsson et al. 2014, eq. 13).

    ``n = (Σ_i W_i S_i / S(Ô))²`` with ``S_i = √(U_i (1 − U_i))``, rounded up.

    Args:
        weights: ``[H]`` mapped area proportions of the strata.
        expected_ua: ``[H]`` anticipated user's accuracy of each stratum.
        target_se: the standard error of overall accuracy to reach (e.g. 0.01).

    Returns:
        ``n`` (at least 1).

    Raises:
        UsageError: a target outside (0, 1) or accuracies outside [0, 1].
    """
    if not 0 < target_se < 1:
        raise UsageError(f"--target-se must lie in (0, 1), got {target_se}; 0.01 asks for ±0.02 on overall accuracy")
    w = np.asarray(weights, float)
    w = w / w.sum()
    return max(1, math.ceil(round((float(np.sum(w * user_accuracy_sd(expected_ua))) / target_se) ** 2, 9)))


def _parse_scheme(scheme: str) -> tuple[str, int]:
    name, _, arg = scheme.strip().lower().partition(":")
    if name == "min" and arg.isdigit() and int(arg) >= 1:
        return "min", int(arg)
    if name in ("proportional", "equal", "neyman") and not arg:
        return name, 0
    raise UsageError(f"unknown allocation '{scheme}'; use proportional, equal, min:K (e.g. min:50) or neyman")


def _bounded_shares(n: int, score: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Real shares of ``n`` proportional to ``score`` within ``[lo, hi]`` per stratum (iterative fixing)."""
    fixed = np.full(score.size, np.nan)
    while True:
        free = np.isnan(fixed)
        rest = n - np.nansum(fixed)
        total = score[free].sum()
        share = np.where(free, rest * score / total if total > 0 else rest / max(free.sum(), 1), fixed)
        low, high = free & (share < lo), free & (share > hi)
        if not (low.any() or high.any()):
            return share
        fixed[low], fixed[high] = lo[low], hi[high]


def _round_shares(n: int, share: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integers summing to ``n``: floors, then one more to the largest remainders (Hamilton's method)."""
    base = np.floor(share + 1e-9).astype(np.int64)
    order = np.argsort(-(share - base), kind="stable")
    for i in order[: max(0, n - int(base.sum()))]:
        if base[i] < hi[i]:
            base[i] += 1
    return base


def allocate(
    n: int,
    weights: np.ndarray,
    scheme: str = "proportional",
    *,
    expected_ua: np.ndarray | None = None,
    sizes: np.ndarray | None = None,
    floor: int = 2,
) -> np.ndarray:
    """Allocate ``n`` sample points to strata.

    Schemes: ``proportional`` (``n_h ∝ W_h``), ``equal``, ``min:K`` (at least K per stratum, the
    rest proportional: Olofsson et al. 2014's advice for rare classes) and ``neyman``
    (``n_h ∝ W_h S_h``, optimal for overall accuracy; needs ``expected_ua``). Every stratum gets at
    least ``floor`` points (2: the fewest that let its variance be estimated) and at most its pixels.

    Args:
        n: total sample size.
        weights: ``[H]`` mapped proportions (or sizes) of the strata.
        scheme: the allocation scheme.
        expected_ua: ``[H]`` anticipated user's accuracies (``neyman``).
        sizes: ``[H]`` pixels per stratum (caps; default: no cap).
        floor: minimum points per stratum.

    Returns:
        ``[H]`` int64 sample sizes summing to ``min(n, Σ sizes)``.

    Raises:
        UsageError: unknown scheme, ``neyman`` without accuracies; TooFewPoints: ``n`` too small for the floors.
    """
    name, k_min = _parse_scheme(scheme)
    w = np.asarray(weights, float)
    hi = np.asarray(sizes, float) if sizes is not None else np.full(w.size, np.inf)
    n = int(min(n, hi.sum()))
    lo = np.minimum(max(floor, k_min), hi)
    if lo.sum() > n:
        raise TooFewPoints(
            f"{n} points cannot give each of the {w.size} strata its minimum of {int(max(floor, k_min))}; "
            f"ask for at least {int(lo.sum())} points",
            needed=int(lo.sum()),
        )
    if name == "neyman":
        if expected_ua is None:
            raise UsageError("neyman allocation needs the expected user's accuracy of the classes (--expected-ua)")
        score = w * user_accuracy_sd(np.asarray(expected_ua, float))
    else:
        score = np.ones_like(w) if name == "equal" else w
    return _round_shares(n, _bounded_shares(n, score, lo, hi), hi)


__all__ = [
    "ALLOCATIONS",
    "AccuracyEstimate",
    "TooFewPoints",
    "Z95",
    "allocate",
    "census_summary",
    "sample_size",
    "stehman_estimate",
    "stratified_estimate",
    "user_accuracy_sd",
]
