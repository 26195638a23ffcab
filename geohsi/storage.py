"""Object storage: URLs wherever a path goes (``s3://``, ``gs://``, ``az://``; ``https://`` to read).

geohsi reads and writes URLs through fsspec (s3fs, gcsfs, adlfs: optional extras) and GDAL's virtual
file systems (rasterio), with credentials and endpoints from the standard places only (for S3:
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``, instance
roles). geohsi never passes a credential itself: the graph, bundles, maps and messages carry the URL
alone, and :func:`display` strips user info and query strings (signed URLs) from what is shown.

The two rules of outputs on object storage:

* **A file is one object**, built locally (a COG needs seekable local space) and uploaded in one
  ``put``: it appears complete or not at all.
* **A directory** (a Zarr store, a bundle) is many objects; a completion marker
  (:data:`COMPLETE`) is written last and removed first on overwrite, and :func:`check_complete`
  refuses a directory without one.

:func:`staged` gives a command local paths to write into for its URL outputs and uploads them when
the command succeeds; :func:`local_copy` downloads a small input (a bundle, a vector file, a list
file) once per content into a cache.

.. versionadded:: 0.3
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from geohsi.errors import InputFormatError, OutputError, UsageError

#: URL schemes geohsi reads (and, but for http/https, writes) and the package fsspec needs for each.
SCHEMES: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"),
    "abfs": ("adlfs", "azure"),
    "http": ("aiohttp", "http"),
    "https": ("aiohttp", "http"),
}
#: The completion marker of a directory output on object storage, written last.
COMPLETE = ".geohsi-complete"

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
#: characters fsspec expands as a glob pattern in a path.
_MAGIC = re.compile(r"[*?\[]")


def is_url(path: Any) -> bool:
    """Whether ``path`` is a URL geohsi reads through fsspec/GDAL (``s3://``, ``gs://``, ``az://``, ``http(s)://``)."""
    m = _URL.match(str(path)) if isinstance(path, str) else None
    return bool(m) and m.group(1).lower() in SCHEMES


#: where each object store's credentials come from, as its own tools read them.
_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE for s3://",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS for gs://",
    "gcs": "GOOGLE_APPLICATION_CREDENTIALS for gcs://",
    "az": "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_CONNECTION_STRING for az://",
    "abfs": "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_CONNECTION_STRING for abfs://",
}


def check_no_credentials(url: str) -> str:
    """Refuse user info in an object-store URL (``s3://KEY:SECRET@bucket/…``): it is not read, and left in
    it would be printed by the store's own errors (``Invalid bucket name "KEY:SECRET@bucket"``).

    Returns:
        ``url`` unchanged (``https://user:pw@host/…`` too: HTTP reads it as basic authentication).

    Raises:
        UsageError: the URL carries user info; the message shows it without (:func:`display`).
    """
    if not is_url(url) or scheme(url) in ("http", "https"):
        return url
    if split_user_info(scheme(url), str(url).split("://", 1)[1].split("/", 1)[0])[0] is not None:
        raise UsageError(
            f"{display(url)} was given with credentials in the URL, which geohsi does not read; drop them and set them in "
            f"the environment ({_CREDENTIALS.get(scheme(url), _CREDENTIALS['s3'])})"
        )
    return url


def split_user_info(url_scheme: str, netloc: str) -> tuple[str | None, str]:
    """``(user info or None, the rest)`` of a URL's network location: ``KEY:SECRET@bucket`` → ``("KEY:SECRET",
    "bucket")``. Azure's ``container@account.dfs.core.windows.net`` (az, abfs, abfss) is its own form, no user
    info, unless the part before ``@`` holds a ``:``."""
    user, at, host = netloc.rpartition("@")
    if not at or (url_scheme.lower() in ("az", "abfs", "abfss") and ":" not in user):
        return None, netloc
    return user, host


def scheme(url: str) -> str:
    """The URL's scheme, lower case."""
    return url.split("://", 1)[0].lower()


def display(path: Any) -> str:
    """``path`` as shown in messages and logs: a URL without user info or query string (no secrets)."""
    s = str(path)
    if not is_url(s):
        return s
    head, rest = s.split("://", 1)
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]  # the query (signed URLs) goes first, path or not
    netloc, _, tail = rest.partition("/")
    netloc = split_user_info(head, netloc)[1]
    return f"{head}://{netloc}/{tail}".rstrip("/") if tail else f"{head}://{netloc}"


_URL_IN_TEXT = re.compile(r"(?i)\b(?:s3|gs|gcs|az|abfs|https?)://[^\s'\"<>]+")
_SECRET_PARAM = re.compile(
    r"(?i)\b(x-amz-[a-z-]+|signature|credential|secret|token|access_token|key|sig|awsaccesskeyid)=[^&\s'\"]+"
)


def redact(text: str) -> str:
    """``text`` with every URL in it as :func:`display` shows it and anything like ``key=value`` secrets masked:
    what an error or log line may carry (GDAL's ``/vsicurl/`` paths and HTTP errors quote the full URL)."""
    return _SECRET_PARAM.sub(r"\1=…", _URL_IN_TEXT.sub(lambda m: display(m.group(0)), str(text)))


def absolute(path: str | os.PathLike) -> str:
    """How a file or URL is recorded (bundles, scenes' provenance, STAC links): the absolute local path, or
    the URL as :func:`display` shows it."""
    return display(path) if is_url(path) else str(Path(path).resolve())


def join(base: str | os.PathLike, *parts: str) -> str | Path:
    """``base/part/...`` for a URL (``/`` separators) or a local path."""
    if is_url(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return Path(base).joinpath(*parts)


def name(path: str | os.PathLike) -> str:
    """The last component of a path or URL (without a URL's query string: a signed URL's token)."""
    return display(path).rsplit("/", 1)[-1] if is_url(path) else Path(path).name


def sibling(path: str | os.PathLike, new_name: str) -> str | Path:
    """``new_name`` in the folder of ``path`` (a URL beside a URL)."""
    if is_url(path):
        return f"{str(path).rstrip('/').rsplit('/', 1)[0]}/{new_name}"
    return Path(path).with_name(new_name)


def with_suffix(path: str | os.PathLike, suffix: str) -> str | Path:
    """``path`` with its suffix replaced (a URL stays a URL)."""
    return sibling(path, Path(name(path)).with_suffix(suffix).name)


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it.

    A public S3 bucket is read without credentials when ``AWS_NO_SIGN_REQUEST=YES`` (the variable GDAL
    and the AWS CLI read), so fsspec and GDAL agree.

    Raises:
        UsageError: the package for the scheme is missing (one line naming the extra to install).
    """
    import fsspec

    check_no_credentials(url)
    package, extra = SCHEMES[scheme(url)]
    public = scheme(url) == "s3" and os.environ.get("AWS_NO_SIGN_REQUEST", "").strip().lower() in {"yes", "true", "1"}
    try:
        return fsspec.core.url_to_fs(url, **({"anon": True} if public else {}))
    except ImportError as e:
        raise UsageError(f"{display(url)} needs the {package} package; install it with pip install 'geohsi[{extra}]'") from e


@contextlib.contextmanager
def remote_errors(url: str, action: str, error: type[Exception] = InputFormatError) -> Iterator[None]:
    """Turn the errors of an object store into one line naming the URL and the likely fix.

    Args:
        url: the URL being read or written.
        action: ``read`` or ``write``, for the message.
        error: the :class:`~geohsi.errors.GeohsiError` subclass to raise.
    """
    from geohsi.errors import GeohsiError

    shown = display(url)
    try:
        yield
    except GeohsiError:
        raise
    except FileNotFoundError as e:
        raise error(f"cannot {action} {shown}: no such bucket or object; check the URL") from e
    except PermissionError as e:
        raise error(
            f"cannot {action} {shown}: access denied; check the credentials in the environment "
            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE for s3://) and the bucket's policy"
        ) from e
    except (OSError, TimeoutError, ConnectionError) as e:
        raise error(
            f"cannot {action} {shown}: {type(e).__name__} ({_short(e)}); check the endpoint "
            "(AWS_ENDPOINT_URL for an S3-compatible store) and the network"
        ) from e
    except Exception as e:  # botocore/aiohttp raise their own types for unreachable endpoints
        if type(e).__name__ in {"EndpointConnectionError", "ClientConnectorError", "ConnectTimeoutError", "NoCredentialsError"}:
            raise error(
                f"cannot {action} {shown}: {type(e).__name__}; check the endpoint (AWS_ENDPOINT_URL) and the "
                "credentials in the environment (AWS_NO_SIGN_REQUEST=YES reads a public bucket without them)"
            ) from e
        status = getattr(e, "status", None)
        if type(e).__name__ == "ClientResponseError" and isinstance(status, int):  # aiohttp: its text quotes the whole URL
            why = {401: "access denied", 403: "access denied (or an expired signed URL)", 404: "no such object"}
            raise error(f"cannot {action} {shown}: HTTP {status}, {why.get(status, 'refused')}; check the URL") from None
        raise


def _short(e: BaseException) -> str:
    """An exception's text on one line, without URLs' secrets or anything that looks like a key or signature."""
    return redact(" ".join(str(e).split()))[:160]


def exists(path: str | os.PathLike) -> bool:
    """Whether a local path or a URL exists (a directory on object storage: any object under it)."""
    if not is_url(path):
        return Path(path).exists()
    fs, p = filesystem(str(path))
    with remote_errors(str(path), "read"):
        fs.invalidate_cache(p)  # a listing cached earlier in this process must not answer for the store now
        return bool(fs.exists(p))


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a local file or of one object."""
    if not is_url(path):
        return Path(path).read_bytes()
    fs, p = filesystem(str(path))
    with remote_errors(str(path), "read"):
        return bytes(fs.cat_file(p))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a small text file whole: a local file under a temporary name then renamed, or one object."""
    if is_url(path):
        fs, p = filesystem(str(path))
        with remote_errors(str(path), "write", OutputError):
            fs.pipe_file(p, text.encode())
        return
    final = Path(path)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{id(text):x}.tmp")
    tmp.write_text(text)
    os.replace(tmp, final)


def read_text(path: str | os.PathLike) -> str:
    """The text of a local file or of one object."""
    return read_bytes(path).decode()


def list_names(folder: str | os.PathLike, suffix: str = "") -> list[str]:
    """The names of the files in a folder (a prefix on object storage) ending in ``suffix``; none if it is missing."""
    if not is_url(folder):
        f = Path(folder)
        return sorted(p.name for p in f.iterdir() if p.name.endswith(suffix)) if f.is_dir() else []
    fs, p = filesystem(str(folder))
    with remote_errors(str(folder), "read"):
        try:
            found = fs.ls(p, detail=False, refresh=True)
        except FileNotFoundError:
            return []
    return sorted(n for n in (f.rstrip("/").rsplit("/", 1)[-1] for f in found) if n.endswith(suffix))


def _files_under(fs: Any, p: str) -> list[str]:
    """The objects under ``p``, listed literally (no pattern matching)."""
    return sorted(fs.find(p.rstrip("/"), withdirs=False))


def _rm_tree(fs: Any, p: str) -> None:
    """Delete every object under ``p``. fsspec reads ``*``, ``?`` and ``[`` in a path as a pattern (so
    ``scene [2].zarr`` would also match ``scene 2.zarr``): such a name's objects are listed literally
    and deleted one by one."""
    if not _MAGIC.search(p):
        fs.rm(p, recursive=True)
        return
    for key in _files_under(fs, p):
        fs.rm_file(key)


def remove_tree(path: str | os.PathLike) -> None:
    """Delete a folder (every object under a prefix) if it exists."""
    if not is_url(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    fs, p = filesystem(str(path))
    with remote_errors(str(path), "write", OutputError):
        if fs.exists(p):
            _rm_tree(fs, p)


def make_dirs(path: str | os.PathLike) -> None:
    """Create a local folder (object storage has no folders: nothing to do)."""
    if not is_url(path):
        Path(path).mkdir(parents=True, exist_ok=True)


def check_complete(url: str, what: str) -> None:
    """Refuse a directory output on object storage without its completion marker.

    Args:
        url: the directory's URL.
        what: what it is, for the message (``bundle``, ``scene store``, ``map``).

    Raises:
        InputFormatError: the directory does not exist or is incomplete.
    """
    fs, p = filesystem(url)
    with remote_errors(url, "read"):
        if fs.exists(f"{p.rstrip('/')}/{COMPLETE}"):
            return
        present = fs.exists(p)
    if not present:
        raise InputFormatError(f"{what} {display(url)} does not exist; check the URL")
    raise InputFormatError(
        f"{what} {display(url)} is incomplete (no {COMPLETE} marker: its upload was interrupted); write it again with --overwrite"
    )


def local_only(command: str, *paths: Any) -> None:
    """Refuse URLs where a command reads and writes local files only (so that no URL becomes a local path).

    Raises:
        UsageError: one line naming the URL and the way around.
    """
    for p in paths:
        for one in p if isinstance(p, (list, tuple)) else (p,):
            if one is not None and is_url(one):
                raise UsageError(
                    f"{command} reads and writes local files for now, got {display(one)}; copy it locally first "
                    "(e.g. aws s3 cp / gsutil cp) and upload the result"
                )


def cache_dir() -> Path:
    """Where downloaded inputs and staged outputs live: ``$GEOHSI_CACHE_DIR`` or ``~/.cache/geohsi``."""
    return Path(os.environ.get("GEOHSI_CACHE_DIR") or Path.home() / ".cache" / "geohsi")


def _key(url: str) -> str:
    return hashlib.sha256(display(url).encode()).hexdigest()[:16]


def local_copy(url: str | os.PathLike, what: str = "input") -> Path:
    """A local copy of a URL input (a file, or a directory with its marker); a path is returned as is.

    The copy is kept in :func:`cache_dir` under a name derived from the URL and refreshed when the
    object's size or version (:func:`_version`; a directory: its marker's) changes.

    Args:
        url: the input.
        what: what it is, for messages.

    Returns:
        The local path.

    Raises:
        InputFormatError: missing, incomplete or unreadable.
    """
    if not is_url(url):
        return Path(url)
    url = str(url)
    fs, p = filesystem(url)
    with remote_errors(url, "read"):
        info = fs.info(p) if fs.exists(p) else None
    if info is None:
        raise InputFormatError(f"{what} {display(url)} does not exist; check the URL")
    directory = info.get("type") == "directory"
    if directory:
        check_complete(url, what)
        info = fs.info(f"{p.rstrip('/')}/{COMPLETE}")
    version = json.dumps([int(info.get("size") or 0), _version(info)])
    dest = cache_dir() / "inputs" / _key(url) / name(url)
    stamp_file = dest.parent / "stamp.json"
    if dest.exists() and stamp_file.is_file() and stamp_file.read_text() == version:
        return dest
    shutil.rmtree(dest.parent, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with remote_errors(url, "read"):
        if directory:  # both as lists: fsspec takes the names literally (no pattern expansion)
            keys = _files_under(fs, p)
            root = p.rstrip("/") + "/"
            fs.get(keys, [str(dest / k[len(root) :]) for k in keys])
        else:
            fs.get_file(p, str(dest))
    if directory:
        (dest / COMPLETE).unlink(missing_ok=True)
    stamp_file.write_text(version)
    return dest


def check_bucket(url: str) -> None:
    """Refuse a URL whose bucket does not exist or cannot be reached, in one line.

    Raises:
        OutputError: naming the bucket (missing) or the endpoint and credentials (unreachable, denied).
    """
    fs, p = filesystem(url)
    bucket = p.split("/", 1)[0]
    with remote_errors(url, "write", OutputError):
        try:
            fs.ls(bucket, refresh=True)  # unlike exists(), raises for an unreachable endpoint or denied access
            fs.invalidate_cache(bucket)  # the listing must not answer later exists() checks: the bucket changes
        except FileNotFoundError:
            raise OutputError(
                f"cannot write {display(url)}: bucket {bucket!r} does not exist; create it or fix the URL"
            ) from None


def check_remote_output(url: str, overwrite: bool) -> None:
    """Refuse a URL output that exists (without ``overwrite``) or a read-only scheme, before any work.

    Raises:
        UsageError: ``http(s)://`` outputs (read-only).
        OutputError: the output exists and ``overwrite`` is false, or the bucket cannot be reached.
    """
    if scheme(url) in {"http", "https"}:
        raise UsageError(f"cannot write to {display(url)}: http(s) URLs are read-only; write to s3://, gs:// or az://")
    check_bucket(url)
    fs, p = filesystem(url)
    with remote_errors(url, "write", OutputError):
        fs.invalidate_cache(p)
        if fs.exists(p) and not overwrite:
            raise OutputError(f"{display(url)} already exists; pass --overwrite to replace it or choose another --out")


def put(local: Path, url: str, *, overwrite: bool) -> None:
    """Upload a finished local output to ``url``: a file as one object, a directory with its marker last.

    Raises:
        OutputError: the store cannot be written (one line naming the URL).
    """
    fs, p = filesystem(url)
    p = p.rstrip("/")
    with remote_errors(url, "write", OutputError):
        fs.invalidate_cache(p)
        if not local.is_dir():
            if not overwrite and fs.exists(p):  # written by someone else since the command's first check
                raise OutputError(f"{display(url)} already exists; pass --overwrite to replace it")
            fs.put_file(str(local), p)
            return
        if fs.exists(p):
            if not overwrite:
                raise OutputError(f"{display(url)} already exists; pass --overwrite to replace it")
            if fs.exists(f"{p}/{COMPLETE}"):
                fs.rm_file(f"{p}/{COMPLETE}")  # first: readers refuse the directory from now on
            _rm_tree(fs, p)
        files = sorted(f for f in local.rglob("*") if f.is_file())
        fs.put([str(f) for f in files], [f"{p}/{f.relative_to(local).as_posix()}" for f in files])
        fs.pipe_file(f"{p}/{COMPLETE}", json.dumps({"files": len(files)}).encode())


def staging_path(url: str) -> Path:
    """The local path a URL output is written to before its upload (stable per URL, so a rerun resumes)."""
    return cache_dir() / "staging" / _key(url) / name(url)


@contextlib.contextmanager
def staged(outputs: Mapping[str, str | os.PathLike | None], overwrite: bool, *, upload: bool = True) -> Iterator[dict[str, Any]]:
    """Local stand-ins for a command's URL outputs, uploaded when the block succeeds.

    Every URL output is checked first (exists without ``overwrite``, bucket missing, read-only
    scheme); inside the block the command writes to local paths under :func:`staging_path` (the
    same per URL, so an interrupted run resumes there); on success each staged output (with the
    siblings the command wrote beside it, e.g. ``map.png``) is uploaded and the staging folder
    removed. Local paths and ``None`` pass through unchanged.

    Args:
        outputs: name → path or URL (or ``None``).
        overwrite: replace existing outputs.
        upload: upload when done (``False`` in processes that only help, e.g. DDP ranks other than 0).

    Yields:
        name → the path to write to.
    """
    remote = {k: str(v) for k, v in outputs.items() if v is not None and is_url(v)}
    for url in remote.values() if upload else ():
        check_remote_output(url, overwrite)
    local = {k: (staging_path(remote[k]) if k in remote else v) for k, v in outputs.items()}
    for k in remote:
        local[k].parent.mkdir(parents=True, exist_ok=True)
    yield local
    for k, url in remote.items() if upload else ():
        folder = local[k].parent
        base = url.rstrip("/").rsplit("/", 1)[0]
        items = [i for i in sorted(folder.iterdir()) if not i.name.startswith(".")]  # temporaries stay local
        for item in items:  # all of them before any upload: the command chose the ones beside the output as it ran
            check_remote_output(f"{base}/{item.name}", overwrite)
        for item in items:
            put(item, f"{base}/{item.name}", overwrite=overwrite)
        shutil.rmtree(folder, ignore_errors=True)


def as_given(log: Callable[[str], None], local: Mapping[str, Any], outputs: Mapping[str, Any]) -> Callable[[str], None]:
    """``log`` with each staged output's local path (:func:`staged`) named as the URL the user gave:
    ``train --out s3://b/run`` had ended with ``→ bundle ~/.cache/geohsi/staging/…``, a folder then deleted."""
    swaps = [(str(local[k]), display(v)) for k, v in outputs.items() if v is not None and is_url(v)]

    def said(message: str) -> None:
        for path, url in swaps:
            message = message.replace(path, url)
        log(message)

    return said if swaps else log


def as_path(path: str | os.PathLike) -> str | Path:
    """A URL kept as a string (``Path`` would fold its ``//``), anything else as a :class:`~pathlib.Path`."""
    return str(path) if is_url(path) else Path(path)


def stamp(path: str | os.PathLike) -> tuple[str, int, str]:
    """What identifies a file's version: its absolute path (a URL), size and mtime (ETag and last-modified time on
    object storage: the same bytes uploaded again are a new version)."""
    if not is_url(path):
        st = Path(path).stat()
        return absolute(path), st.st_size, str(st.st_mtime_ns)
    fs, p = filesystem(str(path))
    with remote_errors(str(path), "read"):
        info = fs.info(p)
    return absolute(path), int(info.get("size") or 0), _version(info)


def _version(info: Mapping[str, Any]) -> str:
    """An object's version from fsspec's ``info``: its ETag and last-modified time (the same bytes uploaded again
    are a new version)."""
    return f"{info.get('ETag') or info.get('etag') or ''}|{info.get('LastModified') or info.get('mtime') or ''}"


@contextlib.contextmanager
def open_raster(path: str | os.PathLike) -> Iterator[Any]:
    """``rasterio.open`` of a local file or of a URL through GDAL's virtual file systems (:func:`gdal_path`)."""
    import rasterio

    if not is_url(path):
        with rasterio.open(path) as src:
            yield src
        return
    with rasterio.Env(**gdal_options()), rasterio.open(gdal_path(str(path))) as src:
        yield src


def gdal_path(url: str) -> str:
    """The GDAL virtual path of a URL (``/vsis3/``, ``/vsigs/``, ``/vsiaz/``, ``/vsicurl/``)."""
    s = scheme(check_no_credentials(url))
    rest = url.split("://", 1)[1]
    prefix = {"s3": "/vsis3/", "gs": "/vsigs/", "gcs": "/vsigs/", "az": "/vsiaz/", "abfs": "/vsiaz/"}.get(s)
    return f"{prefix}{rest}" if prefix else f"/vsicurl/{url}"


def gdal_options() -> dict[str, str]:
    """GDAL configuration for object storage from the standard environment (the endpoint, never a key).

    GDAL reads ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_PROFILE`` itself; an S3-compatible
    endpoint given as ``AWS_ENDPOINT_URL`` (the botocore/s3fs variable) becomes GDAL's
    ``AWS_S3_ENDPOINT``/``AWS_HTTPS``/``AWS_VIRTUAL_HOSTING``.
    """
    opts = {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_USE_HEAD": "NO",
        "GDAL_HTTP_MAX_RETRY": "4",
        "GDAL_HTTP_RETRY_DELAY": "0.5",
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "AWS_S3_ENDPOINT" not in os.environ:
        secure = endpoint.startswith("https://")
        opts.update(
            AWS_S3_ENDPOINT=endpoint.split("://", 1)[-1].rstrip("/"),
            AWS_HTTPS="YES" if secure else "NO",
            AWS_VIRTUAL_HOSTING="FALSE",
        )
    return opts


__all__ = [
    "COMPLETE",
    "absolute",
    "as_given",
    "as_path",
    "open_raster",
    "stamp",
    "cache_dir",
    "check_bucket",
    "check_complete",
    "check_no_credentials",
    "check_remote_output",
    "display",
    "exists",
    "filesystem",
    "gdal_options",
    "gdal_path",
    "is_url",
    "join",
    "local_copy",
    "list_names",
    "local_only",
    "make_dirs",
    "read_text",
    "sibling",
    "with_suffix",
    "remove_tree",
    "write_text",
    "name",
    "read_bytes",
    "remote_errors",
    "staged",
    "staging_path",
    "put",
    "split_user_info",
]
