"""One unit rule per band table, in every reader: the same cube written as NetCDF, ENVI, GeoTIFF tags
and MATLAB + a ``--wavelengths`` CSV, with no unit stated for the widths, ingests with widths in nm
equal to the truth; with centres and widths in µm, both come out in nm.

Before the rule, a reader converted the widths with the "values below 30 are µm" guess on their own,
so 5.5 nm widths next to 401–2475 nm centres became 5,511 nm.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import scipy.io
import xarray as xr

from geohsi.errors import GeohsiWarning
from geohsi.ingestion import ingest
from geohsi.scene import open_scene
from tests.conftest import run_cli
from tests.io.test_envi import _write_envi
from tests.io.test_geotiff import write_tile

NB = 40
CENTRES_NM = np.round(np.linspace(401.0, 2475.0, NB), 3)
#: real imaging-spectrometer widths (AVIRIS-NG's are about 5.5 nm), below 30 like every FWHM in nm
WIDTHS_NM = np.round(5.5 + 0.02 * np.arange(NB), 3)
CUBE = np.random.default_rng(0).integers(100, 5000, size=(NB, 6, 7)).astype("float32")


def _values(unit: str) -> tuple[np.ndarray, np.ndarray]:
    """The band table as a file holds it: nm, or µm (centres 0.401–2.475, widths 0.0055…)."""
    return (CENTRES_NM, WIDTHS_NM) if unit == "nm" else (CENTRES_NM / 1000.0, WIDTHS_NM / 1000.0)


def _netcdf(tmp: Path, unit: str) -> tuple[list[Path], dict]:
    wl, fw = _values(unit)
    ds = xr.Dataset(
        {"reflectance": (("wavelength", "y", "x"), CUBE)},
        coords={"wavelength": wl, "fwhm": ("wavelength", fw)},  # no units attributes, as scripts write them
    )
    path = tmp / "cube.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    return [path], {"crs": "none"}


def _envi(tmp: Path, unit: str) -> tuple[list[Path], dict]:
    wl, fw = _values(unit)
    fmt = lambda a: "{" + ", ".join(f"{v:.7g}" for v in a) + "}"
    # no "wavelength units" key
    data = _write_envi(tmp, CUBE, extra=f"wavelength = {fmt(wl)}\nfwhm = {fmt(fw)}\n")
    return [data], {"crs": "none"}


def _geotiff(tmp: Path, unit: str) -> tuple[list[Path], dict]:
    wl, fw = _values(unit)
    tags = {i + 1: {"wavelength": f"{wl[i]:.7g}", "fwhm": f"{fw[i]:.7g}"} for i in range(NB)}  # no wavelength_units tag
    return [write_tile(tmp / "cube.tif", CUBE, tags=tags)], {}


def _matlab_csv(tmp: Path, unit: str) -> tuple[list[Path], dict]:
    wl, fw = _values(unit)
    mat = tmp / "cube.mat"
    scipy.io.savemat(mat, {"cube": CUBE.transpose(1, 2, 0)})
    csv = tmp / "bands.csv"
    csv.write_text("wavelength,fwhm\n" + "".join(f"{a:.7g},{b:.7g}\n" for a, b in zip(wl, fw, strict=True)))
    return [mat], {"crs": "none", "wavelengths": csv}


WRITERS = {"netcdf": _netcdf, "envi": _envi, "geotiff": _geotiff, "matlab+csv": _matlab_csv}


@pytest.mark.parametrize("unit", ["nm", "um"])
@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_widths_share_the_centres_unit_in_every_reader(tmp_path: Path, fmt: str, unit: str) -> None:
    srcs, options = WRITERS[fmt](tmp_path, unit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = open_scene(ingest(srcs, tmp_path / "scene.zarr", **options))
    assert not [w for w in caught if issubclass(w.category, GeohsiWarning)], [str(w.message) for w in caught]
    np.testing.assert_allclose(ds["wavelength"].values, CENTRES_NM, rtol=1e-6)
    np.testing.assert_allclose(ds["fwhm"].values, WIDTHS_NM, rtol=1e-5)


def test_ingest_cli_takes_widths_in_the_unit_of_its_wavelength_list(tmp_path: Path) -> None:
    """``--wavelengths 0.401,… --fwhm 0.0055,…``: one band table, one unit (µm), stored in nm."""
    mat = tmp_path / "cube.mat"
    scipy.io.savemat(mat, {"cube": CUBE.transpose(1, 2, 0)})
    wl, fw = _values("um")
    join = lambda a: ",".join(f"{v:.7g}" for v in a)
    r = run_cli(
        "ingest", str(mat), "--crs", "none", "--wavelengths", join(wl), "--fwhm", join(fw), "--out", str(tmp_path / "s.zarr")
    )
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    ds = open_scene(tmp_path / "s.zarr")
    np.testing.assert_allclose(ds["fwhm"].values, WIDTHS_NM, rtol=1e-5)
    # widths alone go beside centres already in nm: taken as nm, no µm guess
    r = run_cli(
        "ingest",
        str(mat),
        "--crs",
        "none",
        "--wavelengths",
        join(CENTRES_NM),
        "--fwhm",
        join(WIDTHS_NM),
        "--out",
        str(tmp_path / "t.zarr"),
    )
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(open_scene(tmp_path / "t.zarr")["fwhm"].values, WIDTHS_NM, rtol=1e-6)


def test_a_netcdf_width_attribute_of_its_own_wins(tmp_path: Path) -> None:
    """Centres in nm (stated) and widths stated in µm: each converted by its own stated unit."""
    ds = xr.Dataset(
        {"reflectance": (("wavelength", "y", "x"), CUBE)},
        coords={
            "wavelength": ("wavelength", CENTRES_NM, {"units": "nm"}),
            "fwhm": ("wavelength", WIDTHS_NM / 1000, {"units": "um"}),
        },
    )
    ds.to_netcdf(tmp_path / "c.nc", engine="h5netcdf")
    store = ingest(tmp_path / "c.nc", tmp_path / "s.zarr", crs="none")
    np.testing.assert_allclose(open_scene(store)["fwhm"].values, WIDTHS_NM, rtol=1e-5)


def test_band_names_carry_the_unit_for_widths(tmp_path: Path) -> None:
    """GeoTIFF band descriptions "band 1 (0.401 Micrometers)" and unitless fwhm tags: the widths are µm too."""
    wl, fw = _values("um")
    path = write_tile(tmp_path / "d.tif", CUBE, tags={i + 1: {"fwhm": f"{fw[i]:.7g}"} for i in range(NB)})
    with rasterio.open(path, "r+") as dst:
        for i in range(NB):
            dst.set_band_description(i + 1, f"band {i + 1} ({wl[i]:.7g} Micrometers)")
    ds = open_scene(ingest(path, tmp_path / "s.zarr"))
    np.testing.assert_allclose(ds["wavelength"].values, CENTRES_NM, rtol=1e-6)
    np.testing.assert_allclose(ds["fwhm"].values, WIDTHS_NM, rtol=1e-5)


def test_the_cli_prints_a_broad_width_warning_as_one_line(tmp_path: Path) -> None:
    wl = np.linspace(400.0, 2500.0, 211)  # 10 nm apart, 55 nm wide: a table that is more likely wrong than right
    cube = np.ones((wl.size, 4, 5), "float32")
    xr.Dataset(
        {"reflectance": (("wavelength", "y", "x"), cube)},
        coords={"wavelength": wl, "fwhm": ("wavelength", np.full(wl.size, 55.0))},
    ).to_netcdf(tmp_path / "c.nc", engine="h5netcdf")
    r = run_cli("ingest", tmp_path / "c.nc", "--crs", "none", "--out", tmp_path / "s.zarr")
    assert r.returncode == 0, r.stderr
    said = [x for x in r.stderr.splitlines() if x.strip()]
    assert said == [said[0]] and said[0].startswith(
        "geohsi: warning: c.nc: 211 of 211 bands are wider than 4× their band spacing"
    )
    assert "median FWHM 55 nm" in r.stdout
