"""Several processes, one model: PyTorch DistributedDataParallel under ``torchrun``.

``torchrun --nproc-per-node N -m geohsi.cli.main train ...`` (or ``pretrain``; ``--nnodes M`` and a
rendezvous endpoint for several nodes) starts N processes per node; ``geohsi train --devices N`` does
the same through torchrun's own launcher (:func:`launch`). Each process is one **rank** on one device
(``cuda:LOCAL_RANK``, or the CPU): :func:`setup` reads torchrun's environment, joins the process group
(NCCL on GPUs, gloo on the CPU, collectives time out after :data:`COLLECTIVE_TIMEOUT_S`) and the model
is wrapped in ``DistributedDataParallel`` after its adapter and parameter groups are built, so only
what trains is synchronised.

**Data.** ``--batch-size`` stays the global batch: each rank takes ``B / world`` samples per step
(:func:`local_batch_size`). Every rank draws the same seeded order of an epoch's samples and takes
its share of it with :class:`EpochSampler` (a ``DistributedSampler`` with per-epoch ``set_epoch``):
positions ``rank, rank + world, …`` of the order, padded to a multiple of the world size — so global
batch ``k`` holds the same samples whatever the number of ranks, and one process is exactly the run
it always was.

**One writer.** Rank 0 logs, shows progress, validates, writes checkpoints, figures and the bundle; the
others follow its decisions (:func:`from_main`). A resumed run reads rank 0's checkpoint on rank 0 and
hands it to every rank.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geohsi.errors import ClusterError, UsageError

#: Seconds a collective (an all-reduce of gradients, a broadcast) waits for the other ranks.
COLLECTIVE_TIMEOUT_S = 120.0
#: Seconds the other ranks wait at the end of a run for rank 0 to test and write the outputs.
END_WAIT_S = 6 * 3600.0


@dataclass(frozen=True)
class Ranks:
    """Where this process sits in a distributed run (one process: rank 0 of 1).

    Attributes:
        rank: global rank.
        world: number of processes.
        local_rank: rank on this node (the GPU index).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that logs and writes."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Ranks:
        """The ranks torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); none: one process."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def setup(device: str, log: Any = None) -> tuple[Ranks, torch.device]:
    """Join the run's process group when started by torchrun, and pick this rank's device.

    Args:
        device: ``auto``, ``cpu`` or ``cuda`` (one process: :func:`geohsi.prediction.resolve_device`).
        log: receives the fallback notice of ``cuda`` without a GPU.

    Returns:
        ``(ranks, device)``: one process gets ``Ranks()``; a rank gets ``cuda:LOCAL_RANK`` (NCCL) or
        the CPU (gloo).
    """
    from geohsi.prediction import resolve_device

    ranks = Ranks.from_env()
    dev = resolve_device(device, warn=log)
    if ranks.world == 1:
        return ranks, dev
    if dev.type == "cuda":
        dev = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(dev)
    if not torch.distributed.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    return ranks, dev


def teardown(ranks: Ranks, *, finished: bool = False) -> None:
    """Leave the process group (a no-op for one process).

    Args:
        ranks: this process's place in the run.
        finished: the run ended normally on this rank. The other ranks then wait for rank 0 to finish
            testing and writing (:func:`_wait_for_main`) before they leave, so no rank closes its
            connections while another still holds them — a CPU rank that left early could abort at exit
            (``terminate called without an active exception``). After an error nobody waits: the
            launcher stops the other ranks.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    if finished and ranks.world > 1:
        _wait_for_main(ranks)
    torch.distributed.destroy_process_group()


def _wait_for_main(ranks: Ranks) -> None:
    """Rank 0 says it is done in the launcher's store; the others wait for it up to :data:`END_WAIT_S`.

    The store, not a collective: a gloo or NCCL barrier gives up after :data:`COLLECTIVE_TIMEOUT_S`,
    while rank 0's test and writing may take longer.
    """
    store = torch.distributed.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False, timeout=timedelta(seconds=END_WAIT_S)
    )
    key = f"geohsi/{os.environ.get('TORCHELASTIC_RUN_ID', '')}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/done"
    if ranks.main:
        store.set(key, "1")
    else:
        store.wait([key])


def wrap(model: nn.Module, ranks: Ranks, device: torch.device) -> nn.Module:
    """The module the steps run: ``DistributedDataParallel`` over ``model`` for several ranks, ``model`` itself for one."""
    if ranks.world == 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def local_batch_size(batch_size: int, ranks: Ranks) -> int:
    """Each rank's share of the global batch.

    Raises:
        UsageError: a global batch the ranks cannot share evenly.
    """
    if batch_size % ranks.world:
        raise UsageError(
            f"--batch-size {batch_size} cannot be shared by {ranks.world} ranks; give a multiple of {ranks.world} "
            f"(the global batch, e.g. {batch_size - batch_size % ranks.world or ranks.world})"
        )
    return batch_size // ranks.world


def shard(order: np.ndarray, ranks: Ranks) -> np.ndarray:
    """This rank's share of a global order: positions ``rank, rank + world, …``, padded by wrapping to a multiple of the world."""
    if ranks.world == 1:
        return order
    n = -(-len(order) // ranks.world) * ranks.world
    padded = np.resize(order, n) if len(order) else order
    return padded[ranks.rank :: ranks.world]


class EpochSampler(torch.utils.data.distributed.DistributedSampler):
    """This rank's samples of each epoch: the run's seeded order, sharded (see the module doc).

    Args:
        order: called with the epoch, returns the global order of its samples.
        size: called with the epoch, returns its number of samples.
        ranks: this process's place in the run.
    """

    def __init__(self, order: Any, size: Any, ranks: Ranks) -> None:
        super().__init__(range(1), num_replicas=ranks.world, rank=ranks.rank, shuffle=False)
        self.order, self.size, self.ranks = order, size, ranks

    def __iter__(self):
        return iter(shard(np.asarray(self.order(self.epoch)), self.ranks).tolist())

    def __len__(self) -> int:
        return -(-int(self.size(self.epoch)) // self.ranks.world)


def from_main(value: Any, ranks: Ranks) -> Any:
    """Rank 0's ``value`` on every rank (a validation score, a stop decision, a checkpoint)."""
    if ranks.world == 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


#: Exit codes a rank reports itself with one line (geohsi's error classes, an unexpected error, Ctrl-C and SIGTERM).
_REPORTED = {*range(1, 11), 70, 130, 143}
#: Where ranks started by :func:`launch` leave their one-line messages for the launcher to print once.
MESSAGES_ENV = "GEOHSI_RANK_MESSAGES"


def launch(argv: Sequence[str], nproc: int) -> tuple[int, str | None]:
    """Run ``geohsi ARGV`` as ``nproc`` ranks on this node through torchrun's launcher, and wait for them.

    The ranks print nothing of their own errors: each leaves its one line in a file; the launcher
    reports the first failure once.

    Returns:
        ``(0, None)``, or the exit code and the one-line message of the rank that failed first on an
        error it reported itself (a geohsi error, an interruption).

    Raises:
        ClusterError: a rank crashed or was killed; one line naming it (the launcher stopped the others).
    """
    import logging
    import sys
    import tempfile

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        run_id=f"geohsi-{os.getpid()}",
        max_restarts=0,
        monitor_interval=0.5,
    )
    with tempfile.TemporaryDirectory(prefix="geohsi-ranks-") as messages:
        os.environ[MESSAGES_ENV] = messages
        logging.disable(logging.ERROR)  # the elastic agent logs each rank it stops; the one line below says it
        try:
            elastic_launch(config, sys.executable)("-m", "geohsi.cli.main", *argv)
        except ChildFailedError as e:
            rank, failure = e.get_first_failure()
            said = Path(messages, f"rank{rank}.txt")
            if failure.exitcode in _REPORTED and said.is_file():
                return int(failure.exitcode), said.read_text().strip().splitlines()[-1]
            how = f"signal {failure.signal_name()}" if failure.exitcode < 0 else f"exit code {failure.exitcode}"
            raise ClusterError(
                f"rank {rank} of {nproc} stopped ({how}); the launcher stopped the other ranks, finished outputs are in "
                "place and nothing half-written was left: rerun the same command with --resume to continue from the last checkpoint"
            ) from None
        finally:
            logging.disable(logging.NOTSET)
            os.environ.pop(MESSAGES_ENV, None)
    return 0, None


def check_devices(devices: int, device: str) -> None:
    """Refuse ``--devices`` that this machine cannot run: below 1, or beyond its GPUs on a GPU run.

    Raises:
        UsageError: one line with the range that works.
    """
    if devices < 1:
        raise UsageError(f"--devices must be at least 1, got {devices}")
    gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpu and devices > have:
        where = f"{have} GPU{'s' if have != 1 else ''}" if have else "no GPU"
        fix = f"use --devices 1..{have}" if have else "use --device cpu (gloo ranks on the CPU) or a GPU machine"
        raise UsageError(f"--devices {devices} asks for {devices} GPUs but this machine has {where}; {fix}")


__all__ = [
    "COLLECTIVE_TIMEOUT_S",
    "END_WAIT_S",
    "MESSAGES_ENV",
    "EpochSampler",
    "Ranks",
    "check_devices",
    "from_main",
    "launch",
    "local_batch_size",
    "setup",
    "shard",
    "teardown",
    "wrap",
]
