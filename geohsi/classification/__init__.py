"""geohsi.classification — mapping scenes on a Dask cluster: the graph, the workers, the cluster, the runs.

* :mod:`~geohsi.classification.plan` — the lazy graph (halo'd blocks → the head's block
  prediction → probabilities → class ids) and :func:`predict_map`, the lazy map;
* :mod:`~geohsi.classification.worker` — what runs in a worker: the per-process model cache and
  the block task;
* :mod:`~geohsi.classification.cluster` — an embedded ``LocalCluster`` or an existing scheduler;
* :mod:`~geohsi.classification.parts` — the resumable parts store chunk results land in;
* :mod:`~geohsi.classification.run` — :func:`classify` (``geohsi classify``) and :func:`write_map`.

.. versionadded:: 0.1
"""

from geohsi.classification.plan import Plan, build_plan, predict_map
from geohsi.classification.run import ClassifyResult, MapOutputs, classify, write_map

__all__ = ["ClassifyResult", "MapOutputs", "Plan", "build_plan", "classify", "predict_map", "write_map"]
