"""Principal component analysis of a scene's spectra, fitted on valid pixels and replayed exactly.

The paper's reduction: the hyperspectral cube (B ≈ 100–450 good bands) becomes k = 12 channels,
the band count SpectralGPT's tubelet embedding expects. Because B is small, the exact fit is a
``B × B`` covariance reduced over the Dask chunks followed by one eigen-decomposition; the whole
scene never has to fit in memory. A randomized SVD (Halko et al.) over the pixel matrix is
available for very large scenes, and ``subsample`` thins the pixels for either method.

This module also holds :func:`project_bands`, the chunkwise ``matrix @ (x − offset)`` over the
band axis that both PCA and the Sentinel-2 resampling (:mod:`geohsi.spectral.sentinel2`) apply.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from geohsi.errors import BandMismatchError, DataError, ModelError, UsageError
from geohsi.spectral.normalize import physical_cube

PCA_METHODS: tuple[str, ...] = ("exact", "randomized")


def _project_block(block: np.ndarray, matrix: np.ndarray, offset: np.ndarray | None, idx: np.ndarray) -> np.ndarray:
    x = block[idx].astype("float64", copy=False)
    b = x.shape[0]
    flat = x.reshape(b, -1)
    if offset is not None:
        flat = flat - offset[:, None]
    out = matrix @ flat
    return out.reshape((matrix.shape[0], *x.shape[1:])).astype("float32")


def project_bands(
    values: xr.DataArray | np.ndarray | da.Array,
    matrix: np.ndarray,
    band_indices: Sequence[int] | np.ndarray,
    *,
    offset: np.ndarray | None = None,
    names: Sequence[str] | None = None,
) -> Any:
    """Apply ``matrix @ (values[band_indices] − offset)`` along the band axis, block by block.

    Only the listed bands are read, so NaN in unused (bad) bands never leaks into the output;
    a NaN in a used band (an invalid pixel) makes every output channel of that pixel NaN.
    Computed in float64, returned as float32.

    Args:
        values: ``[B_in, H, W]`` (or ``[B_in, …]``) physical values; a DataArray with a ``band``
            dim, a Dask array or a numpy array.
        matrix: ``[k, len(band_indices)]`` projection.
        band_indices: 0-based input bands the matrix columns refer to.
        offset: ``[len(band_indices)]`` value subtracted first (PCA mean), or ``None``.
        names: channel names for the DataArray result (default ``c0 … c{k-1}``).

    Returns:
        ``[k, H, W]`` float32 of the same kind as ``values``: a DataArray ``(channel, y, x)`` keeping
        the spatial coords, a lazy Dask array (chunked like the input spatially), or numpy.

    .. versionadded:: 0.1
    """
    matrix = np.asarray(matrix, dtype="float64")
    idx = np.asarray(band_indices, dtype="int64")
    off = None if offset is None else np.asarray(offset, dtype="float64")
    if isinstance(values, xr.DataArray):
        data = values.data
        bdim = values.dims[0]
    else:
        data, bdim = values, None
    k = matrix.shape[0]
    if isinstance(data, da.Array):
        if data.numblocks[0] != 1:
            data = data.rechunk({0: -1})  # every output pixel needs its full spectrum in one block
        out = data.map_blocks(_project_block, matrix, off, idx, dtype="float32", chunks=((k,), *data.chunks[1:]))
    else:
        out = _project_block(np.asarray(data), matrix, off, idx)
    if bdim is None:
        return out
    coords = {d: values.coords[d] for d in values.dims[1:] if d in values.coords}
    for name, c in values.coords.items():  # keep non-dimension spatial coords (e.g. spatial_ref)
        if bdim not in c.dims and name not in coords:
            coords[name] = c
    coords["channel"] = list(names) if names is not None else [f"c{i}" for i in range(k)]
    return xr.DataArray(out, dims=("channel", *values.dims[1:]), coords=coords)


def _splitmix_uniform(rows: np.ndarray, cols: np.ndarray, width: int, seed: int) -> np.ndarray:
    """Uniform [0, 1) per pixel from a counter-based hash: the same for any chunking."""
    salt = np.uint64((int(seed) * 0x9E3779B97F4A7C15) % (1 << 64))  # Python ints: no overflow warning
    z = rows.astype("uint64") * np.uint64(width) + cols.astype("uint64") + salt
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype("float64") / float(1 << 53)


def _keep_block(block: np.ndarray, p: float, width: int, seed: int, block_info: Any = None) -> np.ndarray:
    (y0, y1), (x0, x1) = block_info[0]["array-location"]
    r, c = np.meshgrid(np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
    return _splitmix_uniform(r, c, width, seed) < p


def subsample_mask(template: da.Array | np.ndarray, n: int, seed: int = 0) -> Any:
    """A lazy ``[H, W]`` mask keeping each pixel with probability ``n / (H·W)``, chunked like ``template``.

    Pixel selection depends only on ``(row, col, seed)``, never on the chunking.
    """
    h, w = template.shape[-2:]
    p = min(1.0, n / float(h * w))
    if isinstance(template, da.Array):
        t = template[0] if template.ndim == 3 else template
        return t.map_blocks(_keep_block, p, w, seed, dtype=bool)
    r, c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return _splitmix_uniform(r, c, w, seed) < p


def _fix_signs(components: np.ndarray) -> np.ndarray:
    # Eigenvectors are defined up to sign; make the largest-|loading| entry positive so the same
    # data always gives the same channels (and a refit compares equal).
    pivot = components[np.arange(components.shape[0]), np.argmax(np.abs(components), axis=1)]
    return components * np.where(pivot < 0, -1.0, 1.0)[:, None]


def _wl_list(w: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in w]


def _wl_array(v: Sequence[float | None]) -> np.ndarray:
    return np.asarray([np.nan if x is None else float(x) for x in v], dtype="float64")


def _frozen(a: Any, dtype: str = "float64") -> np.ndarray:
    arr = np.array(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class PCAParams:
    """A fitted PCA: everything needed to replay the projection on another scene of the sensor.

    Attributes:
        mean: ``[B_used]`` mean spectrum of the valid pixels (physical units).
        components: ``[k, B_used]`` unit-norm principal axes, by decreasing variance; each row's
            largest-|loading| entry is positive (deterministic signs).
        explained_variance: ``[k]`` variance along each axis (ddof = 1, as scikit-learn).
        explained_variance_ratio: ``[k]`` share of the total variance of the used bands.
        band_indices: ``[B_used]`` 0-based indices of the input bands used (the good bands).
        input_wavelengths: ``[B_in]`` wavelengths (nm, NaN unknown) of the fitted input cube.
        n_samples: number of pixels the fit used.
        method: ``"exact"`` or ``"randomized"``.
        discriminants: how many leading components are Fisher discriminant directions of labelled
            training pixels instead of principal axes (``--spectral lda``,
            :func:`geohsi.spectral.lda.fit_discriminant`); 0 for a plain PCA. The rows after them are
            principal axes made orthogonal to them, each pointing the way of its principal axis, so
            with discriminants neither the variance order nor the sign rule above holds.

    .. versionadded:: 0.1
    .. versionchanged:: 0.3
        ``discriminants``.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    band_indices: np.ndarray
    input_wavelengths: np.ndarray
    n_samples: int
    method: str = "exact"
    discriminants: int = 0

    @property
    def n_components(self) -> int:
        """k, the number of output channels."""
        return int(self.components.shape[0])

    @property
    def n_input_bands(self) -> int:
        """B_in, the band count of the cube the PCA was fitted on."""
        return int(self.input_wavelengths.shape[0])

    @property
    def channel_names(self) -> list[str]:
        """``["PC1", …, "PCk"]``; with discriminants ``["LD1", …, "LDm", "PC1", …]`` (the principal
        components orthogonal to the discriminants)."""
        m = self.discriminants
        return [f"LD{i + 1}" for i in range(m)] + [f"PC{i + 1}" for i in range(self.n_components - m)]

    def apply(self, values: xr.DataArray | np.ndarray | da.Array) -> Any:
        """Project physical values onto the components, chunkwise.

        Args:
            values: ``[B_in, H, W]`` physical values with NaN at invalid pixels (e.g.
                :func:`geohsi.spectral.normalize.physical_cube`); DataArray, Dask or numpy.

        Returns:
            ``[k, H, W]`` float32 (DataArray ``(channel, y, x)`` for DataArray input), NaN at invalid pixels.

        Raises:
            BandMismatchError: the input's band count differs from the fitted one.
        """
        nb = int(values.shape[0])
        if nb != self.n_input_bands:
            raise BandMismatchError(
                f"PCA was fitted on {self.n_input_bands} bands but the input has {nb}; "
                "use a scene from the same sensor or refit the transform"
            )
        matrix, idx, centre = self.affine()
        return project_bands(values, matrix, idx, offset=centre, names=self.channel_names)

    def affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The projection as ``(matrix [k, B_used], band_indices [B_used], centre [B_used])``:
        ``matrix @ (values[band_indices] − centre)``."""
        return self.components, self.band_indices, self.mean

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; :meth:`from_dict` rebuilds bit-identical arrays."""
        return {
            "kind": "pca",
            "method": self.method,
            "mean": self.mean.tolist(),
            "components": self.components.tolist(),
            "explained_variance": self.explained_variance.tolist(),
            "explained_variance_ratio": self.explained_variance_ratio.tolist(),
            "band_indices": self.band_indices.tolist(),
            "input_wavelengths": _wl_list(self.input_wavelengths),
            "n_samples": int(self.n_samples),
        } | ({"discriminants": int(self.discriminants)} if self.discriminants else {})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PCAParams:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ModelError: the record is malformed or inconsistent (a damaged bundle).
        """
        try:
            p = cls(
                mean=_frozen(d["mean"]),
                components=_frozen(d["components"]),
                explained_variance=_frozen(d["explained_variance"]),
                explained_variance_ratio=_frozen(d["explained_variance_ratio"]),
                band_indices=_frozen(d["band_indices"], "int64"),
                input_wavelengths=_frozen(_wl_array(d["input_wavelengths"])),
                n_samples=int(d["n_samples"]),
                method=str(d.get("method", "exact")),
                discriminants=int(d.get("discriminants", 0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"invalid PCA record ({type(e).__name__}: {e}); re-create the bundle") from e
        b = p.band_indices.shape[0]
        if (
            p.components.ndim != 2
            or p.components.shape[1] != b
            or p.mean.shape != (b,)
            or not 0 <= p.discriminants <= len(p.components)
        ):
            raise ModelError(
                f"invalid PCA record: components {p.components.shape}, mean {p.mean.shape}, {b} band indices; "
                "re-create the bundle"
            )
        return p

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PCAParams) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def good_band_indices(ds: xr.Dataset) -> np.ndarray:
    """0-based indices of the scene's good bands (all bands when none is flagged good)."""
    good = np.asarray(ds["good_band"].values, bool)
    return np.flatnonzero(good) if good.any() else np.arange(good.size)


def _checked_band_indices(ds: xr.Dataset, n_components: int, method: str, subsample: int | None) -> np.ndarray:
    """The good band indices to fit on, after checking the method, ``n_components`` and ``subsample``."""
    if method not in PCA_METHODS:
        raise UsageError(f"unknown PCA method {method!r}; use one of {', '.join(PCA_METHODS)}")
    idx = good_band_indices(ds)
    b = idx.size
    if not 1 <= n_components <= b:
        src = ds.encoding.get("source", "the scene")
        raise UsageError(
            f"{src} has {b} good bands, too few for {n_components} principal components; give a hyperspectral "
            "scene, or map a multispectral one onto the Sentinel-2 bands with --spectral s2"
            if n_components > b
            else f"n_components={n_components} must be at least 1"
        )
    if subsample is not None and subsample < n_components + 1:
        raise UsageError(f"subsample={subsample} is too small; use at least {n_components + 1} pixels, or none")
    return idx


def _exact_components(xc: da.Array, n: int, n_components: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``(components, explained variance, total variance)`` from the eigendecomposition of the covariance."""
    cov = da.tensordot(xc, xc, axes=((1, 2), (1, 2))).compute() / (n - 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals = np.clip(evals[order], 0.0, None)
    total_var = float(evals.sum())
    comps = evecs[:, order[:n_components]].T
    ev = evals[:n_components]
    return comps, ev, total_var


def _randomized_components(xc: da.Array, n: int, n_components: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``(components, explained variance, total variance)`` from a compressed SVD of the centred pixel matrix."""
    b = xc.shape[0]
    pixels = xc.transpose(1, 2, 0).reshape(-1, b).rechunk({1: -1})
    _, s, v = da.linalg.svd_compressed(pixels, n_components, n_power_iter=4, seed=seed)
    s, v, sq = da.compute(s, v, (xc * xc).sum())
    ev = s**2 / (n - 1)
    total_var = float(sq) / (n - 1)
    comps = np.asarray(v)
    return comps, ev, total_var


def fit_pca(
    ds: xr.Dataset, n_components: int = 12, *, method: str = "exact", subsample: int | None = None, seed: int = 0
) -> PCAParams:
    """Fit a PCA on the valid pixels and good bands of a scene (physical units).

    ``exact``: two passes over the (lazy) cube — the mean, then the ``B × B`` covariance of the
    centred pixels as a Dask reduction — and one ``numpy.linalg.eigh``; equal to scikit-learn's
    ``PCA`` on the same pixels. ``randomized``: the centred ``[N, B]`` pixel matrix (invalid rows
    zeroed, which changes neither the covariance nor its singular vectors) goes through
    ``dask.array.linalg.svd_compressed``; approximate, for scenes where ``N·B²`` dominates.

    Args:
        ds: a scene (lazy; only reductions are computed).
        n_components: k, output channels (12 for SpectralGPT).
        method: ``"exact"`` or ``"randomized"``.
        subsample: approximate number of pixels to fit on (each kept with probability
            ``subsample / (H·W)``, chosen by a hash of ``(row, col, seed)``, so chunk-independent);
            ``None`` uses all valid pixels.
        seed: seed of the subsample and of the randomized SVD.

    Returns:
        The fitted :class:`PCAParams`.

    Raises:
        UsageError: unknown method, ``n_components`` < 1 or more than the good bands, bad ``subsample``.
        DataError: fewer valid pixels than ``n_components + 1``.

    .. versionadded:: 0.1
    """
    idx = _checked_band_indices(ds, n_components, method, subsample)
    phys = physical_cube(ds, dtype="float64")
    wl = np.asarray(ds["wavelength"].values, dtype="float64")
    x = phys.data[idx]
    if not isinstance(x, da.Array):
        x = da.from_array(x, chunks=(-1, 256, 256))
    x = x.rechunk({0: -1})
    ok = ~da.isnan(x).any(axis=0)
    if subsample is not None:
        ok = ok & subsample_mask(ok, subsample, seed)
    n, total = da.compute(ok.sum(), da.where(ok[None], x, 0.0).sum(axis=(1, 2)))
    n = int(n)
    if n < n_components + 1:
        source = ds.encoding.get("source")
        raise DataError(
            f"{f'{source}: only' if source else 'only'} {n} valid pixels to fit {n_components} principal components; check the scene's nodata value "
            "and bad bands, or leave the scene out"
        )
    mean = total / n
    xc = da.where(ok[None], x - mean[:, None, None], 0.0)
    if method == "exact":
        comps, ev, total_var = _exact_components(xc, n, n_components)
    else:
        comps, ev, total_var = _randomized_components(xc, n, n_components, seed)
    comps = _fix_signs(np.asarray(comps, dtype="float64"))
    ratio = ev / total_var if total_var > 0 else np.zeros_like(ev)
    return PCAParams(
        mean=_frozen(mean),
        components=_frozen(comps),
        explained_variance=_frozen(ev),
        explained_variance_ratio=_frozen(ratio),
        band_indices=_frozen(idx, "int64"),
        input_wavelengths=_frozen(wl),
        n_samples=n,
        method=method,
    )


__all__ = ["PCA_METHODS", "PCAParams", "fit_pca", "good_band_indices", "project_bands", "subsample_mask"]
