"""The geohsi error hierarchy.

Every error geohsi raises on purpose is a :class:`GeohsiError` whose message is a single line that
names the file or value at fault, the problem and the fix. The CLI prints that line (no traceback
unless ``--debug``) and exits with the subclass's ``exit_code``.

.. versionadded:: 0.1
"""

from __future__ import annotations


class GeohsiError(Exception):
    """Base class of every error geohsi raises deliberately.

    Attributes:
        exit_code: the process exit status the CLI uses for this kind of error.
    """

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        # One line, always: multi-line messages are folded so the CLI contract holds.
        super().__init__(" ".join(str(message).split()))


class UsageError(GeohsiError):
    """A flag, option value or configuration is invalid (bad split string, window size, …)."""

    exit_code = 2


class InputFormatError(GeohsiError):
    """An input file is missing, unreadable, truncated, or of an unknown/unsupported format."""

    exit_code = 3


class GeoreferenceError(GeohsiError):
    """CRS, transform or grid metadata is missing or inconsistent (mixed CRS tiles, off-grid labels)."""

    exit_code = 4


class BandMismatchError(GeohsiError):
    """Bands or wavelengths do not match what a stage needs (band count, PCA width, S2 coverage)."""

    exit_code = 5


class ModelError(GeohsiError):
    """A checkpoint, adapter or bundle is invalid, corrupted, or belongs to another backbone."""

    exit_code = 6


class ClusterError(GeohsiError):
    """The Dask cluster cannot be reached or the distributed computation failed."""

    exit_code = 7


class OutputError(GeohsiError):
    """An output cannot be written: it exists without ``--overwrite``, or is not writable, or the disk is full."""

    exit_code = 8


class DataError(GeohsiError):
    """The data's content is unusable: no valid pixels, no labels, too few samples of a class."""

    exit_code = 9


class BatchError(GeohsiError):
    """Some scenes of a batch failed (each with its own error in the batch's ``summary.json``); the others were mapped."""

    exit_code = 10


class GeohsiWarning(UserWarning):
    """Something a user should know but that does not stop the command (a band table that looks odd,
    a scene unlike the model's training data). One line naming the file, the problem and the likely fix;
    the CLI prints it as ``geohsi: warning: …``.
    """


__all__ = [
    "GeohsiError",
    "GeohsiWarning",
    "UsageError",
    "InputFormatError",
    "GeoreferenceError",
    "BandMismatchError",
    "ModelError",
    "ClusterError",
    "OutputError",
    "DataError",
    "BatchError",
]
