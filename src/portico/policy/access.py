"""IP allow and deny lists of a route, on the trusted client address.

The address tested is the peer's, unless the peer is a trusted proxy
(``trusted_proxies``): then X-Forwarded-For is read from the right, skipping
trusted hops, and the first untrusted address is the client (werkzeug
ProxyFix's rule, without a fixed count). A client cannot pick its address by
sending X-Forwarded-For itself: from an untrusted peer the field is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from portico.policy.forwarded import IPNetwork, Trust


class AddressRules:
    """``deny`` first, then ``allow`` (when given, everything else is refused)."""

    __slots__ = ("_allow", "_cache", "_deny")

    def __init__(self, allow: Sequence[str], deny: Sequence[str]) -> None:
        self._allow: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(c, strict=False) for c in allow)
        self._deny: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(c, strict=False) for c in deny)
        self._cache: dict[str, bool] = {}

    def permits(self, address: str) -> bool:
        known = self._cache.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False  # an unknown or garbled address is never let in by a list
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        permitted = not any(ip in net for net in self._deny) and (
            not self._allow or any(ip in net for net in self._allow))
        if len(self._cache) < 4096:
            self._cache[address] = permitted
        return permitted


def client_address(peer: str, forwarded_for: Sequence[bytes], trust: Trust) -> str:
    """The client's address: the peer's, or from X-Forwarded-For via trusted peers only."""
    if not trust.trusts(peer):
        return peer
    hops = [hop.strip().decode("latin-1") for value in forwarded_for
            for hop in value.split(b",")]
    for hop in reversed(hops):
        if not trust.trusts(hop):
            return hop
    return hops[0] if hops else peer
