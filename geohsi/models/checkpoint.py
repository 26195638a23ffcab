"""SpectralGPT checkpoint I/O: official ``.pth`` files and geohsi safetensors, translated and loaded strictly.

Checkpoint key layout (official and geohsi safetensors alike): ``patch_embed.proj.*``,
``pos_embed_spatial``/``pos_embed_temporal`` or ``pos_embed``, ``blocks.{i}.{norm1, attn.q, attn.k,
attn.v, attn.proj, norm2, mlp.fc1, mlp.fc2}.*``, ``norm.*`` and optionally ``head.*``.
:func:`checkpoint_filter_fn` (timm's convention) translates a foreign state dict to a model's
names; :func:`load_state_dict_checked` refuses every key that does not fit, in one line.

Position embeddings are always loaded (never left at zero as the official fine-tune script
does) and resized per spectral group (:func:`resample_pos_embed`); see
:mod:`geohsi.models.spectralgpt` for the model.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geohsi.errors import InputFormatError, ModelError, UsageError
from geohsi.models.config import SpectralGPTConfig, resolve_model_config
from geohsi.models.heads import ClassificationHead
from geohsi.models.spectralgpt import SpectralGPT, SpectralGPTClassifier

log = logging.getLogger(__name__)


ZENODO_RECORD = "https://zenodo.org/records/8412455"

#: Released SpectralGPT weights (MAE pretraining checkpoints, ViT-B, 12 bands, t_patch 3, patch 8).
#: sha256 is None: the digests were not available offline when this table was written; fill them in
#: from a verified download before relying on them.
KNOWN_CHECKPOINTS: dict[str, dict[str, Any]] = {
    "SpectralGPT": {
        "file": "SpectralGPT.pth",
        "url": f"{ZENODO_RECORD}/files/SpectralGPT.pth",
        "sha256": None,
        "config": "base",
        "input_size": 96,
        "layout": "mae (pos_embed_spatial [1,144,768] + pos_embed_temporal [1,4,768], decoder_*)",
        "pretraining": "MAE on fMoW-Sentinel (Sentinel-2, 12 bands B01–B12 without B10), 200 epochs",
    },
    "SpectralGPT+": {
        "file": "SpectralGPT+.pth",
        "url": f"{ZENODO_RECORD}/files/SpectralGPT+.pth",
        "sha256": None,
        "config": "base",
        "input_size": 128,
        "layout": "mae (pos_embed_spatial [1,256,768] + pos_embed_temporal [1,4,768], decoder_*)",
        "pretraining": "SpectralGPT continued by MAE on BigEarthNet-S2 for 100 epochs",
    },
}

_WRAPPERS = ("model", "state_dict", "model_state")
_MAX_LISTED = 4


def _list(items: list[str]) -> str:
    head = ", ".join(items[:_MAX_LISTED])
    return head + (f", … (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def _unwrap(obj: Any) -> dict[str, torch.Tensor]:
    """Strip ``{'model': …}`` / ``{'state_dict': …}`` wrappers and DDP ``module.`` prefixes."""
    if not isinstance(obj, Mapping):
        raise ModelError(f"checkpoint holds a {type(obj).__name__}, not a state dict; save model.state_dict() instead")
    for key in _WRAPPERS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise ModelError(f"checkpoint entry {k!r} is a {type(v).__name__}, not a tensor; save model.state_dict() instead")
        while k.startswith("module."):
            k = k[len("module.") :]
        out[k] = v
    return out


def _square_side(n: int, what: str) -> int:
    side = math.isqrt(n)
    if side * side != n:
        raise ModelError(f"{what} has {n} spatial positions, not a square grid; cannot resample it")
    return side


def resample_pos_embed(
    pos: torch.Tensor, new_grid: tuple[int, int], num_groups: int = 1, source_grid: tuple[int, int] | None = None
) -> torch.Tensor:
    """Resize position embeddings over the spatial grid, one spectral group at a time.

    The source grid is ``source_grid`` when the checkpoint records it (geohsi's safetensors), else
    taken as square (the released checkpoints are 12×12 and 16×16). Interpolation is bicubic with
    ``align_corners=False`` and no antialiasing, computed in float32.

    Args:
        pos: ``[1, G·Ls, D]``; ``G = num_groups`` spectral groups in spectral-major order (G = 1 for
            ``pos_embed_spatial``).
        new_grid: target ``(H/p, W/p)``.
        num_groups: G.
        source_grid: ``(h, w)`` of the checkpoint's grid, ``h·w = Ls`` (``None``: square).

    Returns:
        ``[1, G·h·w, D]`` in the input's dtype (the input itself when the grid already matches).

    .. versionadded:: 0.1
    """
    _, n, d = pos.shape
    ls = n // num_groups
    if source_grid is not None and int(source_grid[0]) * int(source_grid[1]) == ls:
        sh, sw = int(source_grid[0]), int(source_grid[1])
    else:
        sh = sw = _square_side(ls, "position embedding")
    if (sh, sw) == tuple(new_grid):
        return pos
    grid = pos.reshape(num_groups, sh, sw, d).permute(0, 3, 1, 2).float()  # [G, D, h, w]
    out = F.interpolate(grid, size=tuple(new_grid), mode="bicubic", align_corners=False)
    return out.permute(0, 2, 3, 1).reshape(1, -1, d).to(pos.dtype)


def _split_model(model: nn.Module) -> tuple[SpectralGPT, ClassificationHead | None, str]:
    if isinstance(model, SpectralGPTClassifier):
        return model.encoder, model.head, "encoder."
    if isinstance(model, SpectralGPT):
        return model, None, ""
    raise UsageError(
        f"cannot load SpectralGPT weights into a {type(model).__name__}; pass a SpectralGPT or SpectralGPTClassifier"
    )


#: spectral groups of the official checkpoints' joint position embedding: 12 Sentinel-2 bands in tokens of 3.
OFFICIAL_GROUPS = 4


def checkpoint_filter_fn(
    state_dict: Mapping[str, Any], model: nn.Module, source_config: SpectralGPTConfig | None = None
) -> dict[str, torch.Tensor]:
    """Translate an official (or geohsi) SpectralGPT state dict to ``model``'s parameter names.

    Steps: strip ``model``/``state_dict`` wrappers and ``module.`` prefixes; drop the MAE decoder
    (``decoder_*``) and ``mask_token``; split a fused ``attn.qkv`` into ``q``/``k``/``v``; map
    ``norm.*`` → ``head.norm.*`` and ``head.*`` → ``head.fc.*`` when ``model`` is a
    :class:`SpectralGPTClassifier` (a head whose shape does not fit — other class count or an MLP head
    — is dropped and will show up as missing; for a bare encoder both are dropped, the encoder has no
    norm); resize and convert position embeddings:

    - separate → separate: ``pos_embed_spatial`` resampled to the model's grid
      (:func:`resample_pos_embed`), ``pos_embed_temporal`` unchanged;
    - separate → joint: ``pos_embed[t·L + l] = spatial[l] + temporal[t]`` (exact);
    - joint → joint (official fine-tune checkpoints): reshaped as ``[T, Ls]`` and the spatial part
      resampled per spectral group;
    - joint → separate is not invertible and is left to fail in the loader (build the model with
      ``sep_pos_embed=False``).

    Entries that cannot be translated are passed through unchanged so that the loader reports them.

    Args:
        state_dict: checkpoint contents (wrapped or not).
        model: the target :class:`SpectralGPT` or :class:`SpectralGPTClassifier`.
        source_config: the config the checkpoint was made with (geohsi's safetensors record it): its
            spatial grid and spectral groups; ``None`` (an official ``.pth``): a square grid and
            :data:`OFFICIAL_GROUPS` groups.

    Returns:
        A state dict keyed like ``model.state_dict()``.

    Raises:
        ModelError: not a mapping of tensors, a non-square source position grid without a recorded one,
            or a joint position embedding of another number of spectral groups than the model's.

    .. versionadded:: 0.1
    """
    sd = _unwrap(state_dict)
    encoder, head, prefix = _split_model(model)
    cfg = encoder.config
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k == "mask_token" or k.startswith("decoder_"):
            continue
        if k.startswith("norm."):
            if head is not None:
                out["head.norm." + k[len("norm.") :]] = v
            continue
        if k.startswith("head."):
            fc = head.fc if head is not None else None
            if isinstance(fc, nn.Linear) and tuple(v.shape) == tuple(getattr(fc, k[len("head.") :]).shape):
                out["head.fc." + k[len("head.") :]] = v
            continue
        m = re.fullmatch(r"(blocks\.\d+\.attn\.)qkv\.(weight|bias)", k)
        if m and v.shape[0] % 3 == 0:
            for name, part in zip("qkv", v.chunk(3, dim=0), strict=True):
                out[f"{prefix}{m.group(1)}{name}.{m.group(2)}"] = part
            continue
        if k.startswith("pos_embed"):
            continue  # handled below, after every key is known
        out[prefix + k] = v

    out.update(_position_embeddings(sd, cfg, prefix, source_config))
    return out


def _position_embeddings(
    sd: Mapping[str, torch.Tensor], cfg: SpectralGPTConfig, prefix: str, source_config: SpectralGPTConfig | None
) -> dict[str, torch.Tensor]:
    """The checkpoint's position embeddings on the model's grid and layout (see :func:`checkpoint_filter_fn`)."""
    out: dict[str, torch.Tensor] = {}
    spatial, temporal, joint = sd.get("pos_embed_spatial"), sd.get("pos_embed_temporal"), sd.get("pos_embed")
    grid, t_groups = cfg.grid_size, cfg.num_groups
    src_grid = None if source_config is None else source_config.grid_size
    if spatial is not None:
        spatial = resample_pos_embed(spatial, grid, source_grid=src_grid)
        if cfg.sep_pos_embed or temporal is None or temporal.shape[1] != t_groups or spatial.shape[-1] != temporal.shape[-1]:
            out[prefix + "pos_embed_spatial"] = spatial
            if temporal is not None:
                out[prefix + "pos_embed_temporal"] = temporal
        else:
            comp = spatial.unsqueeze(1) + temporal.unsqueeze(2)  # [1, T, L, D]
            out[prefix + "pos_embed"] = comp.reshape(1, -1, comp.shape[-1])
    elif temporal is not None:
        out[prefix + "pos_embed_temporal"] = temporal
    if joint is not None:
        if not cfg.sep_pos_embed:
            src_groups = OFFICIAL_GROUPS if source_config is None else source_config.num_groups
            if src_groups != t_groups:
                raise ModelError(
                    f"its joint position embedding is laid out for {src_groups} spectral groups, the model has "
                    f"{t_groups} ({cfg.num_bands} bands in groups of {cfg.t_patch}); build the model with "
                    f"{src_groups * cfg.t_patch} input channels"
                )
            joint = resample_pos_embed(joint, grid, num_groups=t_groups, source_grid=src_grid)
        out[prefix + "pos_embed"] = joint
    return out


def _read_pth(path: Path) -> Any:
    try:
        # argparse.Namespace is allow-listed because MAE-style training scripts store their `args`
        # beside the weights; it only holds attribute values, each still vetted by the unpickler.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None:  # not a pickle of objects, just not a checkpoint (e.g. an HTML error page)
            raise ModelError(
                f"{path} is not a readable PyTorch checkpoint (corrupt or another format); check the download"
            ) from e
        raise ModelError(
            f"{path} is not a plain weights file (it pickles {found.group(1)}); geohsi will not unpickle "
            "arbitrary objects: re-save it as torch.save({'model': model.state_dict()}) or as safetensors"
        ) from e
    except Exception as e:  # torch raises KeyError/RuntimeError/EOFError for non-checkpoints
        raise ModelError(
            f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}: {e}); check the download or re-save it"
        ) from e


def _read_state_dict(path: str | os.PathLike) -> tuple[Any, dict[str, str]]:
    from geohsi.storage import local_copy

    p = local_copy(path, "checkpoint")  # a URL: downloaded once into the cache
    if not p.is_file():
        raise InputFormatError(f"checkpoint {p} does not exist; check the path or download it (see KNOWN_CHECKPOINTS)")
    if p.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(p, framework="pt", device="cpu") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118
        except Exception as e:
            raise ModelError(
                f"{p} is not a readable safetensors file ({type(e).__name__}: {e}); check the file or re-save it"
            ) from e
    return _read_pth(p), {}


def load_state_dict_checked(
    model: nn.Module,
    state_dict: Mapping[str, Any],
    *,
    source: str = "checkpoint",
    allow_missing: Iterable[str] = ("head.*",),
    source_config: SpectralGPTConfig | None = None,
) -> nn.Module:
    """Filter a state dict with :func:`checkpoint_filter_fn` and load it, refusing any mismatch.

    Args:
        model: target :class:`SpectralGPT` or :class:`SpectralGPTClassifier` (modified in place).
        state_dict: checkpoint contents.
        source: name of the checkpoint in messages (its path).
        allow_missing: ``fnmatch`` patterns over ``model``'s parameter names that may stay at their
            initial values (default: the head, which a backbone checkpoint does not fit).
        source_config: the config the checkpoint records, if any (:func:`checkpoint_filter_fn`).

    Returns:
        ``model``.

    Raises:
        ModelError: missing (not allowed), unexpected or wrong-shaped keys, listed in one line.

    .. versionadded:: 0.1
    """
    encoder, _, _ = _split_model(model)
    try:
        sd = checkpoint_filter_fn(state_dict, model, source_config)
    except ModelError as e:
        raise ModelError(f"{source}: {e}") from e
    own = model.state_dict()
    patterns = tuple(allow_missing)
    missing = [k for k in own if k not in sd]
    refused = [k for k in missing if not any(fnmatch(k, p) for p in patterns)]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in sd if k in own and sd[k].shape != own[k].shape]
    if refused or unexpected or wrong:
        parts = []
        if refused:
            parts.append(f"{len(refused)} missing [{_list(refused)}]")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected [{_list(unexpected)}]")
        if wrong:
            parts.append(f"{len(wrong)} wrong-shaped (checkpoint vs model) [{_list(wrong)}]")
        cfg = encoder.config
        if any(k.endswith("pos_embed") for k in unexpected) and cfg.sep_pos_embed:
            fix = "this is a joint-pos_embed (fine-tune) checkpoint: build the model with sep_pos_embed=False"
        else:
            fix = "build the model with the checkpoint's configuration (embed_dim, depth, patch_size, t_patch, num_bands)"
        raise ModelError(f"{source} does not fit SpectralGPT ({cfg.describe()}): {'; '.join(parts)}; {fix}")
    model.load_state_dict(sd, strict=False)
    if missing:
        log.info("%s: left at initial values (allowed): %s", source, _list(missing))
    return model


def _target(model_or_config: nn.Module | str | SpectralGPTConfig, joint_in_ckpt: bool) -> nn.Module:
    if isinstance(model_or_config, nn.Module):
        return model_or_config
    cfg = resolve_model_config(model_or_config)
    if joint_in_ckpt and cfg.sep_pos_embed:
        # A fine-tune checkpoint carries a joint pos_embed that cannot be split exactly.
        cfg = dataclasses.replace(cfg, sep_pos_embed=False)
    return SpectralGPT(cfg)


def _has_joint_pos(obj: Any) -> bool:
    try:
        keys = _unwrap(obj).keys()
    except ModelError:
        return False
    return "pos_embed" in keys and "pos_embed_spatial" not in keys


def load_official_checkpoint(
    path: str | os.PathLike,
    model_or_config: nn.Module | str | SpectralGPTConfig = "base",
    *,
    allow_missing: Iterable[str] = ("head.*",),
) -> nn.Module:
    """Load an official SpectralGPT ``.pth`` (MAE pretraining or fine-tune layout) strictly.

    The file is read with ``torch.load(weights_only=True)``: tensors and plain containers only
    (plus ``argparse.Namespace``, which training scripts store as ``args``).

    Args:
        path: the ``.pth`` file (e.g. ``SpectralGPT+.pth``, see :data:`KNOWN_CHECKPOINTS`).
        model_or_config: a model to fill in place, or a config/name to build a :class:`SpectralGPT`
            encoder from (switched to ``sep_pos_embed=False`` when the checkpoint has a joint
            ``pos_embed``). The model's ``img_size`` may differ from the checkpoint's: position
            embeddings are resampled.
        allow_missing: parameter-name patterns that may be absent (default: the head).

    Returns:
        The loaded model.

    Raises:
        InputFormatError: the file does not exist.
        ModelError: a pickled non-tensor object, an unreadable file, or keys that do not fit.

    Example:
        >>> enc = load_official_checkpoint("SpectralGPT+.pth", "base")  # doctest: +SKIP

    .. versionadded:: 0.1
    """
    obj, _ = _read_state_dict(path)
    model = _target(model_or_config, _has_joint_pos(obj))
    return load_state_dict_checked(model, obj, source=str(path), allow_missing=allow_missing)


def load_backbone(
    path: str | os.PathLike,
    config: nn.Module | str | SpectralGPTConfig | None = None,
    *,
    allow_missing: Iterable[str] = ("head.*",),
) -> nn.Module:
    """Load backbone weights from ``.safetensors`` (geohsi) or ``.pth`` (official), same key layout.

    Args:
        path: weights file.
        config: model to fill, config or name; ``None`` uses the config stored in the
            safetensors metadata by :func:`save_backbone`.
        allow_missing: parameter-name patterns that may be absent.

    Returns:
        The loaded model.

    Raises:
        InputFormatError: the file does not exist.
        ModelError: unreadable file, no config given and none stored, or keys that do not fit.

    .. versionadded:: 0.1
    """
    obj, meta = _read_state_dict(path)
    recorded = SpectralGPTConfig.from_dict(json.loads(meta["geohsi_config"])) if "geohsi_config" in meta else None
    if config is None:
        if recorded is None:
            raise ModelError(f"{path} stores no geohsi config; pass config= (e.g. 'base') to load_backbone")
        config = recorded
    model = _target(config, _has_joint_pos(obj))
    return load_state_dict_checked(model, obj, source=str(path), allow_missing=allow_missing, source_config=recorded)


def save_backbone(model: nn.Module, path: str | os.PathLike, *, include_head: bool = False, overwrite: bool = False) -> Path:
    """Write the encoder as safetensors in the official key layout, with its config as metadata.

    Args:
        model: a :class:`SpectralGPT` or :class:`SpectralGPTClassifier` (adapters merged first:
            wrapped ``q``/``v`` modules would not match the layout and fail to load back).
        path: output ``.safetensors`` file.
        include_head: for a classifier, also write ``head.norm`` as ``norm.*`` and a single-Linear
            ``head.fc`` as ``head.*`` (official layout).
        overwrite: replace an existing file.

    Returns:
        The written path.

    Raises:
        OutputError: the file exists without ``overwrite`` or cannot be written.

    .. versionadded:: 0.1
    """
    from geohsi.files import atomic_output, save_safetensors

    encoder, head, _ = _split_model(model)
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    if include_head and head is not None:
        tensors.update({f"norm.{k}": v.detach().cpu().contiguous() for k, v in head.norm.state_dict().items()})
        if isinstance(head.fc, nn.Linear):
            tensors.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in head.fc.state_dict().items()})
    meta = {"format": "geohsi-spectralgpt", "geohsi_config": json.dumps(encoder.config.to_dict())}
    with atomic_output(path, overwrite=overwrite) as tmp:
        save_safetensors(tensors, tmp, metadata=meta)
    return Path(path)


__all__ = [
    "KNOWN_CHECKPOINTS",
    "checkpoint_filter_fn",
    "load_backbone",
    "load_official_checkpoint",
    "load_state_dict_checked",
    "resample_pos_embed",
    "save_backbone",
]
