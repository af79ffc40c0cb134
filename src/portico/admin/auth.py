"""Who may use the admin over TCP: the password, API tokens and browser sessions.

Nothing here has a default. The password is set with ``portico admin passwd`` and kept
as an argon2 hash (argon2-cffi); API tokens are random, shown once, kept as a SHA-256
hash (they carry 256 bits: a slow hash adds nothing), scoped (read/operate/admin) and
expiring. All of it lives in the instance's admin state directory (0700, files 0600).
Sessions are in memory: a restart signs everyone out.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portico.admin.endpoints import SCOPES

if TYPE_CHECKING:
    from argon2 import PasswordHasher

PASSWORD_FILE = "password"
TOKENS_FILE = "tokens.json"
TOKEN_PREFIX = "ptk_"
SESSION_COOKIE = "__Host-portico-session"
ONE_TIME_TTL = 120.0  # seconds a `portico ui` sign-in link works
# argon2id at OWASP's recommended floor (19 MiB, 2 passes, 1 lane) rather than argon2-cffi's
# default (64 MiB, 4 lanes): each sign-in runs in the serving process, which keeps ~30 MiB.
ARGON2_TIME, ARGON2_MEMORY_KIB, ARGON2_LANES = 2, 19 * 1024, 1


def write_private(path: Path, text: str) -> None:
    """Write ``text`` whole, mode 0600 (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=ARGON2_TIME, memory_cost=ARGON2_MEMORY_KIB,
                          parallelism=ARGON2_LANES)


def set_password(directory: Path, password: str) -> None:
    if len(password) < 8:
        raise ValueError("the admin password must have at least 8 characters")
    write_private(directory / PASSWORD_FILE, _hasher().hash(password) + "\n")


def check_password(directory: Path, password: str) -> bool:
    """True if ``password`` matches the one set; False (never an error) if none is set."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        stored = (directory / PASSWORD_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    try:
        return _hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def has_password(directory: Path) -> bool:
    return (directory / PASSWORD_FILE).is_file()


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    scope: str
    hash: str  # SHA-256 of the whole secret, hex
    created: float
    expires: float | None

    def public(self) -> dict[str, Any]:
        row = asdict(self)
        del row["hash"]
        row["expired"] = self.expired()
        return row

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (now or time.time()) >= self.expires


def load_tokens(directory: Path) -> list[Token]:
    try:
        rows = json.loads((directory / TOKENS_FILE).read_text(encoding="utf-8"))
        return [Token(**row) for row in rows]
    except (OSError, ValueError, TypeError):
        return []


def _save_tokens(directory: Path, tokens: list[Token]) -> None:
    write_private(directory / TOKENS_FILE, json.dumps([asdict(t) for t in tokens], indent=2))


def create_token(
    directory: Path, name: str, scope: str, expires_in: float | None
) -> tuple[Token, str]:
    """A new token and its secret (shown once, never stored)."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r}: use one of {', '.join(SCOPES)}")
    if expires_in is not None and expires_in <= 0:
        raise ValueError("expires_in must be a positive number of seconds")
    token_id = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    now = time.time()
    token = Token(token_id, name, scope, _digest(secret), round(now, 3),
                  round(now + expires_in, 3) if expires_in else None)
    _save_tokens(directory, [*load_tokens(directory), token])
    return token, secret


def revoke_token(directory: Path, token_id: str) -> bool:
    tokens = load_tokens(directory)
    kept = [t for t in tokens if t.id != token_id]
    if len(kept) == len(tokens):
        return False
    _save_tokens(directory, kept)
    return True


def verify_token(directory: Path, secret: str) -> Token | None:
    """The live token whose secret this is, else None (unknown, revoked, expired)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token_id = secret[len(TOKEN_PREFIX):].split("_", 1)[0]
    digest = _digest(secret)
    for token in load_tokens(directory):
        if token.id == token_id and hmac.compare_digest(token.hash, digest):
            return None if token.expired() else token
    return None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Session:
    actor: str
    scope: str
    last_used: float


class Sessions:
    """Browser sessions (cookie ``__Host-portico-session``) and one-time sign-in tokens."""

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self._sessions: dict[str, Session] = {}
        self._one_time: dict[str, float] = {}  # digest -> expiry

    def open(self, actor: str, scope: str) -> str:
        sid = secrets.token_urlsafe(32)
        self._sessions[_digest(sid)] = Session(actor, scope, time.monotonic())
        return sid

    def get(self, sid: str) -> Session | None:
        key = _digest(sid)
        session = self._sessions.get(key)
        now = time.monotonic()
        if session is None:
            return None
        if now - session.last_used > self.idle_timeout:
            del self._sessions[key]
            return None
        session.last_used = now
        return session

    def close(self, sid: str) -> None:
        self._sessions.pop(_digest(sid), None)

    def one_time(self) -> str:
        """A sign-in token for `portico ui`: works once, for ONE_TIME_TTL seconds."""
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        self._one_time = {k: v for k, v in self._one_time.items() if v > now}
        self._one_time[_digest(token)] = now + ONE_TIME_TTL
        return token

    def redeem(self, token: str) -> bool:
        expiry = self._one_time.pop(_digest(token), None)
        return expiry is not None and expiry > time.monotonic()


def cookie_header(sid: str, max_age: float | None = None, secure: bool = True) -> str:
    """``__Host-`` cookies must be Secure, Path=/ and have no Domain; browsers accept
    Secure cookies from http://127.0.0.1 and http://localhost (potentially trustworthy)."""
    parts = [f"{SESSION_COOKIE}={sid}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    return "; ".join(parts)


def clear_cookie() -> str:
    return cookie_header("", max_age=0)


def forget_password(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory / PASSWORD_FILE).unlink()
