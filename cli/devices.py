"""``--devices N``: run a training command as N ranks on this node through torchrun's launcher.

``geohsi train --devices 2 ...`` is ``torchrun --standalone --nproc-per-node 2 -m geohsi.cli.main train ...``
(:func:`geohsi.training.distributed.launch`); several nodes take ``torchrun`` itself (docs/distributed-training.md).
"""

from __future__ import annotations

import os
import sys

import click

devices_option = click.option(
    "--devices",
    type=int,
    default=None,
    help="Train as N ranks on this node with DistributedDataParallel (torchrun's launcher): one per GPU, or gloo "
    "processes on the CPU; --batch-size stays the global batch.",
)


def on_devices(devices: int | None, device: str, batch_size: int) -> bool:
    """Launch this command as ``devices`` ranks when asked (and not already a rank); ``True`` when it was launched.

    The parent checks what would fail on every rank (the device count, the batch split) before starting any.
    """
    if devices is None or devices == 1 or "RANK" in os.environ:
        return False
    from geohsi.training.distributed import Ranks, check_devices, launch, local_batch_size

    check_devices(devices, device)
    local_batch_size(batch_size, Ranks(0, devices))
    argv = _without_devices(click.get_current_context().obj["argv"])
    code, message = launch(argv, devices)
    if code:
        click.echo(message, err=True)
        sys.exit(code)
    return True


def _without_devices(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--devices":
            skip = True
        elif not a.startswith("--devices="):
            out.append(a)
    return out


__all__ = ["devices_option", "on_devices"]
