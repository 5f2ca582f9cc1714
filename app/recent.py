"""The recent-files list, kept as a small JSON file beside the settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from app.io.atomic import atomic_save

log = logging.getLogger(__name__)
MAX_RECENT = 10


class RecentFiles:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.paths: list[str] = self._load()

    def _load(self) -> list[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as err:
            log.warning("ignoring unreadable recent-files list %s: %s", self.path, err)
            return []
        return (
            [p for p in data if isinstance(p, str) and p and "\0" not in p][:MAX_RECENT]
            if isinstance(data, list)
            else []
        )

    def add(self, path: str | Path) -> None:
        text = _absolute(path)
        self.paths = [text, *(p for p in self.paths if p != text)][:MAX_RECENT]
        self._save()

    def remove(self, path: str | Path) -> None:
        text = _absolute(path)
        if text in self.paths:
            self.paths.remove(text)
            self._save()

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = json.dumps(self.paths, indent=1).encode("utf-8")
            atomic_save(self.path, lambda tmp: tmp.write_bytes(data), backup=False)
        except Exception as err:  # a lost recent list must never break opening or saving
            log.warning("could not save the recent-files list: %s", err)


def _absolute(path: str | Path) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):  # a symbolic link loop: keep the name as given
        return str(Path(path).absolute())
