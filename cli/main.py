"""The ``geohsi`` command group.

Each command lives in its own module under ``cli/`` (import name ``geohsi.cli``) and is loaded on
first use so that ``geohsi --help`` stays fast. Library errors (:class:`geohsi.errors.GeohsiError`)
become one line on stderr and the error class's exit code; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path

import click

from geohsi.version import __version__

#: command name → (module under geohsi.cli, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "ingest": ("ingest", "ingest", "Bring ENVI/GeoTIFF/NetCDF/MAT files into a georeferenced Zarr scene."),
    "info": ("info", "info", "Describe a scene, a model config or a bundle."),
    "datasets": ("datasets", "datasets", "List and fetch the standard benchmark scenes."),
    "train": ("train", "train", "Fine-tune SpectralGPT with a PEFT adapter on a labelled scene."),
    "evaluate": ("evaluate", "evaluate", "Score a model bundle on a labelled scene."),
    "baseline": ("baseline", "baseline", "Classical SVM/RF baseline on the same split."),
    "classify": ("classify", "classify", "Classify a scene with a bundle on a Dask cluster → COG/Zarr map."),
    "sample": ("sample", "sample", "Draw a stratified random sample of map pixels to label (strata = map classes)."),
    "assess": ("assess", "assess", "Accuracy and error-adjusted class areas with 95 % CIs from labelled points."),
    "pretrain": ("pretrain", "pretrain", "Pretrain a SpectralGPT backbone by masked autoencoding."),
    "search": ("search", "search", "Search a STAC API for scenes."),
    "bench": ("bench", "bench", "Where the benchmarks are (python -m benchmarks, from a checkout)."),
    "bundle": ("bundle", "bundle", "Model-bundle tools (STAC item, …)."),
}


def _available(module: str) -> bool:
    return importlib.util.find_spec(f"geohsi.cli.{module}") is not None


class LazyGroup(click.Group):
    """A click group that imports each command's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n, (m, _, _) in COMMANDS.items() if _available(m)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(COMMANDS[name][0]):
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(f"geohsi.cli.{module}"), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][2]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, envvar="GEOHSI_DEBUG", help="Show full tracebacks on errors.")
@click.version_option(__version__, prog_name="geohsi")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """geohsi: hyperspectral scenes → georeferenced land-cover maps with SpectralGPT + PEFT.

    \b
    Examples:
      geohsi ingest Indian_pines_corrected.mat --labels Indian_pines_gt.mat --crs none --out ip.zarr
      geohsi info ip.zarr
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("GEOHSI_DEBUG", "") not in ("", "0", "false")


#: the signal that stopped the command (SIGINT unless a SIGTERM arrived).
_stop_signal = signal.SIGINT


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (what SLURM, Kubernetes and ``timeout`` send) stops a command exactly as Ctrl-C does."""
    global _stop_signal
    _stop_signal = signal.Signals(signum)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise KeyboardInterrupt


def _say(message: str) -> None:
    """One line on stderr — from rank 0 only when ``torchrun`` started several ranks (the others stay quiet);
    ranks started by ``--devices`` leave it for their launcher, which reports the first failure once.
    URLs in it lose their secrets (:func:`geohsi.storage.redact`): an error quoting a signed URL stays safe."""
    from geohsi.storage import redact

    message = redact(message)
    rank, left_for = os.environ.get("RANK"), os.environ.get("GEOHSI_RANK_MESSAGES")
    if rank is not None and left_for:
        with open(os.path.join(left_for, f"rank{rank}.txt"), "a") as f:
            f.write(message + "\n")
    elif rank in (None, "0"):
        click.echo(message, err=True)


def _option(args: list[str], names: tuple[str, ...]) -> str | None:
    """The value of the last of ``names`` in ``args`` (``--out X`` or ``--out=X``)."""
    value = None
    for i, a in enumerate(args):
        if a in names and i + 1 < len(args):
            value = args[i + 1]
        elif a.split("=", 1)[0] in names and "=" in a:
            value = a.split("=", 1)[1]
    return value


def _again(args: list[str]) -> str:
    """How to go on: train and pretrain continue from their checkpoint with ``--resume`` (a rerun without
    it is refused), but only once they saved one; other commands resume by being run again."""
    command = next((a for a in args if not a.startswith("-")), "")
    if command not in ("train", "pretrain") or "--resume" in args:
        return "rerun the same command to resume"
    from geohsi.storage import is_url
    from geohsi.training.runner import CHECKPOINT_NAME, work_dir

    out = _option(args, ("--out", "-o"))
    if out is None:  # train's default runs/<timestamp>-<adapter>: --resume needs that folder named
        return (
            "to continue, rerun with the '--out RUN --resume' logged above (none logged: no checkpoint, rerun the same command)"
        )
    if is_url(out):
        return "rerun it with --resume to continue"
    run = Path(out).with_suffix("") if command == "pretrain" else Path(out)  # pretrain's out is NAME.safetensors
    if (work_dir(run) / CHECKPOINT_NAME).exists():
        return "rerun it with --resume to continue"
    return "no checkpoint was saved yet: rerun the same command to start again"


def _interrupted(args: list[str]) -> None:
    name = signal.Signals(_stop_signal).name
    _say(f"geohsi: interrupted ({name}); finished outputs are in place and nothing half-written was left; {_again(args)}")
    sys.exit(128 + int(_stop_signal))


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file=None, line=None) -> None:
    """geohsi's own warnings as one line (``geohsi: warning: …``); others as Python shows them."""
    from geohsi.errors import GeohsiWarning

    if issubclass(category, GeohsiWarning):
        _say(f"geohsi: warning: {' '.join(str(message).split())}")
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def _quiet_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """Exceptions Python cannot raise go to the ``geohsi`` debug log, not stderr.

    They come from objects cleaned up after their work was abandoned, such as an object-store
    client's coroutine after its endpoint went away. The command's own one line has already said what
    failed; ``--debug`` shows them as Python does.
    """
    import logging

    exc = (unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
    logging.getLogger("geohsi").debug("exception ignored in %r", unraisable.object, exc_info=exc)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``geohsi`` console script.

    Errors become one line and their class's exit code; Ctrl-C and SIGTERM stop the command cleanly
    (temporary outputs removed, clusters closed) with exit code 130 or 143.
    """
    from geohsi.errors import GeohsiError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    warnings.showwarning = _show_warning
    # GDAL's "no geotransform" notice, with rasterio's file and line: geohsi says what a missing CRS means itself
    warnings.filterwarnings("ignore", message="Dataset has no geotransform, gcps, or rpcs")
    if not debug:
        sys.unraisablehook = _quiet_unraisable
        # a coroutine that an object store's event loop had not started when Ctrl-C or SIGTERM came
        # (zarr's, fsspec's) is collected at exit with a two-line notice: leftovers of the same kind
        warnings.filterwarnings("ignore", message="coroutine '.*' was never awaited", category=RuntimeWarning)
    try:
        cli.main(args=args, prog_name="geohsi", standalone_mode=False, obj={"argv": list(args)})
    except click.exceptions.Abort:
        _interrupted(args)
    except click.UsageError as e:
        # One line, like every geohsi error: the problem, then where the help is.
        where = f"geohsi {e.ctx.command_path.split(' ', 1)[1]} --help" if e.ctx and " " in e.ctx.command_path else "geohsi --help"
        msg = " ".join(e.format_message().split())
        _say(f"geohsi: error: {msg} (see '{where}')")
        sys.exit(e.exit_code)
    except click.ClickException as e:
        _say(f"geohsi: error: {' '.join(e.format_message().split())}")
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except GeohsiError as e:
        if debug:
            traceback.print_exc()  # the traceback on request, the exit code as without it
        _say(f"geohsi: error: {e}")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        _interrupted(args)
    except Exception as e:  # unexpected: short message, traceback only on request
        if debug:
            traceback.print_exc()
        msg = " ".join(str(e).split())[:300]
        hint = "" if debug else " (rerun with --debug for the traceback)"
        _say(f"geohsi: unexpected error: {type(e).__name__}: {msg}{hint}")
        sys.exit(70)


if __name__ == "__main__":  # pragma: no cover
    main()
