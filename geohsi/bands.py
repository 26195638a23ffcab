"""A scene's band table in nanometres: one unit rule for centres and widths, and its plausibility checks.

Every reader (ENVI, GeoTIFF tags, NetCDF/Zarr, STAC ``eo:bands``/``bands``, MATLAB with a
``--wavelengths`` file) hands the values it found to :func:`band_table_nm`, which converts the
centres *and* the widths with one unit: the unit the file states for the centres, or, when it states
none, the unit the centres themselves show (values below 30 are micrometres). Widths never guess a
unit of their own: a 5.5 nm width next to 401–2475 nm centres stays 5.5 nm.

:func:`check_band_table` is what ingest and every command that opens a scene for mapping or training
run on the result: centres that are not finite, not positive or outside 300–15,000 nm and widths
that are not positive or wider than half the covered range are refused (a unit error, almost
always); widths more than four times the local band spacing are only warned about, since broad
multispectral bands are real.

.. versionadded:: 0.2
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geohsi.errors import GeohsiWarning, InputFormatError

#: Unit spellings found in ENVI headers, GeoTIFF tags and NetCDF attributes → factor to nanometres
#: (NaN: not a length, e.g. band indices or wavenumbers: the values are unknown wavelengths).
UNIT_TO_NM: dict[str, float] = {
    **dict.fromkeys(("nanometers", "nanometer", "nanometres", "nanometre", "nm"), 1.0),
    **dict.fromkeys(("micrometers", "micrometer", "micrometres", "micrometre", "microns", "micron", "um", "µm", "μm"), 1e3),
    **dict.fromkeys(("millimeters", "millimeter", "millimetres", "millimetre", "mm"), 1e6),
    **dict.fromkeys(("centimeters", "centimeter", "centimetres", "centimetre", "cm"), 1e7),
    **dict.fromkeys(("meters", "meter", "metres", "metre", "m"), 1e9),
    **dict.fromkeys(("angstroms", "angstrom", "å"), 0.1),
    **dict.fromkeys(("wavenumber", "ghz", "mhz", "index"), float("nan")),
}
#: Unit spellings that state no unit (ENVI writes "Unknown"): the unit is inferred from the values.
UNSTATED_UNITS = frozenset({"", "unknown", "none", "n/a"})
#: Unstated units: centres all below this are micrometres (no sensor has bands below 30 nm, no
#: VNIR–SWIR–TIR sensor bands above 30 µm).
MICROMETRE_BELOW = 30.0
#: Plausible band centres (nm): near-UV to thermal infrared.
CENTRE_RANGE_NM = (300.0, 15_000.0)
#: Widths above this many local band spacings get a warning (a unit slip inflates them 1000×).
WIDTH_SPACING_WARN = 4.0

_FIX = "give the band table at ingest with --wavelengths FILE (a CSV with wavelength and fwhm columns) and --fwhm"


def unit_factor(units: str | None, centres: Sequence[float] | np.ndarray | None) -> float:
    """The factor taking a band table's values to nm: from the stated unit, else from the centres.

    Args:
        units: the unit the file names (``"Nanometers"``, ``"Micrometers"``, ``"um"``, …) or
            ``None``/empty/``"Unknown"`` when it names none.
        centres: the band centres as written (used only when ``units`` is unstated).

    Returns:
        1 for nm, 1000 for µm, …; NaN when the unit is not a length (index, wavenumber).

    Raises:
        InputFormatError: a unit spelling it does not know (guessing would scale every band wrongly).
    """
    key = (units or "").strip().lower()
    if key not in UNSTATED_UNITS:
        if key not in UNIT_TO_NM:
            raise InputFormatError(
                f"wavelength units {units!r} are not a unit geohsi knows (nm, µm, mm, cm, m, Angstroms); {_FIX}"
            )
        return UNIT_TO_NM[key]
    arr = np.asarray([] if centres is None else centres, dtype="float64").reshape(-1)
    finite = arr[np.isfinite(arr)]
    return 1e3 if finite.size and float(np.max(np.abs(finite))) < MICROMETRE_BELOW else 1.0


def wavelength_to_nm(values: Sequence[float] | np.ndarray | None, units: str | None) -> np.ndarray | None:
    """Convert band centres to nanometres (widths: use :func:`band_table_nm`, which shares the centres' unit).

    Args:
        values: the values as written in the file, or ``None``.
        units: their unit as the file names it; ``None``/empty: inferred from the values
            (:func:`unit_factor`).

    Returns:
        ``[B]`` float64 in nm, NaN where the unit is not a length; ``None`` if ``values`` is ``None``.
    """
    if values is None:
        return None
    arr = np.asarray(values, dtype="float64").reshape(-1)
    return _scaled(arr, unit_factor(units, arr))


def _scaled(arr: np.ndarray, factor: float) -> np.ndarray:
    # round away the float noise of a unit change (1e-6 nm is far below any band width)
    return arr * factor if factor == 1.0 or not np.isfinite(factor) else np.round(arr * factor, 6)


@dataclass(frozen=True)
class BandTable:
    """Band centres, widths (FWHM) and good-band flags of a scene, in nm, as a file gives them.

    Attributes:
        wavelength: ``[B]`` band centres (nm; NaN unknown), or ``None`` when the file gives none.
        fwhm: ``[B]`` full widths at half maximum (nm; NaN unknown), or ``None``.
        good: ``[B]`` usability flags, or ``None``.
    """

    wavelength: np.ndarray | None
    fwhm: np.ndarray | None = None
    good: np.ndarray | None = None


def band_table_nm(
    wavelength: Sequence[float] | np.ndarray | None,
    fwhm: Sequence[float] | np.ndarray | None = None,
    good: Sequence[bool] | np.ndarray | None = None,
    *,
    units: str | None = None,
    fwhm_units: str | None = None,
) -> BandTable:
    """A band table as a file gives it → centres and widths in nm, by one unit rule.

    Args:
        wavelength: ``[B]`` centres as written, or ``None`` (unknown).
        fwhm: ``[B]`` widths as written, or ``None``.
        good: ``[B]`` good-band flags (``bbl``), or ``None``.
        units: the unit stated for the centres (``None``: inferred from them, see :func:`unit_factor`).
        fwhm_units: a unit stated for the widths alone (a NetCDF ``fwhm`` attribute, a CSV column
            ``fwhm_um``); ``None``: the centres' unit. Without centres, unstated widths are nm.

    Returns:
        The :class:`BandTable` (``None`` where the file gives nothing).
    """
    centres = widths = None
    factor = 1.0
    if wavelength is not None:
        wl = np.asarray(wavelength, dtype="float64").reshape(-1)
        factor = unit_factor(units, wl)
        centres = _scaled(wl, factor)
    if fwhm is not None:
        fw = np.asarray(fwhm, dtype="float64").reshape(-1)
        widths = _scaled(fw, UNIT_TO_NM.get(fwhm_units.strip().lower(), 1.0) if fwhm_units else factor)
    return BandTable(centres, widths, None if good is None else np.asarray(good, dtype=bool).reshape(-1))


def local_spacing(wavelength: np.ndarray) -> np.ndarray:
    """``[B]`` spacing of each band to its neighbours in file order (nm; the larger of the two).

    File order, not wavelength order: detectors overlap (EnMAP's VNIR ends at 993 nm after its SWIR
    began at 902 nm), and sorting would put bands of the two detectors a fraction of a nm apart.
    """
    d = np.abs(np.diff(np.asarray(wavelength, dtype="float64")))
    if d.size == 0:
        return np.full(np.asarray(wavelength).size, np.nan)
    return np.fmax(np.r_[np.nan, d], np.r_[d, np.nan])


def band_summary(wavelength: np.ndarray, fwhm: np.ndarray) -> dict[str, float | int | None]:
    """Range, median spacing and median width of a band table (what ``geohsi info`` prints).

    Returns:
        ``{bands, min_nm, max_nm, median_spacing_nm, median_fwhm_nm}``; ``None`` where unknown.
    """
    wl, fw = np.asarray(wavelength, dtype="float64"), np.asarray(fwhm, dtype="float64")
    known = wl[np.isfinite(wl)]
    spacing = np.abs(np.diff(wl))
    spacing = spacing[np.isfinite(spacing) & (spacing > 0)]
    widths = fw[np.isfinite(fw)]

    def _f(v: np.ndarray, fn) -> float | None:
        return round(float(fn(v)), 3) if v.size else None

    return {
        "bands": int(wl.size),
        "min_nm": _f(known, np.min),
        "max_nm": _f(known, np.max),
        "median_spacing_nm": _f(spacing, np.median),
        "median_fwhm_nm": _f(widths, np.median),
    }


def _nm(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4g}"


def band_table_problem(wavelength: np.ndarray, fwhm: np.ndarray, source: str, *, stored: bool = False) -> str | None:
    """Why a band table cannot be right (a one-line message naming ``source`` and the fix), or ``None``.

    Refused: some but not all centres unknown; centres not positive or outside
    :data:`CENTRE_RANGE_NM`; widths not positive; widths wider than half the covered range.
    A table with no centres at all is a scene without wavelengths, which is allowed.

    Args:
        wavelength: ``[B]`` centres (nm).
        fwhm: ``[B]`` widths (nm).
        source: the file or store named in the message.
        stored: ``source`` is a scene store (the fix is then to re-ingest its source).
    """
    wl, fw = np.asarray(wavelength, dtype="float64"), np.asarray(fwhm, dtype="float64")
    finite = np.isfinite(wl)
    if finite.any() and not finite.all():
        bad = (np.flatnonzero(~finite) + 1).tolist()
        return f"{source} has no valid centre wavelength for bands {bad[:10]}{' …' if len(bad) > 10 else ''}; {_FIX}"
    lo, hi = CENTRE_RANGE_NM
    if finite.any() and (wl.min() <= 0 or wl.min() < lo or wl.max() > hi):
        return (
            f"{source} has band centres {wl.min():.4g}–{wl.max():.4g} nm, outside {lo:,.0f}–{hi:,.0f} nm: their unit was "
            f"read wrongly (micrometres as nm, or an index); {_FIX}, or state the unit in the file"
        )
    known = np.isfinite(fw)
    if (fw[known] <= 0).any():
        i = int(np.flatnonzero(known & (fw <= 0))[0])
        return f"{source} has a band width (FWHM) of {fw[i]:.4g} nm at band {i + 1}; widths must be positive: {_FIX}"
    span = float(wl.max() - wl.min()) if finite.sum() >= 2 else 0.0
    if span > 0 and known.any() and float(fw[known].max()) > span / 2:
        why = (
            "they were stored in the wrong unit (geohsi before the one unit rule read unitless widths below 30 as µm); "
            f"re-ingest the source with --overwrite, or {_FIX}"
            if stored
            else f"they are in the wrong unit (widths are in the unit of the centres); {_FIX}"
        )
        return f"{source} has band widths up to {_nm(float(fw[known].max()))} nm, more than half of its {wl.min():.0f}–{wl.max():.0f} nm range: {why}"
    return None


def broad_width_warning(wavelength: np.ndarray, fwhm: np.ndarray, source: str) -> str | None:
    """A warning when widths exceed :data:`WIDTH_SPACING_WARN` × the local band spacing, else ``None``."""
    wl, fw = np.asarray(wavelength, dtype="float64"), np.asarray(fwhm, dtype="float64")
    ratio = fw / local_spacing(wl)
    broad = np.flatnonzero(np.isfinite(ratio) & (ratio > WIDTH_SPACING_WARN))
    if broad.size == 0:
        return None
    i = int(broad[np.argmax(ratio[broad])])
    return (
        f"{source}: {broad.size} of {wl.size} bands are wider than {WIDTH_SPACING_WARN:g}× their band spacing (band {i + 1}: "
        f"FWHM {fw[i]:.4g} nm at {ratio[i]:.3g}× the spacing); fine for broad multispectral bands, otherwise the widths "
        f"are in the wrong unit: {_FIX}"
    )


def check_band_table(wavelength: np.ndarray, fwhm: np.ndarray, source: str, *, stored: bool = False) -> None:
    """Refuse an implausible band table; warn (:class:`~geohsi.errors.GeohsiWarning`) about broad widths.

    Args:
        wavelength: ``[B]`` centres in nm (NaN unknown).
        fwhm: ``[B]`` widths in nm (NaN unknown).
        source: the file or store, named in messages.
        stored: ``source`` is a scene store (see :func:`band_table_problem`).

    Raises:
        InputFormatError: one line naming ``source``, what is wrong and the fix.
    """
    problem = band_table_problem(wavelength, fwhm, source, stored=stored)
    if problem is not None:
        raise InputFormatError(problem)
    message = broad_width_warning(wavelength, fwhm, source)
    if message is not None:
        warnings.warn(message, GeohsiWarning, stacklevel=2)


__all__ = [
    "BandTable",
    "CENTRE_RANGE_NM",
    "UNIT_TO_NM",
    "band_summary",
    "band_table_nm",
    "band_table_problem",
    "broad_width_warning",
    "check_band_table",
    "local_spacing",
    "unit_factor",
    "wavelength_to_nm",
]
