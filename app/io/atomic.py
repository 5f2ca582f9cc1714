"""Atomic saves that keep the previous version as a backup.

The new file is written to a temp file in the target's folder, flushed and fsync'ed, and renamed
over the target. The previous version is kept next to it as ``NAME~`` (as Krita does). A failure
at any point (an exception from the writer, a full disk, a crash) leaves the old file intact.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from app.io.errors import SaveError

log = logging.getLogger(__name__)


def backup_path(path: str | os.PathLike) -> Path:
    """Where the previous version of ``path`` is kept."""
    path = Path(path)
    return path.with_name(path.name + "~")


def atomic_save(
    path: str | os.PathLike, write: Callable[[Path], None], *, backup: bool = True
) -> None:
    """Call ``write(tmp_path)`` and move the result over ``path`` atomically.

    Raises :class:`SaveError` (old file untouched, temp file removed) when the folder is missing
    or read-only, the target is a folder, the disk is full, or ``write`` fails.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SaveError(f"Cannot save {path.name}: the folder {folder} does not exist.")
    if path.is_dir():
        raise SaveError(f"Cannot save: {path} is a folder.")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as err:
        raise SaveError(_describe(err, path, folder)) from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            handle.flush()
            os.fsync(handle.fileno())
        if backup and path.is_file():
            _keep_backup(path)
        _copy_permissions(path, tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, SaveError):
            raise
        if isinstance(err, Exception):
            raise SaveError(_describe(err, path, folder)) from err
        raise  # KeyboardInterrupt etc.: old file intact, temp removed
    _fsync_folder(folder)


def _keep_backup(path: Path) -> None:
    """Hard-link (or copy) the current file to ``NAME~``; a failure only loses the backup."""
    target = backup_path(path)
    staging = target.with_name(f".{target.name}.part")
    try:
        staging.unlink(missing_ok=True)
        try:
            os.link(path, staging)
        except OSError:
            shutil.copy2(path, staging)
        os.replace(staging, target)
    except OSError as err:
        staging.unlink(missing_ok=True)
        log.warning("could not keep a backup of %s: %s", path, err)


def _copy_permissions(old: Path, new: Path) -> None:
    try:
        if old.exists():
            shutil.copymode(old, new)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(new, 0o666 & ~umask)
    except OSError:
        pass


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _describe(err: BaseException, path: Path, folder: Path) -> str:
    if isinstance(err, OSError):
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"Could not save {path.name}: the disk is full. The previous version is intact."
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"Could not save {path.name}: the folder {folder} is read-only or not yours."
        return f"Could not save {path.name}: {err.strerror or err}"
    return f"Could not save {path.name}: {err}"
