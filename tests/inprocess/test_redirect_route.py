"""``redirect`` routes: answered by portico with a redirect, no upstream needed
(config/local_routes.py, proxy/redirect.py)."""

from __future__ import annotations

import pytest

from portico.config.compile import serving_plan
from portico.config.load import parse
from portico.errors import ConfigError
from tests.support.harness import ProxyHarness

CONFIG = """
[[route]]
path = "/old"
redirect = "https://example.com/new"
redirect_status = 301

[[route]]
path = "/exact"
redirect = "/landing?from=exact"
redirect_status = 308
redirect_append_path = false
redirect_append_query = false

[[route]]
path = "/q"
redirect = "/search?lang=en"
redirect_status = 303

[[route]]
path = "/"
upstream = "{url}"
"""


@pytest.mark.parametrize(("target", "status", "location"), [
    ("/old", 301, b"https://example.com/new"),
    ("/old/", 301, b"https://example.com/new/"),
    ("/old/a/b%2Fc", 301, b"https://example.com/new/a/b%2Fc"),  # kept encoded
    ("/old/a?x=1&y=2", 301, b"https://example.com/new/a?x=1&y=2"),
    ("/exact/deep/path?x=1", 308, b"/landing?from=exact"),
    ("/q/more?x=1", 303, b"/search/more?lang=en&x=1"),
])
def test_a_redirect_route_answers_without_forwarding(
        target: str, status: int, location: bytes) -> None:
    harness, upstream = ProxyHarness.with_upstream(lambda url: CONFIG.format(url=url))
    try:
        for method in ("GET", "POST"):
            reply = harness.exchange(
                f"{method} {target} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n".encode())
            assert reply.status == status
            assert reply.header(b"location") == location
            assert reply.header(b"content-length") == b"0"
            assert not reply.closed
        assert upstream.requests == []
        assert harness.exchange(b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n").status == 200
    finally:
        harness.close()


def test_a_redirect_route_needs_no_upstream_and_plans_its_answer() -> None:
    config = parse('[[route]]\npath = "/"\nredirect = "https://example.com/"\n', "p.toml")
    from pathlib import Path
    plan = serving_plan(config, Path("."), Path("."))
    redirect = plan.routes[0].redirect
    assert redirect is not None and (redirect.status, redirect.append_path) == (302, True)


@pytest.mark.parametrize(("keys", "message"), [
    ('redirect = "https://e.com/"\nupstream = "http://127.0.0.1:1/"',
     "a route with 'redirect' answers itself: remove 'upstream'"),
    ('redirect = "https://e.com/"\nredirect_status = 200', "invalid redirect_status 200"),
    ('redirect = "example.com/new"', "invalid redirect 'example.com/new'"),
    ('redirect = "//example.com/new"', "invalid redirect"),
    ('redirect = "/a b"', "invalid redirect"),
    ("", "a route needs exactly one of 'upstream' or 'app'"),
])
def test_config_errors_name_the_key(keys: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(f'[[route]]\npath = "/"\n{keys}\n', "portico.toml")
