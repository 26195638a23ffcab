"""Peak RSS per Dask worker when classifying a synthetic scene and one 4× larger (target ratio ≤ 1.2).

Each size runs on a fresh ``LocalCluster`` (so peaks do not carry over) through
:func:`geohsi.classify` writing a Zarr map; the peak is each worker process's
peak RSS (``VmHWM``, :func:`geohsi.classification.worker.peak_rss_mb`) after the run. Memory per worker is set by the chunk size, not the scene size,
because every task holds one chunk + halo and results go to the store, not to the client.

Usage::

    .venv/bin/python benchmarks/classify_memory.py --bundle BUNDLE [--size 96] [--chunks 32] [--workers 2]

The bundle fixes the band count/wavelengths of the synthetic scenes (e.g. a bundle trained on
Indian Pines: 200 bands). Without ``--bundle`` one is trained as in ``classify_speed.py``.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from geohsi.classification.worker import peak_rss_mb as _peak_rss_mb


def synthetic_scene(path: Path, bundle, size: int, seed: int = 0) -> Path:
    """A random scene with the bundle's band count and wavelengths, ``size × size`` pixels, streamed to Zarr."""
    import dask.array as da
    import numpy as np

    from geohsi.scene import make_scene, write_scene

    t = bundle.transform
    nb = t.input_band_count
    rng = da.random.default_rng(seed)
    cube = (rng.random((nb, size, size), chunks=(nb, 64, 64)) * 8000 + 1000).astype("uint16")
    ds = make_scene(cube, wavelength=np.asarray(t.input_wavelengths))
    return write_scene(ds, path, chunks=64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--size", type=int, default=96, help="edge of the small scene; the large one has 2× the edge (4× pixels)")
    ap.add_argument("--chunks", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from geohsi.bundle import load_bundle
    from geohsi.classification import classify
    from geohsi.classification.cluster import open_cluster

    tmp = Path(tempfile.mkdtemp(prefix="geohsi-mem-"))
    if args.bundle is None:
        import importlib.util

        spec = importlib.util.spec_from_file_location("classify_speed", Path(__file__).with_name("classify_speed.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _, args.bundle = mod._setup(tmp)
    b = load_bundle(args.bundle)
    res = {"chunks": args.chunks, "workers": args.workers}
    for label, size in (("small", args.size), ("large", 2 * args.size)):
        scene = synthetic_scene(tmp / f"{label}.zarr", b, size)
        with open_cluster(workers=args.workers) as info:
            r = classify(
                scene,
                tmp / f"{label}_map.zarr",
                b.path,
                client=info.client,
                chunks=args.chunks,
                progress=False,
                log=lambda m: None,
            )
            peaks = info.client.run(_peak_rss_mb)
        res[label] = {
            "pixels": size * size,
            "seconds": round(r.seconds, 1),
            "peak_rss_mb_per_worker": sorted(round(v, 1) for v in peaks.values()),
        }
    res["ratio_large_vs_small"] = max(res["large"]["peak_rss_mb_per_worker"]) / max(res["small"]["peak_rss_mb_per_worker"])
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
