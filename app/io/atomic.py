"""Atomic saves that keep the previous version as a backup.

The new file is written to a temp file in the target's folder, flushed and fsync'ed, and renamed
over the target. The previous version is kept next to it as ``NAME~`` (as Krita does). A failure
at any point (an exception from the writer, a full disk, a crash) leaves the old file intact.

Saving to a symbolic link saves through it to its target (as editors do), so the link stays a
link and ``NAME~`` is a real file. A killed save leaves its temp file (``.NAME.XXXXXXXX.part``)
behind; the next save into that folder removes temp files of this naming that are older than
a minute and not locked (a save in progress holds ``flock`` on its temp file on POSIX).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from app.io.errors import SaveError

log = logging.getLogger(__name__)


def backup_path(path: str | os.PathLike) -> Path:
    """Where the previous version of ``path`` is kept."""
    path = Path(path)
    return path.with_name(path.name + "~")


def atomic_save(
    path: str | os.PathLike, write: Callable[[Path], object], *, backup: bool = True
) -> None:
    """Call ``write(tmp_path)`` and move the result over ``path`` atomically.

    Raises :class:`SaveError` (old file untouched, temp file removed) when the folder is missing
    or read-only, the target is a folder, the disk is full, or ``write`` fails.
    """
    path = _through_links(Path(path))
    folder = path.parent if str(path.parent) else Path(".")
    try:
        if not folder.is_dir():
            raise SaveError(f"Cannot save {path.name}: the folder {folder} does not exist.")
        if path.is_dir():
            raise SaveError(f"Cannot save: {path} is a folder.")
        remove_stale_parts(folder)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as err:
        raise SaveError(_describe(err, path, folder)) from err
    tmp = Path(tmp_name)
    _hold_lock(fd)  # released when fd closes: marks the temp file as in use
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
    finally:
        os.close(fd)
    _fsync_folder(folder)


def _through_links(path: Path) -> Path:
    """The file a save to ``path`` must replace: the final target when it is a symbolic link."""
    if not path.is_symlink():
        return path
    try:
        return Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:  # a dangling link: create its target
        return Path(os.path.realpath(path))
    except (OSError, RuntimeError) as err:  # ELOOP
        raise SaveError(f"Cannot save {path.name}: it is a symbolic link that loops.") from err


_PART = re.compile(r"\..+(\.[a-z0-9_]{8}|~)\.part\Z")
STALE_PART_SECONDS = 60.0


def remove_stale_parts(
    folder: Path, min_age_seconds: float = STALE_PART_SECONDS, *, of: str | None = None
) -> int:
    """Delete temp files of our naming left in ``folder`` by killed saves: only those older than
    ``min_age_seconds`` that no save holds locked (only those of the file named ``of``, if
    given). Returns how many were removed."""
    removed = 0
    prefix = None if of is None else f".{of}"
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    now = time.time()
    for entry in entries:
        if not _PART.match(entry.name):
            continue
        if (
            prefix is not None
            and entry.name not in (f"{prefix}~.part",)
            and not (entry.name.startswith(prefix + ".") and len(entry.name) == len(prefix) + 14)
        ):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime < min_age_seconds:
                continue
            if _locked(entry.path):
                continue
            os.unlink(entry.path)
            removed += 1
        except OSError as err:
            log.debug("could not remove the stale temp file %s: %s", entry.path, err)
    if removed:
        log.info("removed %d temp file(s) left by interrupted saves in %s", removed, folder)
    return removed


def _hold_lock(fd: int) -> None:
    if os.name != "posix":
        return  # Windows locks would block the writer's own handle; age alone decides there
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _locked(file: str) -> bool:
    if os.name != "posix":
        return False
    import fcntl

    fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the lock just taken
    return False


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
