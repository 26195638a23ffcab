"""Every command the README and docs/ quote exists: its command and subcommand answer ``--help`` and its flags
are flags of that command.

Quoted = a code span or a line of a fenced code block that starts with ``geohsi ``, ``python -m benchmarks``
or ``python benchmarks/X.py`` (a ``$`` prompt and a path before ``python`` allowed). A renamed command, a
dropped flag or a script that no longer exists (``python benchmarks/peft_table.py``) fails here, with the file
and line of each quote.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

#: what a quoted command starts with: the geohsi CLI, the benchmarks package, or a benchmark script
START = re.compile(
    r"^(?:\$\s+)?(?:\S*/)?(?P<prog>geohsi|python3?(?:\.\d+)? -m benchmarks|python3?(?:\.\d+)? benchmarks/\S+\.py)(?=\s|$)"
)


@dataclass(frozen=True)
class Quote:
    """One quoted command: where it is and its words (placeholders such as ``[--head dense|patch]`` kept)."""

    where: str
    prog: str
    words: tuple[str, ...]


def _snippets(text: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of every fenced code-block line (continuations joined) and every code span."""
    out: list[tuple[int, str]] = []
    fenced, pending = False, ""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            pending += line.strip().removesuffix("\\").strip() + " "
            if not line.rstrip().endswith("\\"):
                out.append((number, pending.strip()))
                pending = ""
        else:
            out += [(number, span.replace("\\|", "|")) for span in re.findall(r"`([^`]+)`", line)]
    return out


def _words(command: str) -> tuple[str, ...]:
    """Shell words without a trailing comment (a quote with an apostrophe in its comment falls back to spaces)."""
    try:
        return tuple(shlex.split(command, comments=True))
    except ValueError:
        return tuple(command.split(" #")[0].split())


def quoted_commands() -> list[Quote]:
    """Every command line quoted in README.md and docs/*.md."""
    quotes = []
    for path in DOCS:
        for number, snippet in _snippets(path.read_text()):
            m = START.match(snippet.strip())
            if m:
                rest = _words(snippet.strip()[m.end() :])
                quotes.append(Quote(f"{path.relative_to(REPO)}:{number}", m["prog"].split()[-1], rest))
    return quotes


def _resolve(group: click.Group, words: tuple[str, ...]) -> tuple[list[str], click.Command, list[str]]:
    """Walk the subcommand words: ``(command path, the command reached, the words after it)``.

    Raises:
        LookupError: a word where a subcommand is expected names none.
    """
    cmd: click.Command = group
    path: list[str] = []
    for i, word in enumerate(words):
        if not isinstance(cmd, click.Group) or word.startswith("-"):
            return path, cmd, list(words[i:])
        sub = cmd.get_command(click.Context(cmd), word)
        if sub is None:
            raise LookupError(f"no command {' '.join([*path, word])!r}")
        path.append(word)
        cmd = sub
    return path, cmd, []


def _unknown_flags(cmd: click.Command, words: list[str]) -> list[str]:
    """The ``--flags`` among ``words`` that ``cmd`` does not take (words after a bare ``--`` are passed on)."""
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
    words = words[: words.index("--")] if "--" in words else words
    flags = {re.sub(r"[=\[\]|,).…].*$", "", w.lstrip("[(")) for w in words if w.lstrip("[(").startswith("--")}
    return sorted(f for f in flags if f not in known)


def _groups() -> dict[str, click.Group]:
    from benchmarks.__main__ import bench
    from geohsi.cli.main import cli

    return {"geohsi": cli, "benchmarks": bench}


def _check_script(script: str) -> str | None:
    """Why ``python benchmarks/X.py --help`` does not work, or ``None``."""
    if not (REPO / script).is_file():
        return f"{script} does not exist"
    r = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or "usage" not in (r.stdout + r.stderr).lower():
        return f"{script} is not a script: 'python {script} --help' prints no usage (exit {r.returncode})"
    return None


def test_every_quoted_command_answers_help_and_takes_its_quoted_flags() -> None:
    quotes = quoted_commands()
    assert sum(q.prog == "geohsi" for q in quotes) > 30 and any(q.prog == "benchmarks" for q in quotes)
    groups, problems, helped = _groups(), [], {}
    for q in quotes:
        if q.prog.endswith(".py"):
            problem = _check_script(q.prog)
            problems += [f"{q.where}: {problem}"] if problem else []
            continue
        try:
            path, cmd, rest = _resolve(groups[q.prog], q.words)
        except LookupError as e:
            problems.append(f"{q.where}: {q.prog} {' '.join(q.words)}: {e}")
            continue
        key = (q.prog, *path)
        if key not in helped:
            r = CliRunner().invoke(groups[q.prog], [*path, "--help"])
            helped[key] = None if r.exit_code == 0 else f"exit {r.exit_code}: {r.output.strip()[-200:]}"
        if helped[key]:
            problems.append(f"{q.where}: {' '.join(key)} --help fails ({helped[key]})")
        unknown = _unknown_flags(cmd, rest)
        if unknown:
            problems.append(f"{q.where}: {' '.join(key)} takes no {', '.join(unknown)}")
    assert not problems, "\n".join(problems)


def test_the_check_catches_renamed_commands_dropped_flags_and_missing_scripts() -> None:
    from geohsi.cli.main import cli

    md = "Run `geohsi datasets lst` or\n\n```bash\n$ geohsi train s.zarr \\\n    --adaptor lora  # it's quick\n```\n"
    (_, first), (_, second) = _snippets(md)
    assert first == "geohsi datasets lst" and second.startswith("$ geohsi train s.zarr --adaptor lora")
    try:
        _resolve(cli, _words(first.removeprefix("geohsi")))
    except LookupError as e:
        assert "datasets lst" in str(e)
    else:
        raise AssertionError("an unknown subcommand resolved")
    path, cmd, rest = _resolve(cli, _words(second.removeprefix("$ geohsi")))
    assert path == ["train"] and _unknown_flags(cmd, rest) == ["--adaptor"]
    assert _unknown_flags(cmd, ["[--head", "dense|patch]", "--split=per-class:10"]) == []
    assert _check_script("benchmarks/peft_table.py") == "benchmarks/peft_table.py does not exist"
