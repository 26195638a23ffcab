"""The band table in nm: one unit rule for centres and widths, the plausibility checks, the summary."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

from geohsi.bands import (
    band_summary,
    band_table_nm,
    band_table_problem,
    broad_width_warning,
    check_band_table,
    unit_factor,
    wavelength_to_nm,
)
from geohsi.errors import GeohsiWarning, InputFormatError
from geohsi.spectral.sentinel2 import S2_BANDS


def test_the_centres_unit_applies_to_the_widths() -> None:
    t = band_table_nm([401.0, 2475.0], [5.5, 5.6])  # nothing stated: centres say nm, widths follow
    assert t.wavelength.tolist() == [401.0, 2475.0] and t.fwhm.tolist() == [5.5, 5.6]
    t = band_table_nm([0.401, 2.475], [0.0055, 0.0056])  # centres say µm: both × 1000
    np.testing.assert_allclose(t.wavelength, [401.0, 2475.0])
    np.testing.assert_allclose(t.fwhm, [5.5, 5.6])
    t = band_table_nm([0.401, 2.475], [5.5, 5.6], units="um", fwhm_units="nm")  # each stated unit wins
    np.testing.assert_allclose(t.fwhm, [5.5, 5.6])
    t = band_table_nm(None, [5.5, 5.6])  # widths without centres: nm, no guess
    assert t.wavelength is None and t.fwhm.tolist() == [5.5, 5.6]
    assert band_table_nm(None).fwhm is None
    assert np.isnan(band_table_nm([1, 2], units="index").wavelength).all()  # not a length: unknown


def test_unit_factor_and_the_centre_converter_keep_their_rule() -> None:
    assert unit_factor("Micrometers", [5000.0]) == 1e3 and unit_factor("Nanometers", [0.5]) == 1.0
    assert unit_factor(None, [0.4, 2.5]) == 1e3 and unit_factor("", [400.0]) == 1.0 and unit_factor(None, [np.nan]) == 1.0
    np.testing.assert_allclose(wavelength_to_nm([0.45, 0.55], None), [450, 550])
    assert wavelength_to_nm(None, "nm") is None


def _enmap_like() -> tuple[np.ndarray, np.ndarray]:
    """Two detectors that overlap: VNIR 418–993 nm, then SWIR from 902 nm (EnMAP's layout)."""
    vnir, swir = np.linspace(418.0, 993.0, 91), np.linspace(902.0, 2446.0, 133)
    wl = np.r_[vnir, swir]
    return wl, np.r_[np.full(vnir.size, 6.5), np.full(swir.size, 9.0)]


def test_real_layouts_pass_without_a_word(data_dir) -> None:
    rows = list(csv.DictReader((data_dir / "indian_pines" / "wavelengths.csv").open()))
    tables = {
        "EnMAP-like overlap": _enmap_like(),
        "AVIRIS (Indian Pines, centres step back between spectrometers)": (
            np.array([float(r["wavelength_nm"]) for r in rows]),
            np.array([float(r["fwhm_nm"]) for r in rows]),
        ),
        "Sentinel-2 (broad multispectral bands)": (np.array([b.centre for b in S2_BANDS]), np.array([b.width for b in S2_BANDS])),
        "no wavelengths": (np.full(5, np.nan), np.full(5, np.nan)),
        "no widths": (np.linspace(400, 1000, 50), np.full(50, np.nan)),
    }
    for name, (wl, fw) in tables.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_band_table(wl, fw, name)


@pytest.mark.parametrize(
    ("wl", "fw", "message"),
    [
        (np.linspace(0.4, 2.5, 20), None, r"band centres 0\.4–2\.5 nm, outside 300–15,000 nm"),
        (np.linspace(400.0, 20000.0, 20), None, r"outside 300–15,000 nm"),
        (np.r_[np.linspace(400.0, 900.0, 9), np.nan], None, r"no valid centre wavelength for bands \[10\]"),
        (np.linspace(400.0, 2500.0, 10), np.r_[np.full(9, 10.0), -1.0], r"band width \(FWHM\) of -1 nm at band 10"),
        (np.linspace(401.0, 2475.0, 10), np.full(10, 5511.0), r"widths up to 5,511 nm, more than half of its 401–2475 nm"),
    ],
)
def test_implausible_tables_are_refused_in_one_line(wl, fw, message) -> None:
    fw = np.full(wl.size, np.nan) if fw is None else fw
    with pytest.raises(InputFormatError, match=message) as e:
        check_band_table(wl, fw, "cube.nc")
    assert "\n" not in str(e.value) and str(e.value).startswith("cube.nc ") and "--wavelengths" in str(e.value)


def test_widths_far_above_the_spacing_are_only_warned_about() -> None:
    wl = np.linspace(400.0, 2500.0, 211)  # 10 nm spacing
    with pytest.warns(GeohsiWarning, match=r"cube\.nc: 211 of 211 bands are wider than 4× their band spacing .*FWHM 55 nm"):
        check_band_table(wl, np.full(211, 55.0), "cube.nc")
    assert broad_width_warning(wl, np.full(211, 39.0), "x") is None
    assert band_table_problem(wl, np.full(211, 55.0), "x") is None


def test_summary_gives_range_spacing_and_width() -> None:
    wl, fw = _enmap_like()
    s = band_summary(wl, fw)
    assert s["bands"] == 224 and (s["min_nm"], s["max_nm"]) == (418.0, 2446.0)
    assert s["median_spacing_nm"] == pytest.approx(np.median(np.abs(np.diff(wl))), abs=1e-3) and s["median_fwhm_nm"] == 9.0
    assert band_summary(np.full(3, np.nan), np.full(3, np.nan)) == {
        "bands": 3,
        "min_nm": None,
        "max_nm": None,
        "median_spacing_nm": None,
        "median_fwhm_nm": None,
    }
