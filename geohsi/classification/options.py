"""The options one map and a batch of maps share (``geohsi classify``'s cluster, model and output flags).

:class:`MapOptions` holds them typed, with the defaults of :func:`~geohsi.classification.run.classify`
and :func:`~geohsi.classification.batch.classify_many` (a test keeps the three equal); the CLI builds
one from its flags and passes its :meth:`~MapOptions.keywords` to whichever of the two it runs.

Example:
    >>> opts = MapOptions(device="cuda", precision="bf16", confidence=True)
    >>> opts.keywords()["device"]
    'cuda'

.. versionadded:: 0.3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class MapOptions:
    """How maps are computed and written: the keyword options :func:`classify` and :func:`classify_many` share.

    Attributes:
        backbone: the bundle's backbone file, where it moved since training (``None``: the recorded path).
        confidence: also write the max-probability band.
        scheduler: ``tcp://HOST:PORT`` of a running Dask scheduler (``None``: an embedded ``LocalCluster``).
        workers: worker processes of the embedded cluster (``None``: one per core).
        device: ``cpu`` or ``cuda``.
        gpus: GPUs of the embedded cluster (``"0,2"``; ``None``: every visible GPU).
        precision: ``fp32`` or ``bf16``.
        chunks: spatial chunk edge (``None``: the bundle head's).
        batch_size: windows (patch) or tiles (dense) per forward (``None``: automatic).
        resume: reuse chunks completed by an interrupted run.
        overwrite: replace existing outputs.
    """

    backbone: str | None = None
    confidence: bool = False
    scheduler: str | None = None
    workers: int | None = None
    device: str = "cpu"
    gpus: Sequence[str] | str | None = None
    precision: str = "fp32"
    chunks: int | None = None
    batch_size: int | None = None
    resume: bool = True
    overwrite: bool = False

    def keywords(self) -> dict[str, Any]:
        """The options as keyword arguments of :func:`classify` / :func:`classify_many`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


__all__ = ["MapOptions"]
