"""Sensor-agnostic ``s2`` transforms: fitted on real EnMAP, they map the same surface seen through
another sensor's real band table (AVIRIS-NG's, simulated), and refuse what they cannot map — a
radiance scene with a reflectance model, a VNIR-only drone cube — each with one line. PCA transforms
stay sensor-bound and say how to map across sensors."""

from __future__ import annotations

import numpy as np
import pytest

from geohsi.errors import BandMismatchError
from geohsi.ingestion import open_source
from geohsi.spectral.sentinel2 import S2Resampler
from geohsi.spectral.simulate import (
    RANDOM_FWHM_RATIO,
    RANDOM_SPACING_NM,
    random_band_table,
    random_sensor_resamplers,
    simulate_sensor,
)
from geohsi.spectral.transform import SpectralTransform


@pytest.fixture(scope="module")
def enmap_tile(data_dir):
    return open_source(data_dir / "enmap_potsdam" / "images" / "enmap_potsdam_tile_128_0.tif")


@pytest.fixture(scope="module")
def aviris_ng(data_dir):
    return open_source(data_dir / "aviris_ng" / "ang20160910t185702_2rdn_img.hdr")


@pytest.fixture(scope="module")
def enmap_as_aviris_ng(enmap_tile, aviris_ng):
    return simulate_sensor(
        enmap_tile,
        aviris_ng["wavelength"].values,
        aviris_ng["fwhm"].values,
        good_band=aviris_ng["good_band"].values,
        sensor="AVIRIS-NG (simulated)",
    )


def test_simulated_scene_keeps_geometry_quantity_and_validity(enmap_tile, enmap_as_aviris_ng, aviris_ng) -> None:
    sim = enmap_as_aviris_ng
    assert sim.sizes["band"] == aviris_ng.sizes["band"] == 425 and enmap_tile.sizes["band"] == 224
    assert (sim.sizes["y"], sim.sizes["x"]) == (enmap_tile.sizes["y"], enmap_tile.sizes["x"])
    assert "reflectance" in sim.data_vars and sim.rio.crs == enmap_tile.rio.crs
    good = sim["good_band"].values
    wl = sim["wavelength"].values
    assert not good[wl < 400].any() and good[(wl > 500) & (wl < 900)].all()  # EnMAP starts at 418 nm
    x = sim["reflectance"].values[:, :, :]
    assert np.isfinite(x[good]).all() and 0 < np.nanmedian(x[good]) < 1  # physical reflectance, scale applied


def test_s2_transform_maps_another_sensor_to_the_same_model_input(enmap_tile, enmap_as_aviris_ng) -> None:
    t = SpectralTransform.fit(enmap_tile, "s2")
    real = t.apply(enmap_tile).values
    sim = t.apply(enmap_as_aviris_ng).values
    assert real.shape == sim.shape == (12, enmap_tile.sizes["y"], enmap_tile.sizes["x"])
    ok = np.isfinite(real) & np.isfinite(sim)
    assert ok.mean() > 0.95
    # Same surface through another band table: standardised channels agree to well under a tenth of a σ.
    assert float(np.median(np.abs(real - sim)[ok])) < 0.02, float(np.median(np.abs(real - sim)[ok]))
    corr = [np.corrcoef(real[c][ok[c]], sim[c][ok[c]])[0, 1] for c in range(12)]
    assert min(corr) > 0.999, corr


def test_refusals_name_the_quantity_or_the_missing_bands(enmap_tile, aviris_ng, data_dir) -> None:
    t = SpectralTransform.fit(enmap_tile, "s2")
    assert t.input_quantity == "reflectance"
    with pytest.raises(
        BandMismatchError, match="holds radiance but the model was trained on reflectance.*convert it to reflectance first"
    ):
        t.check_scene(aviris_ng)
    drone = open_source(data_dir / "pika_drone" / "pika_reflectance.bip.hdr")
    with pytest.raises(
        BandMismatchError,
        match=r"Sentinel-2 bands B09 \(935–955 nm\), B11 \(1568–1659 nm\), B12 \(2115–2290 nm\) are not covered by the good bands of .*pika",
    ):
        t.check_scene(drone)
    pca = SpectralTransform.fit(enmap_tile, "pca")
    sim = simulate_sensor(enmap_tile, aviris_ng["wavelength"].values, aviris_ng["fwhm"].values)
    with pytest.raises(BandMismatchError, match="has 425 bands but the spectral transform was fitted on 224.*--spectral s2"):
        pca.check_scene(sim)
    with pytest.raises(BandMismatchError, match="holds radiance"):  # the quantity check applies to PCA too
        pca.check_scene(aviris_ng)


def test_records_round_trip_and_old_records_keep_their_behaviour(enmap_tile, aviris_ng) -> None:
    t = SpectralTransform.fit(enmap_tile, "s2")
    d = t.to_dict()
    assert d["input_quantity"] == "reflectance" and SpectralTransform.from_dict(d) == t
    old = {k: v for k, v in d.items() if k not in ("input_quantity", "input_units", "input_scaled")}
    legacy = SpectralTransform.from_dict(old)
    assert legacy.input_quantity is None
    legacy.check_scene(aviris_ng)  # written before quantities were recorded: no quantity check, as before
    assert "Sentinel-2" in t.describe_inputs() and "reflectance" in t.describe_inputs()


def test_a_scene_without_a_scale_factor_gets_a_warning_naming_the_assumption(enmap_tile) -> None:
    """Reflectance × 10000 without its scale factor: the values are 10⁴× the recorded range, and the
    warning says so; already-physical values without a scale factor get the assumption named."""
    t = SpectralTransform.fit(enmap_tile, "s2")
    lo, hi = t.input_range
    assert lo >= 0 and 0.2 < hi < 1.0  # reflectance 0–1 after the tile's scale factor
    unscaled = enmap_tile.copy()
    unscaled["reflectance"] = unscaled["reflectance"].copy()
    unscaled["reflectance"].attrs.pop("scale_factor")
    said: list[str] = []
    t.check_scene(unscaled, warn=said.append)
    assert len(said) == 1 and "scale_factor is probably missing" in said[0] and "1e-4 for reflectance × 10000" in said[0]
    assert f"trained on {lo:.4g}–{hi:.4g}" in said[0]
    physical = unscaled.copy()
    physical["reflectance"] = (unscaled["reflectance"] * 1e-4).assign_attrs(unscaled["reflectance"].attrs)
    said.clear()
    t.check_scene(physical, warn=said.append)
    assert len(said) == 1 and "declares no scale_factor" in said[0] and "reflectance × 10000" in said[0]
    said.clear()
    t.check_scene(enmap_tile, warn=said.append)
    assert said == []
    legacy = SpectralTransform.from_dict({k: v for k, v in t.to_dict().items() if k != "input_range"})
    assert legacy.input_range is None
    said.clear()
    legacy.check_scene(physical, warn=said.append)  # no range recorded: only the scale-factor assumption
    assert len(said) == 1 and "declares no scale_factor" in said[0]


def test_the_simulated_scene_declares_physical_units(enmap_tile, enmap_as_aviris_ng) -> None:
    said: list[str] = []
    SpectralTransform.fit(enmap_tile, "s2").check_scene(enmap_as_aviris_ng, warn=said.append)
    assert said == [] and enmap_as_aviris_ng["reflectance"].attrs["scale_factor"] == 1.0


def test_random_band_tables_span_todays_spectrometers() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        c, f = random_band_table(rng, 400.0, 2500.0)
        d = np.diff(c)
        assert np.allclose(d, d[0]) and RANDOM_SPACING_NM[0] <= d[0] <= RANDOM_SPACING_NM[1]
        assert 400 <= c[0] < 400 + d[0] and c[-1] < 2500
        ratio = f / d[0]
        assert (ratio >= RANDOM_FWHM_RATIO[0]).all() and (ratio <= RANDOM_FWHM_RATIO[1]).all()


def test_random_sensor_views_are_small_true_changes_of_the_model_input(enmap_tile, data_dir) -> None:
    views = random_sensor_resamplers(enmap_tile, 4, seed=1)
    own = S2Resampler.from_scene(enmap_tile)
    good = np.zeros(enmap_tile.sizes["band"], bool)
    good[own.band_indices] = True
    assert len(views) == 4
    for v in views:
        assert v.weights.shape == own.weights.shape == (12, 224)
        assert np.allclose(v.weights.sum(1), 1.0) and (v.weights[:, ~good] == 0).all() and (v.weights >= 0).all()
        assert np.array_equal(v.band_indices, own.band_indices)
    again = random_sensor_resamplers(enmap_tile, 4, seed=1)
    assert all(np.array_equal(a.weights, b.weights) for a, b in zip(views, again, strict=True))
    assert not np.array_equal(random_sensor_resamplers(enmap_tile, 1, seed=2)[0].weights, views[0].weights)
    t = SpectralTransform.fit(enmap_tile, "s2")
    real = t.apply(enmap_tile).values
    for v in views:
        seen = t.apply(enmap_tile, projection=v).values
        ok = np.isfinite(real) & np.isfinite(seen)
        diff = np.abs(seen - real)[ok]
        # Another sensor's sampling moves the standardised channels a little, never a lot.
        assert 1e-4 < float(np.median(diff)) < 0.05 and float(np.quantile(diff, 0.99)) < 0.5, (
            np.median(diff),
            np.quantile(diff, 0.99),
        )
    drone = open_source(data_dir / "pika_drone" / "pika_reflectance.bip.hdr")
    with pytest.raises(BandMismatchError, match="not covered"):
        random_sensor_resamplers(drone, 2)


def test_an_s2_bundle_maps_another_sensors_unitless_netcdf_as_well_as_its_own_scene(ip_scene, data_dir, tmp_path) -> None:
    """Indian Pines through AVIRIS-NG's band table (5.5 nm widths), written as a NetCDF with no ``units``
    attributes, as scripts write it: the widths stay 5.5 nm, and the Indian Pines s2 bundle scores the same
    test pixels within 2 pp of the real scene (before the one unit rule they were read as 5.5 µm)."""
    import warnings

    import xarray as xr

    from geohsi.errors import GeohsiWarning
    from geohsi.evaluation import evaluate
    from geohsi.ingestion import ingest
    from geohsi.scene import open_scene
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    ip = open_scene(ip_scene)
    av = open_source(data_dir / "aviris_ng" / "ang20160910t185702_2rdn_img.hdr")
    sim = simulate_sensor(ip, av["wavelength"].values, np.full(av.sizes["band"], 5.5), good_band=av["good_band"].values)
    good = sim["good_band"].values
    nc = xr.Dataset(
        {"reflectance": (("wavelength", "y", "x"), sim["reflectance"].values[good].astype("float32"))},
        coords={"wavelength": sim["wavelength"].values[good], "fwhm": ("wavelength", sim["fwhm"].values[good])},
    )
    nc.to_netcdf(tmp_path / "ip_as_aviris_ng.nc", engine="h5netcdf")
    store = ingest(
        tmp_path / "ip_as_aviris_ng.nc",
        tmp_path / "sim.zarr",
        crs="none",
        labels=data_dir / "indian_pines" / "Indian_pines_gt.mat",
    )
    np.testing.assert_allclose(open_scene(store)["fwhm"].values, 5.5)
    cfg = resolve_train_config(
        adapter="krona+", spectral="s2", epochs=3, split="per-class:10", model="tiny", head="patch", batch_size=32
    )
    bundle = train(ip_scene, cfg, out=tmp_path / "b", progress=False, log=lambda m: None)
    real = evaluate(bundle, ip_scene)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        other = evaluate(bundle, store)
    assert not [w for w in caught if issubclass(w.category, GeohsiWarning)], [str(w.message) for w in caught]
    assert other["n_test"] == real["n_test"]  # the same test pixels (same labels, so the bundle's split)
    assert abs(other["overall_accuracy"] - real["overall_accuracy"]) <= 0.02, (
        real["overall_accuracy"],
        other["overall_accuracy"],
    )
