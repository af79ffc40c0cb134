"""``basic_auth`` of a route: users and argon2 password hashes (schema and plan; the
gate is ``proxy/auth.py``, the check ``policy/basic_auth.py``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

from portico.config.access_plans import BasicAuthPlan


class BasicAuth(BaseModel):
    """``basic_auth`` in a ``[[route]]``: HTTP basic auth before anything is forwarded
    (401 with a challenge otherwise). Use it over https only: the password crosses the
    wire in every request."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    realm: str = "portico"
    """Shown by the browser's login prompt."""
    users: dict[str, str]
    """User name → argon2 hash, as ``portico passwd`` prints it."""

    @field_validator("users")
    @classmethod
    def _hashes(cls, users: dict[str, str]) -> dict[str, str]:
        if not users:
            raise ValueError("basic_auth needs at least one user")
        for name, hashed in users.items():
            if ":" in name or not name:
                raise ValueError(f"invalid user name {name!r}: no ':' and not empty")
            if not hashed.startswith("$argon2"):
                raise ValueError(
                    f"user {name!r}: the password must be an argon2 hash, as `portico "
                    "passwd` prints it (never the password itself)")
        return users

    @field_validator("realm")
    @classmethod
    def _realm(cls, realm: str) -> str:
        if any(c in realm for c in "\r\n\x00") or not realm.isprintable():
            raise ValueError("the realm must be printable text on one line")
        return realm



def basic_auth_plan(auth: BasicAuth | None) -> BasicAuthPlan | None:
    return None if auth is None else BasicAuthPlan(auth.realm, dict(auth.users))
