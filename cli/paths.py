"""The click type of every path option that also takes an object-storage URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geohsi.errors import UsageError
from geohsi.storage import check_no_credentials, is_url


class PathOrURL(click.ParamType):
    """A local path (:class:`~pathlib.Path`) or an ``s3://``/``gs://``/``az://``/``https://`` URL (kept a string).

    ``click.Path`` would turn ``s3://bucket/key`` into the local path ``s3:/bucket/key``.
    """

    name = "path|url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | str:
        if isinstance(value, Path):
            return value
        if not is_url(value):
            return Path(value)
        try:
            return check_no_credentials(str(value))
        except UsageError as e:  # the value is not echoed: it holds the secret
            self.fail(str(e), param, ctx)


PATH_OR_URL = PathOrURL()
