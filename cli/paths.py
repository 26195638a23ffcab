"""The click type of every path option that also takes an object-storage URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geohsi.storage import is_url


class PathOrURL(click.ParamType):
    """A local path (:class:`~pathlib.Path`) or an ``s3://``/``gs://``/``az://``/``https://`` URL (kept a string).

    ``click.Path`` would turn ``s3://bucket/key`` into the local path ``s3:/bucket/key``.
    """

    name = "path|url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | str:
        if isinstance(value, Path):
            return value
        return str(value) if is_url(value) else Path(value)


PATH_OR_URL = PathOrURL()
