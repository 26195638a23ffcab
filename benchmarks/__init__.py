"""geohsi's benchmarks: scripts whose numbers go into docs/, run as ``python -m benchmarks COMMAND``.

They import only geohsi's public API (no ``_``-prefixed names); geohsi never imports them.

.. versionadded:: 0.1
"""
