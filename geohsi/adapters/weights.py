"""Adapter files: the trained adapter + head weights (safetensors) and their JSON config, nothing else.

An adapter directory holds two files:

* ``adapter.safetensors`` — every parameter the method trains (adapter factors, head, norms when
  ``train_norms``; the whole model for ``full``), keyed by parameter name;
* ``adapter.json`` — ``format``/``version``, the adapter configuration (:func:`adapter_config`),
  the backbone identity given by the caller, tensor names/shapes/dtypes and the sha256 of the
  safetensors file (so that a truncated or corrupted file is refused, not half-loaded).

The directory is written atomically (:func:`geohsi.files.atomic_output`). Loading re-applies the
recorded method to a fresh backbone, after checking that the backbone is the one the adapter was
trained on.

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geohsi.adapters.config import AdapterConfig
from geohsi.adapters.inject import (
    CONFIG_ATTR,
    LAYER_CLASSES,
    METHODS,
    AdapterSummary,
    adapter_config,
    apply_adapter,
    select_targets,
    trainable_parameter_names,
)
from geohsi.errors import InputFormatError, ModelError, UsageError
from geohsi.files import atomic_output, file_sha256

FORMAT = "geohsi-adapter"
VERSION = 1
WEIGHTS_NAME = "adapter.safetensors"
CONFIG_NAME = "adapter.json"
#: Keys of a backbone identity that, when both sides carry them, must be equal.
IDENTITY_KEYS = ("name", "sha256", "config")


def _canonical(obj: Any) -> Any:
    """A JSON round trip, so tuples/lists and int/float keys compare as they will after loading."""
    return json.loads(json.dumps(obj, sort_keys=True))


def _check_backbone_id(backbone_id: Any) -> dict[str, Any]:
    if not isinstance(backbone_id, dict) or not any(k in backbone_id for k in IDENTITY_KEYS):
        raise UsageError(
            "backbone_id must be a dict with at least one of 'name', 'sha256', 'config' "
            "(e.g. {'name': 'spectralgpt_base', 'config': {...}})"
        )
    try:
        return _canonical(backbone_id)
    except (TypeError, ValueError) as e:
        raise UsageError(f"backbone_id is not JSON-serialisable ({e}); pass plain dicts, lists, str and numbers") from e


def save_adapter(model: nn.Module, path: str | os.PathLike, *, backbone_id: dict[str, Any], overwrite: bool = False) -> Path:
    """Write the adapter + head weights and their configuration to the directory ``path``.

    Args:
        model: a model prepared by :func:`~geohsi.adapters.apply_adapter` (merged or not: the factors
            are saved either way).
        path: the output directory (created atomically).
        backbone_id: identity of the frozen backbone, JSON-able, with at least one of ``name``
            (a built-in name such as ``"spectralgpt_base"``), ``sha256`` (of its weights) and
            ``config`` (its config dict). :func:`load_adapter` compares the keys both sides carry.
        overwrite: replace an existing directory.

    Returns:
        ``path``.

    Raises:
        UsageError: the model carries no adapter or ``backbone_id`` is unusable.
        OutputError: ``path`` exists without ``overwrite`` or cannot be written.

    .. versionadded:: 0.1
    """
    from geohsi.files import save_safetensors

    cfg = adapter_config(model)
    ident = _check_backbone_id(backbone_id)
    params = dict(model.named_parameters())
    tensors = {n: params[n].detach().to("cpu").contiguous() for n in trainable_parameter_names(model)}
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.mkdir()
        save_safetensors(tensors, tmp / WEIGHTS_NAME, metadata={"format": FORMAT, "version": str(VERSION)})
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "adapter": cfg,
            "backbone": ident,
            "tensors": {n: {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")} for n, t in tensors.items()},
            "weights_sha256": file_sha256(tmp / WEIGHTS_NAME),
        }
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return Path(path)


def read_adapter_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check an adapter directory's ``adapter.json`` (weights untouched).

    Args:
        path: the adapter directory.

    Returns:
        The parsed JSON (``format``, ``version``, ``adapter``, ``backbone``, ``tensors``, ``weights_sha256``).

    Raises:
        InputFormatError: the directory or its files are missing.
        ModelError: the JSON is corrupted or not a geohsi adapter of a known version.

    .. versionadded:: 0.1
    """
    p = Path(path)
    cfg_file, weights = p / CONFIG_NAME, p / WEIGHTS_NAME
    for f in (cfg_file, weights):
        if not f.is_file():
            raise InputFormatError(f"{f} does not exist; pass a directory written by geohsi.adapters.save_adapter")
    try:
        meta = json.loads(cfg_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{cfg_file} is corrupted ({type(e).__name__}); save the adapter again") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{cfg_file} is not a geohsi adapter config; pass a directory written by save_adapter")
    if meta.get("version") != VERSION:
        raise ModelError(f"{cfg_file} has adapter format version {meta.get('version')!r}; this geohsi reads version {VERSION}")
    expected_types = {"adapter": dict, "backbone": dict, "tensors": dict, "weights_sha256": str}
    adapter_types = {"method": str, "targets": list, "options": dict, "train_norms": bool, "head": list, "layers": dict}
    for where, obj, types in (("", meta, expected_types), ("adapter.", meta.get("adapter"), adapter_types)):
        for key, typ in types.items():
            if not isinstance(obj, dict) or not isinstance(obj.get(key), typ):
                raise ModelError(f"{cfg_file} has no valid {where}{key!r} entry; it is corrupted, save the adapter again")
    if meta["adapter"]["method"] not in METHODS:
        raise ModelError(
            f"{cfg_file} names an unknown method {meta['adapter']['method']!r}; it is corrupted or from a newer geohsi"
        )
    return meta


def _compare_backbones(saved: dict[str, Any], given: dict[str, Any], where: Path) -> None:
    common = [k for k in IDENTITY_KEYS if k in saved and k in given]
    if not common:
        raise ModelError(
            f"{where} identifies its backbone by {sorted(k for k in saved if k in IDENTITY_KEYS)} but backbone_id "
            f"gives {sorted(k for k in given if k in IDENTITY_KEYS)}; pass a backbone_id with one of the same keys"
        )
    for k in common:
        a, b = saved[k], given[k]
        if a == b:
            continue
        if k == "config" and isinstance(a, dict) and isinstance(b, dict):
            diff = [
                f"{f}: adapter {a.get(f)!r} vs backbone {b.get(f)!r}" for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f)
            ]
            detail = "; ".join(diff[:3])
        else:
            detail = f"adapter {a!r} vs backbone {b!r}"
        raise ModelError(
            f"{where} was trained on another backbone ({k} differs — {detail}); load it onto the backbone it was saved with"
        )


def _check_fits(
    model: nn.Module, cfg: dict[str, Any], recorded: dict[str, Any], tensors: dict[str, torch.Tensor], weights: Path
) -> None:
    """Refuse, before touching ``model``, an adapter whose layers or tensors do not fit it."""
    hint = "load it onto the backbone and head (class count) it was saved with"
    if set(recorded) != set(tensors) or any(list(tensors[n].shape) != recorded[n]["shape"] for n in tensors):
        raise ModelError(f"{weights} does not match the tensor list in {CONFIG_NAME}; it is corrupted, save the adapter again")
    layers: dict[str, Any] = cfg.get("layers", {})
    method = cfg.get("method")
    if method in LAYER_CLASSES:
        heads = tuple(cfg.get("head") or ())
        found = {n: m for n, m in select_targets(model, cfg["targets"], heads)}
        if set(found) != set(layers):
            extra = sorted(set(found) - set(layers))
            lack = sorted(set(layers) - set(found))
            first = (lack or extra)[0]
            raise ModelError(
                f"{weights} adapts {len(layers)} layers but this model has {len(found)} matching ones "
                f"(first difference: {first}); {hint}"
            )
        cls = LAYER_CLASSES[method]
        for n, m in found.items():
            want = {k: list(v) for k, v in cls.factor_shapes_for(m.in_features, m.out_features, **cfg["options"]).items()}
            if want != layers[n]:
                raise ModelError(f"{weights}: layer {n} has factors {layers[n]} but this model needs {want}; {hint}")
    params = dict(model.named_parameters())
    prefixes = tuple(n + "." for n in layers)
    plain = {n for n in tensors if not n.startswith(prefixes)}  # head, norms, or everything for "full"
    want = set(trainable_parameter_names(model, cfg))
    if plain != want:
        diff = sorted(plain ^ want)
        raise ModelError(
            f"{weights} holds {len(plain)} non-adapter tensors but this model trains {len(want)} "
            f"(first difference: {diff[0]}); {hint}"
        )
    for n in sorted(plain):
        t = tensors[n]
        if tuple(params[n].shape) != tuple(t.shape):
            raise ModelError(f"{weights}: {n} has shape {tuple(t.shape)} but the model expects {tuple(params[n].shape)}; {hint}")


def load_adapter(
    model: nn.Module, path: str | os.PathLike, *, backbone_id: dict[str, Any], method: str | None = None
) -> AdapterSummary:
    """Re-apply a saved adapter to a fresh backbone and load its weights, in place.

    Args:
        model: a fresh model (no adapter yet) built like the one that was saved.
        path: a directory written by :func:`save_adapter`.
        backbone_id: identity of ``model``'s backbone (same keys as at saving); compared with the
            saved one.
        method: if given, the method the caller expects; a file of another method is refused.

    Returns:
        The :class:`~geohsi.adapters.inject.AdapterSummary` of the re-applied adapter.

    Raises:
        InputFormatError: files are missing.
        ModelError: the backbone identity or method differs, the files are corrupted or truncated,
            or the tensors do not fit the model (names or shapes).
        UsageError: ``model`` already carries an adapter.

    .. versionadded:: 0.1
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if getattr(model, CONFIG_ATTR, None) is not None:
        raise UsageError("the model already carries an adapter; load adapters onto a freshly built backbone")
    p = Path(path)
    meta = read_adapter_config(p)
    cfg = meta["adapter"]
    where = p / CONFIG_NAME
    if method is not None and cfg.get("method") != method:
        raise ModelError(f"{p} holds a {cfg.get('method')!r} adapter, not {method!r}; pass the matching --adapter or file")
    _compare_backbones(meta["backbone"], _check_backbone_id(backbone_id), where)

    weights = p / WEIGHTS_NAME
    if file_sha256(weights) != meta["weights_sha256"]:
        raise ModelError(f"{weights} is truncated or corrupted (sha256 differs from {CONFIG_NAME}); save the adapter again")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelError(f"{weights} cannot be read ({' '.join(str(e).split())[:120]}); save the adapter again") from e

    try:
        _check_fits(model, cfg, meta["tensors"], tensors, weights)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        # adapter.json parsed but its structure is damaged (hand-edited or partially overwritten)
        raise ModelError(f"{where} is corrupted ({type(e).__name__}: {e}); save the adapter again") from e
    try:
        summary = apply_adapter(
            model,
            AdapterConfig.from_dict({"method": cfg["method"], **cfg["options"]}),
            cfg.get("preset") or cfg["targets"] or "qv",
            train_norms=cfg["train_norms"],
            head=cfg["head"] or None,
        )
    except UsageError as e:
        raise ModelError(f"{where} does not fit this model: {e}") from e
    params = dict(model.named_parameters())
    expected = trainable_parameter_names(model)
    if set(expected) != set(tensors):  # defensive: _check_fits should have caught every difference
        raise ModelError(f"{weights} does not fit this model's trainable parameters; load it onto the backbone it was saved with")
    with torch.no_grad():
        for n in expected:
            params[n].copy_(tensors[n])
    return summary


__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "load_adapter", "read_adapter_config", "save_adapter"]
