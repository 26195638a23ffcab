"""geohsi.classification — mapping scenes on a Dask cluster: the graph, the workers, the cluster, the runs.

* :mod:`~geohsi.classification.plan` — the lazy graph (halo'd blocks → the head's block
  prediction → probabilities → class ids) and :func:`predict_map`, the lazy map;
* :mod:`~geohsi.classification.worker` — what runs in a worker: the per-process model cache and
  the block task;
* :mod:`~geohsi.classification.cluster` — an embedded ``LocalCluster`` or an existing scheduler;
* :mod:`~geohsi.classification.parts` — the resumable parts store chunk results land in;
* :mod:`~geohsi.classification.job` — one scene's map from plan to files (:class:`MapJob`),
  shared by single-scene and batch runs;
* :mod:`~geohsi.classification.run` — :func:`classify` (``geohsi classify --out``) and :func:`write_map`;
* :mod:`~geohsi.classification.batch` — :func:`classify_many` (``geohsi classify --out-dir``):
  many scenes in one cluster session, a STAC catalogue and a summary with class areas
  (:mod:`~geohsi.classification.records`: what it did; :mod:`~geohsi.classification.map_items`:
  each map's files and STAC item);
* :mod:`~geohsi.classification.options` — :class:`MapOptions`, the options both runs share;
* :mod:`~geohsi.classification.profile` — where a run's time went (``--profile``).

.. versionadded:: 0.1
"""

from geohsi.classification.batch import classify_many
from geohsi.classification.job import ClassifyResult, MapJob, MapOutputs
from geohsi.classification.options import MapOptions
from geohsi.classification.plan import Plan, build_plan, predict_map
from geohsi.classification.records import BatchResult, SceneRecord
from geohsi.classification.run import classify, write_map

__all__ = [
    "BatchResult",
    "ClassifyResult",
    "MapJob",
    "MapOptions",
    "MapOutputs",
    "Plan",
    "SceneRecord",
    "build_plan",
    "classify",
    "classify_many",
    "predict_map",
    "write_map",
]
