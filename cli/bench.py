"""``geohsi bench``: the benchmarks moved out of the installed package; this says where they are."""

from __future__ import annotations

import click


@click.command("bench", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Benchmarks are not part of the installed package: run them from a checkout as 'python -m benchmarks COMMAND'.

    \b
    Commands: peft, scene-held-out (docs/results.md); inference, large-scene, sections, batch,
    training-data, ddp, object-storage, store-codecs (docs/performance.md); backbones,
    cross-sensor, assessment, gpu.
    Example:
      python -m benchmarks peft --quick --out /tmp/results.md
    """
    from geohsi.errors import UsageError

    what = " ".join(args) or "COMMAND"
    raise UsageError(
        f"the benchmarks live in the source tree: from a geohsi checkout run 'python -m benchmarks {what}' "
        "(see docs/performance.md and docs/results.md)"
    )
