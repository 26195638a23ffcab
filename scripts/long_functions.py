"""The longest functions of ``geohsi/`` and ``benchmarks/`` (``python scripts/long_functions.py``).

Prints every function or method longer than ``--show`` lines (default 80: the style guide's
"functions that read as a recipe"), longest first, and exits 1 when one is longer than ``--fail``
lines (default 100). A function's length is its source lines from ``def`` to its last statement,
docstring included.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOTS = ("geohsi", "benchmarks")


def function_lengths(root: Path) -> list[tuple[int, str]]:
    """``(lines, "path:line name")`` of every function and method under ``root``."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((node.end_lineno - node.lineno + 1, f"{path}:{node.lineno} {node.name}"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show", type=int, default=80, help="list functions longer than this (default 80)")
    ap.add_argument("--fail", type=int, default=100, help="exit 1 when one is longer than this (default 100)")
    args = ap.parse_args(argv)
    here = Path(__file__).resolve().parent.parent
    lengths = sorted((n, where) for r in ROOTS for n, where in function_lengths(here / r))
    lengths = [(n, str(Path(w).relative_to(here)) if w.startswith(str(here)) else w) for n, w in lengths]
    long = [(n, w) for n, w in reversed(lengths) if n > args.show]
    for n, where in long:
        print(f"{n:5d}  {where}{'  ← over ' + str(args.fail) if n > args.fail else ''}")
    over = [w for n, w in long if n > args.fail]
    print(f"{len(lengths)} functions in {', '.join(ROOTS)}: {len(long)} over {args.show} lines, {len(over)} over {args.fail}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
