"""Real maps (slow): the 18 EnMAP Potsdam tiles mapped as a batch by a tiny dense bundle, a stratified
sample drawn over the batch's catalogue, the reference filled from the real land-cover label tiles,
and the assessment checked against the label raster's true class areas.

The labels cover 5,672 of the 18,432 tile pixels. So that the sample, the mapped areas and the "true"
areas refer to one population, the study area is the labelled part of the tiles: after classification
each map is set to nodata where its label tile is unlabelled (the model still saw the whole tiles).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

PIXEL_HA = 0.09  # EnMAP: 30 m pixels


def _mask_to_labels(map_path: Path, label_path: Path) -> None:
    """Rewrite a COG map with nodata (0) where the label tile is unlabelled, keeping its tags and colours."""
    with rasterio.open(map_path) as src:
        ids, profile, tags, cmap = src.read(1), src.profile, src.tags(), src.colormap(1)
    with rasterio.open(label_path) as lab:
        labelled = lab.read(1) > 0
    profile.update(driver="GTiff")
    with rasterio.open(map_path, "w", **profile) as dst:
        dst.write(np.where(labelled, ids, 0).astype(ids.dtype), 1)
        dst.write_colormap(1, cmap)
        dst.update_tags(**tags)


@pytest.fixture(scope="module")
def batch(tmp_path_factory, data_dir, enmap_scene):
    """A tiny dense bundle trained on the EnMAP mosaic maps the 18 tiles as one batch."""
    import geohsi
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train

    work = tmp_path_factory.mktemp("assess_real")
    cfg = resolve_train_config(adapter="lora", epochs=25, split="per-class:40", model="tiny", device="cpu", head="dense")
    bundle = train(enmap_scene, cfg, out=work / "bundle", progress=False, log=lambda m: None)
    tiles = sorted((data_dir / "enmap_potsdam" / "images").glob("*.tif"))
    res = geohsi.classify_many(tiles, bundle, work / "maps", workers=2, log=lambda m: None)
    res.raise_for_failures()
    for t in tiles:
        _mask_to_labels(work / "maps" / t.name, data_dir / "enmap_potsdam" / "labels" / t.name)
    return work, res.catalog


@pytest.mark.slow
def test_a_sample_over_the_batch_assessed_against_the_real_labels(batch, data_dir, record_property):
    import geopandas as gpd

    from geohsi.assessment import assess, sample

    work, catalog = batch
    drawn = sample(catalog=catalog, n=600, allocation="min:30", seed=31, out=work / "points.gpkg", log=lambda m: None)
    g = gpd.read_file(drawn.path)
    labels_dir = data_dir / "enmap_potsdam" / "labels"
    ref = []
    for name, r, c in zip(g["map"], g["row"], g["col"], strict=True):
        with rasterio.open(labels_dir / name) as lab:
            ref.append(int(lab.read(1)[r, c]))
    g["ref"] = [str(v) for v in ref]
    g.to_file(work / "labelled.gpkg", driver="GPKG", engine="pyogrio")
    rep = assess(catalog=catalog, reference=work / "labelled.gpkg", out=work / "report.json", log=lambda m: None)

    # consistency of the report
    assert min(ref) >= 1 and rep["n_points"] == len(g) == 600
    counts = np.asarray(rep["error_matrix"]["counts"])
    assert counts.sum() == 600 and counts.sum(axis=1).tolist() == [c["n_map"] for c in rep["classes"]]
    assert rep["total_mapped_pixels"] == 5_672 and rep["total_mapped_area_ha"] == pytest.approx(5_672 * PIXEL_HA)
    adjusted = np.asarray([c["area_ha"]["estimate"] for c in rep["classes"]])
    mapped = np.asarray([c["mapped_area_ha"] for c in rep["classes"]])
    assert adjusted.sum() == pytest.approx(mapped.sum()) == pytest.approx(5_672 * PIXEL_HA)
    assert np.nansum(rep["error_matrix"]["area_proportions"]) == pytest.approx(1.0)
    assert json.loads((work / "report.json").read_text())["overall_accuracy"] == rep["overall_accuracy"]

    # error-adjusted areas vs pixel counting, against the label raster's true class areas
    with rasterio.open(data_dir / "enmap_potsdam" / "enmap_landcover_unstyled.tif") as src:
        truth = np.bincount(src.read(1).astype(np.int64).ravel(), minlength=7)[1:] * PIXEL_HA
    ids = [c["id"] for c in rep["classes"]]
    true = truth[np.asarray(ids) - 1]
    err_adjusted, err_pixels = np.abs(adjusted - true).sum(), np.abs(mapped - true).sum()
    covered = sum(c["area_ha"]["ci95"][0] <= t <= c["area_ha"]["ci95"][1] for c, t in zip(rep["classes"], true, strict=True))
    summary = {
        "overall_accuracy": rep["overall_accuracy"]["estimate"],
        "true_ha": true.round(2).tolist(), "pixel_count_ha": mapped.round(2).tolist(), "adjusted_ha": adjusted.round(2).tolist(),
        "l1_error_pixel_count_ha": round(float(err_pixels), 2), "l1_error_adjusted_ha": round(float(err_adjusted), 2),
        "true_area_inside_95ci": f"{covered}/{len(ids)}",
    }  # fmt: skip
    record_property("real_maps", summary)
    print(f"EnMAP batch assessment: {summary}")
    note = (
        "error-adjusted areas are no closer to the labels' areas than pixel counts: with a map this accurate "
        f"(OA {summary['overall_accuracy']:.2f}) pixel counting has little bias left and the sample's variance dominates"
    )
    assert err_adjusted < err_pixels or summary["overall_accuracy"] > 0.9, note
