"""A route's ``access`` lists: 403 before anything is forwarded, on the trusted client
address (X-Forwarded-For only through ``trusted_proxies``)."""

from __future__ import annotations

import pytest

from portico.config.load import parse
from portico.errors import ConfigError
from portico.policy.access import AddressRules, client_address
from portico.policy.forwarded import Trust
from tests.support.harness import ProxyHarness


def test_deny_wins_and_allow_refuses_the_rest() -> None:
    rules = AddressRules(allow=["10.0.0.0/8", "::1"], deny=["10.0.0.9"])
    assert rules.permits("10.1.2.3") and rules.permits("::1")
    assert not rules.permits("10.0.0.9") and not rules.permits("192.0.2.1")
    assert rules.permits("::ffff:10.0.0.1")  # an IPv4-mapped peer is its IPv4 address
    assert not rules.permits("-") and not rules.permits("garbage")
    assert AddressRules([], ["192.0.2.0/24"]).permits("198.51.100.1")


def test_forwarded_for_counts_only_through_trusted_peers() -> None:
    trust = Trust(["10.0.0.0/8"])
    assert client_address("192.0.2.7", [b"127.0.0.1"], trust) == "192.0.2.7"  # forged
    assert client_address("10.0.0.2", [b"198.51.100.1, 10.0.0.3"], trust) == "198.51.100.1"
    assert client_address("10.0.0.2", [b"203.0.113.9", b"198.51.100.1"], trust) == "198.51.100.1"
    assert client_address("10.0.0.2", [], trust) == "10.0.0.2"


def test_a_bad_cidr_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="invalid CIDR 'ten'"):
        parse('[[route]]\npath = "/"\nupstream = "http://127.0.0.1:1/"\n'
              'access = { allow = ["ten"] }\n', "portico.toml")


CONFIG = """
[server]
trusted_proxies = ["127.0.0.5"]

[[route]]
path = "/admin"
upstream = "{url}"
access = {{ allow = ["127.0.0.0/30"], deny = ["127.0.0.2"] }}

[[route]]
path = "/"
upstream = "{url}"
"""


@pytest.mark.parametrize(("peer", "forwarded_for", "path", "status"), [
    ("127.0.0.1", None, "/admin/x", 200),
    ("127.0.0.2", None, "/admin/x", 403),  # denied although allowed
    ("127.0.0.9", None, "/admin/x", 403),  # not in allow
    ("127.0.0.9", "127.0.0.1", "/admin/x", 403),  # a forged X-Forwarded-For
    ("127.0.0.5", "127.0.0.1", "/admin/x", 200),  # via the trusted proxy
    ("127.0.0.5", "127.0.0.9", "/admin/x", 403),
    ("127.0.0.9", None, "/other", 200),  # other routes are open
])
def test_the_lists_answer_before_the_upstream(peer: str, forwarded_for: str | None,
                                              path: str, status: int) -> None:
    harness, upstream = ProxyHarness.with_upstream(lambda url: CONFIG.format(url=url))
    try:
        extra = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
        reply = harness.exchange(f"GET {path} HTTP/1.1\r\nHost: a\r\n{extra}\r\n".encode(),
                                 peer=(peer, 40000))
        assert reply.status == status
        assert status == 200 or reply.data.startswith(b"HTTP/1.1 403 Forbidden\r\n")
        assert len(upstream.requests) == (1 if status == 200 else 0)
    finally:
        harness.close()
