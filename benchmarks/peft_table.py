#!/usr/bin/env python
"""The paper's experiment in one command: FFT vs linear vs LoRA/LoRA+/KronA/KronA+/LoKr vs scratch vs SVM.

    python benchmarks/peft_table.py                 # full protocol → docs/results.md + docs/results.csv
    python benchmarks/peft_table.py --quick --out /tmp/r.md   # CI smoke: tiny config, 1 seed, 1 epoch
    python benchmarks/peft_table.py --from-csv docs/results.csv --findings benchmarks/peft_findings.md  # re-render

Same as ``geohsi bench peft``; see :mod:`geohsi.bench`.
"""

from __future__ import annotations

import sys

from geohsi.cli.bench import peft

if __name__ == "__main__":
    peft.main(args=sys.argv[1:], prog_name="peft_table.py")
