"""Inference benchmarks — a thin wrapper over :mod:`geohsi.bench_inference` (the library home).

Usage::

    .venv/bin/python benchmarks/inference.py run [--quick] [--docs docs/performance.md]   # = geohsi bench inference
    .venv/bin/python benchmarks/inference.py --sections peak,modes,steps,base --configs tiny,small

The first form is ``geohsi bench inference`` (same flags); any other arguments go to the older
section-by-section benchmark :func:`geohsi.bench_inference.main`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        from geohsi.cli.bench import inference

        inference.main(sys.argv[2:], prog_name="benchmarks/inference.py run")
    else:
        from geohsi.bench_inference import main

        main()
