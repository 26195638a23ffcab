"""What every figure shares: the matplotlib import (Agg unless chosen), axes, decimation, map extents, PNG bytes.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Longest image side drawn by default (pixels); larger scenes are decimated before computing.
MAX_SIZE = 1024


def have_matplotlib() -> bool:
    """Whether figures can be drawn here (matplotlib is a dependency, but a minimal install such as the
    offline GPU check's may lack it: training and classify then skip their figures and say so)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import sys

    import matplotlib

    # Scripts and the CLI render off-screen (Agg); a notebook (pyplot already imported, e.g. by
    # %matplotlib inline) or an explicit MPLBACKEND keeps its backend.
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_axes(ax: Any, figsize: tuple[float, float]):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize)
    return ax


def _hex_rgba(color: str) -> tuple[float, float, float, float]:
    from matplotlib.colors import to_rgba

    return to_rgba(color)


def _step(n: int, max_size: int | None) -> int:
    return 1 if not max_size or n <= max_size else math.ceil(n / max_size)


def _decimate(obj: Any, max_size: int | None):
    """Strided selection so the longest side is at most ``max_size`` (lazy; nearest sampling)."""
    s = max(_step(int(obj.sizes["y"]), max_size), _step(int(obj.sizes["x"]), max_size))
    return obj if s == 1 else obj.isel(y=slice(None, None, s), x=slice(None, None, s))


def _extent(arr: Any) -> tuple[float, float, float, float]:
    """``(left, right, bottom, top)`` of the pixel edges, from centre coordinates ``y``/``x`` (an axis
    of one pixel: from the grid's recorded transform, else one unit)."""
    x = np.asarray(arr["x"].values, dtype=float)
    y = np.asarray(arr["y"].values, dtype=float)
    dx = x[1] - x[0] if x.size > 1 else _recorded_resolution(arr, 0, 1.0)
    dy = y[1] - y[0] if y.size > 1 else _recorded_resolution(arr, 1, -1.0)
    return x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2


def _recorded_resolution(arr: Any, axis: int, default: float) -> float:
    """The pixel size along ``axis`` (0: x, 1: y) of the transform recorded with the grid (its spatial_ref)."""
    from rioxarray.exceptions import RioXarrayError

    try:
        return float(arr.rio.resolution()[axis])
    except (RioXarrayError, AttributeError, ValueError):
        return default


def _crs_label(obj: Any) -> str | None:
    if int(obj.attrs.get("georeferenced", 1)) == 0:
        return None
    try:
        crs = obj.rio.crs
    except Exception:  # no spatial_ref: a plain array
        return None
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:40]


def _label_axes(ax: Any, crs: str | None) -> None:
    if crs:
        ax.set_xlabel(f"x (m, {crs})" if "EPSG" in crs else "x")
        ax.set_ylabel("y (m)")
    else:
        ax.set_xlabel("column (pixels)")
        ax.set_ylabel("row (pixels)")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)


#: the characters a missing-glyph warning has named in this process.
_GLYPHS_SAID: set[str] = set()


@contextlib.contextmanager
def glyphs_said() -> Iterator[None]:
    """Matplotlib's one warning per missing glyph (``Glyph 27700 (…) missing from font(s) DejaVu Sans``, with its
    source line) as one geohsi warning naming the characters: class names in CJK or with emoji are stored as
    written, but the figures draw those characters as boxes."""
    import warnings

    caught: list[Any] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    except BaseException:  # the others are issued again even when drawing fails, never in place of its error
        with contextlib.suppress(Warning):
            _say_glyphs(caught)
        raise
    _say_glyphs(caught)  # outside the recording


def _say_glyphs(caught: list[Any]) -> None:
    import re
    import warnings

    from geohsi.errors import GeohsiWarning

    missing: dict[str, str] = {}
    for w in caught:
        m = re.match(r"Glyph (\d+) .*missing from font\(s\) (.+?)\.?$", str(w.message))
        if m:
            missing.setdefault(chr(int(m.group(1))), m.group(2))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    for c in _GLYPHS_SAID.intersection(missing):  # each character once per process (a figure draws twice: layout, save)
        del missing[c]
    _GLYPHS_SAID.update(missing)
    if missing:
        warnings.warn(
            f"the figures' font ({next(iter(missing.values()))}) has no glyph for {', '.join(sorted(missing))}: those "
            "characters of class names show as boxes in the PNG figures (the names themselves are kept as written); "
            "install a font that has them (e.g. Noto Sans CJK) and name it in matplotlib's font.family",
            GeohsiWarning,
            stacklevel=4,
        )


def tight(fig: Any) -> None:
    """``fig.tight_layout()``, its missing-glyph warnings said once (:func:`glyphs_said`)."""
    with glyphs_said():
        fig.tight_layout()


def figure_png(fig, *, dpi: int = 110, **savefig: Any) -> bytes:
    """PNG bytes of a figure (or of an Axes' figure), and close it.

    Args:
        fig: a Figure or an Axes.
        dpi: resolution.
        **savefig: more :meth:`matplotlib.figure.Figure.savefig` options (e.g. ``bbox_inches="tight"``).

    Returns:
        The PNG file content.
    """
    plt = _pyplot()
    fig = fig.get_figure() if hasattr(fig, "get_figure") and not hasattr(fig, "savefig") else fig
    buf = io.BytesIO()
    with glyphs_said():
        fig.savefig(buf, format="png", dpi=dpi, **savefig)
    plt.close(fig)
    return buf.getvalue()
