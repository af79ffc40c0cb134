"""HTTP basic auth (RFC 7617) against argon2id password hashes.

A hash check costs tens of milliseconds of CPU by design, which a proxy worker
cannot spend on every request: a credential that verified once is remembered
(by a keyed SHA-256 of the header, never the password itself) for
``REMEMBER`` seconds, so a logged-in client costs one dictionary look-up. Each
new wrong password still costs one check; a brute-force attempt is better
stopped in front (``access`` lists, a firewall).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from typing import Final

REMEMBER: Final = 300.0
_MAX_REMEMBERED: Final = 4096


def make_hash(password: str) -> str:
    """An argon2id hash (OWASP's minimum: 19 MiB, 2 passes) for ``portico passwd``."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1).hash(password)


def challenge(realm: str) -> bytes:
    escaped = realm.replace("\\", "\\\\").replace('"', '\\"')
    return f'Basic realm="{escaped}", charset="UTF-8"'.encode()


class BasicAuth:
    """Checks an Authorization header against a user → argon2 hash table."""

    __slots__ = ("_hasher", "_key", "_remembered", "_users")

    def __init__(self, users: Mapping[str, str]) -> None:
        from argon2 import PasswordHasher

        self._users = dict(users)
        self._hasher = PasswordHasher()
        self._key = os.urandom(32)
        self._remembered: dict[bytes, float] = {}

    def permits(self, authorization: bytes, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        digest = hmac.new(self._key, authorization, hashlib.sha256).digest()
        until = self._remembered.get(digest)
        if until is not None and until > now:
            return True
        user, password = _credentials(authorization)
        if user is None or password is None:
            return False
        stored = self._users.get(user)
        if stored is None:
            return False
        from argon2.exceptions import Argon2Error, InvalidHashError

        try:
            self._hasher.verify(stored, password)
        except (Argon2Error, InvalidHashError):
            return False
        if len(self._remembered) >= _MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[digest] = now + REMEMBER
        return True


def _credentials(authorization: bytes) -> tuple[str | None, str | None]:
    scheme, _, token = authorization.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None, None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else (None, None)
