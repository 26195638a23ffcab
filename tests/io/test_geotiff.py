"""GeoTIFF reader: the 18 EnMAP Potsdam tiles as one mosaic, synthetic tiles for every refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.transform import from_origin

from geohsi.errors import BandMismatchError, GeoreferenceError, InputFormatError
from geohsi.io import read
from geohsi.scene import nodata_value, scene_crs


def enmap_tiles(data_dir: Path) -> list[Path]:
    tiles = sorted((data_dir / "enmap_potsdam" / "images").glob("enmap_potsdam_tile_*.tif"))
    assert len(tiles) == 18
    return tiles


def write_tile(
    path: Path,
    data: np.ndarray,
    *,
    x0: float = 1000.0,
    y0: float = 2000.0,
    res: float = 10.0,
    crs: str = "EPSG:32633",
    nodata: float | None = None,
    tags: dict | None = None,
) -> Path:
    b, h, w = data.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=b,
        dtype=data.dtype,
        crs=crs,
        transform=from_origin(x0, y0, res, res),
        nodata=nodata,
    ) as dst:
        dst.write(data)
        for i, t in (tags or {}).items():
            dst.update_tags(i, **t)
    return path


def test_enmap_mosaic(data_dir: Path) -> None:
    tiles = enmap_tiles(data_dir)
    ds = read(tiles)
    v = ds["reflectance"]
    # Tiles span columns 64..224 and rows 0..192 of the full scene (PROVENANCE: origin 362175 + 30·X, 5809965 − 30·Y).
    assert v.shape == (224, 192, 160) and v.dtype == np.float32
    assert scene_crs(ds).to_epsg() == 32633
    assert ds.rio.transform().almost_equals(Affine(30, 0, 362175 + 30 * 64, 0, -30, 5809965))
    assert nodata_value(ds) == -32768
    assert (np.flatnonzero(~ds["good_band"].values) + 1).tolist() == [130, 131, 132, 133, 134, 135]
    with rasterio.open(tiles[0]) as src:
        tag_wl = [float(src.tags(i)["wavelength"]) for i in range(1, 225)]
        tag_fwhm = [float(src.tags(i)["fwhm"]) for i in range(1, 225)]
    np.testing.assert_allclose(ds["wavelength"].values, tag_wl)
    np.testing.assert_allclose(ds["fwhm"].values, tag_fwhm)
    assert ds.attrs["acquisition_time"] == "2022-07-24T10:45:26"
    values = v.values
    for t in tiles:
        x, y = (int(s) for s in t.stem.split("_")[-2:])
        with rasterio.open(t) as src:
            np.testing.assert_array_equal(values[:, y : y + 32, x - 64 : x - 64 + 32], src.read())
    # Column offset 64, row offset 64 has no tile: nodata everywhere there.
    assert np.all(values[:, 64:96, 0:32] == -32768)


def test_single_file_tags_in_micrometres(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4, dtype="uint16").reshape(2, 3, 4)
    tags = {
        1: {"wavelength": "0.5", "wavelength_units": "Micrometers", "bbl": "1"},
        2: {"wavelength": "0.6", "wavelength_units": "Micrometers", "bbl": "0"},
    }
    ds = read(write_tile(tmp_path / "one.tif", data, tags=tags))
    np.testing.assert_array_equal(ds["reflectance"].values, data)
    np.testing.assert_allclose(ds["wavelength"].values, [500, 600])
    assert ds["good_band"].values.tolist() == [True, False]
    assert nodata_value(ds) is None  # fully covered single file: no invented nodata


def test_gap_without_nodata_gets_fill(tmp_path: Path) -> None:
    a = write_tile(tmp_path / "a.tif", np.full((2, 4, 4), 5, "int16"), x0=0, y0=80)
    b = write_tile(tmp_path / "b.tif", np.full((2, 4, 4), 7, "int16"), x0=80, y0=40)  # diagonal: leaves gaps
    ds = read([a, b], chunks=3)
    v = ds["reflectance"].values
    assert v.shape == (2, 8, 12)
    assert nodata_value(ds) == -(2**31) and v.dtype == np.int32  # a value no int16 tile holds
    assert np.all(v[:, :4, :4] == 5) and np.all(v[:, 4:, 8:] == 7) and np.all(v[:, :4, 4:] == -(2**31))


def test_overlapping_tiles_later_wins(tmp_path: Path) -> None:
    a = write_tile(tmp_path / "a.tif", np.full((1, 4, 4), 1, "float32"), x0=0, y0=40)
    b = write_tile(tmp_path / "b.tif", np.full((1, 4, 4), 2, "float32"), x0=20, y0=40)
    v = read([a, b])["reflectance"].values
    assert v.shape == (1, 4, 6) and np.all(v[0, :, :2] == 1) and np.all(v[0, :, 2:] == 2)


def test_tiles_with_different_crs(tmp_path: Path) -> None:
    a = write_tile(tmp_path / "a.tif", np.zeros((2, 4, 4), "float32"))
    b = write_tile(tmp_path / "b_utm32.tif", np.zeros((2, 4, 4), "float32"), crs="EPSG:32632")
    with pytest.raises(GeoreferenceError, match="b_utm32.tif.*EPSG:32632"):
        read([a, b])


def test_tiles_with_different_band_counts(tmp_path: Path) -> None:
    a = write_tile(tmp_path / "a.tif", np.zeros((2, 4, 4), "float32"))
    b = write_tile(tmp_path / "b3.tif", np.zeros((3, 4, 4), "float32"), x0=1040)
    with pytest.raises(BandMismatchError, match="b3.tif has 3 bands"):
        read([a, b])


def test_tiles_off_grid_or_other_resolution(tmp_path: Path) -> None:
    a = write_tile(tmp_path / "a.tif", np.zeros((1, 4, 4), "float32"))
    off = write_tile(tmp_path / "off.tif", np.zeros((1, 4, 4), "float32"), x0=1045)
    with pytest.raises(GeoreferenceError, match="off.tif is off"):
        read([a, off])
    coarse = write_tile(tmp_path / "coarse.tif", np.zeros((1, 4, 4), "float32"), res=20)
    with pytest.raises(GeoreferenceError, match="coarse.tif has pixel size"):
        read([a, coarse])


def test_scales_per_band_or_per_tile_are_refused(tmp_path: Path) -> None:
    """One scale_factor applies to the whole cube: a GeoTIFF with one per band (or tiles with other
    scales) would silently read as raw numbers, so each is one line naming the fix."""
    data = np.full((3, 4, 4), 1000, "int16")
    banded = write_tile(tmp_path / "banded.tif", data)
    with rasterio.open(banded, "r+") as dst:
        dst.scales = (1e-4, 1e-3, 1e-2)
    with pytest.raises(InputFormatError, match=r"banded.tif has a scale or offset per band.*gdal_translate -unscale"):
        read([banded])
    a, b = write_tile(tmp_path / "a.tif", data), write_tile(tmp_path / "b.tif", data, x0=1040)
    for path, scale in ((a, 1e-4), (b, 1e-3)):
        with rasterio.open(path, "r+") as dst:
            dst.scales = (scale,) * 3
    with pytest.raises(BandMismatchError, match=r"tile .*b.tif has scale/offset 0.001/0.0 but a.tif has 0.0001/0.0"):
        read([a, b])


def test_a_later_tiles_nodata_does_not_hide_an_earlier_tiles_data(tmp_path: Path) -> None:
    """Where tiles overlap, nodata is transparent (as gdalbuildvrt and rasterio.merge treat it)."""
    b_data = np.full((1, 4, 4), 2, "float32")
    b_data[:, :, :2] = -9999  # its two columns over a hold nodata
    a = write_tile(tmp_path / "a.tif", np.full((1, 4, 4), 1, "float32"), x0=0, y0=40, nodata=-9999)
    b = write_tile(tmp_path / "b.tif", b_data, x0=20, y0=40, nodata=-9999)
    v = read([a, b])["reflectance"].values
    assert v.shape == (1, 4, 6) and np.all(v[0, :, :4] == 1) and np.all(v[0, :, 4:] == 2)


def test_bands_without_data_in_a_file_without_a_bad_band_list_are_flagged(tmp_path: Path, data_dir: Path) -> None:
    """A real EnMAP tile rewritten without its band tags: its absorption bands hold only nodata, which
    made every pixel invalid (0 of 1,024). They are flagged bad, with a warning; the valid pixels are
    those of the tagged original."""
    from geohsi.errors import GeohsiWarning
    from geohsi.ingestion import open_source
    from geohsi.scene import valid_mask

    tile = enmap_tiles(data_dir)[0]
    with rasterio.open(tile) as src:
        profile, data = src.profile, src.read()
    bare = tmp_path / "bare.tif"
    with rasterio.open(bare, "w", **profile) as dst:
        dst.write(data)
    with pytest.warns(GeohsiWarning, match=r"bare.tif: band\(s\) 13\d, .* hold no data where the other bands do; flagged bad"):
        ds = open_source(bare)
    tagged = open_source(tile)
    assert np.flatnonzero(~ds["good_band"].values).tolist() == np.flatnonzero(~tagged["good_band"].values).tolist()
    assert int(valid_mask(ds).sum()) == int(valid_mask(tagged).sum()) > 0


@pytest.mark.parametrize("default_domain", [False, True])
def test_gdals_imagery_domain_gives_the_band_table(tmp_path: Path, default_domain: bool) -> None:
    """GDAL ≥ 3.10 writes CENTRAL_WAVELENGTH_UM/FWHM_UM (e.g. converting ENVI): the table had been lost ("wavelengths
    unknown"), or its widths where only the centres were also in the default domain."""
    from geohsi.io.geotiff import inspect

    path = tmp_path / "imagery.tif"
    profile = dict(driver="GTiff", width=6, height=5, count=4, dtype="int16", crs="EPSG:32633",
                   transform=from_origin(500000, 4000000, 30, 30))  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((4, 5, 6), "int16"))
        for i, um in enumerate([0.45, 0.55, 0.65, 0.85], start=1):
            dst.update_tags(i, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=str(um), FWHM_UM="0.012")
            if default_domain:
                dst.update_tags(i, wavelength=str(um * 1000), wavelength_units="Nanometers")
    info = inspect(path)
    np.testing.assert_allclose(info.wavelength, [450, 550, 650, 850])
    np.testing.assert_allclose(info.fwhm, [12, 12, 12, 12])
