"""The one atomic file writer of ``inference/``: temp file in the same folder, fsync, rename.

A reader never sees half a file; a failed write leaves the old file (or nothing) in place and
removes its temp file. The new file gets the permissions an ordinary ``open()`` would give it
(``0666`` less the umask, or the old file's mode), not ``mkstemp``'s private ``0600``. Saving
through a symbolic link writes the link's target and keeps the link. Errors are ``OSError`` naming
the real target, never the temp file.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"
_NAME_MAX = 255
_umask_lock = threading.Lock()

Writer = Callable[[BinaryIO], object]


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:  # elsewhere: set and restore, under a lock
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def check_writable_target(path: str | os.PathLike[str]) -> Path:
    """Raise ``OSError`` (naming ``path``) when ``path`` clearly cannot be written as a file:
    a folder, a name too long for the file system, a missing or read-only folder."""
    target = _resolve(Path(path))
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
    if len(os.fsencode(target.name)) > _NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, "file name too long", str(path))
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "the folder does not exist", str(folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "the folder is not writable", str(folder))
    if target.exists() and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, "the file is read-only", str(path))
    return target


def write_atomic(path: str | os.PathLike[str], data: bytes | Writer) -> Path:
    """Write ``data`` (bytes, or a function writing to a binary handle) to ``path`` atomically.

    Returns the path written (the link target when ``path`` is a symbolic link)."""
    target = _resolve(Path(path))
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~current_umask()
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name[:48]}.", suffix=TEMP_SUFFIX, dir=target.parent
        )
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as error:
        raise OSError(error.errno, error.strerror or str(error), str(path)) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return target


def write_atomic_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_atomic(path, text.encode("utf-8"))


def _resolve(path: Path) -> Path:
    """Through a symbolic link to the file it names (a dangling link's target is created)."""
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path
