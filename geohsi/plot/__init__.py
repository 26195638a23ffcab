"""Quicklook figures (matplotlib; the Agg backend unless one is already chosen).

* :func:`plot_scene` — true colour chosen by wavelength, or a PCA false colour, percentile-stretched,
  nodata transparent, on the scene's map coordinates;
* :func:`plot_classmap` — a class map in the bundle's colours (the same table the COG carries) with
  a legend of class names; draws over :func:`plot_scene` on the same axes;
* :func:`plot_spectra` — mean ± std spectrum per class against wavelength, bad bands masked;
* :func:`plot_confusion`, :func:`plot_training` — the figures written into bundles and metrics;
* :func:`open_classmap` / :func:`write_map_quicklook` — read a written map (COG or Zarr) with its
  legend, and the ``map.png`` that ``geohsi classify`` writes beside it.

Functions that draw on one image take ``ax=None`` and return the Axes (``ax.figure`` is the
figure); the whole-figure plots return the Figure. :func:`figure_png` takes either.

Modules: :mod:`~geohsi.plot.rgb` (scene images), :mod:`~geohsi.plot.classmap` (class maps and
their furniture), :mod:`~geohsi.plot.maps` (written maps read back, quicklooks),
:mod:`~geohsi.plot.figures` (spectra, confusion, training history), :mod:`~geohsi.plot.colors`
(colour distances) and :mod:`~geohsi.plot.common` (what they share). Every name is importable from
``geohsi.plot`` itself.

.. versionadded:: 0.1
"""

from __future__ import annotations

from geohsi.plot.classmap import add_map_furniture, class_lookup, ground_geometry, plot_classmap
from geohsi.plot.colors import closest_colors, delta_e2000, palette_distances, srgb_to_lab
from geohsi.plot.common import MAX_SIZE, figure_png, have_matplotlib
from geohsi.plot.figures import (
    class_spectra,
    plot_confusion,
    plot_pretraining_loss,
    plot_reconstructions,
    plot_spectra,
    plot_training,
)
from geohsi.plot.maps import map_quicklook_path, open_classmap, quicklook_title, write_map_quicklook
from geohsi.plot.rgb import RGB_NM, plot_scene, rgb_band_indices, scene_rgb

__all__ = [
    "MAX_SIZE",
    "RGB_NM",
    "add_map_furniture",
    "class_lookup",
    "class_spectra",
    "closest_colors",
    "delta_e2000",
    "figure_png",
    "ground_geometry",
    "have_matplotlib",
    "map_quicklook_path",
    "open_classmap",
    "palette_distances",
    "plot_classmap",
    "plot_confusion",
    "plot_pretraining_loss",
    "plot_reconstructions",
    "plot_scene",
    "plot_spectra",
    "plot_training",
    "quicklook_title",
    "rgb_band_indices",
    "scene_rgb",
    "srgb_to_lab",
    "write_map_quicklook",
]
