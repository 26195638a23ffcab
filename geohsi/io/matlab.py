"""MATLAB ``.mat`` reader: v4/v5/v7 through :func:`scipy.io.loadmat`, v7.3 (HDF5) through h5py.

MATLAB files carry no georeference, so scenes read here are pixel grids; ingest requires the user
to say so (``--crs none``) or to give a CRS and transform.

Variable detection:

* the cube is the largest 3-D numeric array (``var=`` picks another);
* labels are a 2-D integer-valued numeric array (``var=`` picks; otherwise the largest one whose
  name suggests ground truth — ``gt``, ``label``, ``class`` — or else the largest 2-D array).

Band axis: MATLAB hyperspectral cubes are stored rows × cols × bands (Indian Pines, Pavia,
Salinas, KSC, Botswana), so the band axis is the **last** MATLAB axis by default; pass
``band_axis=0`` (or 1) for cubes stored bands-first. h5py sees v7.3 arrays with the axes
reversed (HDF5 is row-major, MATLAB column-major); the reader undoes that, so ``band_axis`` always
refers to the axes as MATLAB's ``size()`` prints them.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from geohsi.errors import InputFormatError, UsageError
from geohsi.io.lazy import file_token, lazy_cube
from geohsi.scene import chosen_nodata, make_scene

_LABEL_HINTS = ("gt", "label", "class", "truth", "map")


def mat_version(path: Path) -> int:
    """MATLAB file major version: 1 (v4), 5 (v5/v7), or 73 (v7.3 HDF5).

    Raises:
        InputFormatError: not a MATLAB file.
    """
    from scipy.io.matlab import matfile_version

    try:
        major, _ = matfile_version(str(path))
    except Exception as e:  # scipy raises ValueError/MatReadError/TypeError for non-MAT bytes
        raise InputFormatError(f"{path} is not a MATLAB .mat file ({e}); check the file") from e
    return {0: 1, 1: 5, 2: 73}.get(major, major)


def _numeric(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind in "iufb"


def list_variables(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{name: (MATLAB shape, dtype)}`` of the numeric arrays in a ``.mat`` file, without loading them.

    Raises:
        InputFormatError: the file is missing or unreadable.
    """
    p = Path(path)
    if not p.exists():
        raise InputFormatError(f"input {p} does not exist; check the path")
    if mat_version(p) == 73:
        import h5py

        out: dict[str, tuple[tuple[int, ...], str]] = {}
        try:
            with h5py.File(p, "r") as f:
                for name, obj in f.items():
                    if isinstance(obj, h5py.Dataset) and _numeric(obj.dtype) and not name.startswith("#"):
                        out[name] = (tuple(reversed(obj.shape)), obj.dtype.str)
        except Exception as e:  # h5py raises OSError/RuntimeError/KeyError/ValueError for damaged files
            raise InputFormatError(
                f"cannot read {p} as MATLAB v7.3 (HDF5): {type(e).__name__}: {' '.join(str(e).split())[:120]}; check the file"
            ) from e
        return out
    from scipy.io import whosmat

    try:
        entries = whosmat(str(p))
    except Exception as e:
        raise InputFormatError(f"cannot read {p} as a MATLAB file: {type(e).__name__}: {e}; check the file") from e
    non_numeric = {"struct", "cell", "char", "object", "function_handle", "sparse", "logical_sparse"}
    return {n: (tuple(s), c) for n, s, c in entries if c not in non_numeric}


def _pick_cube(p: Path, variables: dict[str, tuple[tuple[int, ...], str]], var: str | None) -> str:
    if var is not None:
        if var not in variables:
            raise InputFormatError(f"{p} has no numeric variable {var!r} (it has {sorted(variables)}); choose one with --var")
        if len(variables[var][0]) != 3:
            raise InputFormatError(f"{p}: variable {var!r} has shape {variables[var][0]}, not 3-D; choose the cube with --var")
        return var
    cubes = {n: s for n, (s, _) in variables.items() if len(s) == 3}
    if not cubes:
        found = ", ".join(f"{n} {s}" for n, (s, _) in variables.items()) or "none"
        raise InputFormatError(
            f"{p} holds no 3-D numeric array (numeric variables: {found}); save the cube as rows × cols × bands"
        )
    return max(cubes, key=lambda n: int(np.prod(cubes[n])))


def _load_v5(p: Path, name: str) -> np.ndarray:
    """Load one variable of a v4/v5/v7 file, turning scipy's many failure types into one error."""
    from scipy.io import loadmat

    try:
        return loadmat(str(p), variable_names=[name])[name]
    except Exception as e:  # scipy raises OSError/ValueError/zlib.error/MatReadError/… for damaged streams
        raise InputFormatError(
            f"cannot read {name!r} from {p} ({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
            "the file may be truncated or corrupted, check the file"
        ) from e


class _H5Cube:
    """Array-like over a v7.3 dataset: ``[B, H, W]`` view, each block read with h5py."""

    def __init__(self, path: Path, name: str, perm: tuple[int, int, int], shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.name, self.perm = str(path), name, perm
        self.shape = tuple(shape[i] for i in perm)
        self.dtype = np.dtype(dtype)
        self.ndim = 3

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        import h5py

        # key is in output axes; map it back to the HDF5 axes, read, then permute.
        h5_key: list[slice] = [slice(None)] * 3
        for out_axis, h5_axis in enumerate(self.perm):
            h5_key[h5_axis] = key[out_axis]
        try:
            with h5py.File(self.path, "r") as f:
                block = f[self.name][tuple(h5_key)]
        except Exception as e:  # h5py: OSError/RuntimeError/KeyError/ValueError for damaged files
            why = " ".join(str(e).split())[:120]
        else:
            return np.ascontiguousarray(np.transpose(block, self.perm))
        # outside the except block: read on a Dask worker, the error must unpickle on the client
        raise InputFormatError(f"cannot read {self.name!r} from {self.path} ({why}); the file may be truncated, check the file")


def _band_axis(band_axis: int | None) -> int:
    axis = 2 if band_axis is None else int(band_axis)
    if axis not in (-3, -2, -1, 0, 1, 2):
        raise UsageError(f"band_axis {band_axis} is not an axis of a 3-D cube; use 0, 1 or 2 (MATLAB order)")
    return axis % 3


def read(
    path: str | os.PathLike,
    *,
    var: str | None = None,
    band_axis: int | None = None,
    chunks: int = 256,
    quantity: str = "reflectance",
    nodata: float | str | None = None,
) -> xr.Dataset:
    """Read the cube of a ``.mat`` file as a pixel-grid scene.

    Args:
        path: the ``.mat`` file.
        var: the variable holding the cube; the largest 3-D numeric array when ``None``.
        band_axis: which MATLAB axis (as ``size()`` prints) holds the bands; default 2 (last),
            the rows × cols × bands convention of the common benchmark files.
        chunks: spatial chunk edge in pixels of the lazy cube.
        quantity: ``"reflectance"`` or ``"radiance"``.
        nodata: the value marking pixels without data (a ``.mat`` file declares none; ``None`` or ``"none"``: none).

    Returns:
        The scene Dataset ``[B, H, W]`` in the stored dtype, no CRS (``georeferenced = 0``), no
        wavelengths (give them at ingest).

    Raises:
        InputFormatError: missing/unreadable file, no 3-D numeric array, or ``var`` not found.
        UsageError: ``band_axis`` out of range.
    """
    p = Path(path)
    variables = list_variables(p)
    name = _pick_cube(p, variables, var)
    baxis = _band_axis(band_axis)
    spatial = [a for a in range(3) if a != baxis]
    perm_matlab = (baxis, *spatial)  # MATLAB axes → (band, y, x)
    attrs: dict[str, Any] = {"source_files": [str(p.resolve())], "source_format": "matlab", "source_variable": name}
    if mat_version(p) == 73:
        shape_h5 = tuple(reversed(variables[name][0]))
        # MATLAB axis k is HDF5 axis 2 - k.
        perm_h5 = tuple(2 - a for a in perm_matlab)
        src = _H5Cube(p, name, perm_h5, shape_h5, np.dtype(variables[name][1]))
        arr = lazy_cube(src, (-1, chunks, chunks), f"mat73-{file_token(p, extra=(name, perm_h5))}")
    else:
        # v5 files are (often zlib-compressed) streams: scipy must load the variable whole.
        values = _load_v5(p, name)
        if not _numeric(values.dtype) or values.ndim != 3:
            raise InputFormatError(
                f"{p}: variable {name!r} is {values.dtype} {values.shape}, not a numeric 3-D cube; choose one with --var"
            )
        import dask.array as da

        arr = da.from_array(np.ascontiguousarray(np.transpose(values, perm_matlab)), chunks=(-1, chunks, chunks))
    return make_scene(arr, var=quantity, nodata=chosen_nodata(None, nodata), attrs=attrs)


def read_labels(path: str | os.PathLike, *, var: str | None = None) -> xr.Dataset:
    """Read a 2-D class-id array from a ``.mat`` file as a one-band pixel-grid scene ``[1, H, W]``.

    Args:
        path: the ``.mat`` file.
        var: the variable name; auto-detected when ``None`` (see the module docstring).

    Raises:
        InputFormatError: missing file, no 2-D numeric variable, or ``var`` not found / not 2-D.
    """
    p = Path(path)
    variables = list_variables(p)
    if var is not None:
        if var not in variables or len(variables[var][0]) != 2:
            found = sorted(n for n, (s, _) in variables.items() if len(s) == 2)
            raise InputFormatError(f"{p} has no 2-D numeric variable {var!r} (2-D ones: {found}); choose with --label-var")
        name = var
    else:
        two_d = {n: s for n, (s, _) in variables.items() if len(s) == 2 and min(s) > 1}
        if not two_d:
            found = ", ".join(f"{n} {s}" for n, (s, _) in variables.items()) or "none"
            raise InputFormatError(f"{p} holds no 2-D label array (numeric variables: {found}); save labels as rows × cols")
        hinted = [n for n in two_d if any(h in n.lower() for h in _LABEL_HINTS)]
        pool = hinted or list(two_d)
        name = max(pool, key=lambda n: int(np.prod(two_d[n])))
    if mat_version(p) == 73:
        import h5py

        try:
            with h5py.File(p, "r") as f:
                values = np.asarray(f[name][()]).T
        except Exception as e:  # h5py: OSError/RuntimeError/KeyError/ValueError for damaged files
            raise InputFormatError(
                f"cannot read {name!r} from {p} ({' '.join(str(e).split())[:120]}); the file may be truncated, check the file"
            ) from e
    else:
        values = np.asarray(_load_v5(p, name))
    ds = make_scene(values[np.newaxis], attrs={"source_files": [str(p.resolve())], "source_variable": name})
    return ds


__all__ = ["list_variables", "mat_version", "read", "read_labels"]
