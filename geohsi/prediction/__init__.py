"""geohsi.prediction — run a model over an array: the one home of inference below training and classification.

* :mod:`~geohsi.prediction.runtime` — device, autocast, batching, batch-size tuning, forward timing;
* :mod:`~geohsi.prediction.patch` — one window per pixel (the paper's protocol): windows → probabilities,
  scene pixels → classes, a halo'd block → probabilities;
* :mod:`~geohsi.prediction.tiles` — tiles on a scene-anchored grid, Hann-blended: a halo'd block →
  probabilities, or (overlap-add, each tile once) its own tiles' sums → a block's blend, a whole
  scene → probabilities / classes at pixels.

``geohsi train`` (validation and test scores), ``geohsi evaluate``, the classify worker and the
benchmarks all call these functions, so a model is run over data one way only.

.. versionadded:: 0.1
"""

from geohsi.prediction.patch import patch_block_probabilities, predict_proba, predict_window_classes
from geohsi.prediction.runtime import ForwardTimer, autocast, autotune_batch_size, batches, resolve_device
from geohsi.prediction.tiles import (
    accumulated_shape,
    blend_accumulated,
    default_overlap,
    dense_block_accumulate,
    dense_block_probabilities,
    dense_halo,
    empty_accumulated,
    hann_weight,
    predict_dense,
    predict_dense_classes,
    scene_tiles,
    summed_area_table,
)

__all__ = [
    "ForwardTimer",
    "autocast",
    "accumulated_shape",
    "autotune_batch_size",
    "batches",
    "blend_accumulated",
    "default_overlap",
    "dense_block_accumulate",
    "dense_block_probabilities",
    "dense_halo",
    "empty_accumulated",
    "hann_weight",
    "patch_block_probabilities",
    "predict_dense",
    "predict_dense_classes",
    "predict_proba",
    "predict_window_classes",
    "resolve_device",
    "scene_tiles",
    "summed_area_table",
]
