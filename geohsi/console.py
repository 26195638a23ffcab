"""What long-running library functions (train, pretrain, classify) show while they run.

* :func:`say` — the default one-line message sink. Library functions take a ``log`` callable for
  their one-line messages; :func:`say` prints to stderr, soft-wrapped so a message stays one
  logical line, with the style tags ``[yellow]``, ``[red]`` and ``[/]`` applied and every other
  ``[...]`` (a path, a class name) shown as written. Notebooks and tests pass their own callable
  (``print``, a list's ``append``, ``lambda m: None``).
* :func:`progress` — a progress display on stderr: a live rich bar on a terminal or in a notebook;
  in a log (stderr redirected to a file or pipe: CI, ``nohup``, SLURM) one plain line every
  :func:`progress_interval` seconds and one at the end, each ending in a newline, so the log reads
  line by line instead of as one long run of carriage returns.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

from geohsi.errors import UsageError

#: Seconds between the plain progress lines written to a log (``GEOHSI_PROGRESS_INTERVAL`` overrides).
PROGRESS_INTERVAL_S = 30.0


#: The style tags geohsi's own messages use; any other ``[...]`` in a message is text (a path, a class name).
_STYLE_TAG = re.compile(r"\[(?:/|yellow|red)\]")


def say(msg: str) -> None:
    """Print one message to stderr, with geohsi's style tags (``[yellow]…[/]``) applied."""
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(styled(msg))


def styled(msg: str) -> Any:
    """``msg`` as rich text: its :data:`_STYLE_TAG` tags styled, everything else shown as written.

    A class named ``Water [lake]`` or a folder ``runs/[old]`` is printed as it is, where rich markup
    would drop ``[lake]`` or fail on ``[/]``.
    """
    from rich.errors import MarkupError
    from rich.markup import escape
    from rich.text import Text

    pieces, pos = [], 0
    for tag in _STYLE_TAG.finditer(msg):
        pieces += [escape(msg[pos : tag.start()]), tag.group()]
        pos = tag.end()
    rest = escape(msg[pos:])
    if msg.endswith("\\"):  # escape() doubles a final backslash, which only a following tag needs
        rest = rest[:-1]
    try:
        return Text.from_markup("".join([*pieces, rest]))
    except MarkupError:  # a tag in the data itself (``[/]``) unbalanced the message's own: show it plain
        return Text(msg)


def warner(log: Callable[[str], None] = say) -> Callable[[str], None]:
    """``log`` for warnings: each message goes to ``log`` after a yellow ``warning:``."""
    return lambda message: log(f"[yellow]warning:[/] {message}")


def progress_interval() -> float:
    """Seconds between plain progress lines in a log: ``GEOHSI_PROGRESS_INTERVAL``, default :data:`PROGRESS_INTERVAL_S`.

    Raises:
        UsageError: the variable is not a positive number.
    """
    value = os.environ.get("GEOHSI_PROGRESS_INTERVAL") or PROGRESS_INTERVAL_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise UsageError(f"GEOHSI_PROGRESS_INTERVAL={value!r} is not a positive number of seconds; use e.g. 30")
    return seconds


def _clock(seconds: float) -> str:
    """``1:02:03`` or ``2:03`` (``-:--`` when unknown)."""
    if not math.isfinite(seconds):
        return "-:--"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _plain(template: str, task: SimpleNamespace) -> str:
    """A rich ``TextColumn`` template filled in (as rich does: format, then markup) as plain text."""
    from rich.text import Text

    return Text.from_markup(template.format(task=task)).plain


class _PlainProgress:
    """Progress as plain lines on stderr: at the start, at most one per ``interval`` seconds, and at the end.

    Args:
        title: rich-markup template of the label (the markup is dropped).
        detail: template of what follows the count.
        total: steps of the run.
        completed: steps already done.
        unit: what a step is (``steps``, ``chunks``).
        interval: seconds between lines.
        fields: initial values of the templates' fields.
    """

    def __init__(self, title: str, detail: str, total: int, completed: int, unit: str, interval: float, fields: dict) -> None:
        self.title, self.detail = title, detail
        self.total, self.completed, self.start, self.unit = int(total), int(completed), int(completed), unit
        self.interval, self.fields = interval, dict(fields)
        self.t0 = self.last = time.monotonic()
        self.shown = -1

    def update(self, advance: int = 0, completed: int | None = None, **fields: Any) -> None:
        """Count ``advance`` more steps (or ``completed`` in all) and set fields; a line when the period is up."""
        self.completed = int(completed) if completed is not None else self.completed + int(advance)
        self.fields.update(fields)
        if time.monotonic() - self.last >= self.interval:
            self.write()

    def write(self) -> None:
        """One line: label, count and share, the fields, elapsed and remaining time."""
        now = time.monotonic()
        task = SimpleNamespace(fields=self.fields, completed=self.completed, total=self.total)
        done = self.completed - self.start
        rate = done / (now - self.t0) if now > self.t0 and done > 0 else 0.0
        left = (self.total - self.completed) / rate if rate else math.inf
        share = 100.0 * self.completed / self.total if self.total else 100.0
        parts = [
            _plain(self.title, task),
            f"{self.completed}/{self.total} {self.unit} ({share:.0f} %)",
            _plain(self.detail, task),
            f"{_clock(now - self.t0)} elapsed, {_clock(left)} left",
        ]
        sys.stderr.write("  ".join(p for p in parts if p) + "\n")
        sys.stderr.flush()
        self.last, self.shown = now, self.completed

    def close(self) -> None:
        """The last line, unless the last one written already shows the final count."""
        if self.shown != self.completed:
            self.write()


@contextlib.contextmanager
def progress(
    title: str, total: int, *, completed: int = 0, unit: str = "steps", detail: str = "", enabled: bool = True, **fields: Any
) -> Iterator[Callable[..., None]]:
    """Show the progress of a loop on stderr: a rich bar on a terminal, plain periodic lines in a log.

    Templates use rich's ``TextColumn`` syntax in both displays: ``{task.fields[loss]:.4f}``,
    ``{task.completed}``.

    Args:
        title: rich-markup template of the label, e.g. ``"epoch {task.fields[epoch]}"``.
        total: steps of the run.
        completed: steps already done (a resumed run).
        unit: what one step is, for the plain lines (``steps``, ``chunks``).
        detail: template shown after the count, e.g. ``"loss {task.fields[loss]:.4f}"``.
        enabled: show anything at all.
        **fields: initial values of the fields the templates show.

    Yields:
        ``update(advance=0, completed=None, **fields)``: advance by ``advance`` steps (or set the count
        to ``completed``) and set fields.
    """
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled:
        yield lambda advance=0, completed=None, **values: None
    elif console.is_terminal or console.is_jupyter:
        yield from _rich_progress(console, title, total, completed, detail, fields)
    else:
        plain = _PlainProgress(title, detail, total, completed, unit, progress_interval(), fields)
        plain.write()
        try:
            yield plain.update
        finally:
            plain.close()


def _rich_progress(
    console: Any, title: str, total: int, completed: int, detail: str, fields: dict
) -> Iterator[Callable[..., None]]:
    """The live bar: label, bar, count, the loop's fields, time left; yields its update function."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn(detail),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with bar:
        task = bar.add_task(title, total=total, completed=completed, **fields)
        yield lambda advance=0, completed=None, **values: bar.update(task, advance=advance, completed=completed, **values)


__all__ = ["PROGRESS_INTERVAL_S", "progress", "progress_interval", "say", "styled", "warner"]
