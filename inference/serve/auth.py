"""The server's bearer token: generated on first start, stored with mode 0600, required on
every call (compared in constant time)."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

TOKEN_BYTES = 32


def default_token_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("impasto")) / "serve-token"


def load_or_create_token(path: Path) -> str:
    """The token in ``path``; a new random one (written 0600) when the file does not exist."""
    path = path.expanduser()
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if token:
        if os.name == "posix" and path.stat().st_mode & 0o077:
            log.warning("token file %s is readable by others; run chmod 600 on it", path)
        return token
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    log.warning("generated a new access token in %s", path)
    return token


def read_token_file(path: Path) -> str:
    """A client's token from a file (raises OSError / ValueError with a clear message)."""
    token = path.expanduser().read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return token


def authorised(header: str | None, token: str) -> bool:
    """True when ``header`` is ``Bearer <token>``."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())
