"""Rewrite rules end to end through the real request path (in process), one per action.

The config goes TOML → plan → gateway as ``portico run`` does it; the upstream is a
ScriptedUpstream, so what it received is checked byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.inprocess.conftest import StartRig
from tests.support.client import Reply
from tests.support.scripted import answers


def config(rules: str, route_extra: str = "") -> Callable[[str], str]:
    def make(upstream: str) -> str:
        return f"""
[server]
listen = ["http://127.0.0.1:0"]
tick = 0.1

[[route]]
path = "/myapp"
upstream = "{upstream}"
{route_extra}

{rules.replace("UPSTREAM", upstream.rstrip("/"))}
"""
    return make


def get(rig: StartRig, rules: str, request: bytes, route_extra: str = "") -> tuple[Reply, list[bytes]]:
    harness, upstream = rig(config(rules, route_extra))
    reply = harness.exchange(request)
    return reply, [seen.head for seen in upstream.requests]


IIS_GUIDE = """
[[rewrite.rule]]
name = "ReverseProxyInboundRule1"
pattern = "^myApp(.*)"
url = "UPSTREAM/myApp{R:1}"
stop = true
request_headers = { HTTP_X_ORIGINAL_HOST = "{HTTP_HOST}" }
"""


def test_iis_guide_rule_proxies_to_the_origin_with_x_original_host(rig: StartRig) -> None:
    reply, seen = get(rig, IIS_GUIDE, b"GET /myapp/x?q=1 HTTP/1.1\r\nHost: www.site.com\r\n\r\n")
    assert reply.status == 200
    assert seen[0].startswith(b"GET /myApp/x?q=1 HTTP/1.1")
    assert b"\r\nX-Original-Host: www.site.com" in seen[0]


def test_local_rewrite_is_routed_again(rig: StartRig) -> None:
    rules = '[[rewrite.rule]]\npattern = "^old/(.*)"\nurl = "/myapp/new/{R:1}"\n'
    reply, seen = get(rig, rules, b"GET /old/a%2Fb?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.status == 200
    assert seen[0].startswith(b"GET /new/a%2Fb?x=1 ")  # %2F never decoded


def test_canonical_path_reaches_the_upstream(rig: StartRig) -> None:
    _, seen = get(rig, "", b"GET /myapp/./echo HTTP/1.1\r\nHost: a\r\n\r\n")
    assert seen[0].startswith(b"GET /echo ")
    _, seen = get(rig, "", b"GET //myapp//x/../echo HTTP/1.1\r\nHost: a\r\n\r\n")
    assert seen[0].startswith(b"GET /echo ")


@pytest.mark.parametrize(("rule", "status", "location"), [
    ('action = "redirect"\nurl = "https://example.com/new/{R:1}"', 301,
     b"https://example.com/new/1?a=b"),
    ('dialect = "apache"\npattern = "^/old/(.*)"\naction = "redirect"\nurl = "/new/$1"', 302,
     b"/new/1?a=b"),
    ('action = "redirect"\nstatus = 308\nquery = "replace"\nurl = "/n/{R:1}"', 308, b"/n/1"),
])
def test_redirects(rig: StartRig, rule: str, status: int, location: bytes) -> None:
    pattern = "" if "pattern" in rule else 'pattern = "^old/(.*)"\n'
    reply, seen = get(rig, f"[[rewrite.rule]]\n{pattern}{rule}\n",
                      b"GET /old/1?a=b HTTP/1.1\r\nHost: a\r\n\r\n")
    assert (reply.status, reply.header(b"location")) == (status, location)
    assert seen == []


def test_custom_response_with_body_and_headers(rig: StartRig) -> None:
    rules = """
[[rewrite.rule]]
pattern = "^gone"
action = "respond"
status = 410
reason = "Gone Away"
body = "This page is gone."
response_headers = { RESPONSE_X_RULE = "gone" }
"""
    reply, seen = get(rig, rules, b"GET /gone HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.data.startswith(b"HTTP/1.1 410 Gone Away\r\n")
    assert reply.body == b"This page is gone."
    assert reply.header(b"x-rule") == b"gone"
    assert seen == []


def test_abort_closes_the_connection_without_an_answer(rig: StartRig) -> None:
    rules = '[[rewrite.rule]]\npattern = ".*"\naction = "abort"\n' \
            'conditions = [{ input = "{HTTP_USER_AGENT}", pattern = "badbot" }]\n'
    reply, seen = get(rig, rules, b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nUser-Agent: badbot\r\n\r\n")
    assert reply.data == b""
    assert seen == []


def test_none_sets_response_headers_and_goes_on(rig: StartRig) -> None:
    rules = '[[rewrite.rule]]\naction = "none"\nresponse_headers = { "X-Served-By" = "portico" }\n'
    reply, seen = get(rig, rules, b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.status == 200 and reply.header(b"x-served-by") == b"portico"
    assert len(seen) == 1


def test_route_rules_and_outbound_location(rig: StartRig) -> None:
    route = """
[[route.rewrite.rule]]
match_input = "route_relative"
pattern = "^v1/(.*)"
url = "/myapp/v2/{R:1}"

[[route.rewrite.outbound]]
header = "RESPONSE_X_SEEN"
pattern = "^(.*)$"
value = "seen:{R:1}"
"""
    script = answers(rest=b"HTTP/1.1 200 OK\r\nX-Seen: yes\r\nContent-Length: 2\r\n\r\nok")
    harness, upstream = rig(config("", route), script)
    reply = harness.exchange(b"GET /myapp/v1/a HTTP/1.1\r\nHost: a\r\n\r\n")
    assert upstream.requests[0].target == b"/v2/a"
    assert reply.header(b"x-seen") == b"seen:yes"


def test_unsafe_rewrites_are_refused(rig: StartRig) -> None:
    rules = '[[rewrite.rule]]\npattern = "^s/(.*)"\nurl = "/myapp/{UrlDecode:{R:1}}"\n'
    reply, seen = get(rig, rules, b"GET /s/a%20b HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.status == 403 and seen == []


def test_restart_loops_are_bounded(rig: StartRig) -> None:
    rules = '[[rewrite.rule]]\ndialect = "apache"\npattern = "^(.*)$"\nurl = "$1x"\nrestart = true\n'
    reply, seen = get(rig, rules, b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.status == 500 and seen == []


def test_request_target_not_starting_with_a_slash_is_400_before_rules(rig: StartRig) -> None:
    rules = '[[rewrite.rule]]\ndialect = "apache"\npattern = "(.*)"\naction = "proxy"\n' \
            'url = "UPSTREAM/x$1"\n'
    reply, seen = get(rig, rules, b"GET @127.0.0.1/x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.status == 400 and seen == []
