"""Cross-sensor evaluation (``python -m benchmarks cross-sensor``): train ``s2`` bundles on a real
labelled scene, map the same scene simulated through another sensor's real band table, and back.

Pairs: EnMAP Potsdam (224 bands) through AVIRIS-NG's band table (its ENVI header: 425 bands,
376–2500 nm, bad bands as flagged there), and Indian Pines (AVIRIS, 200 bands) through EnMAP's
(a shared EnMAP tile's band metadata). The simulation (:func:`geohsi.spectral.simulate.simulate_sensor`)
keeps labels and geometry, so both scenes are scored on the same test pixels (the bundle's split).
For each pair, direction (trained on the real scene → mapped on the simulated one, and trained on
the simulated scene → mapped on the real one), adapter and seed: OA on the training sensor and on
the other sensor; with ``sensor_augment`` > 0 the bundles are trained with sensor augmentation
(``geohsi train --sensor-augment N``). Writes ``docs/cross_sensor.md`` (table) and a CSV beside it;
rows of earlier runs in that CSV that this run did not measure are kept, each with its command.

.. versionadded:: 0.2
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from benchmarks.tables import group_runs, mean_std, write_runs_csv

PAIRS: dict[str, tuple[str, str]] = {
    "enmap→aviris-ng": ("enmap_potsdam", "aviris_ng"),
    "indian_pines→enmap": ("indian_pines", "enmap"),
}


def band_table(sensor: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(wavelength, fwhm, good_band)`` of a real sensor, from the shared data's metadata."""
    from geohsi.ingestion import open_source

    path = {
        "aviris_ng": data_dir / "aviris_ng" / "ang20160910t185702_2rdn_img.hdr",
        "enmap": data_dir / "enmap_potsdam" / "images" / "enmap_potsdam_tile_128_0.tif",
    }[sensor]
    ds = open_source(path)
    return ds["wavelength"].values, ds["fwhm"].values, ds["good_band"].values


def _scenes(pair: str, workdir: Path, data_dir: Path) -> tuple[Path, Path]:
    from geohsi.datasets.registry import ingest_dataset
    from geohsi.scene import open_scene, write_scene
    from geohsi.spectral.simulate import simulate_sensor

    scene, sensor = PAIRS[pair]
    real = workdir / f"{scene}.zarr"
    if not real.exists():
        ingest_dataset(scene, real)
    sim = workdir / f"{scene}_as_{sensor}.zarr"
    if not sim.exists():
        wl, fw, good = band_table(sensor, data_dir)
        write_scene(simulate_sensor(open_scene(real), wl, fw, good_band=good, sensor=f"{sensor} (simulated)"), sim)
    return real, sim


def run(
    *,
    workdir: str | os.PathLike,
    out: str | os.PathLike = "docs/cross_sensor.md",
    pairs: Sequence[str] = tuple(PAIRS),
    adapters: Sequence[str] = ("krona+", "lora", "full"),
    seeds: Sequence[int] = (0, 1, 2),
    sensor_augment: Sequence[int] = (0,),
    model: str = "small",
    epochs: int | None = None,
    split: str = "fraction:0.1",
    command: str = "python -m benchmarks cross-sensor",
    data_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Run every (pair, direction, adapter, seed) and write the table.

    Returns:
        One row per run: pair, direction, adapter, sensor augmentation, seed, OA on the training
        sensor, OA on the other sensor, their difference (pp), train seconds, command.
    """
    import geohsi

    workdir, out = Path(workdir), Path(out)
    workdir.mkdir(parents=True, exist_ok=True)
    data = Path(data_dir or os.environ.get("GEOHSI_DATA_DIR", "../shared/data"))
    rows: list[dict] = []
    t_all = time.perf_counter()
    scenes = {pair: _scenes(pair, workdir, data) for pair in pairs}
    for adapter in adapters:  # adapter outermost: an interrupted run has every pair of the first adapters
        for n_aug in sensor_augment:
            for pair, (real, sim) in scenes.items():
                for direction, (train_on, map_on) in (("real→sim", (real, sim)), ("sim→real", (sim, real))):
                    for seed in seeds:
                        name = f"{pair}_{direction}_{adapter}{f'_aug{n_aug}' if n_aug else ''}_{seed}".replace("→", "-")
                        b = workdir / "bundles" / name
                        t0 = time.perf_counter()
                        if not b.exists():
                            opts = {"epochs": epochs} if epochs else {}
                            geohsi.train(train_on, adapter=adapter, spectral="s2", model=model, split=split, seed=seed, out=b,
                                         sensor_augment=n_aug, progress=False, log=lambda m: None, **opts)  # fmt: skip
                        secs = time.perf_counter() - t0
                        same = geohsi.evaluate(b, train_on, device="cpu")["overall_accuracy"]
                        other = geohsi.evaluate(b, map_on, device="cpu")["overall_accuracy"]
                        row = {"pair": pair, "direction": direction, "adapter": adapter, "sensor_augment": n_aug, "seed": seed,
                               "oa_train_sensor": same, "oa_other_sensor": other, "delta_pp": 100 * (other - same),
                               "train_s": secs, "command": command}  # fmt: skip
                        rows.append(row)
                        log(
                            f"{pair} {direction} {adapter} aug {n_aug} seed {seed}: OA {same:.4f} → {other:.4f} ({row['delta_pp']:+.2f} pp)"
                        )
                        _write(rows, out, command, time.perf_counter() - t_all, model, split)
    return rows


def _key(r: dict) -> tuple:
    return (r["pair"], r["direction"], r["adapter"], int(r.get("sensor_augment") or 0), int(r["seed"]))


def _earlier_rows(out: Path, measured: set[tuple]) -> list[dict]:
    """The CSV's rows that this run did not measure (numbers back as floats)."""
    path = out.with_suffix(".csv")
    if not path.exists():
        return []
    with open(path, newline="") as f:
        old = list(csv.DictReader(f))
    for r in old:
        r["sensor_augment"] = int(r.get("sensor_augment") or 0)
        for k in ("oa_train_sensor", "oa_other_sensor", "delta_pp", "train_s"):
            r[k] = float(r[k])
    return [r for r in old if _key(r) not in measured]


def _write(rows: list[dict], out: Path, command: str, wall: float, model: str, split: str) -> None:
    keep = _earlier_rows(out, {_key(r) for r in rows})
    every = sorted([*keep, *rows], key=lambda r: (r["adapter"] != "krona+", r["adapter"], r["sensor_augment"], r["pair"]))
    write_runs_csv(every, out)
    groups = group_runs(every, lambda r: (r["pair"], r["direction"], r["adapter"], r["sensor_augment"]))
    commands = list(dict.fromkeys(r["command"] for r in every))
    lines = [
        "# Cross-sensor accuracy (generated)",
        "",
        f"`s2` bundles (`{model}`, dense head, `{split}`), OA on the same test pixels of the training scene and "
        "of the same surface seen through the other sensor's real band table (Gaussian spectral resampling, "
        "`geohsi.spectral.simulate`). Mean ± sample std over seeds; Δ = other − training sensor. "
        "*sensor aug.* N: trained with `--sensor-augment N` (the scene and N random sensors' views of it).",
        "",
        f"Commands (the CSV beside this file gives each run's): the latest, `{command}`, took {wall / 60:.1f} min"
        + (f"; earlier: {', '.join(f'`{c}`' for c in commands if c != command)}." if len(commands) > 1 else "."),
        "",
        "| pair | trained on → mapped on | adapter | sensor aug. | seeds | OA training sensor % | OA other sensor % | Δ pp |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (pair, direction, adapter, n_aug), g in groups.items():
        a = [r["oa_train_sensor"] for r in g]
        b = [r["oa_other_sensor"] for r in g]
        d = [y - x for x, y in zip(a, b, strict=True)]
        lines.append(f"| {pair} | {direction} | {adapter} | {n_aug} | {len(g)} | {mean_std(a)} | {mean_std(b)} | {mean_std(d)} |")
    out.write_text("\n".join(lines) + "\n")


__all__ = ["PAIRS", "band_table", "run"]
