"""``[admin]``: the admin API's TCP listener and its bounds (admin/, docs/guide/admin.md).

By default the API and the UI answer only on the control socket (0600, the owner's).
A TCP listener is opened only when ``listen`` is set; one bound beyond loopback must
be ``https://`` (with ``cert`` and ``key``): every TCP request is authenticated (a
password set with ``portico admin passwd``, or an API token), never a default one.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from portico.admin.plan import AdminPlan
from portico.config.units import Duration, Size


class Admin(BaseModel):
    """``[admin]``: the admin API and web UI (docs/guide/admin.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    listen: str | None = None
    """A TCP address for the API and UI besides the control socket, e.g.
    ``"http://127.0.0.1:9090"``. Beyond loopback it must be ``https://`` with ``cert``
    and ``key``. Every TCP request needs a session (``portico admin passwd``) or a token."""
    allowed_hosts: list[str] = []
    """Host header values accepted on the TCP listener besides localhost, 127.0.0.1
    and [::1] (DNS-rebinding guard); e.g. the name a TLS listener is reached by."""
    cert: str | None = None
    """PEM certificate of an ``https://`` admin listener."""
    key: str | None = None
    """PEM private key of an ``https://`` admin listener."""
    client_ca: str | None = None
    """PEM CAs for an ``https://`` admin listener that also requires a client
    certificate signed by one of them (mutual TLS), before any password or token."""
    history: int = Field(10, ge=1, le=1000)
    """How many applied configs are kept (who, when, diff) for rollback."""
    watch: Duration = 10.0
    """After a config apply, how long the changed routes are watched; if one goes
    unhealthy the previous config is put back. 0 turns the watch off."""
    max_body_size: Size = 1 << 20
    """Largest admin request body (a config text); larger ones get 413."""
    request_timeout: Duration = 30.0
    """Longest an admin request may take to arrive and be answered."""
    session_timeout: Duration = 1800.0
    """Idle time after which a browser session ends."""

    @model_validator(mode="after")
    def _safe_listener(self) -> Admin:
        if self.client_ca and not (self.listen or "").startswith("https://"):
            raise ValueError("client_ca is for an https:// admin listen address")
        if self.listen is None:
            if self.cert or self.key:
                raise ValueError("cert and key are for an https:// admin listen address")
            return self
        parts = urlsplit(self.listen)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
            raise ValueError(f"listen {self.listen!r}: use http://HOST:PORT or "
                             "https://HOST:PORT")
        if parts.scheme == "https" and not (self.cert and self.key):
            raise ValueError("an https:// admin listener needs cert and key")
        if parts.scheme == "http" and (self.cert or self.key):
            raise ValueError("cert and key are set but listen is http://; use https://")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError(
                f"listen {self.listen!r} is reachable from other machines: a non-loopback "
                "admin listener must be https:// (cert and key); it always requires auth"
            )
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def admin_plan(admin: Admin, base_dir: Path) -> AdminPlan:
    return AdminPlan(
        listen=admin.listen,
        allowed_hosts=list(admin.allowed_hosts),
        cert=base_dir / admin.cert if admin.cert else None,
        key=base_dir / admin.key if admin.key else None,
        client_ca=base_dir / admin.client_ca if admin.client_ca else None,
        history=admin.history,
        watch=admin.watch,
        max_body_size=admin.max_body_size,
        request_timeout=admin.request_timeout,
        session_timeout=admin.session_timeout,
    )
