"""The class legend of a scene or map: ids, names and colours (:class:`Legend`), and the default palette.

.. versionadded:: 0.1
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from geohsi.errors import DataError, UsageError

#: The class colours used when a dataset gives none: 20 colours as far apart as they can be (minimum
#: pairwise CIEDE2000 ΔE₀₀ 24.4, also from the white nodata background and from black; tab20, used
#: before, had 12.1), lightness L* 30–92, ordered so that the first k of them are far apart too
#: (ΔE₀₀ ≥ 31 for 5 classes, ≥ 25.6 for 10). Chosen by a max–min search over an 18-level sRGB grid;
#: tests/test_palette.py checks the distances with geohsi.plot.palette_distances.
DEFAULT_COLORS: tuple[str, ...] = (
    "#ff004b",
    "#1e87f0",
    "#968700",
    "#0000ff",
    "#005a5a",
    "#00c32d",
    "#ff00e1",
    "#96005a",
    "#5a4b2d",
    "#c3b4ff",
    "#2dd2ff",
    "#ffc378",
    "#5affe1",
    "#006900",
    "#e1f000",
    "#789687",
    "#5a5a78",
    "#c3691e",
    "#e1a5a5",
    "#960f00",
)


def default_color(class_id: int) -> str:
    """The colour of a class id that comes without one: :data:`DEFAULT_COLORS` for ids 1–20, then the
    colours :func:`_more_colours` picks as far as it can from every earlier one (the palette had been
    cycled, so class 21 was drawn exactly like class 1)."""
    k = int(class_id) - 1
    if 0 <= k < len(DEFAULT_COLORS):
        return DEFAULT_COLORS[k]
    more = _more_colours()
    return more[(k - len(DEFAULT_COLORS)) % len(more)]


def check_names_cover(ids: set[int], class_names: Sequence[str] | None) -> None:
    """Refuse ``--class-names`` that do not name every class id of the labels (the rest had become ``class_<id>``).

    Raises:
        UsageError: fewer names than the largest id.
    """
    top = max(ids, default=0)
    if class_names and len(class_names) < top:
        raise UsageError(
            f"--class-names gives {len(class_names)} names but the labels hold classes up to {top}; give one name per class 1..{top}"
        )


def filled_colors(given: Sequence[str | None], ids: Sequence[int] | None = None) -> list[str]:
    """The colours of classes ``ids`` (default ``1..K``): each given one, each missing one from
    :func:`default_colors`, distinct from the given ones and from each other (the fills had cycled the
    20-colour palette, so classes 1 and 21 of an ingested label raster were drawn alike)."""
    ids = list(range(1, len(given) + 1)) if ids is None else [int(i) for i in ids]
    bare = [i for i, c in zip(ids, given, strict=True) if not c]
    fill = dict(zip(bare, default_colors(bare, taken=[c for c in given if c]), strict=True))
    return [c or fill[i] for i, c in zip(ids, given, strict=True)]


def colormap_hex(colormap: Mapping[int, Sequence[int]], class_id: int) -> str | None:
    """``#rrggbb`` of an id in a GeoTIFF colour table, ``None`` where the table has none."""
    rgba = colormap.get(int(class_id))
    return None if rgba is None else "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def default_colors(ids: Sequence[int], taken: Sequence[str | None] = ()) -> list[str]:
    """Colours for the classes of one legend that come without one: each id's :func:`default_color`, unless
    an earlier class or ``taken`` (the legend's own colours) has it — ids 236 apart share one past id 256, so
    codes 100 and 336 were drawn alike — then the first palette colour still free (repeats only past 256 classes)."""
    used = {c.lower() for c in taken if c}  # "#FF004B" is the palette's "#ff004b"
    palette = (*DEFAULT_COLORS, *_more_colours())
    out = []
    for i in ids:
        colour = default_color(i)
        if colour in used:
            colour = next((c for c in palette if c not in used), colour)
        used.add(colour)
        out.append(colour)
    return out


_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
_D65 = np.array([0.95047, 1.0, 1.08883])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) coordinates of ``[N, 3]`` sRGB values in [0, 1]: ``[N, 3]`` L* (0–100), a*, b*."""
    rgb = np.asarray(rgb, dtype=float).reshape(-1, 3)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=-1)


@functools.lru_cache(maxsize=1)
def _more_colours(n: int = 236) -> tuple[str, ...]:
    """Colours for class ids past :data:`DEFAULT_COLORS`: each in turn the colour of a 16-level sRGB grid
    (lightness L* 30–92) farthest in CIELAB from the palette, white, black and every colour before it."""
    levels = np.linspace(0.0, 1.0, 16)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = rgb_to_lab(grid)
    grid, lab = grid[(lab[:, 0] > 30) & (lab[:, 0] < 92)], lab[(lab[:, 0] > 30) & (lab[:, 0] < 92)]
    taken = [[int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for c in DEFAULT_COLORS] + [[1.0] * 3, [0.0] * 3]
    nearest = np.min(np.linalg.norm(lab[:, None] - rgb_to_lab(np.asarray(taken))[None], axis=2), axis=1)
    out = []
    for _ in range(n):
        k = int(np.argmax(nearest))
        out.append("#{:02x}{:02x}{:02x}".format(*(round(v * 255) for v in grid[k])))
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[k], axis=1))
    return tuple(out)


_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def hex_colour(value: Any) -> str | None:
    """``value`` as ``#rrggbb`` (lower case; the ``#`` optional in the input), or ``None`` if it is not one."""
    m = _HEX.match(value.strip()) if isinstance(value, str) else None
    return None if m is None else "#" + m.group(1).lower()


def parse_colour(value: str, where: str) -> str:
    """A ``#rrggbb`` colour (the ``#`` optional), or a one-line error naming ``where`` it came from.

    Raises:
        UsageError: not six hex digits.
    """
    colour = hex_colour(value)
    if colour is None:
        raise UsageError(f"colour {value!r} in {where} is not #rrggbb; write colours as hex, e.g. #1f77b4")
    return colour


@dataclass(frozen=True)
class ClassInfo:
    """One class of a legend.

    Attributes:
        id: the class id in label rasters and maps (≥ 1; 0 means unlabelled / nodata).
        name: human-readable name.
        color: ``#rrggbb`` display colour, or ``None`` when unknown.
    """

    id: int
    name: str
    color: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "name", "color"}`` (the JSON form bundles and map tags store)."""
        return {"id": self.id, "name": self.name, "color": self.color}


@dataclass(frozen=True)
class Legend(Sequence[ClassInfo]):
    """An ordered class legend: a model's logit ``k`` is class ``legend[k]``.

    Built from a scene's labels (:func:`scene_legend`), a bundle's ``classes`` record
    (:meth:`from_list`) or a map's attributes (:meth:`from_attrs`); written back with
    :meth:`to_list` / :meth:`to_attrs`. It is a sequence of :class:`ClassInfo`.

    Attributes:
        classes: the classes in order.

    .. versionadded:: 0.1
    """

    classes: tuple[ClassInfo, ...]

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, k):  # type: ignore[override]
        return self.classes[k]

    def __iter__(self):
        return iter(self.classes)

    @property
    def ids(self) -> np.ndarray:
        """``[K]`` int64 class ids in order."""
        return np.asarray([c.id for c in self.classes], dtype=np.int64)

    @property
    def names(self) -> list[str]:
        """Class names in order."""
        return [c.name for c in self.classes]

    @property
    def colors(self) -> list[str | None]:
        """Class colours in order."""
        return [c.color for c in self.classes]

    def positions(self) -> dict[int, int]:
        """``{class id: position}`` (the logit index of each class)."""
        return {c.id: k for k, c in enumerate(self.classes)}

    def to_list(self) -> list[dict[str, Any]]:
        """``[{"id", "name", "color"}, …]``."""
        return [c.to_dict() for c in self.classes]

    def to_attrs(self) -> dict[str, list]:
        """``class_ids`` / ``class_names`` / ``class_colors`` attributes (the xarray/Zarr convention)."""
        return {"class_ids": [int(i) for i in self.ids], "class_names": self.names, "class_colors": self.colors}

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, Any] | ClassInfo]) -> Legend:
        """From ``[{"id", "name", "color"}, …]`` mappings (a bundle's ``classes``) or :class:`ClassInfo` objects."""
        out = []
        for c in items:
            if isinstance(c, ClassInfo):
                out.append(c)
            else:
                color = c.get("color")
                out.append(ClassInfo(int(c["id"]), str(c["name"]), None if color is None else str(color)))
        return cls(tuple(out))

    def checked(self, where: str) -> Legend:
        """This legend with its colours as ``#rrggbb``, once its ids are whole numbers from 1 (0 is
        nodata in every map), no id or name is listed twice, and every colour is a colour.

        Raises:
            DataError: the first problem, naming ``where``.
        """
        ids, names = [c.id for c in self.classes], [c.name for c in self.classes]
        if any(i < 1 for i in ids):
            raise DataError(f"{where}: class id {min(ids)} is below 1 (0 is nodata in every map); number the classes from 1")
        for what, values in (("id", ids), ("name", names)):
            twice = sorted({v for v in values if values.count(v) > 1}, key=str)
            if twice:
                raise DataError(f"{where}: class {what} {twice[0]!r} is listed twice; give each class its own {what}")
        bad = [c.color for c in self.classes if c.color is not None and hex_colour(c.color) is None]
        if bad:
            raise DataError(f"{where}: class colour {bad[0]!r} is not #rrggbb; write colours as hex, e.g. #1f77b4")
        return Legend(tuple(ClassInfo(c.id, c.name, None if c.color is None else hex_colour(c.color)) for c in self.classes))

    @classmethod
    def coerce(cls, classes: Legend | Iterable[Mapping[str, Any] | ClassInfo]) -> Legend:
        """A :class:`Legend` as it is, anything :meth:`from_list` takes otherwise."""
        return classes if isinstance(classes, Legend) else cls.from_list(classes)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Legend | None:
        """From ``class_ids``/``class_names``[/``class_colors``] attributes, or a COG's ``GEOHSI_CLASSES`` tag.

        Returns:
            The legend, or ``None`` when the attributes carry none.
        """
        if "class_ids" in attrs and "class_names" in attrs:
            ids, names = list(attrs["class_ids"]), list(attrs["class_names"])
            colors = list(attrs.get("class_colors") or [None] * len(ids))
            return cls(
                tuple(
                    ClassInfo(int(i), str(n), None if c is None else str(c)) for i, n, c in zip(ids, names, colors, strict=False)
                )
            )
        if "GEOHSI_CLASSES" in attrs:
            return cls.from_list(json.loads(attrs["GEOHSI_CLASSES"]))
        return None

    @classmethod
    def from_geotiff(
        cls, tags: Mapping[str, str], band_tags: Mapping[str, str], colormap: Mapping[int, Sequence[int]]
    ) -> Legend | None:
        """The legend of a class-map GeoTIFF: its ``GEOHSI_CLASSES`` tag, else ``CLASS_<id>`` band tags, each
        class's colour from the legend or else the band's colour table.

        Args:
            tags: the dataset tags; band_tags: band 1's tags; colormap: band 1's colour table (``{id: RGBA}``).

        Returns:
            The legend, or ``None`` when the file names no class.
        """
        legend = cls.from_attrs(tags)
        if legend is None:
            named = {int(k[6:]): v for k, v in band_tags.items() if k.startswith("CLASS_") and k[6:].isdigit() and k != "CLASS_0"}
            if not named:
                return None
            legend = cls(tuple(ClassInfo(i, named[i]) for i in sorted(named)))
        return cls(tuple(ClassInfo(c.id, c.name, c.color or colormap_hex(colormap, c.id)) for c in legend))


def scene_legend(ds: xr.Dataset, present: Iterable[int] | None = None) -> Legend:
    """The legend of a scene's labels: every declared class and every id present in ``labels``.

    Ids present in the labels but not declared get the name ``class_<id>``; classes without a
    colour get :func:`default_color`. Ordered by id.

    Args:
        ds: a labelled scene.
        present: the ids present in its labels, when already known (else the labels are read).

    Raises:
        DataError: the scene has no labels.
    """
    if "labels" not in ds:
        src = ds.encoding.get("source", "the scene")
        raise DataError(f"{src} has no labels; ingest it with --labels FILE to train or evaluate")
    declared = {c.id: c for c in (Legend.from_attrs(ds["labels"].attrs) or ())}
    present = np.unique(np.asarray(ds["labels"].values)) if present is None else list(present)
    ids = sorted(set(declared) | {int(i) for i in present if i != 0})
    colours = filled_colors([declared[i].color if i in declared else None for i in ids], ids)
    return Legend(
        tuple(ClassInfo(i, declared[i].name if i in declared else f"class_{i}", c) for i, c in zip(ids, colours, strict=True))
    )
