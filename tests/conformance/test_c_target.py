"""C. Request target and Host (catalogue cases 31-38)."""

from __future__ import annotations

import pytest

from tests.conformance.conftest import Gateway, H

REJECTED = {
    "C31-no-host": (b"GET /myapp/ HTTP/1.1\r\n\r\n", 400),
    "C32-two-hosts": (b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "C32-host-list": (b"GET /myapp/ HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
    **{f"C33-host-{name}": (b"GET /myapp/ HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400)
       for name, host in [("space", b"a b"), ("userinfo", b"a@b"), ("slash", b"a/x"),
                          ("port-range", b"a:99999"), ("hash", b"a#b"),
                          ("pct-encoded", b"a%2eb"), ("comma-in-reg-name", b"a,b=1")]},
    "C34-absolute-form-elsewhere": (b"GET http://evil/myapp/x HTTP/1.1\r\n" + H + b"\r\n", 400),
    "C35-asterisk": (b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", 400),
    "C35-connect": (b"CONNECT a:443 HTTP/1.1\r\n" + H + b"\r\n", 405),
    "C36-fragment": (b"GET /myapp/a#frag HTTP/1.1\r\n" + H + b"\r\n", 400),
    "C37-ctl-in-target": (b"GET /myapp/a\x01b HTTP/1.1\r\n" + H + b"\r\n", 400),
    "C37-raw-utf8-in-target": (b"GET /myapp/\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "C37-request-line-over-8k": (b"GET /myapp/" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    "C37-request-line-64k": (b"GET /myapp/" + b"a" * 65536 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    "C38-lowercase-method": (b"get /myapp/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    "C38-unknown-method": (b"FOO /myapp/ HTTP/1.1\r\n" + H + b"\r\n", 400),
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected_and_nothing_forwarded(gw: Gateway, name: str) -> None:
    gw.assert_rejected(*REJECTED[name])


def test_c34_absolute_form_for_a_served_host_goes_as_origin_form(gw: Gateway) -> None:
    reply = gw.send(b"GET http://a/myapp/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.statuses == [200]
    seen = gw.recorder.requests[0]
    assert seen.target == b"/x?y=1" and seen.header(b"x-forwarded-host") == b"a"


def test_c37_a_request_line_of_8000_octets_is_served(gw: Gateway) -> None:
    line = b"GET /myapp/" + b"a" * (8000 - len(b"GET /myapp/ HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == 8000
    reply = gw.send(line + b"\r\n" + H + b"\r\n")
    assert reply.statuses == [200]
    assert len(gw.recorder.requests[0].target) == 8000 - len(b"GET /myapp HTTP/1.1")


def test_c38_known_methods_pass(gw: Gateway) -> None:
    for method in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"):
        reply = gw.send(method + b" /myapp/ HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n")
        assert reply.statuses == [200], method


@pytest.mark.parametrize("host", [b"0.0.0.0=5000", b"a!$&'()*+;=b", b"x~y:8080"])
def test_c33_reg_name_with_sub_delims_is_accepted(gw: Gateway, host: bytes) -> None:
    # RFC 3986 reg-name: unreserved and sub-delims ("," excepted: it would make
    # X-Forwarded-Host a list). Forwarded as it came; it never selects a route by
    # another spelling (a %-encoded one is refused above, routing compares exact names).
    reply = gw.send(b"GET /myapp/ HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert reply.statuses == [200]
    [seen] = gw.recorder.requests
    assert seen.header(b"x-forwarded-host") == host.lower()
