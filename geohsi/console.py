"""The default message sink of long-running library functions (train, pretrain, classify).

Library functions take a ``log`` callable for their one-line progress messages; :func:`say` is
the default: it prints to stderr with rich markup (``[yellow]…[/]``), soft-wrapped so a message
stays one logical line. Notebooks and tests pass their own callable (``print``, a list's
``append``, ``lambda m: None``).

.. versionadded:: 0.1
"""

from __future__ import annotations


def say(msg: str) -> None:
    """Print one message to stderr (rich markup allowed)."""
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(msg)


__all__ = ["say"]
