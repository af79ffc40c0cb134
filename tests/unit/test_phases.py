"""Route phases compiled once from the plan, and retry decisions carried by the error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from portico.config.compile import serving_plan
from portico.config.load import parse
from portico.config.provision import build_gateway
from portico.errors import APP_DIED, APP_REFUSED, STALE_CONNECTION
from portico.http.events import Body, Request
from portico.policy.redirect import https_authority, https_redirect
from portico.proxy.framing import connect_refused, upstream_broke
from portico.proxy.phases import (
    EchoRequestId,
    ForwardedFields,
    Hsts,
    OnlyBackend,
    RedirectToHttps,
    RequestHeaderRules,
    ResponseHeaderRules,
    ReverseFields,
)
from portico.proxy.route_policy import Policies, compile_policies
from tests.conftest import proxy_config
from tests.support.harness import ProxyHarness

CONFIG = """
[server]
listen = ["http://127.0.0.1:0"]
access_log = "off"
[[route]]
path = "/plain"
upstream = "http://127.0.0.1:9/"
[[route]]
path = "/ruled"
upstream = "http://127.0.0.1:9/"
request_headers = { set = { "X-A" = "1" } }
response_headers = { remove = ["Server"] }
"""


def test_each_route_gets_its_phases_once_and_an_empty_phase_is_empty() -> None:
    loop = asyncio.new_event_loop()
    try:
        plan = serving_plan(parse(CONFIG, "phases"), Path.cwd(), Path.cwd())
        gateway = build_gateway(plan, loop)
    finally:
        loop.close()
    assert gateway.policies.request_filter == ()  # no redirect: nothing runs before routing
    assert [type(f) for f in gateway.policies.routes[0].response_filter] == [ReverseFields,
                                                                             EchoRequestId]
    gateway.redirect_to_https = True  # both need an https listener in a config
    gateway.hsts = b"max-age=60"
    policies = compile_policies(plan, gateway)
    assert [type(f) for f in policies.request_filter] == [RedirectToHttps]
    plain, ruled = policies.routes
    assert [type(f) for f in plain.upstream_request_filter] == [ForwardedFields]
    assert [type(f) for f in plain.response_filter] == [ReverseFields, EchoRequestId, Hsts]
    assert [type(f) for f in ruled.upstream_request_filter] == [ForwardedFields,
                                                                 RequestHeaderRules]
    assert [type(f) for f in ruled.response_filter] == [ReverseFields, ResponseHeaderRules,
                                                         EchoRequestId, Hsts]
    for policy in (plain, ruled):
        assert policy.request_filter == () and policy.on_error == ()
        assert policy.log == ()  # access_log = "off": no sink at all
        assert isinstance(policy.select_backend, OnlyBackend)
    only = plain.select_backend
    assert isinstance(only, OnlyBackend) and only.backend is gateway.routes.routes[0].backend


def _request(method: bytes, body: Body = Body.NONE) -> Request:
    return Request(method, b"/", b"1.1", [], b"a", body, 0, True, False)


@pytest.mark.parametrize(
    ("method", "body", "received", "tries", "pooled", "supervised", "source"),
    [
        (b"GET", Body.NONE, 0, 0, True, False, STALE_CONNECTION),  # once, on a pooled one
        (b"GET", Body.NONE, 0, 1, True, False, 0),
        (b"GET", Body.NONE, 0, 0, False, False, 0),  # a fresh connection: not again
        (b"GET", Body.NONE, 1, 0, True, False, 0),  # a response byte came
        (b"POST", Body.NONE, 0, 0, True, False, 0),  # not idempotent
        (b"PUT", Body.LENGTH, 0, 0, True, False, 0),  # a body
        (b"GET", Body.NONE, 0, 0, False, True, APP_DIED),  # twice for a supervised app
        (b"GET", Body.NONE, 0, 1, False, True, APP_DIED),
        (b"GET", Body.NONE, 0, 2, False, True, 0),
    ],
)
def test_a_broken_upstream_is_retryable_only_when_sending_again_is_safe(
    method: bytes, body: Body, received: int, tries: int, pooled: bool, supervised: bool,
    source: int,
) -> None:
    error = upstream_broke("gone", _request(method, body), received, tries, pooled, supervised)
    assert error.status == 502 and error.retryable is bool(source) and error.source == source


def test_a_refused_connect_waits_for_a_supervised_app_once() -> None:
    assert connect_refused("refused", True, 0).source == APP_REFUSED
    assert not connect_refused("refused", True, 1).retryable
    assert not connect_refused("refused", False, 0).retryable


def test_redirect_to_https_answers_plain_http_before_routing_and_keeps_the_connection() -> None:
    harness, upstream = ProxyHarness.with_upstream(proxy_config)
    try:
        gateway = harness.gateway
        gateway.https_port = 8443
        gateway.policies = Policies((RedirectToHttps(gateway),), gateway.policies.routes)
        plain = harness.client()
        plain.send(b"GET /nowhere/x?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n")
        harness.run_until(lambda: b"\r\n\r\n" in plain.received)
        head = plain.take()
        assert head.startswith(b"HTTP/1.1 308 ")  # before routing: /nowhere has no route
        assert b"\r\nLocation: https://example.com:8443/nowhere/x?q=1\r\n" in head
        assert b"\r\nX-Request-ID: " in head and b"\r\nContent-Length: 0\r\n" in head
        assert b"Connection: close" not in head and not plain.closed
        secure = harness.client(scheme=b"https")
        secure.send(b"GET /myapp/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
        harness.run_until(lambda: b"\r\n\r\n" in secure.received)
        harness.settle(secure)
        assert secure.reply().status == 200 and len(upstream.requests) == 1
    finally:
        harness.close()


@pytest.mark.parametrize(
    ("host", "port", "authority"),
    [
        (b"example.com:8080", 8443, b"example.com:8443"),
        (b"example.com", 443, b"example.com"),
        (b"[::1]:8080", 8443, b"[::1]:8443"),
        (b"[::1]", 443, b"[::1]"),
    ],
)
def test_the_redirect_keeps_the_host_and_names_the_https_port(
    host: bytes, port: int, authority: bytes
) -> None:
    assert https_authority(host, port) == authority
    assert https_redirect(host, b"*", port) == [(b"Location", b"https://" + authority + b"/")]
