"""geohsi.export — what leaves geohsi: map files (COG, Zarr, probabilities) and STAC Items of bundles and maps.

* :mod:`~geohsi.export.maps` — Cloud-Optimized GeoTIFF / Zarr map writers, class-id conventions;
* :mod:`~geohsi.export.class_maps` — those maps opened back, lazily (legend, grid, pixel area);
* :mod:`~geohsi.export.stac` — bundles as MLM Items, maps as labelled raster Items.

.. versionadded:: 0.1
"""
