"""The spectral transform a model bundle stores: scene → 12 normalised channels, replayed exactly.

``SpectralTransform`` = a band reduction (PCA, discriminants + PCA, or Sentinel-2 resampling) + a per-channel
normaliser + the input it was fitted for (band count, wavelengths, bands read). Training fits it
once; the bundle keeps :meth:`SpectralTransform.to_dict`; inference rebuilds it with
:meth:`SpectralTransform.from_dict`, checks the new scene with :meth:`SpectralTransform.check_scene`
and applies the identical arithmetic chunk by chunk.

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from geohsi.errors import BandMismatchError, ModelError, UsageError
from geohsi.spectral.guard import (
    ChannelStats,
    channel_stats,
    distribution_warning,
    range_warning,
    strided_sample,
    value_range,
    window_sample,
)
from geohsi.spectral.normalize import Normalizer, physical_cube
from geohsi.spectral.pca import PCAParams, _frozen, _wl_array, _wl_list, fit_pca, good_band_indices
from geohsi.spectral.pixelmap import PixelMap
from geohsi.spectral.sentinel2 import S2_BANDS, S2Resampler

#: ``lda``: Fisher discriminants of the training pixels, then PCA (:mod:`geohsi.spectral.lda`); like PCA, one band table.
REDUCTIONS: tuple[str, ...] = ("pca", "s2", "lda")
#: the reductions fitted on one band table (principal axes of its bands); ``s2`` resamples by wavelength.
BAND_TABLE_REDUCTIONS: tuple[str, ...] = ("pca", "lda")
TRANSFORM_FORMAT_VERSION = 1
#: Largest per-band wavelength difference (nm) between a scene and the fitted transform that still
#: counts as the same sensor: absorbs calibration updates between acquisitions, not other sensors.
WAVELENGTH_TOL_NM = 1.0


def _source(ds: xr.Dataset) -> str:
    return str(ds.encoding.get("source", "the scene"))


def _radiometry(ds: xr.Dataset) -> tuple[str, str | None, bool]:
    """``(quantity, units, scaled)`` of a scene: its cube's name (``reflectance``/``radiance``), its
    ``units`` attribute, and whether it declares a ``scale_factor``/``add_offset``."""
    from geohsi.scene import cube

    v = cube(ds)
    units = v.attrs.get("units") or ds.attrs.get("units")
    scaled = "scale_factor" in v.attrs or "add_offset" in v.attrs
    return str(v.name), (str(units) if units else None), bool(scaled)


#: Pixels of the pooled sample a transform is fitted on when a run has several scenes.
FIT_SAMPLE_PIXELS = 100_000


def pixel_sample(ds: xr.Dataset, n: int, seed: int) -> xr.Dataset:
    """Up to ``n`` valid pixels of a scene (from nine windows spread over it) as a ``[B, 1, n]`` scene in physical units.

    The sample keeps the scene's band table, quantity and units; its values are physical (scale
    applied, ``scale_factor`` 1 when the scene declared one) and it has no nodata value.
    """
    from geohsi.scene import cube, make_scene

    sub = window_sample(ds)
    values = np.asarray(physical_cube(sub, dtype="float32").values).reshape(int(ds.sizes["band"]), -1)
    ok = np.flatnonzero(np.isfinite(values).all(axis=0))
    pick = np.sort(np.random.default_rng(seed).permutation(ok)[:n]) if ok.size > n else ok
    v = cube(ds)
    scaled = "scale_factor" in v.attrs or "add_offset" in v.attrs
    out = make_scene(
        values[:, pick][:, None, :],
        var=str(v.name),
        wavelength=ds["wavelength"].values,
        fwhm=ds["fwhm"].values,
        good_band=ds["good_band"].values,
        scale_factor=1.0 if scaled else None,
        attrs={k: a for k, a in ds.attrs.items() if k in ("units", "sensor")},
    )
    if v.attrs.get("units"):
        out[str(v.name)].attrs["units"] = v.attrs["units"]
    out.encoding["source"] = ds.encoding.get("source", "the scene")
    return out


def concat_samples(samples: list[xr.Dataset]) -> xr.Dataset:
    """Pixel samples of one band table side by side (``[B, 1, Σn]``), as one scene."""
    from geohsi.scene import cube

    var = str(cube(samples[0]).name)
    data = np.concatenate([np.asarray(cube(s).values) for s in samples], axis=2)
    out = samples[0].isel(x=slice(0, 0)).copy()
    return (
        out.drop_vars(["x"])
        .assign({var: (("band", "y", "x"), data, cube(samples[0]).attrs)})
        .assign_coords(x=np.arange(data.shape[2]) + 0.5)
    )


def _discriminant(pca: PCAParams, labelled: tuple[np.ndarray, np.ndarray] | None) -> PCAParams:
    """The ``lda`` projection: :func:`~geohsi.spectral.lda.fit_discriminant` on the labelled training pixels."""
    from geohsi.spectral.lda import fit_discriminant

    if labelled is None:
        raise UsageError("the lda reduction is fitted on labelled training pixels; pass labelled=(values, class ids)")
    return fit_discriminant(pca, *labelled)


def _check_poolable(scenes: list[xr.Dataset], method: str) -> None:
    """Refuse scenes that cannot share one transform: other quantities, or other band tables for PCA."""
    first_q, first = _radiometry(scenes[0])[0], _source(scenes[0])
    for ds in scenes[1:]:
        q = _radiometry(ds)[0]
        if q != first_q:
            raise BandMismatchError(f"{_source(ds)} holds {q} but {first} holds {first_q}; train on scenes of one quantity")
        if method in BAND_TABLE_REDUCTIONS and not _same_band_table(scenes[0], ds):
            raise BandMismatchError(
                f"{method.upper()} needs one band table, but {_source(ds)} ({int(ds.sizes['band'])} bands) and {first} "
                f"({int(scenes[0].sizes['band'])} bands) differ; train with --spectral s2 to combine sensors by wavelength"
            )


def _same_band_table(a: xr.Dataset, b: xr.Dataset) -> bool:
    return same_band_table(
        np.asarray(a["wavelength"].values, dtype="float64"), np.asarray(b["wavelength"].values, dtype="float64")
    )


def same_band_table(wa: np.ndarray, wb: np.ndarray, tol_nm: float = WAVELENGTH_TOL_NM) -> bool:
    """Whether two band tables are one sensor's: as many bands, centres within ``tol_nm`` wherever both are known."""
    if wa.size != wb.size:
        return False
    both = np.isfinite(wa) & np.isfinite(wb)
    return not both.any() or float(np.abs(wa - wb)[both].max()) <= tol_nm


@dataclass(frozen=True, eq=False)
class SpectralTransform:
    """Band reduction + normalisation, with the input it expects.

    Attributes:
        reduction: ``"pca"``, ``"lda"`` or ``"s2"``.
        projection: the fitted :class:`~geohsi.spectral.pca.PCAParams` (also for ``lda``) or
            :class:`~geohsi.spectral.sentinel2.S2Resampler`.
        normalizer: per-channel :class:`~geohsi.spectral.normalize.Normalizer` fitted on the
            projected channels of the valid pixels.
        input_band_count: B_in of the fitting scene (what a PCA transform accepts; an ``s2``
            transform maps any band table that covers the 12 Sentinel-2 bands).
        input_wavelengths: ``[B_in]`` nm (NaN unknown) of the fitting scene.
        input_quantity: ``reflectance`` or ``radiance`` of the fitting scene (``None``: a bundle
            written before quantities were recorded; no check).
        input_units: the fitting scene's ``units`` attribute, if any.
        input_scaled: whether the fitting scene declared a ``scale_factor``/``add_offset``.
        input_range: ``(1st, 99th)`` percentile of the fitting scene's physical values over the bands
            the reduction reads (e.g. about 0–0.6 for reflectance); ``None``: not recorded.
        channel_stats: mean and spread of each normalised model channel on the fitting scene
            (:class:`~geohsi.spectral.guard.ChannelStats`); ``None``: not recorded (no distribution check).

    .. versionadded:: 0.1
    """

    reduction: str
    projection: PCAParams | S2Resampler
    normalizer: Normalizer
    input_band_count: int
    input_wavelengths: np.ndarray
    input_quantity: str | None = None
    input_units: str | None = None
    input_scaled: bool | None = None
    input_range: tuple[float, float] | None = None
    channel_stats: ChannelStats | None = None

    @classmethod
    def fit(
        cls,
        ds: xr.Dataset,
        method: str = "pca",
        n_components: int = 12,
        norm: str = "standard",
        *,
        percentiles: tuple[float, float] | None = None,
        pca_method: str = "exact",
        subsample: int | None = None,
        seed: int = 0,
        labelled: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> SpectralTransform:
        """Fit the reduction on the scene's valid pixels, then the normaliser on its output.

        Args:
            ds: a scene (lazy; two to three passes over the cube).
            method: ``"pca"``, ``"lda"`` (discriminants of ``labelled``, then PCA) or ``"s2"``
                (Sentinel-2 resampling, always 12 channels).
            n_components: PCA components k.
            norm: ``"standard"``, ``"minmax"`` or ``"none"``.
            percentiles: robust min–max bounds (``norm="minmax"`` only), e.g. ``(2, 98)``.
            pca_method: ``"exact"`` or ``"randomized"`` (see :func:`~geohsi.spectral.pca.fit_pca`).
            subsample: PCA fit on about this many pixels (``None``: all valid pixels).
            seed: seed of the subsample / randomized SVD.
            labelled: ``(values [n, B_in], class ids [n])``, physical spectra of the training
                pixels: what ``"lda"`` is fitted on (the scene's pixels give its principal components).

        Returns:
            The fitted transform.

        Raises:
            UsageError: unknown method/norm, ``n_components`` other than 12 with ``"s2"``, or
                ``"lda"`` without ``labelled``.
            BandMismatchError: ``"s2"`` on a scene without wavelengths or not covering an S2 band.
            DataError: too few valid pixels.
        """
        if method not in REDUCTIONS:
            raise UsageError(f"unknown spectral reduction {method!r}; use one of {', '.join(REDUCTIONS)}")
        projection: PCAParams | S2Resampler
        if method in BAND_TABLE_REDUCTIONS:
            projection = fit_pca(ds, n_components, method=pca_method, subsample=subsample, seed=seed)
            if method == "lda":
                projection = _discriminant(projection, labelled)
        else:
            if n_components != len(S2_BANDS):
                raise UsageError(
                    f"Sentinel-2 resampling always gives {len(S2_BANDS)} channels, not {n_components}; "
                    "drop n_components or use the PCA reduction"
                )
            projection = S2Resampler.from_scene(ds)
        channels = projection.apply(physical_cube(ds))
        normalizer = Normalizer.fit(channels, norm, percentiles=percentiles)
        wl = np.asarray(ds["wavelength"].values, dtype="float64")
        quantity, units, scaled = _radiometry(ds)
        rng = value_range(ds, projection.band_indices)
        stats = channel_stats(strided_sample(ds), projection, normalizer)
        return cls(method, projection, normalizer, int(ds.sizes["band"]), _frozen(wl), quantity, units, scaled, rng, stats)

    @classmethod
    def fit_many(
        cls,
        scenes: list[xr.Dataset],
        method: str = "pca",
        n_components: int = 12,
        norm: str = "standard",
        *,
        percentiles: tuple[float, float] | None = None,
        seed: int = 0,
        sample_pixels: int = FIT_SAMPLE_PIXELS,
        labelled: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> SpectralTransform:
        """Fit on the pixels of several scenes: one scene is :meth:`fit` itself (every valid pixel).

        Several scenes are fitted on a pooled sample of about ``sample_pixels`` valid pixels drawn
        from nine windows of each (:func:`~geohsi.spectral.guard.window_sample`), in physical units.
        PCA needs one band table (one sensor); Sentinel-2 resampling takes each scene through its own
        resampling onto the 12 bands, so scenes of several sensors train together.

        Args:
            scenes: the scenes (lazy).
            method, n_components, norm, percentiles, seed, labelled: see :meth:`fit`.
            sample_pixels: pixels of the pooled sample, over all scenes.

        Returns:
            The fitted transform (its input band table is the first scene's).

        Raises:
            BandMismatchError: PCA over scenes of different band tables, or scenes of different quantities.
        """
        if len(scenes) == 1:
            return cls.fit(scenes[0], method, n_components, norm, percentiles=percentiles, seed=seed, labelled=labelled)
        _check_poolable(scenes, method)
        samples = [pixel_sample(ds, max(n_components + 1, sample_pixels // len(scenes)), seed + k) for k, ds in enumerate(scenes)]
        if method in BAND_TABLE_REDUCTIONS:
            return cls.fit(
                concat_samples(samples), method, n_components, norm, percentiles=percentiles, seed=seed, labelled=labelled
            )
        ref = cls.fit(samples[0], method, n_components, norm, percentiles=percentiles, seed=seed)
        projections = [ref.projection, *(ref.check_scene(s) for s in samples[1:])]
        channels = xr.concat([p.apply(physical_cube(s)) for p, s in zip(projections, samples, strict=True)], dim="x")
        normalizer = Normalizer.fit(channels, norm, percentiles=percentiles)
        used = np.concatenate(
            [np.asarray(physical_cube(s).values[p.band_indices]).reshape(-1) for p, s in zip(projections, samples, strict=True)]
        )
        used = used[np.isfinite(used)]
        rng = (float(np.percentile(used, 1.0)), float(np.percentile(used, 99.0))) if used.size else None
        stats = ChannelStats.of(normalizer.apply(channels).values)
        return dataclasses.replace(ref, normalizer=normalizer, input_range=rng, channel_stats=stats)

    @property
    def channel_names(self) -> list[str]:
        """Output channel names (``PC1…`` or ``B01…``)."""
        return self.projection.channel_names

    @property
    def n_channels(self) -> int:
        """Number of output channels."""
        return len(self.channel_names)

    def same_sensor(self, ds: xr.Dataset, *, tol_nm: float = WAVELENGTH_TOL_NM) -> bool:
        """Whether a scene has the fitting scene's band table (count, and wavelengths within ``tol_nm``)."""
        return same_band_table(np.asarray(ds["wavelength"].values, dtype="float64"), self.input_wavelengths, tol_nm)

    def check_scene(self, ds: xr.Dataset, *, tol_nm: float = WAVELENGTH_TOL_NM, warn: Any = None) -> PCAParams | S2Resampler:
        """Check that a scene is one this transform can map.

        Quantity first (when the bundle recorded it): a reflectance model refuses a radiance scene
        and vice versa. Then the bands. A PCA transform needs the fitting sensor: the band count
        must match, wavelengths must agree within ``tol_nm`` wherever both are known (a scene
        without wavelengths is accepted on its band count), and every band it reads must be a good
        band of the scene. An ``s2`` transform maps any sensor whose good bands cover every
        Sentinel-2 band (its resampling weights are rebuilt from the scene's own wavelengths, FWHM
        and good-band flags, the same response model).

        Args:
            ds: the scene.
            tol_nm: wavelength tolerance of "the same sensor".
            warn: receives a one-line warning when the scene declares no scale factor while the
                fitting scene did (the values are then taken as they are; a scene in physical units
                says so with ``scale_factor = 1``).

        Returns:
            The band reduction for this scene: the fitted one on the fitting sensor; for an ``s2``
            transform on another sensor, the resampling onto the same 12 bands built from the scene.

        Raises:
            BandMismatchError: one line naming the scene, what differs, and what to do.
        """
        src = _source(ds)
        quantity, _, scaled = _radiometry(ds)
        if self.input_quantity is not None and quantity != self.input_quantity:
            fix = (
                "convert it to reflectance first (atmospheric correction, e.g. an L2A product)"
                if quantity == "radiance"
                else ("use a model trained on radiance scenes")
            )
            raise BandMismatchError(
                f"{src} holds {quantity} but the model was trained on {self.input_quantity}"
                f"{f' ({self.input_units})' if self.input_units else ''}; {fix}"
            )
        if self.reduction == "s2" and not self.same_sensor(ds, tol_nm=tol_nm):
            projection = S2Resampler.from_scene(ds)  # its coverage check names the missing S2 bands and the scene's range
        else:
            projection = self._same_sensor_projection(ds, src, tol_nm)
        if warn is not None:
            for message in self._input_warnings(ds, projection, src, quantity, scaled):
                warn(message)
        return projection

    def _input_warnings(self, ds: xr.Dataset, projection: Any, src: str, quantity: str, scaled: bool) -> list[str]:
        """Warnings on a scene that passes the checks but looks unlike the training data (range, scale, channels)."""
        from geohsi.scene import cube

        out = []
        # One read of nine small windows (at most nine chunks) serves both guards; bundles from before them have neither.
        guarded = self.input_range is not None or self.channel_stats is not None
        # local threads: under a batch the default scheduler is the cluster, where the read queued behind whole scenes
        sample = window_sample(ds[[cube(ds).name]]).load(scheduler="threads") if guarded else None
        rng = (
            None
            if self.input_range is None
            else range_warning(sample, projection.band_indices, self.input_range, src, quantity, scaled)
        )
        if rng is not None:
            out.append(rng)
        elif self.input_scaled and not scaled:
            out.append(
                f"{src} declares no scale_factor/add_offset; its values are taken as {quantity} as they are "
                "(the model was trained on scaled values: set scale_factor at ingest if they are e.g. reflectance × 10000)"
            )
        if self.channel_stats is not None and rng is None:  # values 10× off put every channel off: one warning says it
            got = channel_stats(sample, projection, self.normalizer)
            message = None if got is None else distribution_warning(got, self.channel_stats, self.channel_names, src, quantity)
            if message is not None:
                out.append(message)
        return out

    def _same_sensor_projection(self, ds: xr.Dataset, src: str, tol_nm: float) -> PCAParams | S2Resampler:
        """The fitted projection, after checking that the scene has the fitting sensor's bands."""
        nb = int(ds.sizes["band"])
        fw = self.input_wavelengths
        rng = f"{np.nanmin(fw):.1f}–{np.nanmax(fw):.1f} nm" if np.isfinite(fw).any() else "no wavelengths"
        if nb != self.input_band_count:
            raise BandMismatchError(
                f"{src} has {nb} bands but the spectral transform was fitted on {self.input_band_count} ({rng}); "
                "use a model trained for this sensor, retrain on this scene, or train with --spectral s2 to map "
                "other sensors by wavelength"
            )
        wl = np.asarray(ds["wavelength"].values, dtype="float64")
        both = np.isfinite(wl) & np.isfinite(fw)
        if both.any():
            diff = np.abs(wl - fw)
            diff[~both] = 0.0
            i = int(np.argmax(diff))
            if diff[i] > tol_nm:
                raise BandMismatchError(
                    f"{src} band {i + 1} is at {wl[i]:.2f} nm but the spectral transform expects {fw[i]:.2f} nm "
                    f"(tolerance {tol_nm} nm); use a model trained for this sensor, retrain on this scene, or train "
                    "with --spectral s2 to map other sensors by wavelength"
                )
        used = np.asarray(self.projection.band_indices)
        bad = np.setdiff1d(used, good_band_indices(ds))
        if bad.size:
            raise BandMismatchError(
                f"{src} flags bands {(bad + 1).tolist()[:10]} as bad but the spectral transform reads them; "
                "fix the scene's good_band flags or retrain on this scene"
            )
        return self.projection

    def describe_inputs(self) -> str:
        """One line on the scenes this transform can map (for ``geohsi info``)."""
        q = (
            f"{self.input_quantity}{f' ({self.input_units})' if self.input_units else ''}"
            if self.input_quantity
            else "any quantity (not recorded)"
        )
        if self.input_range is not None:
            q += f", values ~{self.input_range[0]:.4g}–{self.input_range[1]:.4g} (1st–99th percentile in training)"
        fw = self.input_wavelengths
        rng = f"{np.nanmin(fw):.0f}–{np.nanmax(fw):.0f} nm" if np.isfinite(fw).any() else "no wavelengths"
        if self.reduction == "s2":
            need = ", ".join(f"{b.name} {b.centre:.0f}±{b.width / 2:.0f}" for b in S2_BANDS)
            return (
                f"any sensor whose good bands cover the 12 Sentinel-2 bands ({need} nm), {q}; "
                f"trained on {self.input_band_count} bands, {rng}"
            )
        return f"the training sensor only: {self.input_band_count} bands, {rng} ({self.reduction.upper()}), {q}"

    def apply(self, ds: xr.Dataset, *, projection: S2Resampler | None = None) -> xr.DataArray:
        """Transform a scene into the model's channels, lazily and chunkwise.

        Args:
            ds: a scene passing :meth:`check_scene`.
            projection: a band reduction of this scene to use instead of the checked one (sensor
                augmentation: the scene as a random sensor sees it,
                :func:`geohsi.spectral.simulate.random_sensor_resamplers`); the normaliser is this
                transform's.

        Returns:
            DataArray ``(channel, y, x)`` ``[C, H, W]`` float32, chunked like the scene spatially,
            NaN at every invalid pixel (all channels), with the scene's spatial coords.

        Raises:
            BandMismatchError: see :meth:`check_scene`.
        """
        checked = self.check_scene(ds)
        channels = self.normalizer.apply((projection or checked).apply(physical_cube(ds)))
        channels.name = "channels"
        channels.attrs.update(reduction=self.reduction, normalization=self.normalizer.method)
        return channels

    def pixel_map(self, ds: xr.Dataset, *, projection: S2Resampler | None = None) -> PixelMap:
        """The same arithmetic as :meth:`apply` for this scene, as a per-pixel map from raw bands (for the GPU,
        and for streamed training, where it replaces the lazy graph's per-chunk overhead).

        Args:
            ds: a scene passing :meth:`check_scene`.
            projection: a band reduction to use instead of the checked one (see :meth:`apply`).

        Returns:
            A :class:`~geohsi.spectral.pixelmap.PixelMap`: feed it ``cube(ds)[pixel_map.bands]``
            blocks; its :meth:`~geohsi.spectral.pixelmap.PixelMap.apply` gives what :meth:`apply`
            gives for those pixels.

        Raises:
            BandMismatchError: see :meth:`check_scene`.
        """
        from geohsi.scene import cube, nodata_value, validity_bands

        checked = self.check_scene(ds)
        matrix, used, centre = (projection or checked).affine()
        raw = cube(ds)
        tested = validity_bands(ds)
        bands = np.union1d(tested, np.asarray(used, dtype="int64")).astype("int64")
        nd = nodata_value(ds)
        dtype = np.dtype(raw.dtype)
        return PixelMap(
            bands=bands,
            valid_cols=np.searchsorted(bands, tested).astype("int64"),
            proj_cols=np.searchsorted(bands, used).astype("int64"),
            matrix=np.asarray(matrix, dtype="float64"),
            center=None if centre is None else np.asarray(centre, dtype="float64"),
            shift=np.asarray(self.normalizer.shift, dtype="float64"),
            scale=np.asarray(self.normalizer.scale, dtype="float64"),
            value_scale=float(raw.attrs.get("scale_factor", 1.0)),
            value_offset=float(raw.attrs.get("add_offset", 0.0)),
            nodata=None if nd is None else float(np.asarray(nd).astype(dtype)),
            check_finite=dtype.kind == "f",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record for a bundle; :meth:`from_dict` replays it bit for bit."""
        return {
            "format_version": TRANSFORM_FORMAT_VERSION,
            "reduction": self.reduction,
            "projection": self.projection.to_dict(),
            "normalizer": self.normalizer.to_dict(),
            "input_band_count": self.input_band_count,
            "input_wavelengths": _wl_list(self.input_wavelengths),
            "channel_names": self.channel_names,
            **({"input_quantity": self.input_quantity} if self.input_quantity is not None else {}),
            **({"input_units": self.input_units} if self.input_units is not None else {}),
            **({"input_scaled": self.input_scaled} if self.input_scaled is not None else {}),
            **({"input_range": list(self.input_range)} if self.input_range is not None else {}),
            **({"channel_stats": self.channel_stats.to_dict()} if self.channel_stats is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpectralTransform:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ModelError: malformed record or a newer format version.
        """
        try:
            version = int(d.get("format_version", 0))
            if version != TRANSFORM_FORMAT_VERSION:
                raise ModelError(
                    f"spectral transform format {version} is not supported (this geohsi reads {TRANSFORM_FORMAT_VERSION}); "
                    "use the geohsi version that made the bundle"
                )
            reduction = str(d["reduction"])
            if reduction not in REDUCTIONS:
                raise ModelError(f"unknown spectral reduction {reduction!r} in the bundle; re-create the bundle")
            projection = (S2Resampler if reduction == "s2" else PCAParams).from_dict(d["projection"])
            if (reduction == "lda") != bool(getattr(projection, "discriminants", 0)):
                raise ModelError(f"the bundle's {reduction} transform does not match its projection; re-create the bundle")
            t = cls(
                reduction,
                projection,
                Normalizer.from_dict(d["normalizer"]),
                int(d["input_band_count"]),
                _frozen(_wl_array(d["input_wavelengths"])),
                d.get("input_quantity"),
                d.get("input_units"),
                d.get("input_scaled"),
                tuple(float(v) for v in d["input_range"]) if d.get("input_range") is not None else None,  # type: ignore[arg-type]
                ChannelStats.from_dict(d["channel_stats"]) if d.get("channel_stats") is not None else None,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"invalid spectral transform record ({type(e).__name__}: {e}); re-create the bundle") from e
        if t.normalizer.n_channels != t.n_channels or projection.n_input_bands != t.input_band_count:
            raise ModelError(
                f"inconsistent spectral transform record ({t.n_channels} channels, normaliser for "
                f"{t.normalizer.n_channels}); re-create the bundle"
            )
        return t

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpectralTransform) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


__all__ = ["REDUCTIONS", "SpectralTransform", "WAVELENGTH_TOL_NM", "value_range"]
