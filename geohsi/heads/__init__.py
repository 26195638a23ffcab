"""geohsi.heads — the two model modes behind one abstraction (:class:`~geohsi.heads.base.Head`).

* ``patch`` (:class:`~geohsi.heads.patch.PatchHead`) — one window per pixel, the paper's protocol;
* ``dense`` (:class:`~geohsi.heads.dense.DenseHead`) — segmentation of whole tiles, far cheaper maps.

Training, bundles, evaluation, classification and STAC export ask the head; nothing outside these
modules branches on the mode's name.

.. versionadded:: 0.1
"""

from geohsi.heads.base import HEADS, Head, TrainingSamples, get_head, register_head
from geohsi.heads.dense import DenseHead
from geohsi.heads.patch import PatchHead

__all__ = ["HEADS", "DenseHead", "Head", "PatchHead", "TrainingSamples", "get_head", "register_head"]
