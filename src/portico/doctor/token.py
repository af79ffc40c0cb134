"""The doctor's per-run secret: made by ``portico run``, handed to hosted apps in their
environment, and left in the runtime directory (0700, the file 0600) for ``portico
doctor``. Nobody else can mark a request, so a client cannot make an app answer with
what it sees."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from portico.doctor.hook import TOKEN_ENV


def token_file(runtime_dir: Path, key: str) -> Path:
    return runtime_dir / f"{key}.doctor"


def publish_token(runtime_dir: Path, key: str) -> str:
    """A fresh secret for this run: in ``os.environ`` (so every app started from now on
    inherits it) and in the runtime directory (so ``portico doctor`` can send it)."""
    token = secrets.token_urlsafe(24)
    os.environ[TOKEN_ENV] = token
    path = token_file(runtime_dir, key)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    return token


def read_token(runtime_dir: Path, key: str) -> str | None:
    try:
        return token_file(runtime_dir, key).read_text().strip() or None
    except OSError:
        return None
