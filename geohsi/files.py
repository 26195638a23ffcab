"""Files: atomic outputs (write under a temporary sibling name, rename into place when complete) and
content digests.

Every output geohsi writes goes through :func:`atomic_output`, so an interrupted or failed command
never leaves a half-written file where a complete one is expected, and never replaces an existing
output unless asked to. :func:`file_sha256` is the one digest of a file's bytes (bundle integrity,
adapter weights, dataset downloads, the shipped backbone).

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from geohsi.errors import OutputError
from geohsi.storage import check_remote_output, display, is_url, name, put

# errnos that can only mean the output side failed: EACCES, EROFS, EDQUOT, ENOTDIR
_WRITE_ERRNOS = {errno.EACCES, errno.EROFS, errno.EDQUOT, errno.ENOTDIR}


def check_output(path: str | os.PathLike, overwrite: bool, *, directory: bool | None = None) -> Path:
    """Check that ``path`` may be written, before any work is done.

    Args:
        path: the final output path (file or directory store), or an object-storage URL
            (:func:`geohsi.storage.check_remote_output`).
        overwrite: whether an existing output may be replaced.
        directory: the output is a directory (``True``) or a file (``False``): an existing output of
            the other kind is refused even with ``overwrite`` (``None``: not checked here;
            :func:`atomic_output` refuses it before replacing anything).

    Returns:
        The path as a :class:`~pathlib.Path` (a URL: as given).

    Raises:
        OutputError: the output exists and ``overwrite`` is false, or is of the other kind, or its
            directory is not writable.
    """
    if is_url(path):
        check_remote_output(str(path), overwrite)
        return path  # type: ignore[return-value]  # a URL stays a string: Path() would fold its '//'
    p = Path(path)
    # its nearest folder that exists (only it can be a file); the ones below are made when the output is written
    existing = next(a for a in p.absolute().parents if a.exists())
    if not existing.is_dir():
        raise OutputError(f"cannot write {p}: {existing} is a file, not a directory; choose another --out")
    if p.exists() and directory is not None and p.is_dir() != directory:
        _refuse_other_kind(p)
    if overwrite and directory and p.is_dir():
        _refuse_foreign_folder(p)
    if p.exists() and not overwrite:
        raise OutputError(f"{p} already exists; pass --overwrite to replace it or choose another --out")
    if not os.access(existing, os.W_OK):
        raise OutputError(f"output directory {existing} is not writable; choose a writable --out")
    return p


def check_not_an_input(
    outputs: Sequence[str | os.PathLike], inputs: Iterable[str | os.PathLike | None], *, option: str = "--out"
) -> None:
    """Refuse an output that is one of the command's inputs, even with ``--overwrite`` (it would be
    replaced by what was computed from it: ``assess --reference labels.csv --out labels.json
    --overwrite`` had written its error matrix over the labelled points).

    Args:
        outputs: every file the command writes (the first is the one ``option`` names).
        inputs: the files and stores it reads (``None`` entries are skipped).
        option: the option that names the outputs.

    Raises:
        UsageError: an output is an input.
    """
    from geohsi.errors import UsageError
    from geohsi.storage import absolute

    o = input_among(outputs, inputs)
    if o is not None:
        beside = "" if absolute(o) == absolute(outputs[0]) else f" writes {o} beside it, which"
        raise UsageError(f"{option} {outputs[0]}{beside} is also an input; write the output under another name")


def input_among(outputs: Sequence[str | os.PathLike], inputs: Iterable[str | os.PathLike | None]) -> str | os.PathLike | None:
    """The first of ``outputs`` that is one of ``inputs`` (``None`` entries skipped), compared as absolute paths or URLs."""
    from geohsi.storage import absolute

    read = {absolute(p) for p in inputs if p is not None}
    return next((o for o in outputs if absolute(o) in read), None)


def make_parent(path: Path) -> None:
    """Create ``path``'s folder (and the folders above it) when an output is about to be written there.

    Raises:
        OutputError: it cannot be created.
    """
    try:
        path.absolute().parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"cannot create output directory {path.absolute().parent}: {e.strerror or e}; choose a writable --out"
        ) from e


#: Files at the root of every directory output geohsi writes: Zarr stores (v3, v2), bundles and adapters.
_STORE_MARKERS = ("zarr.json", ".zgroup", ".zarray", "bundle.json", "adapter.json")


def check_outside_stores(outputs: Sequence[str | os.PathLike], *, option: str = "--out") -> None:
    """Refuse a file output inside a bundle or a store: a bundle hashes its files, so ``evaluate --out
    run/metrics.json --overwrite`` had replaced the bundle's own metrics and left it unreadable.

    Raises:
        UsageError: naming the output, the bundle or store, and the fix.
    """
    from geohsi.errors import UsageError
    from geohsi.storage import is_url

    for o in outputs:
        if is_url(o):
            continue
        for folder in Path(o).absolute().parents:
            if any((folder / m).is_file() for m in _STORE_MARKERS):
                kind = "bundle" if (folder / "bundle.json").is_file() or (folder / "adapter.json").is_file() else "store"
                raise UsageError(f"{option} {o} is inside the {kind} {folder}; write it beside the {kind}")


def _refuse_foreign_folder(folder: Path) -> None:
    """Refuse to replace ``folder`` unless it is empty or a store of the kinds geohsi writes.

    A folder of the user's files (the inputs' folder given as ``--out`` by mistake) is never removed.
    """
    if folder.is_symlink() or not any(folder.iterdir()) or any((folder / m).is_file() for m in _STORE_MARKERS):
        return
    raise OutputError(
        f"{folder} is a folder of other files, not a store geohsi writes (a Zarr store or a bundle); "
        "--overwrite replaces only those: choose another --out"
    )


def _refuse_other_kind(p: Path) -> None:
    have, want = ("a directory", "a file") if p.is_dir() else ("a file", "a directory")
    raise OutputError(
        f"{p} is {have} and this output is {want}; --overwrite replaces an output only with one of its kind: choose another --out"
    )


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        with contextlib.suppress(OSError):
            p.unlink()


@contextlib.contextmanager
def joined_dask_threads() -> Iterator[None]:
    """Run the Dask computations inside on local threads of a private pool, drained on the way out.

    The computations use the threaded scheduler even where a distributed client is the default
    (they write local files next to the caller). Dask's local scheduler lets the tasks already running in its threads finish after Ctrl-C or
    SIGTERM reaches the main thread; without the drain they would go on writing chunks into a
    temporary output that :func:`atomic_output` has just removed. Use it inside ``atomic_output``
    around a ``compute``/``to_zarr`` that writes into the temporary path.
    """
    from concurrent.futures import ThreadPoolExecutor

    import dask

    pool = ThreadPoolExecutor(max_workers=max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))
    try:
        with dask.config.set(scheduler="threads", pool=pool):
            yield
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _drain_zarr_io()


def _drain_zarr_io(timeout: float = 30.0) -> None:
    """Wait for the writes zarr still has in flight on its I/O event loop.

    zarr 3 runs every store operation as a coroutine on one background loop; a thread interrupted
    while waiting on one (the main thread writing metadata when SIGTERM arrives) leaves it running,
    and it would recreate files in a temporary output that is about to be removed.
    """
    import asyncio

    try:
        from zarr.core import sync
    except ImportError:  # pragma: no cover - zarr 2 has no such loop
        return
    loop = getattr(sync, "loop", [None])[0] if isinstance(getattr(sync, "loop", None), list) else getattr(sync, "loop", None)
    if loop is None or not loop.is_running():
        return

    async def others() -> None:
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(others(), loop).result(timeout + 5)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success, rename it onto ``path``.

    On any exception (including ``KeyboardInterrupt``) the temporary output is removed and an
    existing ``path`` is left untouched.

    Args:
        path: the final output path; or an object-storage URL: the temporary is then local and
            uploaded in one piece when complete (a directory with its completion marker last).
        overwrite: whether an existing output may be replaced.

    Yields:
        The temporary path to write to (same directory, so the rename is atomic on one filesystem).

    Raises:
        OutputError: see :func:`check_output`; also when the write fails for lack of space.
    """
    if is_url(path):
        with _remote_output(str(path), overwrite) as tmp:
            yield tmp
        return
    final = check_output(path, overwrite)
    make_parent(final)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
    except OSError as e:
        _remove(tmp)
        if e.errno == errno.ENOSPC:
            raise OutputError(f"no space left while writing {final}; free disk space or choose another --out") from e
        if e.errno in _WRITE_ERRNOS or (e.filename and str(e.filename).startswith(str(tmp))):
            raise OutputError(f"cannot write {final}: {e.strerror or e}; check the path and its permissions") from e
        raise  # an input-side error (e.g. a truncated source file): let the caller's message stand
    except BaseException:
        _remove(tmp)
        raise
    if not tmp.exists():
        raise OutputError(f"nothing was written for {final}")
    if final.exists() and final.is_dir() != tmp.is_dir():
        _remove(tmp)  # a file never replaces a directory (a bundle, a scene store) nor the other way round
        _refuse_other_kind(final)
    if final.is_dir():
        try:
            _refuse_foreign_folder(final)
        except OutputError:
            _remove(tmp)
            raise
    if final.exists():
        # Move the old output aside first so that at every instant one complete output exists.
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
        os.replace(tmp, final)
        _remove(old)
    else:
        os.replace(tmp, final)


@contextlib.contextmanager
def _remote_output(url: str, overwrite: bool) -> Iterator[Path]:
    """:func:`atomic_output` of a URL: written to a local temporary, uploaded when complete (:func:`geohsi.storage.put`)."""
    import tempfile

    check_remote_output(url, overwrite)
    folder = Path(tempfile.mkdtemp(prefix="geohsi-upload-"))
    tmp = folder / name(url)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"nothing was written for {display(url)}")
        put(tmp, url, overwrite=overwrite)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def save_safetensors(tensors: dict[str, Any], path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` as a safetensors file readable as any file the user writes (safetensors creates
    its files with mode 0600: a backbone shared with a team would be unreadable to it).

    Args:
        tensors: name → contiguous tensor.
        path: the file (inside :func:`atomic_output`: its temporary path).
        metadata: string metadata stored in the header.
    """
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, _new_file_mode())


def _new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the process's umask (read from
    ``/proc`` where it can be, so no other thread ever runs under a changed umask)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_output`.

    Args:
        path: the final file.
        data: its content.
        overwrite: replace an existing file.

    Returns:
        The path.

    Raises:
        OutputError: see :func:`check_output`.
    """
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return path if is_url(path) else Path(path)  # type: ignore[return-value]  # a URL stays a string


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in ``chunk``-byte blocks (constant memory).

    Args:
        path: the file.
        chunk: block size in bytes.

    Returns:
        The 64-character hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


__all__ = [
    "atomic_output",
    "check_not_an_input",
    "check_output",
    "file_sha256",
    "joined_dask_threads",
    "make_parent",
    "write_bytes_atomic",
]
