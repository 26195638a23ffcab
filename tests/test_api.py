"""The public API: every CLI command has a plain Python function at the top level, with its real signature."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

import geohsi

VERBS = (
    "train",
    "classify",
    "evaluate",
    "pretrain",
    "ingest",
    "baseline",
    "search",
    "info",
    "predict_map",
    "bundle_stac",
    "sample",
    "assess",
)


def test_every_public_name_resolves_and_all_lists_them() -> None:
    assert geohsi.__all__ == sorted(geohsi._API)
    for name in geohsi.__all__:
        assert getattr(geohsi, name) is not None, name


@pytest.mark.parametrize("verb", VERBS)
def test_verbs_are_plain_functions_with_real_signatures_and_docstrings(verb: str) -> None:
    f = getattr(geohsi, verb)
    assert isinstance(f, types.FunctionType), f
    params = inspect.signature(f).parameters
    assert list(params)[:1] != ["args"] and not any(p.kind is p.VAR_POSITIONAL for p in params.values())
    assert f.__doc__ and len(f.__doc__.splitlines()) > 3 and "Args:" in f.__doc__, verb


#: verb → its command's words after ``geohsi`` (``predict_map`` is the lazy twin of ``classify``: no command).
COMMANDS = {v: v.replace("_", " ") for v in VERBS if v != "predict_map"}


def _unset(value: object) -> bool:
    return value is None or value is False or value == () or type(value).__name__ == "Sentinel"


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_a_verb_defaults_every_option_as_its_command_does(verb: str) -> None:
    """``geohsi.info(model=...)`` once counted the patch head while ``geohsi info --model`` counted the dense one."""
    import click

    from geohsi.cli.main import cli

    ctx = click.Context(cli)
    cmd = cli
    for word in COMMANDS[verb].split():
        cmd = cmd.get_command(ctx, word)
    params = inspect.signature(getattr(geohsi, verb)).parameters
    shared = [o for o in cmd.params if isinstance(o, click.Option) and o.name in params]
    assert shared, verb
    for option in shared:
        cli_default, py_default = option.get_default(ctx), params[option.name].default
        if py_default is inspect.Parameter.empty or (_unset(cli_default) and _unset(py_default)):
            continue
        as_text = [str(v) for v in cli_default] if isinstance(cli_default, tuple | list) else str(cli_default)
        py_text = [str(v) for v in py_default] if isinstance(py_default, tuple | list) else str(py_default)
        assert as_text == py_text, f"{verb}: --{option.name} defaults to {cli_default!r}, geohsi.{verb} to {py_default!r}"


def test_verbs_survive_importing_every_submodule() -> None:
    """No stage module shares a name with a verb, so importing it cannot shadow the function."""
    for mod in pkgutil.walk_packages(geohsi.__path__, "geohsi."):
        if mod.name.startswith("geohsi.cli"):
            continue
        importlib.import_module(mod.name)
    for verb in VERBS:
        assert isinstance(getattr(geohsi, verb), types.FunctionType), verb


def test_no_module_is_callable() -> None:
    for mod in pkgutil.walk_packages(geohsi.__path__, "geohsi."):
        if mod.name.startswith("geohsi.cli"):
            continue
        m = importlib.import_module(mod.name)
        assert type(m) is types.ModuleType and not callable(m), mod.name


def test_classify_writes_what_the_command_writes_and_predict_map_is_lazy() -> None:
    assert "out" in inspect.signature(geohsi.classify).parameters  # files, like `geohsi classify`
    assert inspect.signature(geohsi.predict_map).return_annotation in ("xr.DataArray", "xarray.DataArray")


def test_ingest_refuses_a_missing_source_in_one_line(tmp_path) -> None:
    from geohsi.errors import InputFormatError

    with pytest.raises(InputFormatError, match="does not exist"):
        geohsi.ingest(tmp_path / "missing.mat", tmp_path / "x.zarr")


def test_train_takes_flat_options_without_a_config_object() -> None:
    from geohsi.errors import UsageError

    with pytest.raises(UsageError, match="unknown training option"):
        geohsi.train("nowhere.zarr", adapters="lora")
