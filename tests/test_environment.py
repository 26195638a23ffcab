"""Every environment variable the library reads is listed in docs/environment.md (and nothing there is stale)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: os.environ.get("X"), os.environ["X"], "X" in / not in os.environ, and NAME_ENV = "X" constants
_READS = re.compile(
    r"""os\.environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]+)["']|["']([A-Z][A-Z0-9_]+)["']\s+(?:not\s+)?in\s+os\.environ|_ENV\s*=\s*["']([A-Z][A-Z0-9_]+)["']"""
)


def _read_by_the_library() -> set[str]:
    names = set()
    for path in (ROOT / "geohsi").rglob("*.py"):
        for groups in _READS.findall(path.read_text()):
            names.update(g for g in groups if g)
    return names


def test_every_variable_the_library_reads_is_documented() -> None:
    read = _read_by_the_library()
    assert {"GEOHSI_DATA_DIR", "GEOHSI_CACHE_DIR", "GEOHSI_BACKBONE", "RANK"} <= read  # the scan finds them
    page = (ROOT / "docs" / "environment.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", page))
    assert not read - documented, f"read by geohsi/ but not in docs/environment.md: {sorted(read - documented)}"
    ours = {n for n in documented if n.startswith("GEOHSI_")}
    assert not ours - read, f"documented but no longer read: {sorted(ours - read)}"
