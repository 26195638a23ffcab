"""The documentation builds without a warning and its CLI reference lists every command and flag."""

from __future__ import annotations

import html
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[1]


def _need(module: str) -> None:
    # In CI a missing docs dependency is a failure, not a silent skip.
    try:
        importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed; install the 'test' extra (mkdocs, mkdocs-click)")
        pytest.skip(f"{module} is not installed (pip install mkdocs mkdocs-click)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    _need("mkdocs")
    _need("mkdocs_click")
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("WARNING")]
    assert not warnings, warnings
    return out


def _walk(cmd: click.Command, ctx: click.Context, path: tuple[str, ...]):
    """Yield ``(path, command)`` for a command and every subcommand, through lazy groups too."""
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, click.Context(sub, info_name=name, parent=ctx), (*path, name))


def _cli_commands():
    from geohsi.cli.main import COMMANDS, cli

    ctx = click.Context(cli, info_name="geohsi")
    found = list(_walk(cli, ctx, ("geohsi",)))
    top = {p[1] for p, _ in found if len(p) == 2}
    # the lazy group lists every command of COMMANDS whose module is present
    from geohsi.cli.main import _available

    assert top == {n for n, (m, _, _) in COMMANDS.items() if _available(m)}
    return found


def test_cli_reference_lists_every_command_and_flag(site):
    page = html.unescape((site / "cli" / "index.html").read_text())
    # one section per command, found by its usage line ("geohsi datasets ingest [OPTIONS] NAME")
    sections = re.split(r"<h[1-6][^>]*>", page)
    missing = []
    for path, cmd in _cli_commands():
        name = " ".join(path)
        own = [sec for sec in sections if re.search(rf"<code[^>]*>{re.escape(name)} \[OPTIONS\]", sec)]
        if len(own) != 1:
            missing.append(f"{name} (section found {len(own)} times)")
            continue
        sec = own[0]
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                missing += [f"{name} {o}" for o in (*p.opts, *p.secondary_opts) if not re.search(rf"{re.escape(o)}\b", sec)]
            elif isinstance(p, click.Argument) and p.human_readable_name not in sec:
                missing.append(f"{name} {p.human_readable_name}")
        first = " ".join((cmd.help or "").split("\n")[0].split())[:40]
        if first and first not in " ".join(sec.split()):
            missing.append(f"{name} help text")
    assert not missing, f"not in the generated CLI reference: {missing}"


def test_every_nav_page_is_built_and_linked(site):
    import yaml

    cfg = yaml.safe_load((REPO / "mkdocs.yml").read_text().replace("!!python", "#"))

    def pages(nav):
        for item in nav:
            for v in item.values():
                yield from (pages(v) if isinstance(v, list) else [v])

    nav = list(pages(cfg["nav"]))
    assert {"index.md", "getting-started.md", "models.md", "training.md", "classify.md", "cli.md"} <= set(nav)
    for p in nav:
        built = site / ("index.html" if p == "index.md" else Path(p).with_suffix("") / "index.html")
        assert built.is_file(), p
    index = (site / "index.html").read_text()
    for p in nav:
        if p != "index.md":
            assert Path(p).stem in index, f"{p} is not linked from the home page"


def test_getting_started_gives_the_readme_commands(site):
    readme = (REPO / "README.md").read_text()
    page = html.unescape((site / "getting-started" / "index.html").read_text())
    for command in ("bash examples/end_to_end.sh", "bash scripts/test.sh"):
        assert command in readme and command in page
