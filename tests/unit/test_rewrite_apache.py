"""Apache mod_rewrite semantics, table-driven (rewrite-semantics.md §A2, flags.xml,
httpd-tests t/modules/rewrite.t). Rules are in server context: the input has its slash."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.rules import outcome, run_rules

R = dict[str, Any]


def ap(**rule: Any) -> R:
    return {"dialect": "apache", **rule}


CASES: list[tuple[str, list[R], str, dict[str, str], tuple[str, ...]]] = [
    ("input has the leading slash", [ap(pattern="^/app1/(.*)", url="/x/$1")],
     "/app1/index.html", {}, ("", "/x/index.html")),
    ("case-sensitive by default", [ap(pattern="^/App", url="/x")], "/app", {}, ("", "/app")),
    ("[NC]", [ap(pattern="^/App", url="/x", ignore_case=True)], "/app", {}, ("", "/x")),
    # Query: kept unless the substitution has one; QSA appends; QSD / trailing '?' drop.
    ("no query in the substitution keeps the request's", [ap(pattern="^/a$", url="/b")],
     "/a?x=1", {}, ("", "/b?x=1")),
    ("a substitution query replaces", [ap(pattern="^/pages/(\\d+)", url="/page.php?page=$1")],
     "/pages/123?one=two", {}, ("", "/page.php?page=123")),
    ("[QSA]", [ap(pattern="^/pages/(\\d+)", url="/page.php?page=$1", query="append")],
     "/pages/123?one=two", {}, ("", "/page.php?page=123&one=two")),
    ("[QSD]", [ap(pattern="^/a$", url="/b", query="replace")], "/a?x=1", {}, ("", "/b")),
    ("a trailing '?' drops it", [ap(pattern="^/a$", url="/b?")], "/a?x=1", {}, ("", "/b")),
    # [R]: 302 by default; the query is kept.
    ("[R] is 302", [ap(pattern="^/old/(.*)", action="redirect", url="/new/$1")],
     "/old/x?q=1", {}, ("redirect", "302", "/new/x?q=1")),
    ("[R=301,QSD]", [ap(pattern="^/old", action="redirect", url="/n", status=301, query="replace")],
     "/old?q=1", {}, ("redirect", "301", "/n")),
    # Back-references: $N of the rule, %N of the last matched RewriteCond.
    ("%N is the last matched condition's", [ap(pattern="^/(a)", url="/$1/%1/%2", conditions=[
        {"input": "%{HTTP_HOST}", "pattern": "^(www)\\.(mysite)"}])], "/a", {}, ("", "/a/www/mysite")),
    ("[OR]", [ap(pattern=".*", url="/x", match_any=True, conditions=[
        {"input": "%{HTTP_HOST}", "pattern": "^nope"}, {"input": "%{HTTPS}", "pattern": "^off$"}])],
     "/a", {}, ("", "/x")),
    # Variables: Apache values.
    ("REQUEST_URI is the path only", [ap(pattern=".*", url="%{REQUEST_URI}-x", query="replace")],
     "/a/b?q=1", {}, ("", "/a/b-x")),
    ("HTTPS is lower case", [ap(pattern=".*", url="/%{HTTPS}", query="replace")],
     "/a", {}, ("", "/off")),
    ("%{HTTP:Header}", [ap(pattern=".*", url="/%{HTTP:X-Tenant}")], "/a", {"X-Tenant": "t1"},
     ("", "/t1")),
    ("THE_REQUEST", [ap(pattern=".*", action="respond", status=403, conditions=[
        {"input": "%{THE_REQUEST}", "pattern": "^GET /a\\?q HTTP/1\\.1$"}])],
     "/a?q", {}, ("respond", "403")),
    # Comparisons: lexicographic (httpd-tests: %{HTTP_ACCEPT} >6) and integer.
    ("'>' is a string compare", [ap(pattern=".*", url="/gt", conditions=[
        {"input": "%{HTTP:X-N}", "match_type": ">", "pattern": "6"}])], "/a", {"X-N": "10"},
     ("", "/a")),
    ("-gt is an integer compare", [ap(pattern=".*", url="/gt", conditions=[
        {"input": "%{HTTP:X-N}", "match_type": "-gt", "pattern": "6"}])], "/a", {"X-N": "10"},
     ("", "/gt")),
    ("'=' equals", [ap(pattern=".*", url="/eq", conditions=[
        {"input": "%{REQUEST_METHOD}", "match_type": "=", "pattern": "GET"}])], "/a", {}, ("", "/eq")),
    # Flow: [C], [S=n], [N], [L], '-'.
    ("[C]: a failing rule skips its chain", [ap(pattern="^/nope", url="/x", chain=True),
                                            ap(pattern=".*", url="/chained"),
                                            ap(pattern="^/a$", url="/after")],
     "/a", {}, ("", "/after")),
    ("[C]: a matching rule runs the chain", [ap(pattern="^/a$", url="/b", chain=True),
                                            ap(pattern="^/b$", url="/c")], "/a", {}, ("", "/c")),
    ("[S=1]", [ap(pattern="^/a$", url="/a2", skip=1), ap(pattern=".*", url="/skipped"),
               ap(pattern="^/a2$", url="/done")], "/a", {}, ("", "/done")),
    ("[N] until no match", [ap(pattern="^/(.*)-(.*)$", url="/$1_$2", restart=True)],
     "/a-b-c", {}, ("", "/a_b_c")),
    ("[N] loop is bounded", [ap(pattern="^(.*)$", url="$1x", restart=True)],
     "/a", {}, ("refuse", "500")),
    ("[L]", [ap(pattern="^/a$", url="/b", stop=True), ap(pattern=".*", url="/c")],
     "/a", {}, ("", "/b")),
    ("'-' leaves the URL", [ap(pattern=".*", url="-", response_headers={"X-A": "1"}),
                            ap(pattern="^/a$", url="/b")], "/a", {}, ("", "/b")),
    # [P], [F], [G].
    ("[P]", [ap(pattern="^/api/(.*)", action="proxy", url="http://127.0.0.1:8000/$1")],
     "/api/x?q=1", {}, ("proxy", "http://127.0.0.1:8000/x?q=1")),
    ("[F]", [ap(pattern="^/secret", action="respond", status=403)], "/secret", {}, ("respond", "403")),
    ("[G]", [ap(pattern="^/gone", action="respond", status=410)], "/gone", {}, ("respond", "410")),
    # Escaping: [B] (httpd-tests: lower-case hex, space as '+'), [NE], and the 403s.
    ("[B]", [ap(pattern="^/b/(.*)", url="/x?q=$1", escape_backreferences=True)],
     "/b/foo%2Fbar%2F%20baz%0D", {}, ("", "/x?q=foo%2fbar%2f+baz%0d")),
    ("[R] escapes a space", [ap(pattern="^/s/(.*)", action="redirect", url="/t/${unesc:$1}")],
     "/s/a%20b", {}, ("redirect", "302", "/t/a%20b")),
    ("[R,NE] with a space is 403", [ap(pattern="^/s/(.*)", action="redirect", no_escape=True,
                                       url="/t/${unesc:$1}")], "/s/a%20b", {}, ("refuse", "403")),
    ("local with a space is 403", [ap(pattern="^/s/(.*)", url="/t/${unesc:$1}")],
     "/s/a%20b", {}, ("refuse", "403")),
    ("[P] with a space is 403", [ap(pattern="^/s/(.*)", action="proxy",
                                    url="http://127.0.0.1:8000/${unesc:$1}")],
     "/s/a%20b", {}, ("refuse", "403")),
    ("no double escaping of %25", [ap(pattern="^/f/(.*)", url="/g/$1")],
     "/f/file%25", {}, ("", "/g/file%25")),
    # Maps: txt (inlined), int:tolower, a default.
    ("${map:key|default}", [ap(pattern="^/m/(.*)", url="/${legacy:$1|none}")],
     "/m/zz", {}, ("", "/none")),
    ("int:tolower", [ap(pattern="^/(.*)", url="/${lc:$1}")], "/ABC", {}, ("", "/abc")),
]
MAPS: list[dict[str, Any]] = [{"name": "unesc", "function": "unescape"}, {"name": "lc", "function": "tolower"},
        {"name": "legacy", "entries": {"a": "b"}}]


@pytest.mark.parametrize(("name", "rules", "target", "headers", "expected"), CASES,
                         ids=[case[0] for case in CASES])
def test_apache_semantics(name: str, rules: list[R], target: str, headers: dict[str, str],
                          expected: tuple[str, ...]) -> None:
    assert outcome(run_rules(rules, target, headers, maps=MAPS)) == expected


def test_negated_pattern_has_no_captures() -> None:
    state = run_rules([ap(pattern="^/x", negate=True, url="/y")], "/a")
    assert outcome(state) == ("", "/y") and state.trace == [("rule 1", (), ())]


def test_regex_bombs_run_in_linear_time() -> None:
    import time

    started = time.perf_counter()
    state = run_rules([ap(pattern="(a+)+$", url="/x"), ap(pattern="^/(a|aa)+b", url="/y")],
                      "/" + "a" * 100_000 + "!")
    assert outcome(state)[0] == ""
    assert time.perf_counter() - started < 1.0  # Python's re takes minutes on these


def test_huge_captures_are_bounded() -> None:
    big = "a" * 20_000
    state = run_rules([ap(pattern="^/(.*)$", url="/$1$1$1")], "/" + big)
    assert state.path == "/" + big * 3
    doubling = [ap(pattern="^/(.*)$", url="/$1$1", restart=True)]
    assert outcome(run_rules(doubling, "/" + big)) == ("refuse", "414")


@pytest.mark.parametrize(("rules", "path", "may"), [
    ([ap(pattern="^/old/(.*)"), ap(pattern="^/legacy")], "/myapp/x", False),
    ([ap(pattern="^/old/(.*)"), ap(pattern="^/legacy")], "/legacy/x", True),
    ([ap(pattern="^/Old", ignore_case=True)], "/OLD/x", True),
    ([ap(pattern="api/v1")], "/x/api/v1/y", True),  # unanchored: contained
    ([ap(pattern="^/old"), ap(pattern="^/x", negate=True)], "/myapp", True),  # negated: no gate
    ([ap(pattern="^/old"), ap(pattern="(a|b)")], "/myapp", True),  # no literal: no gate
])
def test_the_literal_gate_only_skips_what_cannot_match(rules: list[R], path: str, may: bool) -> None:
    from portico.config.rules import RewriteRule
    from portico.config.rules_compile import rule_plans
    from portico.routing.rules import RuleSet, lookup_of

    plans = rule_plans([RewriteRule(url="/z", **rule) for rule in rules], [], ("r",))
    assert RuleSet(plans, lookup_of([])).may_match(path.encode()) is may
