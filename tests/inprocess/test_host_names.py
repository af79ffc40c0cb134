"""Issue 17's Host case: an RFC 3986 reg-name with sub-delims is accepted, and a Host
selects a host route only when spelled as its one canonical name."""

from __future__ import annotations

import functools

import pytest

from tests.conftest import proxy_config
from tests.inprocess.conftest import StartRig

HOST_ROUTE = """
[[route]]
path = "/myapp"
host = "my.site.com"
upstream = "http://127.0.0.1:9/"
"""


@pytest.mark.parametrize("host, routed", [
    (b"my.site.com", True),
    (b"MY.Site.com:80", True),  # case and the default port are canonical spellings too
    (b"my.site.com.", False),  # a trailing dot is another name here
    (b"my.site.com=x", False),
    (b"0.0.0.0=5000", False),
])
def test_a_host_route_is_chosen_by_its_canonical_name_only(
        rig: StartRig, host: bytes, routed: bool) -> None:
    # The host route points at a closed port (502); the catch-all at the scripted upstream.
    harness, upstream = rig(functools.partial(proxy_config, routes=HOST_ROUTE))
    reply = harness.exchange(b"GET /myapp/ HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert reply.statuses == ([502] if routed else [200])
    assert len(upstream.requests) == (0 if routed else 1)


def test_a_percent_encoded_host_is_refused(rig: StartRig) -> None:
    harness, upstream = rig(functools.partial(proxy_config, routes=HOST_ROUTE))
    reply = harness.exchange(b"GET /myapp/ HTTP/1.1\r\nHost: my%2Esite.com\r\n\r\n")
    assert reply.statuses == [400] and not upstream.requests
