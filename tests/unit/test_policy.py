"""Forwarded headers, trust and header operations."""

from __future__ import annotations

import pytest

from portico.policy.context import RequestFacts, public_port
from portico.policy.forwarded import Forwarding, Trust
from portico.policy.header_ops import HeaderOps, Template

FACTS = RequestFacts(b"http", b"my.site.com:8080", b"8080", b"203.0.113.7", b"/myapp", b"rid1")
CLIENT_HEADERS = [
    (b"Host", b"my.site.com:8080"),
    (b"X-Forwarded-For", b"1.2.3.4"),
    (b"X-Forwarded-Proto", b"https"),
    (b"X-Forwarded-Host", b"evil.example"),
    (b"X-Forwarded-Prefix", b"//evil.example"),
    (b"Forwarded", b"for=1.2.3.4"),
    (b"X-Real-IP", b"1.2.3.4"),
    (b"X_Forwarded_For", b"1.2.3.4"),
    (b"Script_Name", b"/admin"),
    (b"Connection", b"keep-alive, X-Secret, X-Forwarded-For, Host, Content-Length"),
    (b"X-Secret", b"1"),
    (b"Keep-Alive", b"5"),
    (b"Proxy-Connection", b"x"),
    (b"TE", b"trailers"),
    (b"Upgrade", b"h2c"),
    (b"Content-Length", b"5"),
    (b"Accept", b"*/*"),
]


def upstream(forwarding: Forwarding, headers: list[tuple[bytes, bytes]], facts: RequestFacts,
             trusted: bool, host: bytes) -> list[tuple[bytes, bytes]]:
    return forwarding.upstream_headers(headers, [n.lower() for n, _ in headers], facts, trusted, host)


def as_dict(headers: list[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        out.setdefault(name.lower(), []).append(value)
    return out


def test_untrusted_peer_cannot_speak_for_the_client() -> None:
    forwarding = Forwarding(Trust([]), rfc7239=True)
    out = as_dict(upstream(forwarding, CLIENT_HEADERS, FACTS, False, b"127.0.0.1:8000"))
    assert out[b"host"] == [b"127.0.0.1:8000"]
    assert out[b"x-forwarded-for"] == [b"203.0.113.7"]
    assert out[b"x-forwarded-proto"] == [b"http"]
    assert out[b"x-forwarded-host"] == [b"my.site.com:8080"]
    assert out[b"x-forwarded-prefix"] == [b"/myapp"]
    assert out[b"x-forwarded-port"] == [b"8080"]
    assert out[b"forwarded"] == [b'for=203.0.113.7;proto=http;host="my.site.com:8080"']
    for gone in (b"x-real-ip", b"x_forwarded_for", b"script_name", b"x-secret", b"keep-alive",
                 b"proxy-connection", b"te", b"upgrade", b"connection", b"content-length"):
        assert gone not in out, gone
    assert out[b"accept"] == [b"*/*"]
    assert out[b"via"] == [b"1.1 portico"]
    assert out[b"x-request-id"] == [b"rid1"]


def test_trusted_peer_is_appended_to() -> None:
    forwarding = Forwarding(Trust(["203.0.113.0/24"]))
    assert forwarding.trust.trusts("203.0.113.7")
    out = as_dict(upstream(forwarding, CLIENT_HEADERS, FACTS, True, b"up"))
    assert out[b"x-forwarded-for"] == [b"1.2.3.4, 203.0.113.7"]
    assert out[b"x-forwarded-proto"] == [b"https"]
    assert out[b"x-forwarded-prefix"] == [b"/myapp"]  # "//evil.example" is no prefix
    assert b"x-secret" not in out


def test_ipv6_is_quoted_in_forwarded() -> None:
    facts = RequestFacts(b"http", b"[::1]:8080", b"8080", b"::1", b"", b"r")
    out = as_dict(upstream(Forwarding(Trust([]), rfc7239=True), [], facts, False, b"up"))
    assert out[b"forwarded"] == [b'for="[::1]";proto=http;host="[::1]:8080"']
    assert b"x-forwarded-prefix" not in out  # only when a prefix was stripped


def test_trust_rejects_garbage_addresses() -> None:
    assert not Trust(["10.0.0.0/8"]).trusts("not-an-ip")
    assert Trust(["10.0.0.0/8", "::1/128"]).trusts("::1")


def test_header_ops_remove_set_add_with_templates() -> None:
    ops = HeaderOps(
        set_={"X-Forwarded-Prefix": "{prefix}", "X-Who": "{remote_addr} via {scheme}"},
        add={"X-Tag": ["a", "{request_id}"]},
        remove=["Accept"],
    )
    out = ops.apply([(b"Accept", b"*/*"), (b"x-forwarded-prefix", b"/old")], FACTS)
    assert out == [
        (b"X-Forwarded-Prefix", b"/myapp"),
        (b"X-Who", b"203.0.113.7 via http"),
        (b"X-Tag", b"a"),
        (b"X-Tag", b"rid1"),
    ]


@pytest.mark.parametrize("bad", ["a\r\nb", "a\nb", "a\x00b", "{nope}"])
def test_templates_refuse_bad_values(bad: str) -> None:
    with pytest.raises(ValueError):
        Template(bad)


@pytest.mark.parametrize(
    ("outer", "expected"),
    [(b"/outer", b"/outer/myapp"), (b"/outer/", b"/outer/myapp"), (b"//evil.example", b"/myapp"),
     (b"/a/../b", b"/myapp"), (b"/\\evil", b"/myapp"), (b"https://evil", b"/myapp")],
)
def test_trusted_prefix_is_composed_only_when_it_is_a_plain_path(outer: bytes, expected: bytes) -> None:
    headers = [(b"X-Forwarded-Prefix", outer)]
    out = as_dict(upstream(Forwarding(Trust(["0.0.0.0/1"])), headers, FACTS, True, b"up"))
    assert out[b"x-forwarded-prefix"] == [expected]


@pytest.mark.parametrize(("host", "scheme", "port"), [
    (b"my.site.com:8080", b"http", b"8080"),
    (b"my.site.com", b"http", b"80"),  # behind a port mapping the socket's port would be wrong
    (b"my.site.com", b"https", b"443"),
    (b"[::1]:8443", b"https", b"8443"),
    (b"[::1]", b"http", b"80"),
])
def test_forwarded_port_is_the_port_the_client_addressed(host: bytes, scheme: bytes, port: bytes) -> None:
    assert public_port(host, scheme) == port
