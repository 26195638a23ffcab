"""The input-distribution guard: a scene whose model channels sit far from the training statistics gets
one warning naming the channels and the likely causes; real scenes mapped with transforms fitted on
them, the 18 EnMAP tiles under the mosaic's transform and the cross-sensor pairs stay silent."""

from __future__ import annotations

import numpy as np
import pytest

from geohsi.datasets.jasper_ridge import jasper_ridge_scene
from geohsi.ingestion import open_source
from geohsi.scene import make_scene, nodata_value, open_scene
from geohsi.spectral.guard import ChannelStats, distribution_warning, window_sample
from geohsi.spectral.simulate import simulate_sensor
from geohsi.spectral.transform import SpectralTransform


def _said(t: SpectralTransform, ds) -> list[str]:
    said: list[str] = []
    t.check_scene(ds, warn=said.append)
    return said


@pytest.fixture(scope="module")
def scenes(ip_scene, enmap_scene, data_dir) -> dict:
    return {
        "ip": open_scene(ip_scene),
        "enmap": open_scene(enmap_scene),
        "aviris_ng": open_source(data_dir / "aviris_ng" / "ang20160910t185702_2rdn_img.hdr"),
        "jasper_ridge": jasper_ridge_scene(data_dir / "jasper_ridge" / "jasperRidge2_R198.mat"),
    }


@pytest.fixture(scope="module")
def ip_s2(scenes) -> SpectralTransform:
    return SpectralTransform.fit(scenes["ip"], "s2")


@pytest.fixture(scope="module")
def ip_as_enmap(scenes):
    en = scenes["enmap"]
    return simulate_sensor(scenes["ip"], en["wavelength"].values, en["fwhm"].values, good_band=en["good_band"].values)


def test_real_scenes_are_silent_under_their_own_transforms(scenes) -> None:
    for name, ds in scenes.items():
        methods = ("pca",) if name == "jasper_ridge" else ("pca", "s2")  # Jasper Ridge ships without wavelengths
        for method in methods:
            t = SpectralTransform.fit(ds, method)
            assert t.channel_stats is not None and t.channel_stats.mean.shape == (t.n_channels,)
            assert _said(t, ds) == [], (name, method)


def test_every_enmap_tile_is_silent_under_the_mosaics_transform(scenes, data_dir) -> None:
    tiles = sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))
    assert len(tiles) == 18
    for method in ("s2", "pca"):
        t = SpectralTransform.fit(scenes["enmap"], method)
        loud = {p.name: _said(t, open_source(p)) for p in tiles}
        assert not any(loud.values()), {k: v for k, v in loud.items() if v}


def test_cross_sensor_pairs_are_silent(scenes, ip_s2, ip_as_enmap) -> None:
    en, av = scenes["enmap"], scenes["aviris_ng"]
    en_as_av = simulate_sensor(en, av["wavelength"].values, av["fwhm"].values, good_band=av["good_band"].values)
    assert _said(SpectralTransform.fit(en, "s2"), en_as_av) == []
    assert _said(SpectralTransform.fit(en_as_av, "s2"), en) == []
    assert _said(ip_s2, ip_as_enmap) == []


def test_widths_1000x_too_wide_are_caught(ip_s2, ip_as_enmap) -> None:
    """5.5 nm widths read as 5.5 µm: every Sentinel-2 channel becomes an average of the whole spectrum."""
    wide = ip_as_enmap.assign_coords(fwhm=ip_as_enmap["fwhm"] * 1000.0)
    said = _said(ip_s2, wide)
    assert len(said) == 1 and "\n" not in said[0], said
    assert "does not look like the model's training data in " in said[0] and "of 12 input channels (B" in said[0]
    assert "band widths or wavelengths in the wrong unit" in said[0] and "a wrong scale factor" in said[0]
    assert int(said[0].split(" input channels")[0].split()[-3]) >= 6  # most channels, not one


def test_old_records_skip_the_check_and_new_ones_round_trip(ip_s2, ip_as_enmap) -> None:
    d = ip_s2.to_dict()
    assert set(d["channel_stats"]) == {"mean", "std"} and SpectralTransform.from_dict(d) == ip_s2
    legacy = SpectralTransform.from_dict({k: v for k, v in d.items() if k != "channel_stats"})
    assert legacy.channel_stats is None
    assert _said(legacy, ip_as_enmap.assign_coords(fwhm=ip_as_enmap["fwhm"] * 1000.0)) == []


def test_the_rule_flags_mean_shift_and_spread() -> None:
    trained = ChannelStats(np.zeros(3), np.ones(3))
    names = ["B01", "B02", "B03"]
    assert distribution_warning(ChannelStats(np.array([2.9, 0, 0]), np.array([1, 0.3, 3.9])), trained, names, "s", "x") is None
    msg = distribution_warning(ChannelStats(np.array([3.2, 0, 0]), np.array([1, 0.2, 4.5])), trained, names, "s", "x")
    assert "in 3 of 3 input channels" in msg and "B01 mean 3.2 SD off" in msg and "spread 0.2×" in msg and "spread 4.5×" in msg


def test_the_sample_spreads_over_the_scene_in_few_chunks(scenes) -> None:
    ds = scenes["ip"].chunk({"y": 64, "x": 64})
    sub = window_sample(ds)
    rows = np.array([int(np.flatnonzero(ds["y"].values == v)[0]) for v in sub["y"].values])
    assert sub.sizes["y"] == sub.sizes["x"] == 96 and rows.min() < 30 and rows.max() > 115
    starts = np.r_[0, np.flatnonzero(np.diff(rows) > 1) + 1]
    assert all(rows[s] // 64 == rows[s + 31] // 64 for s in starts)  # each window inside one chunk


def test_a_lake_at_the_scene_centre_is_not_taken_for_a_missing_scale_factor(scenes) -> None:
    """The value range of a scene being mapped comes from the nine windows spread over it, not from its
    centre: the EnMAP mosaic tiled 3 × 3 (576 × 480 px, 128-px chunks as ingest writes them) with its
    central 128² pixels 200× darker (deep water) passes the range check; the scene all that dark is flagged."""
    en = scenes["enmap"]
    t = SpectralTransform.fit(en, "s2")
    raw = np.tile(np.asarray(en["reflectance"].values), (1, 3, 3))
    nodata = nodata_value(en)
    dark = np.where(raw == nodata, raw, raw // 200)  # nodata pixels stay nodata
    h, w = raw.shape[1:]
    y0, x0 = (h - 128) // 2, (w - 128) // 2

    def scene(cube: np.ndarray):
        return make_scene(
            cube, wavelength=en["wavelength"].values, fwhm=en["fwhm"].values, good_band=en["good_band"].values,
            nodata=nodata, scale_factor=en["reflectance"].attrs["scale_factor"],
        ).chunk({"band": -1, "y": 128, "x": 128})  # fmt: skip

    lake = raw.copy()
    lake[:, y0 : y0 + 128, x0 : x0 + 128] = dark[:, y0 : y0 + 128, x0 : x0 + 128]
    assert not any("scale_factor is probably" in m for m in _said(t, scene(lake)))
    assert any("scale_factor is probably wrong" in m for m in _said(t, scene(dark)))
