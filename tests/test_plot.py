"""geohsi.plot: the figures show what they claim — checked on the rendered pixels and the artists."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from affine import Affine  # noqa: E402

from geohsi import plot as P  # noqa: E402
from geohsi.errors import DataError, UsageError  # noqa: E402
from geohsi.scene import add_labels, make_scene  # noqa: E402

CLASSES = [
    {"id": 1, "name": "roof", "color": "#e31a1c"},
    {"id": 2, "name": "pavement", "color": "#a6a6a6"},
    {"id": 4, "name": "tree", "color": "#33a02c"},  # ids need not be contiguous
    {"id": 6, "name": "water", "color": "#1f78b4"},
]


def _rgb255(color: str) -> np.ndarray:
    return np.array([int(color[k : k + 2], 16) for k in (1, 3, 5)])


def _block_map() -> xr.DataArray:
    """A 40 × 60 map of 2 × 3 blocks of 20 × 20: classes 1, 2, 4 / 6, 0 (nodata), 1; UTM coords, 10 m."""
    ids = np.array([[1, 2, 4], [6, 0, 1]], dtype="uint8").repeat(20, axis=0).repeat(20, axis=1)
    t = Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0)
    x = t.c + 10.0 * (np.arange(60) + 0.5)
    y = t.f - 10.0 * (np.arange(40) + 0.5)
    m = xr.DataArray(ids, dims=("y", "x"), coords={"y": y, "x": x}, name="classes")
    return m.rio.write_crs("EPSG:32633").rio.write_transform(t)


def _render(fig, dpi=100) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # no tight bbox: figure pixels = display coordinates
    buf.seek(0)
    return (mpimg.imread(buf)[..., :3] * 255).round().astype(int)


def test_classmap_pixels_and_legend_match_the_colour_table():
    m = _block_map()
    ax = P.plot_classmap(m, CLASSES)
    fig = ax.figure
    # the image artist holds exactly the colour-table colours, nodata transparent
    rgba = np.asarray(ax.images[-1].get_array())
    for c in CLASSES:
        got = rgba[m.values == c["id"]]
        np.testing.assert_allclose(got[:, :3] * 255, np.broadcast_to(_rgb255(c["color"]), got[:, :3].shape), atol=0.5)
    assert np.all(rgba[m.values == 0][:, 3] == 0)
    # legend: every class name, in order, with its colour
    leg = ax.get_legend()
    assert [t.get_text() for t in leg.get_texts()] == [c["name"] for c in CLASSES]
    for patch, c in zip(leg.get_patches(), CLASSES, strict=True):
        np.testing.assert_allclose(np.array(patch.get_facecolor()[:3]) * 255, _rgb255(c["color"]), atol=0.5)
    # the rendered PNG: sample the centre of every block through the axes' data → pixel transform
    png = _render(fig)
    h = png.shape[0]
    for r in range(2):
        for col in range(3):
            cx, cy = 500000.0 + 200.0 * col + 100.0, 4200000.0 - 200.0 * r - 100.0
            px, py = ax.transData.transform((cx, cy))
            got = png[int(round(h - py)), int(round(px))]
            cid = m.values[20 * r + 10, 20 * col + 10]
            want = np.array([255, 255, 255]) if cid == 0 else _rgb255(next(c["color"] for c in CLASSES if c["id"] == cid))
            np.testing.assert_array_equal(got, want, err_msg=f"block ({r}, {col}) class {cid}")
    # map coordinates, not pixels, on the axes
    assert ax.get_xlim() == pytest.approx((500000.0, 500600.0)) and ax.get_ylim() == pytest.approx((4199600.0, 4200000.0))
    assert "EPSG:32633" in ax.get_xlabel()
    plt.close(fig)


def test_classmap_legend_from_attrs_and_errors():
    m = _block_map()
    m.attrs.update(
        class_ids=[c["id"] for c in CLASSES], class_names=[c["name"] for c in CLASSES], class_colors=[c["color"] for c in CLASSES]
    )
    ax = P.plot_classmap(m)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["roof", "pavement", "tree", "water"]
    plt.close(ax.figure)
    with pytest.raises(UsageError, match="class ids \\[6\\]"):
        P.plot_classmap(m, CLASSES[:3])
    with pytest.raises(UsageError, match="classes=bundle.classes"):
        P.plot_classmap(m.copy(data=m.values).drop_attrs() if hasattr(m, "drop_attrs") else xr.DataArray(m.values, dims=m.dims))


def _scene(nodata_pixels=True):
    """12 bands 400–950 nm (index 6, 700 nm, bad), 30 × 40 pixels; the red/green/blue bands carry known ramps."""
    wl = np.linspace(400, 950, 12)  # 50 nm spacing: 400, 450, …
    rng = np.random.default_rng(0)
    cube = rng.uniform(100, 200, (12, 30, 40)).astype("float32")
    yy, xx = np.mgrid[0:30, 0:40]
    red, green, blue = int(np.argmin(abs(wl - 650))), int(np.argmin(abs(wl - 550))), int(np.argmin(abs(wl - 450)))
    cube[red] = xx * 10.0  # increases to the east
    cube[green] = yy * 10.0  # increases to the south
    cube[blue] = 500.0 - xx * 10.0
    good = np.ones(12, bool)
    good[6] = False
    if nodata_pixels:
        cube[:, 0:3, 0:4] = -9999.0
    ds = make_scene(
        cube,
        wavelength=wl,
        good_band=good,
        crs="EPSG:32633",
        transform=Affine(30.0, 0, 300000.0, 0, -30.0, 5800000.0),
        nodata=-9999.0,
    )
    labels = np.zeros((30, 40), "uint8")
    labels[10:20, 5:15] = 1
    labels[20:30, 20:40] = 2
    return add_labels(ds, labels, ["bright", "dark"], ["#ff0000", "#0000ff"]), (red, green, blue)


def test_scene_rgb_by_wavelength_stretch_and_nodata():
    ds, (red, green, blue) = _scene()
    np.testing.assert_array_equal(P.rgb_band_indices(ds, (640, 550, 470)), [red, green, blue])
    ax = P.plot_scene(ds, (640, 550, 470), percentiles=(0, 100))
    img = np.asarray(ax.images[-1].get_array())
    assert img.shape == (30, 40, 4)
    assert np.all(img[0:3, 0:4, 3] == 0) and np.all(img[3:, :, 3] == 1)  # nodata transparent
    # red channel follows the east ramp, green the south ramp, blue the reversed east ramp
    assert np.all(np.diff(img[15, 5:, 0]) > 0) and np.all(np.diff(img[5:, 20, 1]) > 0) and np.all(np.diff(img[15, 5:, 2]) < 0)
    assert img[..., :3].min() == 0 and img[..., :3].max() == 1
    assert "650 / 550 / 450 nm" in ax.get_title()
    assert ax.get_xlim() == pytest.approx((300000.0, 301200.0))
    plt.close(ax.figure)


def test_scene_rgb_skips_bad_bands_and_refuses_without_wavelengths():
    ds, _ = _scene()
    # 700 nm is a bad band: the nearest good band (650 or 750 nm) is taken instead
    assert P.rgb_band_indices(ds, (700, 550, 450))[0] in (5, 7)
    with pytest.raises(DataError, match="within 50 nm of 1500"):
        P.rgb_band_indices(ds, (1500, 550, 450))
    no_wl = ds.assign_coords(wavelength=("band", np.full(12, np.nan)))
    with pytest.raises(DataError, match="rgb='pca'"):
        P.plot_scene(no_wl)
    with pytest.raises(UsageError, match="three wavelengths"):
        P.plot_scene(ds, (640, 550))
    img = P.scene_rgb(no_wl, "pca")  # PCA needs no wavelengths
    assert img.shape == (30, 40, 4) and img.attrs["bands"] == "PC1, PC2, PC3"


def test_scene_pca_first_component_follows_the_dominant_variation():
    ds, _ = _scene(nodata_pixels=False)
    cube = np.asarray(ds["reflectance"].values)
    cube[:] = 100.0 + np.arange(40)[None, None, :] * np.linspace(1, 3, 12)[:, None, None]  # one direction only
    cube += np.random.default_rng(1).normal(0, 0.01, cube.shape)
    ds["reflectance"].values[:] = cube
    img = P.scene_rgb(ds, "pca", percentiles=(0, 100)).values
    pc1 = img[..., 0]
    assert abs(np.corrcoef(pc1[10], np.arange(40))[0, 1]) > 0.99


def test_spectra_are_the_class_means_with_bad_bands_masked():
    ds, _ = _scene()
    ax = P.plot_spectra(ds)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"bright (100)", "dark (200)"}
    cube = np.asarray(ds["reflectance"].values, float)
    lab = ds["labels"].values
    for name, cid in (("bright (100)", 1), ("dark (200)", 2)):
        y = np.asarray(lines[name].get_ydata(), float)
        want = cube[:, lab == cid].mean(axis=1)
        want[6] = np.nan
        np.testing.assert_allclose(y, want, rtol=1e-5, equal_nan=True)
        np.testing.assert_allclose(lines[name].get_xdata(), ds["wavelength"].values)
    assert lines["bright (100)"].get_color() == "#ff0000"
    assert ax.get_xlabel() == "wavelength (nm)"
    plt.close(ax.figure)
    with pytest.raises(DataError, match="no labels"):
        P.plot_spectra(ds.drop_vars("labels"))


def test_spectra_break_across_removed_bands():
    ds, _ = _scene()
    keep = [0, 1, 2, 3, 4, 8, 9, 10, 11]  # a 200 nm hole, like Indian Pines' water bands
    ax = P.plot_spectra(ds.isel(band=keep))
    x = np.asarray(ax.get_lines()[0].get_xdata(), float)
    assert np.isnan(x).sum() == 1 and np.nanmax(np.diff(x[~np.isnan(x)])) == pytest.approx(200.0)
    plt.close(ax.figure)


def test_confusion_and_training_figures():
    report = {
        "confusion_matrix": [[8, 2], [1, 9]],
        "class_names": ["a", "b"],
        "overall_accuracy": 0.85,
        "average_accuracy": 0.85,
        "kappa": 0.7,
    }
    fig = P.plot_confusion(report)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.8, 0.2], [0.1, 0.9]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    png = P.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    fig = P.plot_training([{"epoch": 1, "train_loss": 2.0, "val_oa": 0.5}, {"epoch": 2, "train_loss": 1.0, "val_oa": 0.7}])
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == [2.0, 1.0]
    plt.close(fig)


def _png_colour_counts(path) -> dict[tuple[int, int, int], int]:
    img = (mpimg.imread(path)[..., :3] * 255).round().astype(int)
    cols, counts = np.unique(img.reshape(-1, 3), axis=0, return_counts=True)
    return {tuple(c): int(n) for c, n in zip(cols, counts, strict=True)}


def _check_quicklook(png, class_ids: np.ndarray, table: dict[int, tuple[int, int, int]]):
    """Every class colour of the table is in the PNG (legend), and the areas are proportional to the map's
    class counts plus one legend patch each: so colours are assigned to the right classes."""
    counts = _png_colour_counts(png)
    ids = sorted(table)
    area = np.array([counts.get(table[i], 0) for i in ids], float)
    n = np.array([(class_ids == i).sum() for i in ids], float)
    assert np.all(area > 0), "a class colour of the colour table is missing from the quicklook (legend)"
    if len(set(n[n > 0])) >= 2:
        a = np.vstack([n, np.ones_like(n)]).T
        (k, legend), res, *_ = np.linalg.lstsq(a, area, rcond=None)
        pred = a @ np.array([k, legend])
        assert k > 0 and np.all(np.abs(pred - area) <= 0.08 * area.max() + 40), (area, n)


@pytest.mark.slow
def test_classify_cli_writes_a_quicklook_matching_the_cog(tmp_path, enmap_scene):
    import json

    import rasterio

    from geohsi.bundle import load_bundle
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    from .conftest import run_cli

    # dense: the quicklook does not depend on the head, and patch mode's per-pixel windows made this test take minutes.
    cfg = resolve_train_config(adapter="lora", epochs=1, split="per-class:5", model="tiny", device="cpu", head="dense")
    bundle = train(enmap_scene, cfg, out=tmp_path / "bundle", progress=False, log=lambda m: None)
    b = load_bundle(bundle)
    for out in (tmp_path / "map.tif", tmp_path / "grid.zarr"):
        r = run_cli(
            "classify", enmap_scene, "--bundle", bundle, "--out", out, "--workers", "1", "--chunks", "96", "--no-progress"
        )
        assert r.returncode == 0, r.stderr
        png = out.with_suffix(".png")
        assert png.is_file() and f"wrote {png}" in r.stdout
        m = P.open_classmap(out)
        assert m.attrs["class_names"] == b.classes.names
        assert m.attrs["class_colors"] == b.classes.colors
        if out.suffix == ".tif":
            with rasterio.open(out) as src:
                cmap = src.colormap(1)
                ids = src.read(1)
                assert json.loads(src.tags()["GEOHSI_CLASSES"])[0]["name"] == b.classes[0].name
            table = {c.id: tuple(cmap[c.id][:3]) for c in b.classes}
            assert table == {c.id: tuple(_rgb255(c.color)) for c in b.classes}
        else:
            ids = m.values
            table = {c.id: tuple(_rgb255(c.color)) for c in b.classes}
        _check_quicklook(png, ids, table)
    # an existing quicklook is kept without --overwrite, replaced with it
    png = tmp_path / "map.png"
    png.write_bytes(b"old")
    r = run_cli(
        "classify",
        enmap_scene,
        "--bundle",
        bundle,
        "--out",
        tmp_path / "map.tif",
        "--workers",
        "1",
        "--no-progress",
        "--overwrite",
    )
    assert r.returncode == 0 and png.read_bytes()[:4] == b"\x89PNG"


def test_quicklook_kept_without_overwrite(tmp_path):
    """write_map_quicklook on a hand-made COG: colours from its colour table, existing PNG kept."""
    import rasterio

    ids = _block_map().values.copy()
    ids[0:10, 20:40] = 4  # distinct class areas (800, 250, 600, 350 px), so a colour swap changes the areas
    ids[30:40, 0:5] = 2
    assert len({int((ids == c["id"]).sum()) for c in CLASSES}) == len(CLASSES)
    tif = tmp_path / "m.tif"
    t = Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0)
    with rasterio.open(
        tif,
        "w",
        driver="GTiff",
        width=60,
        height=40,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=t,
        nodata=0,
        photometric="palette",
    ) as dst:
        dst.write(ids, 1)
        dst.write_colormap(1, {0: (0, 0, 0, 0), **{c["id"]: (*_rgb255(c["color"]), 255) for c in CLASSES}})
        dst.update_tags(1, **{f"CLASS_{c['id']}": c["name"] for c in CLASSES})
    png = P.write_map_quicklook(tif)
    assert png == tmp_path / "m.png"
    m = P.open_classmap(tif)
    assert m.attrs["class_names"] == [c["name"] for c in CLASSES] and m.rio.crs.to_epsg() == 32633
    _check_quicklook(png, ids, {c["id"]: tuple(_rgb255(c["color"])) for c in CLASSES})
    notes = []
    png.write_bytes(b"mine")
    assert P.write_map_quicklook(tif, log=notes.append) is None and png.read_bytes() == b"mine"
    assert "--overwrite" in notes[0]
    assert P.write_map_quicklook(tif, overwrite=True) == png and png.read_bytes()[:4] == b"\x89PNG"


def _cog_with_provenance(tmp_path, ids: np.ndarray):
    """A hand-made map COG (EPSG:32633, 10 m) recording its scene and bundle as geohsi's writer does."""
    import rasterio

    tif = tmp_path / "made.tif"
    with rasterio.open(
        tif,
        "w",
        driver="GTiff",
        width=ids.shape[1],
        height=ids.shape[0],
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0),
        nodata=0,
        photometric="palette",
    ) as dst:
        dst.write(ids, 1)
        dst.write_colormap(1, {0: (0, 0, 0, 0), **{c["id"]: (*_rgb255(c["color"]), 255) for c in CLASSES}})
        dst.update_tags(1, **{f"CLASS_{c['id']}": c["name"] for c in CLASSES})
        dst.update_tags(GEOHSI_SCENE="/data/scenes/potsdam.zarr", GEOHSI_BUNDLE="/home/me/runs/latest")
    return tif


def _furniture(ax):
    """The scale bar's length (map units) and label, and the north arrow's direction (° clockwise from up)."""
    from matplotlib.offsetbox import AnnotationBbox

    (box,) = [a for a in ax.artists if isinstance(a, AnnotationBbox)]
    bar_box, arrow_box = box.offsetbox.get_children()
    bar, label = bar_box.get_children()
    line = bar.get_children()[0]
    _, n_label = arrow_box.get_children()  # the arrow, and the N at its tip
    x, y = n_label.get_position()
    north = np.degrees(np.arctan2(x - arrow_box.width / 2, y - arrow_box.height / 2))
    return float(np.ptp(line.get_xdata())), label.get_text(), north


def test_quicklook_names_its_scene_and_bundle_lists_nodata_and_draws_scale_and_north(tmp_path):
    ids = _block_map().values  # one block of nodata
    tif = _cog_with_provenance(tmp_path, ids)
    m = P.open_classmap(tif)
    assert m.attrs["scene"] == "/data/scenes/potsdam.zarr" and m.attrs["bundle"] == "/home/me/runs/latest"
    assert P.quicklook_title(tif, m.attrs) == "made.tif\nscene potsdam.zarr · bundle runs/latest"
    assert P.quicklook_title(tif, {}) == "made.tif"
    ax = P.plot_classmap(m, nodata="nodata")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [*(c["name"] for c in CLASSES), "nodata"]
    assert P.add_map_furniture(ax, m)
    length, label, north = _furniture(ax)
    # 600 m wide → a quarter rounds down to 100 m; UTM's scale factor near the central meridian is 0.9996
    assert label == "100 m" and length == pytest.approx(100 * 0.9996, rel=2e-4)
    assert abs(north) < 0.1  # 15°E is zone 33's central meridian: grid north is true north there
    plt.close(ax.figure)
    full = P.plot_classmap(m.where(m > 0, 1).astype("uint8"), nodata="nodata")  # no nodata pixel: no nodata entry
    assert "nodata" not in [t.get_text() for t in full.get_legend().get_texts()]
    plt.close(full.figure)
    png = P.write_map_quicklook(tif)
    _check_quicklook(png, ids, {c["id"]: tuple(_rgb255(c["color"])) for c in CLASSES})  # the furniture hides no pixel


@pytest.mark.parametrize("shape", [(60, 1), (1, 60)], ids=["one-column", "one-row"])
def test_a_map_one_pixel_wide_is_drawn_at_its_pixel_size(shape):
    """An axis of one pixel takes its size from the grid's transform (it had been drawn 1 m wide,
    with a scale bar of 0.2 m, for 30 m pixels)."""
    h, w = shape
    t = Affine(30.0, 0, 500000.0, 0, -30.0, 4500000.0)
    m = xr.DataArray(np.ones(shape, "uint8"), dims=("y", "x"), name="classes",
                     coords={"y": t.f - 30.0 * (np.arange(h) + 0.5), "x": t.c + 30.0 * (np.arange(w) + 0.5)})  # fmt: skip
    m = m.rio.write_crs("EPSG:32633").rio.write_transform(t)
    ax = P.plot_classmap(m, CLASSES[:1])
    assert ax.get_xlim() == pytest.approx((500000.0, 500000.0 + 30.0 * w))
    assert ax.get_ylim() == pytest.approx((4500000.0 - 30.0 * h, 4500000.0))
    plt.close(ax.figure)


def test_pixel_grid_maps_get_no_scale_bar_or_north_arrow():
    m = _block_map().drop_vars("spatial_ref")
    m.attrs["georeferenced"] = 0
    ax = P.plot_classmap(m, CLASSES)
    assert not P.add_map_furniture(ax, m) and not ax.artists
    plt.close(ax.figure)


@pytest.mark.parametrize(
    ("crs", "x", "y", "metres", "north"),
    [
        ("EPSG:32633", 500000.0, 5800000.0, 1 / 0.9996, 0.0),  # on the central meridian
        ("EPSG:32633", 700000.0, 5800000.0, 1.0, -2.3),  # east of it: true north leans west of grid north
        ("EPSG:32633", 300000.0, 5800000.0, 1.0, 2.3),
        ("EPSG:4326", 13.0, 60.0, 55_800.0, 0.0),  # a degree of longitude at 60° N
    ],
)
def test_ground_geometry_scale_and_meridian_convergence(crs, x, y, metres, north):
    got_metres, got_north = P.ground_geometry(crs, x, y)
    assert got_metres == pytest.approx(metres, rel=3e-3)
    assert got_north == pytest.approx(north, abs=0.1)


def test_class_names_the_font_cannot_draw_give_one_geohsi_warning(recwarn) -> None:
    """Matplotlib had printed one UserWarning per glyph, with its source line, on every train and classify."""
    import geohsi.plot as P
    from geohsi.errors import GeohsiWarning

    report = {"confusion_matrix": [[8, 2], [1, 9]], "class_names": ["湖泊 🛶", "Straße"], "overall_accuracy": 0.85}
    P.figure_png(P.plot_confusion(report))
    said = [str(w.message) for w in recwarn if issubclass(w.category, GeohsiWarning)]
    assert not [w for w in recwarn if "missing from font" in str(w.message)]
    assert len(said) == 1 and "has no glyph for 泊, 湖, 🛶" in said[0] and "ß" not in said[0], said
    P.figure_png(P.plot_confusion(report))  # the same characters are not said again
    assert len([w for w in recwarn if issubclass(w.category, GeohsiWarning)]) == 1


def test_other_warnings_of_a_figure_survive_a_failed_draw(recwarn) -> None:
    import warnings

    from geohsi.plot.common import glyphs_said

    with pytest.raises(RuntimeError), glyphs_said():
        warnings.warn("important", UserWarning, stacklevel=1)
        raise RuntimeError
    assert [str(w.message) for w in recwarn] == ["important"]


def test_a_failed_draw_keeps_its_error_when_warnings_are_errors() -> None:
    import warnings

    from geohsi.plot.common import glyphs_said

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="real"), glyphs_said():
            warnings.warn("x", DeprecationWarning, stacklevel=1)
            raise RuntimeError("real")


def test_a_plain_integer_geotiff_opens_with_a_colour_per_class(tmp_path) -> None:
    """Without a colour table, ids got no colour, and plotting the map failed ('class 1 has no colour')."""
    import rasterio

    from geohsi.plot.maps import open_classmap

    with rasterio.open(tmp_path / "plain.tif", "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=rasterio.Affine(10, 0, 0, 0, -10, 0)) as dst:  # fmt: skip
        dst.write((np.arange(64).reshape(8, 8) % 3).astype("uint8"), 1)
    colours = open_classmap(tmp_path / "plain.tif").attrs["class_colors"]
    assert len(colours) == 2 and all(colours) and len(set(colours)) == 2
