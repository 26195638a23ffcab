"""ENVI reader: real AVIRIS-NG (BSQ) and Resonon Pika (BIP) files, synthetic edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from geohsi.errors import GeoreferenceError, InputFormatError
from geohsi.io import detect_format, envi, read
from geohsi.scene import nodata_value, open_scene, scene_crs, write_scene

AVIRIS = "aviris_ng/ang20160910t185702_2rdn_img"
PIKA = "pika_drone/pika_reflectance.bip"


def _write_envi(
    tmp: Path,
    cube_bhw: np.ndarray,
    *,
    interleave: str = "bsq",
    big_endian: bool = False,
    header_name: str | None = None,
    data_name: str = "cube.img",
    extra: str = "",
    offset: int = 0,
) -> Path:
    """Write an ENVI pair from a [B, H, W] array; return the data path."""
    b, h, w = cube_bhw.shape
    arr = {"bsq": cube_bhw, "bil": cube_bhw.transpose(1, 0, 2), "bip": cube_bhw.transpose(1, 2, 0)}[interleave]
    code = {np.dtype("int16"): 2, np.dtype("float32"): 4, np.dtype("uint16"): 12, np.dtype("float64"): 5}[cube_bhw.dtype]
    data = tmp / data_name
    raw = np.ascontiguousarray(arr).astype(cube_bhw.dtype.newbyteorder(">" if big_endian else "<")).tobytes()
    data.write_bytes(b"\0" * offset + raw)
    hdr = tmp / (header_name or (Path(data_name).stem + ".hdr"))
    hdr.write_text(
        f"ENVI\nsamples = {w}\nlines   = {h}\nbands = {b}\nheader offset = {offset}\nfile type = ENVI Standard\n"
        f"data type = {code}\ninterleave = {interleave}\nbyte order = {int(big_endian)}\n{extra}"
    )
    return data


def test_aviris_ng_bsq_radiance(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / AVIRIS
    assert detect_format(path) == "envi"
    ds = read(path)
    v = ds["radiance"]
    assert v.shape == (425, 25, 30) and v.dtype == np.float32
    expected = np.fromfile(path, dtype="<f4").reshape(425, 25, 30)
    np.testing.assert_array_equal(v.values, expected)
    # Wavelengths come only from "band names" ("376.44 Nanometers").
    assert ds["wavelength"].values[0] == pytest.approx(376.44) and ds["wavelength"].values[-1] == pytest.approx(2500.12)
    assert np.all(np.diff(ds["wavelength"].values) > 0)
    assert scene_crs(ds).to_epsg() == 32611
    tf = ds.rio.transform()
    assert tf.almost_equals(Affine(15, 0, 353128.751647949, 0, -15, 3813729.76806641))
    assert nodata_value(ds) == -9999
    # Round trip through the store keeps values and metadata.
    out = write_scene(ds, tmp_path / "a.zarr")
    back = open_scene(out)
    np.testing.assert_array_equal(back["radiance"].values, expected)
    assert scene_crs(back).to_epsg() == 32611 and back.rio.transform().almost_equals(tf)
    np.testing.assert_allclose(back["wavelength"].values, ds["wavelength"].values)
    assert nodata_value(back) == -9999


def test_pika_bip_via_data_or_header(data_dir: Path) -> None:
    data = data_dir / PIKA
    a = read(data)  # X.bip → X.bip.hdr
    b = read(data.with_name(data.name + ".hdr"))  # the header itself → its data file
    expected = np.fromfile(data, dtype="<f4").reshape(3, 3, 240).transpose(2, 0, 1)
    for ds in (a, b):
        np.testing.assert_array_equal(ds["reflectance"].values, expected)
        assert scene_crs(ds).to_epsg() == 32615  # zone 15 with MGRS band "T" → north
        tf = ds.rio.transform()
        assert tf.a == pytest.approx(0.04) and tf.c == pytest.approx(441371.007073) and tf.f == pytest.approx(4855941.73177)
        assert ds["wavelength"].values[0] == pytest.approx(394.6) and ds["wavelength"].values[-1] == pytest.approx(885.2192)


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("big_endian", [False, True])
def test_interleaves_and_byte_order(tmp_path: Path, interleave: str, big_endian: bool) -> None:
    rng = np.random.default_rng(0)
    cube = rng.integers(-3000, 3000, size=(5, 7, 11)).astype("int16")
    data = _write_envi(tmp_path, cube, interleave=interleave, big_endian=big_endian, offset=16)
    ds = read(data, chunks=4)  # several chunks per axis: window reads must stitch back
    assert ds["reflectance"].dtype == np.dtype("int16")
    np.testing.assert_array_equal(ds["reflectance"].values, cube)
    assert scene_crs(ds) is None  # no map info → pixel grid


def test_metadata_units_bbl_map_info(tmp_path: Path) -> None:
    cube = np.ones((3, 4, 5), dtype="float32")
    extra = (
        "wavelength units = Micrometers\nwavelength = {0.45, 0.55,\n 0.65}\nfwhm = {0.01, 0.01, 0.02}\n"
        "bbl = {1, 0, 1}\ndata ignore value = -1\nsensor type = TestCam\n"
        # reference pixel (2.5, 3.5), i.e. 1.5 px right and 2.5 px down of the upper-left corner
        "map info = {UTM, 2.5, 3.5, 500015.0, 4000000.0, 10.0, 10.0, 33, South, WGS-84, units=Meters}\n"
    )
    ds = read(_write_envi(tmp_path, cube, extra=extra))
    np.testing.assert_allclose(ds["wavelength"].values, [450, 550, 650])
    np.testing.assert_allclose(ds["fwhm"].values, [10, 10, 20])
    assert ds["good_band"].values.tolist() == [True, False, True]
    assert nodata_value(ds) == -1 and ds.attrs["sensor"] == "TestCam"
    assert scene_crs(ds).to_epsg() == 32733
    assert ds.rio.transform().almost_equals(Affine(10, 0, 500000.0, 0, -10, 4000025.0))


def test_header_beside_data_named_stem(tmp_path: Path) -> None:
    cube = np.arange(24, dtype="float32").reshape(2, 3, 4)
    data = _write_envi(tmp_path, cube, data_name="scene.dat", header_name="scene.hdr")
    assert envi.find_header(data) == tmp_path / "scene.hdr"
    assert envi.find_data(tmp_path / "scene.hdr") == data
    np.testing.assert_array_equal(read(tmp_path / "scene.hdr")["reflectance"].values, cube)


def test_size_mismatch_is_an_input_error(tmp_path: Path) -> None:
    data = _write_envi(tmp_path, np.zeros((2, 3, 4), "float32"))
    data.write_bytes(data.read_bytes()[:-4])  # truncated by one value
    with pytest.raises(InputFormatError, match="truncated or the header is wrong"):
        read(data)


def test_missing_header_and_bad_headers(tmp_path: Path) -> None:
    lone = tmp_path / "lone.img"
    lone.write_bytes(b"\0" * 8)
    with pytest.raises(InputFormatError, match="no ENVI header"):
        envi.read(lone)
    data = _write_envi(tmp_path, np.zeros((1, 2, 2), "float32"), extra="wavelength = {1, 2")
    with pytest.raises(InputFormatError, match="never closes"):
        read(data)
    data = _write_envi(tmp_path, np.zeros((1, 2, 2), "float32"), data_name="c.img")
    hdr = tmp_path / "c.hdr"
    hdr.write_text(hdr.read_text().replace("data type = 4", "data type = 6"))
    with pytest.raises(InputFormatError, match="complex or unknown"):
        read(data)


def test_rotated_map_info_refused(tmp_path: Path) -> None:
    extra = "map info = {UTM, 1, 1, 500000, 4000000, 10, 10, 33, North, WGS-84, units=Meters, rotation=15.0}\n"
    with pytest.raises(GeoreferenceError, match="rotated"):
        read(_write_envi(tmp_path, np.zeros((1, 2, 2), "float32"), extra=extra))


def test_a_bare_s_hemisphere_is_not_guessed_and_crs_alone_places_the_header_grid(tmp_path: Path) -> None:
    """'S' is South and the latitude band 32–40° N: it had been read as South (EPSG:32711 for a scene in
    California, 10,000 km off). Refused instead, and --crs alone then places the header's own grid."""
    from geohsi.ingestion import ingest

    extra = "wavelength = {450, 550}\nmap info = {UTM, 1, 1, 500000, 4000000, 10, 10, 11, S, WGS-84}\n"
    data = _write_envi(tmp_path, np.ones((2, 4, 5), "uint16"), extra=extra)
    with pytest.raises(GeoreferenceError, match=r"UTM zone 11 'S'.*--crs EPSG:32611 \(north\) or EPSG:32711 \(south\)"):
        ingest(data, tmp_path / "guess.zarr")
    odd = extra.replace("11, S", "eleven, S")  # no zone to name codes by: the message still holds, no crash
    with pytest.raises(GeoreferenceError, match=r"UTM zone eleven 'S'.*pass --crs with the scene's EPSG code"):
        ingest(_write_envi(tmp_path, np.ones((2, 4, 5), "uint16"), extra=odd, data_name="odd.img"), tmp_path / "odd.zarr")
    assert not (tmp_path / "guess.zarr").exists()
    ds = open_scene(ingest(data, tmp_path / "s.zarr", crs="EPSG:32611"))
    assert scene_crs(ds).to_epsg() == 32611
    assert ds.rio.transform().almost_equals(Affine(10, 0, 500000.0, 0, -10, 4000000.0))
    assert "source_transform" not in ds.attrs and "crs_note" not in ds.attrs


@pytest.mark.parametrize(
    ("data_name", "extra", "quantity"),
    [
        ("kuwait_refl.img", "description = {surface reflectance x10000}\n", "reflectance"),  # 'uw' in the name
        ("gardner_site.img", "", "reflectance"),  # 'rdn' inside a word
        ("ang20160910t185702_2rdn_img", "", "radiance"),  # AVIRIS-NG's own naming
        ("scene.img", "data units = uW/(cm^2 sr nm)\n", "radiance"),
        ("scene.img", "description = {at-sensor radiance}\n", "radiance"),
    ],
)
def test_radiance_is_told_by_units_and_whole_words(tmp_path: Path, data_name: str, extra: str, quantity: str) -> None:
    ds = read(
        _write_envi(
            tmp_path, np.ones((2, 3, 4), "uint16"), data_name=data_name, header_name=Path(data_name).stem + ".hdr", extra=extra
        )
    )
    assert list(ds.data_vars) == [quantity]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # GDAL, opening the pixel grid
def test_data_gain_and_offset_values_scale_the_cube_as_gdal_reads_them(tmp_path: Path) -> None:
    """They had been ignored: a reflectance cube stored as DN × 10,000 came in 10,000 times too large."""
    import rasterio

    cube = np.arange(2 * 3 * 4, dtype="uint16").reshape(2, 3, 4) * 100
    extra = "wavelength = {450, 550}\ndata gain values = {0.0001, 0.0001}\ndata offset values = {-0.01, -0.01}\n"
    data = _write_envi(tmp_path, cube, extra=extra)
    ds = read(data)
    with rasterio.open(data) as src:  # GDAL's ENVI driver: the same scale and offset
        assert (src.scales[0], src.offsets[0]) == (0.0001, -0.01)
    v = ds["reflectance"]
    np.testing.assert_allclose(v.values * v.attrs["scale_factor"] + v.attrs["add_offset"], cube * 0.0001 - 0.01)
    per_band = "wavelength = {450, 550}\ndata gain values = {0.0001, 0.0002}\n"
    (tmp_path / "b").mkdir()
    with pytest.raises(InputFormatError, match=r"has a gain per band .*gdal_translate -unscale"):
        read(_write_envi(tmp_path / "b", cube, extra=per_band))


def test_band_names_parsing() -> None:
    assert envi.wavelengths_from_band_names(["1.5 Micrometers", "band 2 (1600 Nanometers)"]).tolist() == [1500.0, 1600.0]
    assert envi.wavelengths_from_band_names(["Path length (m)", "Slope"]) is None


def test_a_data_file_longer_than_its_header_says_is_read_with_a_warning(tmp_path: Path) -> None:
    """GDAL reads the described bytes and ignores trailing padding; so does geohsi, and says so."""
    from geohsi.errors import GeohsiWarning

    cube = np.arange(24, dtype="float32").reshape(2, 3, 4)
    data = _write_envi(tmp_path, cube)
    data.write_bytes(data.read_bytes() + b"\0" * 100)
    with pytest.warns(GeohsiWarning, match="100 bytes longer than cube.hdr describes"):
        np.testing.assert_array_equal(read(data)["reflectance"].values, cube)
    with pytest.raises(InputFormatError, match="header offset = -8 must be 0 or more"):
        read(_negative_offset(tmp_path, cube))


def _negative_offset(tmp_path: Path, cube: np.ndarray) -> Path:
    data = _write_envi(tmp_path, cube, data_name="neg.img")
    hdr = tmp_path / "neg.hdr"
    hdr.write_text(hdr.read_text().replace("header offset = 0", "header offset = -8"))
    return data


@pytest.mark.parametrize(
    ("units", "written", "nm"),
    [("Unknown", [0.45, 0.55, 0.65], [450, 550, 650]), ("Angstroms", [4500, 5500, 6500], [450, 550, 650]),
     ("Meters", [4.5e-7, 5.5e-7, 6.5e-7], [450, 550, 650]), ("Nanometers", [450, 550, 650], [450, 550, 650])],
)  # fmt: skip
def test_the_wavelength_units_envi_documents(tmp_path: Path, units: str, written: list, nm: list) -> None:
    """ENVI writes 'Unknown' when it knows no unit (the values then tell µm from nm) and documents
    Angstroms, Centimeters and Meters besides nm and µm."""
    extra = f"wavelength units = {units}\nwavelength = {{{', '.join(map(str, written))}}}\n"
    np.testing.assert_allclose(read(_write_envi(tmp_path, np.ones((3, 2, 2), "float32"), extra=extra))["wavelength"].values, nm)


def test_an_unknown_unit_and_a_nodata_value_the_type_cannot_hold_are_one_line_errors(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    bad_unit = _write_envi(tmp_path, np.ones((3, 2, 2), "float32"), extra="wavelength units = Furlongs\nwavelength = {1, 2, 3}\n")
    with pytest.raises(InputFormatError, match=r"wavelength units 'Furlongs' are not a unit geohsi knows"):
        read(bad_unit)
    data = _write_envi(tmp_path, np.ones((3, 2, 2), "uint16"), data_name="u16.img", extra="data ignore value = -9999\n")
    r = run_cli("ingest", data, "--out", tmp_path / "u16.zarr")
    err = r.stderr.strip()
    assert r.returncode != 0 and err.count("\n") == 0 and "u16.img: nodata value -9999 cannot occur in uint16 data" in err, err
    assert "'data ignore value'" in err and "--nodata VALUE" in err and "--nodata none" in err
    assert not (tmp_path / "u16.zarr").exists()
    # the fix the message names works
    r = run_cli("ingest", data, "--crs", "none", "--nodata", "none", "--out", tmp_path / "u16.zarr")
    assert r.returncode == 0, r.stderr
    assert nodata_value(open_scene(tmp_path / "u16.zarr")) is None
