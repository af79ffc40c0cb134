"""``access`` of a route: IP allow and deny lists (schema and plan; the filter is
``proxy/access.py``)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, field_validator

from portico.config.access_plans import AccessPlan


class Access(BaseModel):
    """``access`` in a ``[[route]]``: which client addresses may use the route (403 for
    the others). The client is the peer, or the address a ``trusted_proxies`` peer
    forwarded (X-Forwarded-For)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    allow: list[str] = []
    """CIDRs or addresses allowed; when given, every other client is refused."""
    deny: list[str] = []
    """CIDRs or addresses refused, even when ``allow`` names them."""

    @field_validator("allow", "deny")
    @classmethod
    def _cidrs(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(
                    f"invalid CIDR {cidr!r}: use an address or network like \"10.0.0.0/8\""
                ) from None
        return cidrs



def access_plan(access: Access) -> AccessPlan | None:
    return AccessPlan(list(access.allow), list(access.deny)) if (
        access.allow or access.deny) else None

