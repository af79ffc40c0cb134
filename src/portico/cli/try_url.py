"""``portico try URL``: what portico would do with a request, without sending anything.

The config is compiled and provisioned as ``portico run`` does it (the same
gateway, rules and route table), and the request goes through the same decision
as in the proxy (``proxy/rewrite.py``'s ``decide``, the https redirect, routing,
the upstream_request_filter phase), in process. No connection is opened.

``--json`` prints one object, a public interface (docs/guide/rewrite.md):
``action`` (proxy | redirect | respond | abort | not_found), ``url``,
``upstream_url``, ``status``, ``location``, ``reason``, ``body``,
``request_headers``, ``response_headers``, ``rules``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import Any
from urllib.parse import urlsplit

import click
from rich.markup import escape
from rich.table import Table

from portico.cli.console import chosen, config_option, err, load_config, out
from portico.errors import ConfigError


def _fields(pairs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in pairs:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        merged[key] = f"{merged[key]}, {text}" if key in merged else text
    return merged


def evaluate(
    config_path: str | None, method: str, url: str, headers: list[str], client_ip: str
) -> tuple[dict[str, Any], list[tuple[str, tuple[str, ...], tuple[str, ...]]], str]:
    """(the --json object, the matched rules with their captures, the route's label)."""
    from portico.config.compile import serving_plan
    from portico.config.provision import build_gateway
    from portico.http.events import Body, Request
    from portico.policy.context import RequestFacts, client_request_id, public_port
    from portico.proxy.downstream import Downstream
    from portico.proxy.rewrite import ABORTED, ANSWER, FAILED, ROUTED, Decision, decide
    from portico.routing.rules import RuleState

    config, base_dir = load_config(config_path)
    try:
        plan = serving_plan(config, base_dir, base_dir)
    except ConfigError as exc:
        err.print(f"[bold red]config error[/] {escape(str(exc))}")
        sys.exit(2)
    plan = dataclasses.replace(plan, server=dataclasses.replace(plan.server, access_log="off"))
    loop = asyncio.new_event_loop()
    try:
        gw = build_gateway(plan, loop)
    finally:
        loop.close()

    parts = urlsplit(url if "://" in url else "http://localhost" + url)
    scheme = (parts.scheme or "http").lower()
    fields = [(b"Host", (parts.netloc or "localhost").encode("latin-1"))]
    for line in headers:
        name, colon, value = line.partition(":")
        if not colon:
            raise click.BadParameter(f"{line!r}: use 'Name: value'", param_hint="-H")
        if name.strip().lower() == "host":
            fields = [f for f in fields if f[0] != b"Host"]
        fields.append((name.strip().encode("latin-1"), value.strip().encode("latin-1")))
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    host = next(v for n, v in fields if n.lower() == b"host").lower()
    request = Request(method.upper().encode("ascii"), target.encode("latin-1"), b"1.1",
                      fields, host, Body.NONE, 0, True, False)
    client = Downstream()
    client.scheme = scheme.encode("ascii")
    client.remote_addr = client_ip.encode("ascii")
    client.trusted = gw.forwarding.trust.trusts(client_ip)
    client.local_authority = host

    result: dict[str, Any] = {
        "action": "not_found", "url": target, "upstream_url": None, "status": None,
        "location": None, "reason": None, "body": None, "request_headers": {},
        "response_headers": {}, "rules": [],
    }
    policies = gw.policies
    for step in policies.request_filter:  # the https redirect
        answer = step.answer(request, client)
        if answer is not None:
            result.update(action="redirect", status=answer.status,
                          location=_fields(answer.headers).get("Location"))
            return result, [], ""
    if policies.rewrite is not None:
        decided = decide(policies.rewrite, request, client, gw.routes, trace=True)
        assert isinstance(decided, Decision)  # with trace, always a Decision
        decision = decided
    else:
        decision = Decision(ROUTED, RuleState(target, ""))
        try:
            decision.match = gw.routes.resolve(request.host, request.target)
        except Exception as exc:  # a ProxyError: 404, or 400 for a bad path
            decision = Decision(FAILED, decision.state)
            decision.error = exc  # type: ignore[assignment]
    state = decision.state
    trace = state.trace or []
    result["rules"] = list(state.matched)
    result["response_headers"] = {n: v for n, v in state.response_headers}
    if policies.rewrite is not None:
        result["url"] = state.target
    if decision.kind == ABORTED:
        result["action"] = "abort"
    elif decision.kind == FAILED:
        error = decision.error
        assert error is not None
        result.update(action="not_found" if error.status == 404 else "respond",
                      status=error.status, reason=str(error))
    elif decision.kind == ANSWER:
        answer_fields = _fields(decision.headers)
        if state.location:
            result.update(action="redirect", status=decision.status,
                          location=answer_fields.get("Location"))
        else:
            result.update(action="respond", status=decision.status,
                          reason=decision.reason.decode("latin-1"),
                          body=decision.body.decode("utf-8"))
    else:
        match = decision.match
        assert match is not None
        route = match.route
        policy = policies.routes[route.index]
        facts = RequestFacts(client.scheme, host, public_port(host, client.scheme),
                             client.remote_addr, route.prefix if match.stripped else b"",
                             client_request_id(request) or gw.request_id())
        if state.request_headers or state.response_headers:
            from portico.proxy.rewrite import request_fields, response_fields

            facts.rule_fields = (request_fields(state), response_fields(state))
        # no probe has run here: a balanced route's choice among its configured backends
        backend = policy.select_backend.select(request, facts) or route.backend
        upstream = request.headers
        for filter_step in policy.upstream_request_filter:
            upstream = filter_step.apply(upstream, request, facts, client.trusted, backend)
        if state.upstream_url:
            result["url"] = match.target.decode("latin-1")
        result.update(
            action="proxy",
            upstream_url=f"{backend.scheme}://{backend.authority.decode('latin-1')}"
                         + match.target.decode("latin-1"),
            request_headers=_fields(upstream),
        )
        return result, trace, route.label
    return result, trace, ""


@click.command("try")
@config_option
@click.option("-X", "--request", "method", default="GET", show_default=True,
              help="The request method.")
@click.option("-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="A request header (repeatable); Host defaults to the URL's.")
@click.option("--client", "client_ip", default="127.0.0.1", show_default=True,
              help="The client's address (REMOTE_ADDR; trusted_proxies apply).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (documented).")
@click.argument("url")
def try_url(config_path: str | None, method: str, headers: tuple[str, ...], client_ip: str,
            as_json: bool, url: str) -> None:
    """Show which rules match URL (with captures), the route, and what portico would do.

    Nothing is sent: the rules, routing and header phases run in process. URL is
    absolute (http://host/path?q) or a path (/path?q; Host: localhost).
    """
    from portico.config.load import config_in_use

    path = config_in_use(config_path) if as_json else chosen(config_path)  # JSON: no chatter
    result, trace, route = evaluate(path, method, url, list(headers), client_ip)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if trace:
        table = Table(title="rules that matched, in order")
        table.add_column("rule")
        table.add_column("rule captures")
        table.add_column("condition captures")
        for name, rule_groups, condition_groups in trace:
            table.add_row(escape(name), escape(repr(list(rule_groups))),
                          escape(repr(list(condition_groups))))
        out.print(table)
    else:
        out.print("no rule matched")
    out.print(f"[bold]{result['action']}[/] {escape(result['url'])}"
              + (f" via route {escape(route)}" if route else ""))
    for key in ("upstream_url", "status", "location", "reason", "body"):
        if result[key] is not None:
            out.print(f"  {key}: {escape(str(result[key]))}")
    for key in ("request_headers", "response_headers"):
        if result[key]:
            out.print(f"  {key}:")
            for name, value in result[key].items():
                out.print(f"    {escape(name)}: {escape(value)}")
