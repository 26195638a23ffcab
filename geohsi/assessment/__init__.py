"""Accuracy assessment and area estimation of class maps from a probability sample of reference points.

Good practice (Olofsson et al. 2014) instead of pixel counting: :func:`sample` draws a stratified
random sample of pixels over one map or a whole batch (strata = map classes) into a points file to
label; :func:`assess` turns the labelled points into an error matrix in area proportions, overall,
user's and producer's accuracy with 95 % confidence intervals, and error-adjusted class areas with
theirs. The estimators themselves are plain numpy in :mod:`geohsi.assessment.estimators`.

Modules: :mod:`~geohsi.assessment.estimators` (Olofsson 2014, Stehman 2014, sample size and
allocation), :mod:`~geohsi.assessment.maps` (maps read chunk by chunk with Dask),
:mod:`~geohsi.assessment.points` (points files), :mod:`~geohsi.assessment.sampling` (``geohsi
sample``), :mod:`~geohsi.assessment.assess` (``geohsi assess``), :mod:`~geohsi.assessment.report`
(its files and figure).

.. versionadded:: 0.3
"""

from __future__ import annotations

from geohsi.assessment.assess import assess
from geohsi.assessment.estimators import (
    AccuracyEstimate,
    allocate,
    census_summary,
    sample_size,
    stehman_estimate,
    stratified_estimate,
)
from geohsi.assessment.maps import ClassMap, open_map
from geohsi.assessment.sampling import SampleResult, sample

__all__ = [
    "AccuracyEstimate",
    "ClassMap",
    "SampleResult",
    "allocate",
    "assess",
    "census_summary",
    "open_map",
    "sample",
    "sample_size",
    "stehman_estimate",
    "stratified_estimate",
]
