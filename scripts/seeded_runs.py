"""Three seeded single-scene training runs whose test OA a refactor must not change.

``python scripts/seeded_runs.py OUTDIR`` ingests Indian Pines and the EnMAP Potsdam mosaic (from
``GEOHSI_DATA_DIR``) into ``OUTDIR`` and trains, with the ``tiny`` model from random weights for 3
epochs on the CPU (seed 0): IP patch ``per-class:10`` KronA+, IP dense ``fraction:0.1`` LoRA and
EnMAP dense ``blocks:32`` KronA+. It prints each run's overall accuracy to 8 decimals; run it on
the commits before and after a change (e.g. from a ``git worktree``) and compare.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RUNS = (
    ("indian_pines", "patch", "per-class:10", "krona+"),
    ("indian_pines", "dense", "fraction:0.1", "lora"),
    ("enmap_potsdam", "dense", "blocks:32", "krona+"),
)


def main(argv: list[str] | None = None) -> int:
    from geohsi.datasets.registry import ingest_dataset
    from geohsi.training import resolve_train_config, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="work directory (scene stores and bundles)")
    out = ap.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    for k, (dataset, head, split, adapter) in enumerate(RUNS):
        store = out / f"{dataset}.zarr"
        if not store.exists():
            ingest_dataset(dataset, store)
        config = resolve_train_config(
            None, model="tiny", backbone="random", epochs=3, seed=0, device="cpu", head=head, split=split, adapter=adapter
        )
        bundle = out / f"run{k}"
        train([str(store)], config, out=bundle, overwrite=True, progress=False, log=lambda m: None)
        oa = json.loads((bundle / "metrics.json").read_text())["overall_accuracy"]
        print(f"{dataset} {head} {split} {adapter}: OA {oa:.8f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
