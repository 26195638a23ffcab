"""The ingest options users write as text: a CRS, an affine transform, class names (and colours), wavelengths.

.. versionadded:: 0.1
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine

from geohsi.errors import BandMismatchError, UsageError
from geohsi.scene import filled_colors, parse_colour

if TYPE_CHECKING:
    from rasterio.crs import CRS


NO_CRS_HINT = "pass --crs none to ingest it as a pixel grid, or --crs EPSG:XXXX --transform a,b,c,d,e,f to georeference it"


def parse_crs(value: Any) -> CRS | None | str:
    """Parse a ``--crs`` value: ``None`` (keep the source's), ``"none"`` (pixel grid) or a CRS.

    Returns:
        ``None``, the string ``"none"``, or a :class:`rasterio.crs.CRS`.

    Raises:
        UsageError: the value is not a CRS rasterio understands.
    """
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "none":
        return "none"
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    if isinstance(value, CRS):
        return value
    try:
        return CRS.from_user_input(value)
    except (CRSError, ValueError, TypeError) as e:
        raise UsageError(f"--crs {value!r} is not a CRS ({e}); use e.g. EPSG:32633, a WKT/PROJ string, or 'none'") from e


def parse_transform(value: str | Sequence[float] | Affine) -> Affine:
    """Parse a ``--transform``: six numbers in affine order, or GDAL order behind a ``gdal:`` prefix.

    Affine order (rasterio, ``rio info --transform``): ``a,b,c,d,e,f`` = pixel width, row rotation,
    x of the upper-left corner, column rotation, pixel height (negative for north-up), y of the
    upper-left corner. GDAL order (``gdalinfo`` GeoTransform): ``gdal:c,a,b,f,d,e``.

    Example: ``30,0,362175,0,-30,5809965`` = 30 m pixels, upper-left corner (362175, 5809965).

    Raises:
        UsageError: not six numbers, or a singular transform.
    """
    if isinstance(value, Affine):
        tf = value
    else:
        gdal = False
        if isinstance(value, str):
            text = value.strip()
            if text.lower().startswith("gdal:"):
                gdal, text = True, text[5:]
            parts = [t for t in re.split(r"[,\s]+", text.strip("()[] ")) if t]
        else:
            parts = list(value)
        try:
            nums = [float(t) for t in parts]
        except (TypeError, ValueError) as e:
            raise UsageError(f"--transform {value!r} must be six numbers a,b,c,d,e,f; see 'geohsi ingest --help'") from e
        if len(nums) != 6:
            raise UsageError(f"--transform {value!r} has {len(nums)} numbers, needs six: a,b,c,d,e,f (affine order)")
        tf = Affine.from_gdal(*nums) if gdal else Affine(*nums)
    if tf.determinant == 0:
        raise UsageError(f"--transform {tuple(tf)[:6]} is singular (zero pixel size); check the numbers and their order")
    return tf


def _is_file(spec: Any) -> bool:
    """Whether an option value names an existing file (a long comma list is not a file name, not an error)."""
    try:
        return isinstance(spec, (str, os.PathLike)) and Path(spec).is_file()
    except OSError:  # e.g. a name too long for the file system
        return False


def parse_class_names(spec: str | os.PathLike | Sequence[str]) -> tuple[list[str], list[str] | None]:
    """Read class names (and colours) from a file or a comma list.

    A file holds either one name per line (line *i* names class *i*) or CSV rows
    ``id,name[,#rrggbb]`` (a header row is skipped; ids not listed are named ``class_<id>``).
    A string that is not a file is a comma list ``"roof,pavement,tree"``.

    Returns:
        ``(names, colours)``: names of classes 1..K; colours or ``None`` when none were given.

    Raises:
        UsageError: an empty list, a bad id or colour.
    """
    if not isinstance(spec, (str, os.PathLike)):
        names = [str(n).strip() for n in spec]
        if not names:
            raise UsageError("--class-names is empty; give one name per class")
        return names, None
    p = Path(spec)
    if not _is_file(p):
        text = str(spec)
        if os.sep in text or text.endswith((".txt", ".csv")):
            raise UsageError(f"--class-names file {p} does not exist; check the path or give a comma list")
        names = [n.strip() for n in text.split(",")]
        if not all(names):
            raise UsageError(f"--class-names {text!r} has an empty name; give 'name1,name2,…'")
        return names, None
    rows = [r for r in csv.reader(io.StringIO(p.read_text())) if r and any(c.strip() for c in r)]
    rows = [[c.strip() for c in r] for r in rows if not r[0].lstrip().startswith("#")]
    if not rows:
        raise UsageError(f"--class-names file {p} is empty; write one class name per line")
    if any(len(r) > 1 for r in rows):
        if not rows[0][0].isdigit():
            rows = rows[1:]  # header
        table: dict[int, tuple[str, str | None]] = {}
        for r in rows:
            if not r[0].isdigit() or len(r) < 2:
                raise UsageError(f"--class-names file {p}: row {','.join(r)!r} is not id,name[,colour]; fix the file")
            cid = int(r[0])
            if cid == 0:
                continue  # 0 is always "unlabelled"
            table[cid] = (r[1], parse_colour(r[2], str(p)) if len(r) > 2 and r[2] else None)
        k = max(table, default=0)
        if k == 0:
            raise UsageError(f"--class-names file {p} names no class ids ≥ 1; ids start at 1 (0 = unlabelled)")
        names = [table.get(i, (f"class_{i}", None))[0] for i in range(1, k + 1)]
        given = [table.get(i, ("", None))[1] for i in range(1, k + 1)]
        colours = None
        if any(given):
            colours = filled_colors(given)
        return names, colours
    return [r[0] for r in rows], None


def parse_numbers(spec: Any, what: str) -> list[float]:
    """Numbers from a list or a comma/whitespace-separated string."""
    items = [t for t in re.split(r"[,\s]+", spec.strip()) if t] if isinstance(spec, str) else list(np.asarray(spec).reshape(-1))
    try:
        return [float(t) for t in items]
    except (TypeError, ValueError) as e:
        raise UsageError(f"{what} {spec!r} is neither a file nor numbers; give a CSV or 'v1,v2,…'") from e


def _column_unit(name: str) -> str | None:
    low = name.lower()
    return "um" if re.search(r"um|micro", low) else ("nm" if "nm" in low else None)


def _band_file(p: Path) -> tuple[list[float], list[float] | None, str | None, str | None]:
    """``(centres, widths, centre unit, width unit)`` as written in a ``--wavelengths`` file."""
    text = p.read_text()
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    try:
        if not re.search(r"[A-Za-z]", first):
            return [float(t) for t in re.split(r"[,\s]+", text.strip()) if t], None, None, None
        rows = list(csv.DictReader(io.StringIO(text)))
        cols = {c.lower().strip(): c for c in (rows[0].keys() if rows else [])}
        wcol = next((c for k, c in cols.items() if k.startswith("wavelength") or k in ("wl", "center", "centre")), None)
        if wcol is None:
            raise UsageError(f"--wavelengths file {p} has no 'wavelength' column (columns {list(cols.values())}); add one")
        fcol = next((c for k, c in cols.items() if k.startswith("fwhm")), None)
        rcol = cols.get("removed")
        rows = [r for r in rows if not (rcol and str(r[rcol]).strip() in ("1", "true", "True"))]
        widths = [float(r[fcol]) for r in rows] if fcol else None
        return [float(r[wcol]) for r in rows], widths, _column_unit(wcol), _column_unit(fcol) if fcol else None
    except ValueError as e:
        raise UsageError(f"--wavelengths file {p} holds a non-number ({e}); fix the file") from e


def parse_wavelengths(spec: Any, nbands: int, fwhm: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Band centres (and FWHM) in nm from a list, a comma string or a file, by one unit rule.

    A file is either CSV with a header naming a ``wavelength…`` column (and optionally ``fwhm…``
    and ``removed``: rows with ``removed = 1`` are bands absent from the cube, as in
    ``indian_pines/wavelengths.csv``) or plain numbers separated by commas/whitespace. Column names
    with ``um``/``micro`` (``nm``) state micrometres (nanometres); otherwise centres below 30 are
    taken as µm. The widths, from the file or from ``fwhm`` (``--fwhm``), are in the centres' unit
    unless their own column names one (:func:`geohsi.bands.band_table_nm`).

    Args:
        spec: the ``--wavelengths`` value: a file, a list, or ``"w1,w2,…"``.
        nbands: the cube's band count.
        fwhm: the ``--fwhm`` value (list or string), overriding the file's widths.

    Returns:
        ``(wavelength, fwhm)`` in nm (``fwhm`` ``None`` when neither the file nor ``fwhm`` gives widths).

    Raises:
        BandMismatchError: the count differs from the cube's band count.
        UsageError: unreadable values.
    """
    from geohsi.bands import band_table_nm

    if _is_file(spec):
        centres, widths, unit, width_unit = _band_file(Path(spec))
        where = str(spec)
    else:
        centres, widths, unit, width_unit, where = parse_numbers(spec, "--wavelengths"), None, None, None, "the wavelength list"
    if fwhm is not None:
        widths, width_unit = parse_numbers(fwhm, "--fwhm"), None
    table = band_table_nm(centres, widths, units=unit, fwhm_units=width_unit)
    if len(centres) != nbands:
        raise BandMismatchError(f"{where} gives {len(centres)} wavelengths but the cube has {nbands} bands; give one per band")
    if widths is not None and len(widths) != nbands:
        raise BandMismatchError(f"{len(widths)} FWHM values given but the cube has {nbands} bands; give one per band")
    return table.wavelength, table.fwhm
