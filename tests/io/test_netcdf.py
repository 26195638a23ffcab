"""NetCDF / Zarr reader: CF grid mapping via rioxarray, band-dimension detection, scene pass-through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine

from geohsi.errors import GeoreferenceError, InputFormatError
from geohsi.ingestion import ingest
from geohsi.io import detect_format, read
from geohsi.scene import add_labels, make_scene, nodata_value, scene_crs, write_scene


def _cube_ds(dims: tuple[str, str, str] = ("wavelength", "y", "x")) -> xr.Dataset:
    data = np.arange(3 * 4 * 5, dtype="float32").reshape(3, 4, 5)
    coords = {
        "wavelength": ("wavelength", [0.5, 0.6, 0.7], {"units": "micrometers"}),
        "y": 2000.0 - 10 * (np.arange(4) + 0.5),
        "x": 1000.0 + 10 * (np.arange(5) + 0.5),
    }
    ds = xr.Dataset({"cube": (("wavelength", "y", "x"), data, {"_FillValue": -1.0})}, coords=coords)
    ds = ds.transpose(*dims)
    return ds.rio.write_crs("EPSG:32633")


def test_netcdf_with_crs(tmp_path: Path) -> None:
    src = _cube_ds()
    path = tmp_path / "c.nc"
    src.to_netcdf(path, engine="h5netcdf")
    assert detect_format(path) == "netcdf"
    ds = read(path)
    np.testing.assert_array_equal(ds["reflectance"].values, src["cube"].values)
    assert scene_crs(ds).to_epsg() == 32633
    assert ds.rio.transform().almost_equals(Affine(10, 0, 1000, 0, -10, 2000))
    np.testing.assert_allclose(ds["wavelength"].values, [500, 600, 700])


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_ascending_y_is_read_north_up(tmp_path: Path, suffix: str) -> None:
    """CF files often store y ascending; read as stored, the scene was a south-up grid (pixel height +10)
    that north-up labels and maps of the same ground did not match."""
    src = _cube_ds().isel(y=slice(None, None, -1))  # y from south to north
    path = tmp_path / f"south_up{suffix}"
    src.to_netcdf(path, engine="h5netcdf") if suffix == ".nc" else src.to_zarr(path, zarr_format=3, consolidated=False)
    ds = read(path)
    assert ds.rio.transform().almost_equals(Affine(10, 0, 1000, 0, -10, 2000))
    np.testing.assert_array_equal(ds["reflectance"].values, _cube_ds()["cube"].values)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_lat_lon_stored_south_to_north_keeps_its_grid(tmp_path: Path, suffix: str) -> None:
    """Dims named lat/lon, which rioxarray does not find by name: turning the rows north up had lost
    them, and the scene got an identity transform (1° pixels at 0, 0) with no error."""
    lat = 52.46 + 0.01 * np.arange(4)  # ascending, as most CF writers store it
    data = np.arange(3 * 4 * 5, dtype="float32").reshape(3, 4, 5)
    src = xr.Dataset(
        {"reflectance": (("band", "lat", "lon"), data)},
        coords={"band": [0, 1, 2], "wavelength": ("band", [450.0, 550.0, 650.0], {"units": "nm"}),
                "lat": ("lat", lat, {"units": "degrees_north"}), "lon": ("lon", 13.0 + 0.01 * np.arange(5), {"units": "degrees_east"})},
    ).rio.set_spatial_dims(x_dim="lon", y_dim="lat").rio.write_crs("EPSG:4326")  # fmt: skip
    path = tmp_path / f"latlon{suffix}"
    src.to_netcdf(path, engine="h5netcdf") if suffix == ".nc" else src.to_zarr(path, zarr_format=3, consolidated=False)
    ds = read(path)
    assert scene_crs(ds).to_epsg() == 4326
    assert ds.rio.transform().almost_equals(Affine(0.01, 0, 12.995, 0, -0.01, 52.495))
    np.testing.assert_array_equal(ds["reflectance"].values, data[:, ::-1])


def test_a_south_up_store_is_turned_north_up_with_its_labels(tmp_path: Path) -> None:
    """A store written south up (before grids were turned) keeps each label on its own pixel when read again."""
    cube = np.arange(2 * 3 * 4, dtype="int16").reshape(2, 3, 4)
    labels = np.array([[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 1]])
    south_up = make_scene(cube, wavelength=[400, 500], crs="EPSG:32611", transform=Affine(15, 0, 100, 0, 15, 900))
    store = write_scene(add_labels(south_up, labels, ["roof", "tree"]), tmp_path / "s.zarr")
    ds = read(store)
    assert ds.rio.transform().almost_equals(Affine(15, 0, 100, 0, -15, 945))
    np.testing.assert_array_equal(ds["reflectance"].values, cube[:, ::-1])
    np.testing.assert_array_equal(ds["labels"].values, labels[::-1])


def test_band_dim_last_is_found(tmp_path: Path) -> None:
    src = _cube_ds(("y", "x", "wavelength"))
    path = tmp_path / "last.nc"
    src.to_netcdf(path, engine="h5netcdf")
    ds = read(path)
    assert ds["reflectance"].shape == (3, 4, 5)
    np.testing.assert_array_equal(ds["reflectance"].values, src["cube"].transpose("wavelength", "y", "x").values)


def test_unnamed_dimensions_take_the_band_axis_from_the_cli(tmp_path: Path) -> None:
    """dim_0/dim_1/dim_2 (what to_netcdf writes for a bare array): the error's fix is --band-axis, which works."""
    from tests.conftest import run_cli

    cube = np.arange(8 * 6 * 5, dtype="float32").reshape(8, 6, 5)  # y, x, bands
    xr.Dataset({"cube": (("dim_0", "dim_1", "dim_2"), cube)}).to_netcdf(tmp_path / "anon.nc", engine="h5netcdf")
    r = run_cli("ingest", tmp_path / "anon.nc", "--crs", "none", "--out", tmp_path / "a.zarr")
    assert r.returncode == 3 and "name it with --band-axis N" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("ingest", tmp_path / "anon.nc", "--crs", "none", "--band-axis", "2", "--out", tmp_path / "a.zarr")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "a.zarr")["reflectance"].values, cube.transpose(2, 0, 1))


def test_existing_scene_store_passes_through(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4, dtype="int16").reshape(2, 3, 4)
    scene = make_scene(
        data,
        var="radiance",
        wavelength=[400, 500],
        crs="EPSG:32611",
        transform=Affine(15, 0, 100, 0, -15, 900),
        nodata=-9999,
        band_names=["blue 400", "green 500"],
    )
    labels = np.array([[0, 1, 1, 0], [2, 2, 0, 1], [0, 0, 2, 2]])
    scene = add_labels(scene, labels, ["roof", "tree"], ["#ff0000", "#00ff00"])
    store = write_scene(scene, tmp_path / "s.zarr")
    assert detect_format(store) == "zarr"
    ds = read(store)
    np.testing.assert_array_equal(ds["radiance"].values, data)
    assert scene_crs(ds).to_epsg() == 32611 and ds.rio.transform().almost_equals(Affine(15, 0, 100, 0, -15, 900))
    np.testing.assert_allclose(ds["wavelength"].values, [400, 500])
    assert nodata_value(ds) == -9999
    # re-ingesting a store (to re-chunk it) had dropped its labels, legend and band names
    np.testing.assert_array_equal(ds["labels"].values, labels)
    assert ds["labels"].attrs["class_names"] == ["roof", "tree"] and ds["labels"].attrs["class_colors"] == ["#ff0000", "#00ff00"]
    assert ds["band_name"].values.tolist() == ["blue 400", "green 500"]


def test_no_3d_variable(tmp_path: Path) -> None:
    path = tmp_path / "flat.nc"
    xr.Dataset({"a": (("y", "x"), np.zeros((2, 2)))}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(InputFormatError, match="no 3-D numeric variable"):
        read(path)


def _uncharted(tmp_path: Path, ydim: str, xdim: str, units: tuple[str, str] | None) -> tuple[Path, np.ndarray]:
    """A CF file whose coordinates give a regular grid but no grid_mapping gives its CRS, the rows stored
    south to north (as many CF writers do); and the cube as it looks north up."""
    data = np.arange(3 * 4 * 5, dtype="float32").reshape(3, 4, 5)
    y0, x0, step = (52.5, 13.0, 0.01) if units and "degrees" in units[0] else (5_810_000.0, 360_000.0, 30.0)
    coords = {
        "band": [0, 1, 2],
        "wavelength": ("band", [450.0, 550.0, 650.0], {"units": "nm"}),
        ydim: (ydim, y0 - step * (np.arange(4)[::-1] + 0.5), {"units": units[0]} if units else {}),
        xdim: (xdim, x0 + step * (np.arange(5) + 0.5), {"units": units[1]} if units else {}),
    }
    path = tmp_path / "uncharted.nc"
    xr.Dataset({"reflectance": (("band", ydim, xdim), data[:, ::-1])}, coords=coords).to_netcdf(path, engine="h5netcdf")
    return path, data


def test_lat_lon_coordinates_without_a_grid_mapping_are_placed_by_crs_alone(tmp_path: Path) -> None:
    """Degrees name no datum: refused with the --crs that places the file, which then needs no --transform.
    Placed as stored (rows south to north here), so labels in the file's order still fit it."""
    from geohsi.scene import open_scene

    path, north_up = _uncharted(tmp_path, "lat", "lon", ("degrees_north", "degrees_east"))
    with pytest.raises(GeoreferenceError, match=r"lat/lon coordinates are degrees .*--crs EPSG:4326 places it"):
        ingest(path, tmp_path / "a.zarr")
    ds = open_scene(ingest(path, tmp_path / "a.zarr", crs="EPSG:4326"))
    assert scene_crs(ds).to_epsg() == 4326
    assert ds.rio.transform().almost_equals(Affine(0.01, 0, 13.0, 0, 0.01, 52.46))
    np.testing.assert_array_equal(ds["reflectance"].values, north_up[:, ::-1])


def test_projected_coordinates_in_metres_take_their_crs_alone(tmp_path: Path) -> None:
    from geohsi.scene import open_scene

    path, north_up = _uncharted(tmp_path, "y", "x", ("m", "m"))
    ds = open_scene(ingest(path, tmp_path / "p.zarr", crs="EPSG:32633"))
    assert ds.rio.transform().almost_equals(Affine(30, 0, 360_000, 0, 30, 5_809_880))
    np.testing.assert_array_equal(ds["reflectance"].values, north_up[:, ::-1])


@pytest.mark.parametrize("units", [None, ("m", "m")])
def test_a_grid_without_crs_stays_in_stored_order_as_a_pixel_grid(tmp_path: Path, units) -> None:
    """With --crs none the rows stay as stored, so labels in the file's order (a .mat) fit them: coordinates in
    metres had turned the cube north up and put every label on the wrong row. Bare numbers (maybe pixel
    indices) still need --transform with --crs."""
    import scipy.io

    path, north_up = _uncharted(tmp_path, "y", "x", units)
    stored = north_up[:, ::-1]
    first_row = np.zeros(stored.shape[1:], "uint8")
    first_row[0] = 1
    scipy.io.savemat(tmp_path / "gt.mat", {"gt": first_row})
    if units is None:
        with pytest.raises(GeoreferenceError, match="which has no grid; add --transform"):
            ingest(path, tmp_path / "n.zarr", crs="EPSG:32633")
    ds = read(ingest(path, tmp_path / "n.zarr", crs="none", labels=tmp_path / "gt.mat"))
    np.testing.assert_array_equal(ds["reflectance"].values, stored)
    np.testing.assert_array_equal(ds["reflectance"].values[0][ds["labels"].values == 1], stored[0, 0])


def test_a_netcdf3_unsigned_cube_and_a_band_table_kept_as_variables(tmp_path: Path) -> None:
    """Files written with netCDF4/h5netcdf as CF says: int16 with ``_Unsigned = "true"`` (40000 had been read as
    −25536) and ``wavelength(band)``/``fwhm(band)`` as plain variables (they had been ignored: wavelengths unknown)."""
    import h5netcdf.legacyapi as nc

    from geohsi.scene import open_scene, valid_mask

    path = tmp_path / "u.nc"
    with nc.Dataset(path, "w") as d:
        d.createDimension("band", 3)
        d.createDimension("y", 4)
        d.createDimension("x", 5)
        w = d.createVariable("wavelength", "f4", ("band",))
        w[:], w.units = [0.5, 0.6, 0.7], "um"
        f = d.createVariable("fwhm", "f4", ("band",))
        f[:], f.units = [0.01] * 3, "um"
        r = d.createVariable("radiance", "i2", ("band", "y", "x"), fill_value=np.int16(-1))
        r.setncattr("_Unsigned", "true")
        r[:] = np.full((3, 4, 5), 40000, "u2").view("i2")
        r[:, 0, 0] = -1  # the fill: 65535 unsigned
    scene = open_scene(ingest(path, tmp_path / "u.zarr", crs="none"))
    assert scene["radiance"].dtype == np.uint16 and int(scene["radiance"][0, 1, 1]) == 40000
    assert nodata_value(scene) == 65535 and not bool(valid_mask(scene)[0, 0]) and bool(valid_mask(scene)[1, 1])
    np.testing.assert_allclose(scene["wavelength"].values, [500, 600, 700], atol=1e-3)
    np.testing.assert_allclose(scene["fwhm"].values, [10, 10, 10], atol=1e-3)


def test_an_unsigned_cube_with_a_vector_missing_value(tmp_path: Path) -> None:
    """CF allows a vector missing_value; its first value is the nodata (it had crashed, exit 70)."""
    import h5netcdf.legacyapi as nc

    from geohsi.scene import open_scene

    with nc.Dataset(tmp_path / "mv.nc", "w") as d:
        for dim, n in (("band", 2), ("y", 3), ("x", 4)):
            d.createDimension(dim, n)
        r = d.createVariable("radiance", "i2", ("band", "y", "x"))
        r.setncattr("_Unsigned", "true")
        r.setncattr("missing_value", np.array([-1, -2], "i2"))
        r[:] = 7
    scene = open_scene(ingest(tmp_path / "mv.nc", tmp_path / "mv.zarr", crs="none"))
    assert nodata_value(scene) == 65535
