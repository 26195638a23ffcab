"""The geohsi scene: a hyperspectral cube as an xarray Dataset stored in Zarr v3.

Schema (see ``docs/scene-format.md``):

* data variable ``reflectance`` or ``radiance``, dims ``(band, y, x)``, dtype as read (integer
  DN/reflectance keep their dtype; CF ``scale_factor``/``add_offset`` attrs record the physical
  scale); nodata as CF ``_FillValue`` (read back by ``rio.nodata``);
* coords ``band`` (1-based index), ``wavelength`` and ``fwhm`` (nm, NaN where unknown),
  ``good_band`` (bool; ENVI ``bbl``, EnMAP bad bands), ``y``/``x`` pixel centres in map units,
  ``spatial_ref`` (CRS + GeoTransform, rioxarray convention);
* optional ``labels(y, x)`` (uint8/uint16, 0 = unlabelled) with attrs ``class_ids``, ``class_names``,
  ``class_colors``;
* dataset attrs: ``sensor``, ``source_files``, ``units``, ``acquisition_time``, ``georeferenced``.

A scene without CRS is an explicit pixel grid: ``georeferenced = 0``, ``x = col + 0.5``,
``y = row + 0.5`` and no CRS in ``spatial_ref``; every later stage checks :func:`scene_crs`.

Modules: :mod:`~geohsi.scene.schema` (building a scene, labels, checks, identity),
:mod:`~geohsi.scene.georef` (CRS and transform, no-GDAL fallback), :mod:`~geohsi.scene.legend`
(class ids, names, colours), :mod:`~geohsi.scene.masks` (valid pixels, pixel areas) and
:mod:`~geohsi.scene.store` (Zarr stores: write, open, damaged chunks). Every name is importable
from ``geohsi.scene`` itself.

.. versionadded:: 0.1
"""

from __future__ import annotations

from geohsi.scene.georef import grid_overlaps, pixel_centres, scene_crs, scene_transform, write_georef
from geohsi.scene.legend import (
    DEFAULT_COLORS,
    ClassInfo,
    Legend,
    check_names_cover,
    colormap_hex,
    default_color,
    default_colors,
    filled_colors,
    hex_colour,
    parse_colour,
    scene_legend,
)
from geohsi.scene.masks import (
    empty_bands,
    grid_pixel_areas,
    labels_and_valid,
    nodata_value,
    pixel_areas,
    valid_mask,
    validity_bands,
)
from geohsi.scene.schema import (
    DATA_VARS,
    DEFAULT_CHUNK,
    SCENE_FORMAT_VERSION,
    add_labels,
    attrs_json,
    chosen_nodata,
    cube,
    data_var_name,
    labels_digest,
    make_scene,
    rechunk_scene,
    scene_identity,
    sparse_labels_digest,
    validate_scene,
)
from geohsi.scene.store import check_bands, consolidated_quietly, flag_empty_bands, guarded_zarr_array, open_scene, write_scene

__all__ = [
    "ClassInfo",
    "DATA_VARS",
    "DEFAULT_CHUNK",
    "DEFAULT_COLORS",
    "Legend",
    "SCENE_FORMAT_VERSION",
    "add_labels",
    "attrs_json",
    "chosen_nodata",
    "check_bands",
    "consolidated_quietly",
    "cube",
    "data_var_name",
    "empty_bands",
    "check_names_cover",
    "colormap_hex",
    "default_color",
    "default_colors",
    "filled_colors",
    "hex_colour",
    "flag_empty_bands",
    "grid_overlaps",
    "grid_pixel_areas",
    "guarded_zarr_array",
    "labels_and_valid",
    "labels_digest",
    "make_scene",
    "nodata_value",
    "open_scene",
    "parse_colour",
    "pixel_areas",
    "pixel_centres",
    "rechunk_scene",
    "scene_crs",
    "scene_identity",
    "scene_legend",
    "scene_transform",
    "sparse_labels_digest",
    "valid_mask",
    "validate_scene",
    "validity_bands",
    "write_georef",
    "write_scene",
]
