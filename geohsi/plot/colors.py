"""Colour distances for legends: sRGB → CIELAB and CIEDE2000 ΔE₀₀ (how the default palette was chosen and is checked).

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from geohsi.plot.common import _hex_rgba
from geohsi.scene.legend import rgb_to_lab


def srgb_to_lab(colors: Sequence[str] | np.ndarray) -> np.ndarray:
    """CIELAB (D65) coordinates of sRGB colours (:func:`geohsi.scene.legend.rgb_to_lab`).

    Args:
        colors: colour strings (``#rrggbb`` or any name matplotlib knows), or ``[N, 3]`` sRGB values in [0, 1].

    Returns:
        ``[N, 3]`` float64: L* (0–100), a*, b*.
    """
    rgb = np.array([_hex_rgba(c)[:3] for c in colors]) if len(colors) and isinstance(colors[0], str) else np.asarray(colors)
    return rgb_to_lab(rgb)


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference ΔE₀₀ (Sharma, Wu & Dalal 2005; kL = kC = kH = 1), broadcast.

    About 1 is a just-noticeable difference side by side; map classes need tens to be told apart
    from a legend.

    Args:
        lab1: ``[..., 3]`` CIELAB colours.
        lab2: ``[..., 3]`` CIELAB colours (broadcast against ``lab1``).

    Returns:
        ``[...]`` ΔE₀₀.
    """
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=float), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=float), -1, 0)
    c_mean7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c_mean7 / (c_mean7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    chroma0 = (c1p * c2p) == 0
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma0, 0.0, dh)
    d_l, d_c = L2 - L1, c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_mean, c_mean = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) > 180, np.where(h_sum < 360, h_sum + 360, h_sum - 360), h_sum) / 2
    h_mean = np.where(chroma0, h_sum, h_mean)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    c_mean7p = c_mean**7
    r_t = -2 * np.sqrt(c_mean7p / (c_mean7p + 25.0**7)) * np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2))))
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))


def palette_distances(colors: Sequence[str]) -> np.ndarray:
    """``[N, N]`` pairwise CIEDE2000 differences of ``#rrggbb`` colours (0 on the diagonal)."""
    lab = srgb_to_lab(colors)
    return delta_e2000(lab[:, None, :], lab[None, :, :])


def closest_colors(colors: Sequence[str]) -> tuple[float, int, int]:
    """The least distinguishable pair of a palette: ``(ΔE₀₀, i, j)`` with ``i < j`` (``inf`` below two colours)."""
    if len(colors) < 2:
        return float("inf"), 0, 0
    d = palette_distances(colors)
    d[np.tril_indices(len(colors))] = np.inf
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return float(d[i, j]), int(i), int(j)
