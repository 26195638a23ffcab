"""geohsi.spectral — from a hyperspectral scene to the model's 12 normalised channels and windows.

* :mod:`~geohsi.spectral.pca` — PCA fitted on valid pixels (exact or randomized), replayable;
* :mod:`~geohsi.spectral.sentinel2` — resampling onto the 12 Sentinel-2 bands SpectralGPT saw;
* :mod:`~geohsi.spectral.normalize` — physical values with NaN at invalid pixels; per-channel scaling;
* :mod:`~geohsi.spectral.transform` — :class:`SpectralTransform`, the record a model bundle stores;
* :mod:`~geohsi.spectral.pixelmap` — :class:`PixelMap`, a transform as torch ops on raw bands (GPU workers);
* :mod:`~geohsi.spectral.windows` — per-pixel windows with halos, resized to the model input.

.. versionadded:: 0.1
"""

from geohsi.spectral.normalize import Normalizer, physical_cube
from geohsi.spectral.pca import PCAParams, fit_pca
from geohsi.spectral.pixelmap import PixelMap
from geohsi.spectral.sentinel2 import S2_BANDS, S2Resampler, resampling_matrix
from geohsi.spectral.transform import SpectralTransform
from geohsi.spectral.windows import extract_windows, overlap_reflect, windows_at, windows_for_block

__all__ = [
    "Normalizer",
    "PCAParams",
    "PixelMap",
    "S2Resampler",
    "S2_BANDS",
    "SpectralTransform",
    "extract_windows",
    "fit_pca",
    "overlap_reflect",
    "physical_cube",
    "resampling_matrix",
    "windows_at",
    "windows_for_block",
]
