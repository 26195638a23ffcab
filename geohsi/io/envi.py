"""ENVI reader: a ``.hdr`` text header beside a raw BSQ/BIL/BIP data file.

The header is parsed here (no GDAL): ``samples``, ``lines``, ``bands``, ``header offset``,
``data type``, ``interleave``, ``byte order``, ``map info``, ``coordinate system string``,
``wavelength``, ``fwhm``, ``bbl``, ``data ignore value``, ``wavelength units``, ``band names``,
``reflectance scale factor``, ``sensor type``, ``acquisition time``. The data file is
memory-mapped per block, so reading is lazy and the page cache, not the process, holds the file.

Wavelengths come from ``wavelength`` or, failing that, from ``band names`` when every name is
"<number> <unit>" (AVIRIS-NG writes "376.44 Nanometers"). CRS comes from the WKT in
``coordinate system string`` (normalised to its EPSG code when one matches), else from
``map info`` (UTM zone + hemisphere on WGS-84, or geographic WGS-84).

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError

from geohsi.bands import band_table_nm, wavelength_to_nm
from geohsi.errors import GeohsiWarning, GeoreferenceError, InputFormatError
from geohsi.io.lazy import file_token, lazy_cube
from geohsi.scene import chosen_nodata, make_scene

#: ENVI ``data type`` code → numpy dtype (little-endian; ``byte order`` decides).
ENVI_DTYPES: dict[int, str] = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}

#: Extensions ENVI tools give the raw data file (tried in order when only the header is given).
DATA_EXTENSIONS: tuple[str, ...] = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".bin", ".envi")

_NUMBER_UNIT = re.compile(
    r"^\s*(?:band\s*\d+\s*\(?)?\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*"
    r"(nanometers?|nanometres?|nm|micrometers?|micrometres?|microns?|um|µm|μm)\s*\)?\s*$",
    re.IGNORECASE,
)


def find_header(path: str | os.PathLike, *, required: bool = True) -> Path | None:
    """Find the ENVI header of a data file (``X.hdr`` or ``X.ext`` → ``X.hdr``), or accept a header.

    Args:
        path: the data file or the header itself.
        required: raise when no header is found (else return ``None``).

    Returns:
        The header path, or ``None``.

    Raises:
        InputFormatError: no header beside ``path`` and ``required``.
    """
    p = Path(path)
    if p.suffix.lower() == ".hdr":
        return p if p.is_file() else _missing(p, required)
    for cand in (p.with_name(p.name + ".hdr"), p.with_suffix(".hdr"), p.with_name(p.name + ".HDR"), p.with_suffix(".HDR")):
        if cand != p and cand.is_file():
            return cand
    if required:
        raise InputFormatError(f"no ENVI header for {p} (looked for {p.name}.hdr and {p.stem}.hdr); put the .hdr beside it")
    return None


def _missing(p: Path, required: bool) -> None:
    if required:
        raise InputFormatError(f"ENVI header {p} does not exist; check the path")
    return None


def find_data(header: Path) -> Path:
    """Find the raw data file of an ENVI header (``X.hdr`` → ``X`` or ``X.img``/``.dat``/…).

    Raises:
        InputFormatError: no data file beside the header.
    """
    stem = header.with_suffix("")
    for ext in DATA_EXTENSIONS:
        cand = stem.with_name(stem.name + ext)
        if cand.is_file() and cand != header:
            return cand
    raise InputFormatError(
        f"ENVI header {header} has no data file beside it (tried {stem.name}{{{','.join(DATA_EXTENSIONS)}}}); "
        "put the raw file next to the header"
    )


def parse_header(text: str, source: str = "header") -> dict[str, str]:
    """Parse ENVI header text into ``{lower-case key: raw value}`` (braces kept off, lists as text).

    Args:
        text: the header's content (starts with ``ENVI``).
        source: file name for error messages.

    Returns:
        The keys and raw string values; multi-line ``{...}`` values are joined.

    Raises:
        InputFormatError: the text is not an ENVI header or a brace is never closed.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not lines[0].strip().startswith("ENVI"):
        raise InputFormatError(f"{source} is not an ENVI header (first line is not 'ENVI'); give the .hdr of an ENVI file")
    out: dict[str, str] = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if "=" not in line or line.lstrip().startswith(";"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if value.startswith("{"):
            depth = value.count("{") - value.count("}")
            parts = [value]
            while depth > 0:
                if i >= len(lines):
                    raise InputFormatError(f"{source}: value of {key.strip()!r} opens '{{' that never closes; fix the header")
                parts.append(lines[i])
                depth += lines[i].count("{") - lines[i].count("}")
                i += 1
            value = "\n".join(parts).strip()
            value = value[1:-1] if value.endswith("}") else value[1:]
        out[key.strip().lower()] = value.strip()
    return out


def _split_list(value: str) -> list[str]:
    return [v.strip() for v in value.replace("\n", " ").split(",") if v.strip()]


def _floats(hdr: dict[str, str], key: str, source: str) -> np.ndarray | None:
    if key not in hdr:
        return None
    try:
        return np.asarray([float(v) for v in _split_list(hdr[key])], dtype="float64")
    except ValueError as e:
        raise InputFormatError(f"{source}: {key!r} holds a non-number ({e}); fix the header") from e


def _float(hdr: dict[str, str], key: str, source: str) -> float | None:
    if not hdr.get(key):
        return None
    try:
        return float(hdr[key])
    except ValueError as e:
        raise InputFormatError(f"{source}: {key} = {hdr[key]!r} is not a number; fix the header") from e


def _int(hdr: dict[str, str], key: str, source: str, default: int | None = None) -> int:
    if key not in hdr:
        if default is None:
            raise InputFormatError(f"{source} lacks the required {key!r} key; fix the header")
        return default
    try:
        return int(float(hdr[key]))
    except ValueError as e:
        raise InputFormatError(f"{source}: {key} = {hdr[key]!r} is not an integer; fix the header") from e


def wavelengths_from_band_names(names: list[str]) -> np.ndarray | None:
    """Band centres in nm when every band name reads "<number> <unit>" (else ``None``).

    Handles "376.44 Nanometers" (AVIRIS-NG) and "band 1 (418.24 Nanometers)" (EnMAP/GDAL).
    """
    values = []
    for n in names:
        m = _NUMBER_UNIT.match(n)
        if m is None:
            return None
        values.append(float(wavelength_to_nm([float(m.group(1))], m.group(2))[0]))
    return np.asarray(values) if values else None


def band_names_unit(names: list[str]) -> str | None:
    """The unit spelled in the first "<number> <unit>" band name (``"Nanometers"``), or ``None``."""
    m = _NUMBER_UNIT.match(names[0]) if names else None
    return None if m is None else m.group(2)


@dataclass(frozen=True)
class Georef:
    """CRS and grid of an ENVI file (``crs`` is ``None`` when the header gives none)."""

    crs: CRS | None
    transform: Affine | None
    note: str = ""


def _utm_epsg(zone: int, hemi: str, datum: str) -> int | None:
    hemi = hemi.strip().lower()
    if hemi in ("north", "n"):  # N is also the band 0–8° N: north either way
        north = True
    elif hemi == "south":
        north = False
    elif hemi == "s":  # "South", or the band 32–40° N: the header does not say which
        return None
    elif len(hemi) == 1 and hemi.isalpha():
        # An MGRS latitude band letter (Resonon writes "T"): N..X are north of the equator.
        north = hemi.upper() >= "N"
    else:
        return None
    d = datum.strip().lower().replace(" ", "").replace("_", "-")
    if d in ("wgs-84", "wgs84"):
        return (32600 if north else 32700) + zone
    if d in ("nad-83", "nad83", "northamerica1983") and north and 1 <= zone <= 23:
        return 26900 + zone
    return None


def _ambiguous_s(zone: str, datum: str) -> str:
    """Why ``map info``'s hemisphere ``S`` gives no CRS, with the two codes to choose from where they are known."""
    why = f"'map info' gives UTM zone {zone.strip()} 'S', which is both South and the latitude band 32–40° N"
    south = _utm_epsg(int(float(zone)), "south", datum) if zone.strip().replace(".", "", 1).isdigit() else None
    if south is None:
        return f"{why}; pass --crs with the scene's EPSG code"
    return f"{why}; pass --crs EPSG:{south - 100} (north) or EPSG:{south} (south)"


def georef_from_header(hdr: dict[str, str], source: str) -> Georef:
    """CRS and affine transform from ``map info`` and ``coordinate system string``.

    ENVI's reference pixel is 1-based and (1, 1) is the upper-left corner of the upper-left pixel,
    so the grid origin is ``easting − (ref_x − 1)·dx``, ``northing + (ref_y − 1)·dy``.

    Raises:
        GeoreferenceError: ``map info`` is malformed or the grid is rotated.
    """
    if "map info" not in hdr:
        return Georef(None, None, "no 'map info' in the header")
    parts = _split_list(hdr["map info"])
    try:
        proj = parts[0]
        ref_x, ref_y, east, north, dx, dy = (float(v) for v in parts[1:7])
    except (IndexError, ValueError) as e:
        raise GeoreferenceError(f"{source}: malformed 'map info' {{{hdr['map info']}}}; fix the header") from e
    rotation = 0.0
    for p in parts:
        m = re.match(r"rotation\s*=?\s*([-+0-9.eE]+)", p.strip(), re.IGNORECASE)
        if m:
            rotation = float(m.group(1))
    if abs(rotation) > 1e-9:
        raise GeoreferenceError(
            f"{source}: grid rotated by {rotation}° in 'map info'; warp it to a north-up grid first (gdalwarp)"
        )
    transform = Affine(dx, 0.0, east - (ref_x - 1.0) * dx, 0.0, -dy, north + (ref_y - 1.0) * dy)
    crs: CRS | None = None
    if hdr.get("coordinate system string"):
        try:
            crs = CRS.from_wkt(hdr["coordinate system string"])
        except CRSError as e:
            raise GeoreferenceError(f"{source}: unreadable 'coordinate system string' ({e}); fix or remove it") from e
    map_crs: CRS | None = None
    plow = proj.strip().lower()
    if plow == "utm" and len(parts) >= 10:
        try:
            epsg = _utm_epsg(int(float(parts[7])), parts[8], parts[9])
        except ValueError:
            epsg = None
        map_crs = CRS.from_epsg(epsg) if epsg else None
    elif plow.startswith("geographic") and len(parts) >= 8 and parts[7].strip().lower() in ("wgs-84", "wgs84"):
        map_crs = CRS.from_epsg(4326)
    if crs is not None:
        # An "unnamed" ESRI WKT is as good as its EPSG twin; prefer the code so CRS compare cleanly.
        epsg = crs.to_epsg()
        if epsg is None and map_crs is not None and crs.equals(map_crs, ignore_axis_order=True):
            epsg = map_crs.to_epsg()
        return Georef(CRS.from_epsg(epsg) if epsg else crs, transform)
    if map_crs is not None:
        return Georef(map_crs, transform)
    if plow == "utm" and len(parts) >= 10 and parts[8].strip().lower() == "s":
        return Georef(None, transform, _ambiguous_s(parts[7], parts[9]))
    return Georef(None, transform, f"projection {proj!r} in 'map info' is not resolvable without a 'coordinate system string'")


class _RawCube:
    """Array-like over an ENVI raw file: ``[B, H, W]`` view, reads a window by memory-mapping."""

    def __init__(self, path: Path, offset: int, dtype: np.dtype, interleave: str, bands: int, lines: int, samples: int) -> None:
        self.path = str(path)
        self.offset = offset
        self.file_dtype = dtype
        self.dtype = dtype.newbyteorder("=")
        self.interleave = interleave
        self.shape = (bands, lines, samples)
        self.ndim = 3
        self.native_shape = {"bsq": (bands, lines, samples), "bil": (lines, bands, samples), "bip": (lines, samples, bands)}[
            interleave
        ]

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        b, y, x = key
        mm = np.memmap(self.path, dtype=self.file_dtype, mode="r", offset=self.offset, shape=self.native_shape)
        if self.interleave == "bsq":
            block = mm[b, y, x]
        elif self.interleave == "bil":
            block = mm[y, b, x].transpose(1, 0, 2)
        else:
            block = mm[y, x, b].transpose(2, 0, 1)
        # Copy out of the map (and to native byte order) so no block keeps the mapping alive.
        out = np.ascontiguousarray(block, dtype=self.dtype)
        del mm
        return out


#: Radiance units (W/m², µW/cm², per steradian) in ``data units``.
_RADIANCE_UNITS = re.compile(r"w\s*/\s*c?m|/\s*sr\b|^\s*(µ|u|micro)\s*w")
#: Whole words of a name or description that say what the values are (``ang…_rdn_img``, ``…_2rdn``, ``_rfl``).
_REFLECTANCE_WORD = re.compile(r"(?<![a-z])(rfl|refl|reflectance)(?![a-z])")
_RADIANCE_WORD = re.compile(r"(?<![a-z])(\d*rdn|radiance)(?![a-z])")


def _quantity(hdr: dict[str, str], path: Path) -> str:
    """``radiance`` or ``reflectance``: the data units first, then words of the file name and description.

    Words, not substrings: ``kuwait_refl.img`` or a description naming ``Gardner`` had made a
    reflectance file "radiance" (``uw``, ``rdn``), which reflectance bundles then refuse.
    """
    units = hdr.get("data units", "").lower()
    if _RADIANCE_UNITS.search(units):
        return "radiance"
    words = " ".join([path.name.lower(), hdr.get("description", "").lower(), units])
    if _REFLECTANCE_WORD.search(words):
        return "reflectance"
    return "radiance" if _RADIANCE_WORD.search(words) else "reflectance"


def read(
    path: str | os.PathLike, *, chunks: int = 256, quantity: str | None = None, nodata: float | str | None = None
) -> xr.Dataset:
    """Read an ENVI file lazily as a scene.

    Args:
        path: the header (``X.hdr``) or the data file (``X``, ``X.img``, ``X.bip`` with ``X.bip.hdr``, …).
        chunks: spatial chunk edge in pixels of the lazy cube.
        quantity: ``"reflectance"`` or ``"radiance"``; guessed from the file name/description
            (``rdn``, ``radiance``) when ``None``.
        nodata: the value marking pixels without data, replacing the file's: a number, or ``"none"`` for
            none (``None``: the file's own; :func:`geohsi.scene.chosen_nodata`).

    Returns:
        The scene Dataset: cube ``[B, H, W]`` in the file's dtype (native byte order), wavelengths
        and FWHM in nm, ``good_band`` from ``bbl``, nodata from ``data ignore value``, CRS/transform
        from ``map info``/``coordinate system string`` (a pixel grid when absent).

    Raises:
        InputFormatError: missing header/data, unsupported data type or interleave, or a data file
            shorter than ``samples × lines × bands × item size + header offset`` (a longer one is read, with a warning).
        GeoreferenceError: malformed or rotated ``map info``.
    """
    p = Path(path)
    if not p.exists():
        raise InputFormatError(f"input {p} does not exist; check the path")
    header = find_header(p)
    data = find_data(header) if p.suffix.lower() == ".hdr" else p
    src = header.name
    try:
        hdr = parse_header(header.read_text(errors="replace"), src)
    except OSError as e:
        raise InputFormatError(f"cannot read {header}: {e.strerror}; check its permissions") from e
    samples, lines, bands, offset, dtype, interleave = _layout(hdr, src, data)

    names = _split_list(hdr["band names"]) if "band names" in hdr else None
    if names is not None and len(names) != bands:
        names = None  # a stale list is worse than none
    bands_nm = _band_table(hdr, src, names)
    bbl = _floats(hdr, "bbl", src)
    good = None if bbl is None else bbl != 0
    nodata = chosen_nodata(_float(hdr, "data ignore value", src), nodata)
    scale, add_offset = _gain_offset(hdr, src, bands)
    geo = georef_from_header(hdr, src)
    attrs: dict[str, Any] = {"source_files": [str(data.resolve())], "source_format": "envi", "interleave": interleave}
    if hdr.get("sensor type") and hdr["sensor type"].lower() != "unknown":
        attrs["sensor"] = hdr["sensor type"]
    if hdr.get("acquisition time"):
        attrs["acquisition_time"] = hdr["acquisition time"]
    if hdr.get("data units"):
        attrs["units"] = hdr["data units"]
    if geo.crs is None:
        attrs["crs_note"] = geo.note
        if geo.transform is not None:  # the header's grid, for --crs to place it
            attrs["source_transform"] = list(geo.transform)[:6]
    raw = _RawCube(data, offset, dtype, interleave, bands, lines, samples)
    arr = lazy_cube(raw, (-1, chunks, chunks), f"envi-{file_token(data, header)}")
    return make_scene(
        arr,
        var=quantity or _quantity(hdr, data),
        wavelength=bands_nm.wavelength,
        fwhm=bands_nm.fwhm,
        good_band=good,
        crs=geo.crs,
        transform=geo.transform if geo.crs is not None else None,
        nodata=nodata,
        scale_factor=scale,
        add_offset=add_offset,
        band_names=names,
        attrs=attrs,
    )


def _layout(hdr: dict[str, str], src: str, data: Path) -> tuple[int, int, int, int, np.dtype, str]:
    """``(samples, lines, bands, header offset, dtype, interleave)`` of the data file, checked against its size.

    Raises:
        InputFormatError: an unsupported data type, byte order or interleave, a non-positive size,
            or a data file whose length disagrees with the header.
    """
    samples, lines, bands = _int(hdr, "samples", src), _int(hdr, "lines", src), _int(hdr, "bands", src)
    offset = _int(hdr, "header offset", src, 0)
    code = _int(hdr, "data type", src)
    if code not in ENVI_DTYPES:
        raise InputFormatError(
            f"{src}: data type {code} (complex or unknown) is not supported; convert to a real type (1-5, 12-15)"
        )
    order = _int(hdr, "byte order", src, 0)
    if order not in (0, 1):
        # anything else would silently be read as little-endian garbage
        raise InputFormatError(
            f"{src}: byte order = {hdr['byte order']!r} must be 0 (little-endian) or 1 (big-endian); fix the header"
        )
    dtype = np.dtype(ENVI_DTYPES[code]).newbyteorder(">" if order == 1 else "<")
    interleave = hdr.get("interleave", "bsq").strip().lower()
    if interleave not in ("bsq", "bil", "bip"):
        raise InputFormatError(f"{src}: interleave {interleave!r} is not bsq, bil or bip; fix the header")
    if min(samples, lines, bands) <= 0:
        raise InputFormatError(f"{src}: samples/lines/bands = {samples}/{lines}/{bands} must be positive; fix the header")
    if offset < 0:
        raise InputFormatError(f"{src}: header offset = {offset} must be 0 or more bytes; fix the header")
    expected = offset + samples * lines * bands * dtype.itemsize
    size = data.stat().st_size
    if size > expected:
        warnings.warn(
            f"{data} is {size - expected} bytes longer than {src} describes; the trailing bytes are ignored (as GDAL does)",
            GeohsiWarning,
            stacklevel=3,
        )
    elif size < expected:
        raise InputFormatError(
            f"{data} is {size} bytes but {src} describes {expected} ({bands} bands × {lines} lines × {samples} samples × "
            f"{dtype.itemsize} B + {offset} offset); the file is truncated or the header is wrong"
        )
    return samples, lines, bands, offset, dtype, interleave


def _band_table(hdr: dict[str, str], src: str, names: list[str] | None):
    """The band table in nm: the header's wavelengths and FWHM, or centres from ``"<number> <unit>"`` band names."""
    units = hdr.get("wavelength units")
    wl = _floats(hdr, "wavelength", src)
    if wl is None and names is not None and (named := wavelengths_from_band_names(names)) is not None:
        # centres from "<number> <unit>" band names: the widths share the names' unit unless the header states one
        wl, units = named, units or band_names_unit(names)
        return band_table_nm(wl, _floats(hdr, "fwhm", src), units="nm", fwhm_units=units)
    return band_table_nm(wl, _floats(hdr, "fwhm", src), units=units)


def _gain_offset(hdr: dict[str, str], src: str, bands: int) -> tuple[float | None, float | None]:
    """``(scale_factor, add_offset)`` of the cube: ``data gain values``/``data offset values`` (one value for
    every band) or ``reflectance scale factor``; ``None`` where they change nothing.

    Raises:
        InputFormatError: a gain or offset per band, a list of another length than the bands, or
            gains beside a reflectance scale factor (which of the two applies is not said).
    """
    given = {k: _floats(hdr, f"data {k} values", src) for k in ("gain", "offset")}
    for k, v in given.items():
        if v is not None and v.size != bands:
            raise InputFormatError(f"{src}: 'data {k} values' has {v.size} values for {bands} bands; fix the header")
        if v is not None and np.unique(v).size > 1:
            raise InputFormatError(
                f"{src} has a {k} per band ('data {k} values'); geohsi applies one to the whole cube: "
                "apply them first (gdal_translate -unscale -ot Float32)"
            )
    gain = None if given["gain"] is None or given["gain"][0] == 1.0 else float(given["gain"][0])
    offset = None if given["offset"] is None or given["offset"][0] == 0.0 else float(given["offset"][0])
    reflectance = _reflectance_scale(hdr, src)
    if gain is not None and reflectance is not None:
        raise InputFormatError(f"{src} has both 'data gain values' and 'reflectance scale factor'; keep the one that applies")
    return gain if gain is not None else reflectance, offset


def _reflectance_scale(hdr: dict[str, str], src: str) -> float | None:
    """The scale factor of ``reflectance scale factor`` (ENVI: the stored value meaning 100 %, so 1 / factor); ``None`` for 0 or 1."""
    f = _float(hdr, "reflectance scale factor", src)
    if f is None:
        return None
    if not np.isfinite(f):
        raise InputFormatError(
            f"{src}: reflectance scale factor = {hdr['reflectance scale factor']!r} is not finite; fix the header"
        )
    return None if f in (0.0, 1.0) else 1.0 / f


__all__ = [
    "ENVI_DTYPES",
    "band_names_unit",
    "find_data",
    "find_header",
    "georef_from_header",
    "parse_header",
    "read",
    "wavelengths_from_band_names",
]
