"""Typed file errors. Every failure to open or save a file is a :class:`FileError` whose message
a person can read and act on; callers show ``str(err)`` and keep the open document untouched."""

from __future__ import annotations


class FileError(Exception):
    """Base of every error raised by opening, saving, importing or exporting a file."""


class OpenError(FileError):
    """A file could not be read (missing, unreadable, damaged, unsupported)."""


class SaveError(FileError):
    """A file could not be written; the previous version of the target is intact."""


class UnsupportedFormatError(FileError):
    """The file name's extension names a format Impasto cannot open or write."""


class CorruptFileError(OpenError):
    """The file exists but its content is damaged, truncated or not what its name says."""


class UnsafeFileError(OpenError):
    """The file is refused because reading it could harm the machine (escape, bomb, absurd size)."""


class ZipSlipError(UnsafeFileError):
    """An archive entry's path escapes the archive (``..``, absolute path, drive letter)."""


class ZipBombError(UnsafeFileError):
    """An archive declares or expands to an unreasonable size or number of entries."""


class LayerBoundsError(UnsafeFileError):
    """A layer or canvas has an absurd size or offset."""
