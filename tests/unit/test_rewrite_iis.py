"""IIS URL Rewrite semantics, table-driven (rewrite-semantics.md §A1, the IREF samples).

Each case: rules (config tables, IIS dialect), the request, what must come out.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.rules import outcome, run_rules

R = dict[str, Any]
CASES: list[tuple[str, list[R], str, dict[str, str], tuple[str, ...]]] = [
    # Match input: the path without its leading slash, never the query (IREF "Accessing URL Parts").
    ("input has no leading slash", [{"pattern": "^content/(.*)", "url": "/x/{R:1}"}],
     "/content/default.aspx?tabid=2", {}, ("", "/x/default.aspx?tabid=2")),
    ("a leading slash never matches", [{"pattern": "^/content", "url": "/x"}],
     "/content/a", {}, ("", "/content/a")),
    ("query is not in the input", [{"pattern": "tabid", "url": "/x"}],
     "/a?tabid=2", {}, ("", "/a?tabid=2")),
    # ignoreCase defaults to true.
    ("case-insensitive by default", [{"pattern": "^MyApp(.*)", "url": "/m{R:1}"}],
     "/myapp/x", {}, ("", "/m/x")),
    ("ignore_case false", [{"pattern": "^MyApp", "url": "/m", "ignore_case": False}],
     "/myapp/x", {}, ("", "/myapp/x")),
    ("negate", [{"pattern": "^admin", "negate": True, "url": "/public"}],
     "/other", {}, ("", "/public")),
    # A rule's output is the next rule's input; stopProcessing ends the list.
    ("output feeds the next rule", [{"pattern": "^a$", "url": "/b"}, {"pattern": "^b$", "url": "/c"}],
     "/a", {}, ("", "/c")),
    ("stopProcessing", [{"pattern": "^a$", "url": "/b", "stop": True},
                        {"pattern": "^b$", "url": "/c"}], "/a", {}, ("", "/b")),
    # appendQueryString defaults to true (Rewrite and Redirect).
    ("rewrite appends the query", [{"pattern": "^p/(\\d+)", "url": "/page.aspx?id={R:1}"}],
     "/p/7?a=b", {}, ("", "/page.aspx?id=7&a=b")),
    ("appendQueryString false", [{"pattern": "^p/(\\d+)", "url": "/page.aspx?id={R:1}",
                                  "query": "replace"}], "/p/7?a=b", {}, ("", "/page.aspx?id=7")),
    ("redirect: 301 by default, query appended",
     [{"pattern": "^old/(.*)", "action": "redirect", "url": "https://new.site/{R:1}"}],
     "/old/x?a=b", {}, ("redirect", "301", "https://new.site/x?a=b")),
    ("redirect 307", [{"pattern": "^old", "action": "redirect", "url": "/n", "status": 307}],
     "/old", {}, ("redirect", "307", "/n")),
    # Rewrite to an absolute URL is ARR's proxy.
    ("absolute rewrite proxies", [{"pattern": "^myApp(.*)", "url": "http://127.0.0.1:8000/myApp{R:1}"}],
     "/myApp/x?q=1", {}, ("proxy", "http://127.0.0.1:8000/myApp/x?q=1")),
    ("{R:0} is the whole match", [{"pattern": "^myApp.*", "url": "http://127.0.0.1:8000/{R:0}"}],
     "/myApp/x", {}, ("proxy", "http://127.0.0.1:8000/myApp/x")),
    # Conditions: MatchAll, MatchAny, negate, {C:n} of the last matched condition.
    ("MatchAll fails on one", [{"pattern": ".*", "url": "/x", "conditions": [
        {"input": "{HTTP_HOST}", "pattern": "^www\\."},
        {"input": "{HTTPS}", "pattern": "^ON$"}]}], "/a", {}, ("", "/a")),
    ("MatchAny holds on one", [{"pattern": ".*", "url": "/x", "match_any": True, "conditions": [
        {"input": "{HTTP_HOST}", "pattern": "^nope"},
        {"input": "{HTTPS}", "pattern": "^off$"}]}], "/a", {}, ("", "/x")),
    ("negated condition", [{"pattern": ".*", "url": "/x", "conditions": [
        {"input": "{HTTP_HOST}", "pattern": "^www\\.", "negate": True}]}], "/a", {}, ("", "/a")),
    ("{C:n} is the last matched condition's", [{"pattern": "^(a)", "url": "/{R:1}/{C:1}", "conditions": [
        {"input": "{HTTP_HOST}", "pattern": "^(www)\\."},
        {"input": "{QUERY_STRING}", "pattern": "p=(\\w+)"}]}], "/a?p=q", {}, ("", "/a/q?p=q")),
    ("a condition reads {R:n} and the previous {C:n}", [{"pattern": "^(\\w+)", "url": "/ok",
        "conditions": [{"input": "{R:1}", "pattern": "^(ab)"},
                       {"input": "{C:1}-x", "pattern": "^ab-x$"}]}], "/abc", {}, ("", "/ok")),
    # trackAllCaptures (IREF2): /article/23/ + p1=123&p2=abc → C:1=article C:2=23 C:3=abc.
    ("trackAllCaptures numbers all groups", [{"pattern": ".*", "track_all_captures": True,
        "url": "/{C:1}/{C:2}/{C:3}", "query": "replace", "conditions": [
            {"input": "{URL}", "pattern": "^/(\\w+)/(\\d+)/"},
            {"input": "{QUERY_STRING}", "pattern": "p2=(\\w+)"}]}],
     "/article/23/?p1=123&p2=abc", {}, ("", "/article/23/abc")),
    # Server variables: IIS values.
    ("REQUEST_URI has the query", [{"pattern": ".*", "url": "/v", "query": "replace",
        "request_headers": {"X-V": "{REQUEST_URI}"}}], "/c/d.aspx?t=2", {}, ("", "/v")),
    ("HTTPS is OFF, SERVER_PORT 80", [{"pattern": ".*", "url": "/{HTTPS}/{SERVER_PORT}/{SERVER_PORT_SECURE}",
        "query": "replace"}], "/a?x=1", {}, ("", "/OFF/80/0")),
    ("HTTP_* headers", [{"pattern": ".*", "url": "/{HTTP_USER_AGENT}/{HTTP_X_TENANT}"}],
     "/a", {"User-Agent": "bot", "X-Tenant": "t1"}, ("", "/bot/t1")),
    ("QUERY_STRING has no '?'", [{"pattern": ".*", "url": "/q/{QUERY_STRING}", "query": "replace"}],
     "/a?x=1", {}, ("", "/q/x=1")),
    # Syntaxes.
    ("Wildcard: * captures", [{"pattern": "myApp/*/x/*", "syntax": "wildcard", "url": "/{R:1}-{R:2}"}],
     "/myapp/a/x/b", {}, ("", "/a-b")),
    ("Wildcard: ? is one character", [{"pattern": "a?c", "syntax": "wildcard", "url": "/hit"}],
     "/abc", {}, ("", "/hit")),
    ("ExactMatch", [{"pattern": "robots.txt", "syntax": "exact", "url": "/static/robots.txt"}],
     "/ROBOTS.TXT", {}, ("", "/static/robots.txt")),
    # Functions, nested.
    ("ToLower", [{"pattern": "^Docs/(.*)", "url": "/docs/{ToLower:{R:1}}", "ignore_case": False}],
     "/Docs/ReadMe", {}, ("", "/docs/readme")),
    ("UrlEncode of a value", [{"pattern": ".*", "url": "/e/{UrlEncode:{HTTP_X_Q}}"}],
     "/a", {"X-Q": "a b/c"}, ("", "/e/a+b%2fc")),
    # Actions that end the list.
    ("CustomResponse", [{"pattern": "^gone", "action": "respond", "status": 410},
                        {"pattern": ".*", "url": "/never"}], "/gone", {}, ("respond", "410")),
    ("AbortRequest", [{"pattern": ".*", "action": "abort"}], "/a", {}, ("abort",)),
    ("None goes on", [{"pattern": ".*", "action": "none"}, {"pattern": "^a", "url": "/b"}],
     "/a", {}, ("", "/b")),
    # Site binding.
    ("host-bound rule skips another host", [{"host": "other.com", "pattern": ".*", "url": "/x"}],
     "/a", {}, ("", "/a")),
    ("wildcard host", [{"host": "*.mysite.com", "pattern": ".*", "url": "/x", "query": "replace"}],
     "/a", {}, ("", "/x")),
    # Safety: a decoded space or CTL in a rewritten URL is refused.
    ("UrlDecode to a space is 403", [{"pattern": "^s/(.*)", "url": "/t/{UrlDecode:{R:1}}"}],
     "/s/a%20b", {}, ("refuse", "403")),
    ("captures stay encoded", [{"pattern": "^s/(.*)", "url": "/t/{R:1}"}],
     "/s/a%20b%2Fc", {}, ("", "/t/a%20b%2Fc")),
]


@pytest.mark.parametrize(("name", "rules", "target", "headers", "expected"), CASES,
                         ids=[case[0] for case in CASES])
def test_iis_semantics(name: str, rules: list[R], target: str, headers: dict[str, str],
                       expected: tuple[str, ...]) -> None:
    assert outcome(run_rules(rules, target, headers)) == expected


def test_server_variable_sets_a_request_header() -> None:
    state = run_rules([{"pattern": ".*", "action": "none",
                        "request_headers": {"HTTP_X_ORIGINAL_HOST": "{HTTP_HOST}"},
                        "response_headers": {"RESPONSE_X_POWERED": "{REQUEST_URI}"}}],
                      "/a?b=1")
    assert state.request_headers == [("X-Original-Host", "www.mysite.com")]
    assert state.response_headers == [("X-Powered", "/a?b=1")]


def test_rewrite_map_with_default() -> None:
    maps = [{"name": "Legacy", "entries": {"/old": "/new"}, "default": ""}]
    rules = [{"pattern": ".*", "action": "redirect", "url": "{C:1}",
              "conditions": [{"input": "{Legacy:{REQUEST_URI}}", "pattern": "(.+)"}]}]
    assert outcome(run_rules(rules, "/old", maps=maps)) == ("redirect", "301", "/new")
    assert outcome(run_rules(rules, "/other", maps=maps)) == ("", "/other")


def test_trace_shows_captures() -> None:
    state = run_rules([{"name": "r", "pattern": "^(a)(b)?", "url": "/x"}], "/a")
    assert state.trace == [("r", ("a", "a", ""), ())]


def test_is_file_needs_the_document_root(tmp_path: Any) -> None:
    (tmp_path / "real.txt").write_text("x")
    rules = [{"pattern": ".*", "url": "/index.php", "query": "replace", "conditions": [
        {"input": "{REQUEST_FILENAME}", "match_type": "is_file", "negate": True}]}]
    assert outcome(run_rules(rules, "/real.txt", document_root=tmp_path)) == ("", "/real.txt")
    assert outcome(run_rules(rules, "/missing", document_root=tmp_path)) == ("", "/index.php")
    assert outcome(run_rules(rules, "/../etc/passwd", document_root=tmp_path)) == ("", "/index.php")
