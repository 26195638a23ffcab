"""Registry of the standard benchmark scenes: files, official URLs, sha256 sums, classes, wavelengths.

Files are looked up first in the directory named by ``GEOHSI_DATA_DIR`` (CI points it at the shared
read-only data), then in the download directory (``--dir``, default ``~/.cache/geohsi``); only when
absent there are they downloaded from their official URL, checked against their sha256 and renamed
into place atomically. Tests exercise the download path with ``file://`` URLs.

.. versionadded:: 0.1
"""

from __future__ import annotations

import csv
import os
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from geohsi.datasets.jasper_ridge import jasper_ridge_scene
from geohsi.errors import InputFormatError, OutputError, UsageError
from geohsi.files import file_sha256
from geohsi.scene import DEFAULT_CHUNK, DEFAULT_COLORS
from geohsi.storage import cache_dir


@dataclass(frozen=True)
class DatasetFile:
    """One file of a dataset.

    Attributes:
        path: path relative to the data directory (``indian_pines/Indian_pines_gt.mat``).
        url: official download URL.
        sha256: expected checksum of the file's bytes.
    """

    path: str
    url: str
    sha256: str


INDIAN_PINES_FILES = (
    DatasetFile(
        "indian_pines/Indian_pines_corrected.mat",
        "http://www.ehu.eus/ccwintco/uploads/6/67/Indian_pines_corrected.mat",
        "ec2f8808710919d566f70f0d4aa885aae1ddfd42b734aba71c5e12ca65450939",
    ),
    DatasetFile(
        "indian_pines/Indian_pines_gt.mat",
        "http://www.ehu.eus/ccwintco/uploads/c/c4/Indian_pines_gt.mat",
        "65c4687a8ab04f6da4789799bc3bc4f6e88bccac3ed6a2e6ae367e5e6b9e429c",
    ),
)

ENMAP_POTSDAM_FILES = (
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_128_0.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_128_0.tif",
        "b3188eabb94fb40cc6e5ad0ec6b3a03983d188e6736ada84e90080fbcd6d4271",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_128_128.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_128_128.tif",
        "8369cba48345c7de8a8b3e0e91ad04a09a620b09332277aa7aeb5e26954a40a1",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_128_32.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_128_32.tif",
        "cb662f139c8681cc909a33b484a2ff4e5b244b529760b7959a79cef0ba1c7324",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_128_96.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_128_96.tif",
        "70de0e0802e5ec8b499152c757ac1ee8458d0bd797385bd04517a6737a5131db",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_160_128.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_160_128.tif",
        "cbb1a12389f027e1f84ccbd5aa65f56c8ea316f5a84a4744697c9100dbc11126",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_160_160.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_160_160.tif",
        "0ef0ff714b8eff3eff8e8190434eae635c58a920c2f9d9b4dab48d67d3127f1a",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_160_64.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_160_64.tif",
        "824f4f50d26b547fe7bd52ca93068e64b44ddcf4f45edab9b020794a42f7d473",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_160_96.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_160_96.tif",
        "927cfebba1ed915397f72caae4e59befc27909cec918550ff484b700f3f9d6c7",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_192_128.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_192_128.tif",
        "372ee82f2551d9746fc2dd7530c4acd6deea06d90883db5e7f3607ed72d97534",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_192_160.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_192_160.tif",
        "932009ec1fc3deddb52c3fb6cccc9be0c643cc9a860486af465251db6386b101",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_192_64.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_192_64.tif",
        "fd7fc05826f24bcaf65bc04cc999021566746f47ddd6f30a586f6aed5b17c1ee",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_192_96.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_192_96.tif",
        "69fd852b038d23ba811ca7927954567be85cb1381d3ca5479568484d560866e2",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_64_0.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_64_0.tif",
        "74e475a6abd6529919c84272f2d1f24480a96aa8b817de750723c5a1b3332578",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_64_32.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_64_32.tif",
        "ca8766e3f118fa39eb2322bb7e9a5ae4b762d3712424bfb689aeb31f639a867f",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_96_0.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_96_0.tif",
        "4ea4617a16eb9d84dfb80b70adbd5b36b59217d9f3b72ad3993ac9b0337e38ac",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_96_128.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_96_128.tif",
        "17b077c2926b0992f4605a747810256679a5abd7b068eb30424143d2199b30df",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_96_32.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_96_32.tif",
        "b490a51ff87ab4bda7e5757c78c2919140edb142c0c184b247b51c964577b229",
    ),
    DatasetFile(
        "enmap_potsdam/images/enmap_potsdam_tile_96_96.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/images/enmap_potsdam_tile_96_96.tif",
        "e3d12471a31336c41f43ac53fdfb9aa857309b5d5106275d523556977d2bb9b6",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_128_0.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_128_0.tif",
        "6f7945743ab1af207b9dd01108d5eda13c4518955e453f5b2e2197dde9a5b962",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_128_128.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_128_128.tif",
        "db3e8063e2177e304fad8fb52e197e623e68afb1c99ff52d4113cb2c85190c4c",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_128_32.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_128_32.tif",
        "580c6d395b3b01ae8431f91d40703122ac17573d8fc1a2c7bad0bf7592018929",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_128_96.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_128_96.tif",
        "96423daf011a77b2c2bd5d04ac80b17cffbcc3b87059ce76a62c1d73773fbf07",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_160_128.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_160_128.tif",
        "b38560b7369b2b033188be45f885deab110d8d7a1598b423ff19dbb48a4aa222",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_160_160.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_160_160.tif",
        "2d0b765aa70250624f1b816b76fc2fd32837557df0bc81d091b4e74f4cb86307",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_160_64.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_160_64.tif",
        "7f4248f2116a8571cb79a6f3bcd5eca8e325a5c92c574cf19169a4d0ce01a65b",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_160_96.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_160_96.tif",
        "c42b0680cd0947f2caa867e6c6721abb1a70d4aa08824558a82c81eea77b34e5",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_192_128.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_192_128.tif",
        "c49a76b7eb31ccb5b05bd9491cb4e5fd5850fd533bc3715c5c13d5e8a5aaeed1",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_192_160.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_192_160.tif",
        "40dfb1a13dd2fe7f0230d64f7d6076ad3bf5097b6689192d6cf7b403a8e0d1c6",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_192_64.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_192_64.tif",
        "0158973f2a6d636d4fd3010f791c7be07ffdf95dad7f7404ec25eba57b81fa34",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_192_96.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_192_96.tif",
        "f582744a96b853de76ce98621cbbed2e130bce803ed79701d11724a69660b662",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_64_0.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_64_0.tif",
        "3747e02de21be8f4e44c684cf6a18cdfa0c4400ca732e757d1660215d4b1b936",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_64_32.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_64_32.tif",
        "bbc57b0c8250c1b9f8ef526fd3e6aa8b39b5a392d663129620764c991b3431ff",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_96_0.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_96_0.tif",
        "f9607d4b8897517bf22347b10cd102200fe22838aa9596d522558791a3a05950",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_96_128.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_96_128.tif",
        "4572f676fa6bb06ab17ded35b92a205eb8130416cbe545d4496e6074bb51b455",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_96_32.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_96_32.tif",
        "be04a1916f12fe3cfdb7ad5ee53f2f71f6b1b63ae2a767af622c5110b44736e3",
    ),
    DatasetFile(
        "enmap_potsdam/labels/enmap_potsdam_tile_96_96.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/labels/enmap_potsdam_tile_96_96.tif",
        "2c9072699db093825d1062ebc534499f6beaf2d319d9bdf9ed295fd517bf0fc2",
    ),
    DatasetFile(
        "enmap_potsdam/enmap_landcover_unstyled.tif",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/enmap_landcover_unstyled.tif",
        "ec57bb7271c68849c2edb1bf3a1ef732769060f3475bbfb3364072fc4ea14baf",
    ),
    DatasetFile(
        "enmap_potsdam/Normalize_Bands.csv",
        "https://raw.githubusercontent.com/EnMAP-Box/enmap-box/f9e8f486c9614813410cc9d715bb056e6ad3cfd5/tests/testdata/external/specdeepmap/test_requierments/Normalize_Bands.csv",
        "ef25ebf84619ba18bbe3bff2e932be44cb75493d9e45c3d725fe265b4d09b02a",
    ),
)

AVIRIS_NG_FILES = (
    DatasetFile(
        "aviris_ng/ang20160910t185702_2rdn_img",
        "https://raw.githubusercontent.com/isofit/isofit/8b2b303e1dbed1519f7035f51c7c29c25a27d1a3/examples/topoflux/remote/ang20160910t185702_2rdn_img",
        "e6ac038b67ec034555dd1eaaeeb35ff4ce4e4cd65af59d2aa1756d0432294c2a",
    ),
    DatasetFile(
        "aviris_ng/ang20160910t185702_2rdn_img.hdr",
        "https://raw.githubusercontent.com/isofit/isofit/8b2b303e1dbed1519f7035f51c7c29c25a27d1a3/examples/topoflux/remote/ang20160910t185702_2rdn_img.hdr",
        "adfbf6a411881d0f597652ee49b98e5811fc592b7d8d58318d1c203fc88a5117",
    ),
)

JASPER_RIDGE_FILES = (
    DatasetFile(
        "jasper_ridge/jasperRidge2_R198.mat",
        "https://raw.githubusercontent.com/michalhuras/Unsupervised-hyperspectral-image-classification/2ff9fa10d6679cbb17b06b4139f26b5f01b520c8/data/raw/JasperRidge/jasperRidge2_R198.mat",
        "0e4118a6452f6044978a8ca3762fb0f791115467904936d463c4e111e56e682e",
    ),
    DatasetFile(
        "jasper_ridge/end4.mat",
        "https://raw.githubusercontent.com/michalhuras/Unsupervised-hyperspectral-image-classification/2ff9fa10d6679cbb17b06b4139f26b5f01b520c8/data/raw/JasperRidge/GroundTruth/end4.mat",
        "92f5697b43705802b904fd13ba99b6ce65a3d203682864abc3fbec922beec374",
    ),
)


@dataclass(frozen=True)
class Dataset:
    """A benchmark scene and how to ingest it.

    Attributes:
        name: registry key.
        title: human-readable name.
        files: the files making up the dataset.
        images: paths (relative) of the spectral files to ingest (tiles are mosaicked).
        labels: path of the label raster, if any.
        class_names: names of classes 1..K.
        class_colors: ``#rrggbb`` colours of classes 1..K.
        sensor: sensor name recorded in the scene.
        citation: how to cite the data; licence notes.
        ingest_options: extra keyword arguments for :func:`geohsi.ingest`.
        scene_builder: builds the scene from the (single) image file when the generic readers refuse
            its layout (the scene is then written as it is, without :func:`geohsi.ingest`).
    """

    name: str
    title: str
    files: tuple[DatasetFile, ...]
    images: tuple[str, ...]
    labels: str | None = None
    class_names: tuple[str, ...] = ()
    class_colors: tuple[str, ...] = ()
    sensor: str = ""
    citation: str = ""
    ingest_options: dict[str, Any] = field(default_factory=dict)
    scene_builder: Callable[[Path], Any] | None = None


def indian_pines_bands() -> tuple[list[float], list[float]]:
    """Band centres and FWHM (nm) of the 200-band Indian Pines corrected cube.

    Source: the AVIRIS calibration file ``92AV3C.spc`` of the 1992 Indian Pine Test Site 3 flight
    (spectralpython/sample-data; Purdue MultiSpec AVIRIS documentation), without channels
    104–108, 150–163 and 220, which the corrected cube drops. Shipped as ``indian_pines_bands.csv``.

    Returns:
        ``(wavelength_nm, fwhm_nm)``, 200 values each.
    """
    text = resources.files("geohsi.datasets").joinpath("indian_pines_bands.csv").read_text()
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    return [float(r["wavelength_nm"]) for r in rows], [float(r["fwhm_nm"]) for r in rows]


_IP_WL, _IP_FWHM = indian_pines_bands()

DATASETS: dict[str, Dataset] = {
    "indian_pines": Dataset(
        name="indian_pines",
        title="AVIRIS Indian Pines (corrected, 200 bands, 145×145, 16 classes)",
        files=INDIAN_PINES_FILES,
        images=("indian_pines/Indian_pines_corrected.mat",),
        labels="indian_pines/Indian_pines_gt.mat",
        class_names=(
            "Alfalfa",
            "Corn-notill",
            "Corn-mintill",
            "Corn",
            "Grass-pasture",
            "Grass-trees",
            "Grass-pasture-mowed",
            "Hay-windrowed",
            "Oats",
            "Soybean-notill",
            "Soybean-mintill",
            "Soybean-clean",
            "Wheat",
            "Woods",
            "Buildings-Grass-Trees-Drives",
            "Stone-Steel-Towers",
        ),
        # the default palette: classes apart by ΔE00 ≥ 24 (the usual IP colours put Corn-notill #00ff00 and
        # Soybean-notill #7cfc00 4.9 apart, one colour on a map)
        class_colors=DEFAULT_COLORS[:16],
        sensor="AVIRIS",
        citation=(
            "Baumgardner, Biehl, Landgrebe (2015), 220 Band AVIRIS Hyperspectral Image Data Set: June 12, 1992 "
            "Indian Pine Test Site 3, Purdue University Research Repository, doi:10.4231/R7RX991C"
        ),
        # A bare MATLAB array: no CRS, an explicit pixel grid; band centres from the AVIRIS calibration.
        ingest_options={"crs": "none", "wavelengths": _IP_WL, "fwhm": _IP_FWHM, "units": "DN (scaled radiance)"},
    ),
    "enmap_potsdam": Dataset(
        name="enmap_potsdam",
        title="EnMAP L2A Potsdam, 24 July 2022 (18 tiles of 32×32, 224 bands, 6 land-cover classes)",
        files=ENMAP_POTSDAM_FILES,
        images=tuple(f.path for f in ENMAP_POTSDAM_FILES if f.path.startswith("enmap_potsdam/images/")),
        labels="enmap_potsdam/enmap_landcover_unstyled.tif",
        class_names=("roof", "pavement", "low vegetation", "tree", "soil", "water"),
        class_colors=("#e31a1c", "#9e9e9e", "#b2df8a", "#33a02c", "#a6761d", "#1f78b4"),
        sensor="EnMAP HSI",
        citation="Contains modified EnMAP data © DLR 2022 (DLR EnMAP data licence); tiles from the EnMAP-Box test data",
        ingest_options={"units": "reflectance × 10000"},
    ),
    "aviris_ng": Dataset(
        name="aviris_ng",
        title="AVIRIS-NG radiance, topoflux subset (425 bands, 25×30, unlabelled)",
        files=AVIRIS_NG_FILES,
        images=("aviris_ng/ang20160910t185702_2rdn_img",),
        sensor="AVIRIS-NG",
        citation="AVIRIS-NG data courtesy NASA/JPL-Caltech; ISOFIT example data (Apache-2.0)",
    ),
    "jasper_ridge": Dataset(
        name="jasper_ridge",
        title="AVIRIS Jasper Ridge unmixing subset (198 bands, 100×100, abundances only)",
        files=JASPER_RIDGE_FILES,
        images=("jasper_ridge/jasperRidge2_R198.mat",),
        sensor="AVIRIS",
        citation="AVIRIS (NASA/JPL) Jasper Ridge subset, F. Zhu's hyperspectral unmixing data",
        scene_builder=jasper_ridge_scene,
    ),
}


def get(name: str) -> Dataset:
    """Look up a dataset by name.

    Raises:
        UsageError: unknown name (the message lists the known ones).
    """
    key = name.strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[key]


def data_dirs(download_dir: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for dataset files, in order: ``GEOHSI_DATA_DIR``, then the download dir."""
    dirs = []
    env = os.environ.get("GEOHSI_DATA_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(Path(download_dir) if download_dir else cache_dir() / "data")
    return dirs


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` under a temporary name, verify its sha256, then rename.

    Args:
        url: http(s) or file URL.
        dest: final path.
        sha256: expected hex digest (``None`` skips the check).
        timeout: socket timeout in seconds.

    Returns:
        ``dest``.

    Raises:
        InputFormatError: the download failed or the checksum does not match (nothing is left at ``dest``).
        OutputError: ``dest``'s folder cannot be created or written.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {dest.parent}: {e.strerror or e}; choose a writable --dir") from e
    if not os.access(dest.parent, os.W_OK):
        raise OutputError(f"{dest.parent} is not writable; choose a writable --dir")
    tmp = dest.with_name(f".{dest.name}.part-{uuid.uuid4().hex[:8]}")
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:  # noqa: S310 (official URLs)
                shutil.copyfileobj(r, f, 1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise InputFormatError(
                f"cannot download {url}: {reason}; download it by hand into {dest.parent} or set GEOHSI_DATA_DIR"
            ) from e
        if sha256 is not None:
            got = file_sha256(tmp)
            if got != sha256:
                raise InputFormatError(
                    f"checksum mismatch for {url}: expected sha256 {sha256[:12]}…, got {got[:12]}…; "
                    "the download is corrupt or the file changed upstream"
                )
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def locate(f: DatasetFile, download_dir: str | os.PathLike | None = None, verify: bool = True) -> Path | None:
    """Find a dataset file in the data directories (checksum-verified), or ``None``."""
    for d in data_dirs(download_dir):
        p = d / f.path
        if p.is_file():
            if verify and file_sha256(p) != f.sha256:
                raise InputFormatError(
                    f"{p} does not match its sha256 {f.sha256[:12]}…; delete it and run 'geohsi datasets fetch' again"
                )
            return p
    return None


def fetch(name: str, download_dir: str | os.PathLike | None = None, *, verify: bool = True) -> dict[str, Path]:
    """Make every file of a dataset available locally and return their paths.

    Args:
        name: dataset name (see :data:`DATASETS`).
        download_dir: where missing files are downloaded (default ``~/.cache/geohsi/data``).
        verify: check sha256 of files found locally too.

    Returns:
        Mapping of relative dataset path → local path.

    Raises:
        UsageError: unknown dataset.
        InputFormatError: a download failed or a checksum did not match.
    """
    ds = get(name)
    target = data_dirs(download_dir)[-1]
    out: dict[str, Path] = {}
    for f in ds.files:
        p = locate(f, download_dir, verify=verify)
        if p is None:
            p = download(f.url, target / f.path, f.sha256)
        out[f.path] = p
    return out


def ingest_dataset(name: str, out: str | os.PathLike, *, download_dir=None, chunks: int = DEFAULT_CHUNK, overwrite: bool = False):
    """Fetch a dataset and ingest it into a scene store with its classes, colours and wavelengths.

    Args:
        name: dataset name.
        out: output ``.zarr`` path.
        download_dir: see :func:`fetch`.
        chunks: spatial chunk size.
        overwrite: replace an existing store.

    A data directory may also hold the dataset already ingested, as ``NAME.zarr`` (a scene store
    written by this function; ``scripts/gpu_wheels.sh`` makes one for the offline GPU check, whose
    machine lacks the readers' dependencies, e.g. SciPy for MATLAB files): it is then copied to
    ``out`` instead of reading the source files.

    Returns:
        Path of the written scene.
    """
    from geohsi.ingestion import check_scene_out, ingest

    ds = get(name)
    check_scene_out(out, overwrite)  # before any download
    for d in data_dirs(download_dir):
        ready = d / f"{name}.zarr"
        if (ready / "zarr.json").is_file():
            from geohsi.scene import open_scene, write_scene

            return write_scene(open_scene(ready), out, chunks=chunks, overwrite=overwrite)
    paths = fetch(name, download_dir)
    if ds.scene_builder is not None:
        from geohsi.scene import write_scene

        return write_scene(ds.scene_builder(paths[ds.images[0]]), out, chunks=chunks, overwrite=overwrite)
    return ingest(
        [paths[p] for p in ds.images],
        out,
        labels=paths[ds.labels] if ds.labels else None,
        class_names=list(ds.class_names) or None,
        class_colors=list(ds.class_colors) or None,
        sensor=ds.sensor,
        chunks=chunks,
        overwrite=overwrite,
        **ds.ingest_options,
    )
