"""Rewrite config: what load and compile refuse, each error naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from portico.config.compile import serving_plan
from portico.config.load import parse
from portico.errors import ConfigError

ROUTE = '[[route]]\npath = "/"\nupstream = "http://127.0.0.1:8000/"\n'


@pytest.mark.parametrize(("rules", "key", "words"), [
    ('[[rewrite.rule]]\nurl = "http://evil.example/x"', "rewrite.rule[0].url",
     "no route or app serves"),
    ('[[rewrite.rule]]\ndialect = "apache"\npattern = "(.*)"\nurl = "http://127.0.0.1:8000$1"',
     "rewrite.rule[0].url", "is a template"),
    ('[[rewrite.rule]]\nurl = "http://{HTTP_HOST}/x"', "rewrite.rule[0].url", "is a template"),
    ('[[rewrite.rule]]\nurl = "/{NO_SUCH_VAR}"', "rewrite.rule[0]", "unknown server variable"),
    ('[[rewrite.rule]]\nurl = "/{Legacy:{R:1}}"', "rewrite.rule[0]", "nor a [[rewrite.map]]"),
    ('[[rewrite.rule]]\ndialect = "apache"\nurl = "/${m:$1}"', "rewrite.rule[0]", "no [[rewrite.map]]"),
    ('[[rewrite.rule]]\nurl = "/{R:1"', "rewrite.rule[0]", "unclosed"),
    ('[[rewrite.map]]\nname = "m"\nfile = "missing.txt"', "rewrite.map[0].file", "missing.txt"),
])
def test_compile_refuses(rules: str, key: str, words: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        serving_plan(parse(ROUTE + rules, "t"), tmp_path, tmp_path)
    assert refused.value.key == key and words in refused.value.message


def test_proxy_hosts_allows_another_origin(tmp_path: Path) -> None:
    rules = '[rewrite]\nproxy_hosts = ["backend.internal:9000"]\n' \
            '[[rewrite.rule]]\nurl = "http://backend.internal:9000/{R:0}"'
    plan = serving_plan(parse(ROUTE + rules, "t"), tmp_path, tmp_path)
    assert "backend.internal:9000" in plan.rewrite.proxy_hosts


@pytest.mark.parametrize(("rules", "words"), [
    ('[[rewrite.rule]]\npattern = "(?=x)"\nurl = "/y"', "linear-time engine"),
    ('[[rewrite.rule]]\npattern = "(a)\\\\1"\nurl = "/y"', "linear-time engine"),
    ('[[rewrite.rule]]\naction = "redirect"\nstatus = 200\nurl = "/y"', "301, 302, 303, 307 or 308"),
    ('[[rewrite.rule]]\naction = "respond"', "needs a 'status'"),
    ('[[rewrite.rule]]\naction = "proxy"\nurl = "/local"', "absolute 'url'"),
    ('[[rewrite.rule]]\nnegate = true\nurl = "/{R:1}"', "no captures"),
    ('[[rewrite.rule]]\nurl = "/x"\nrequest_headers = { REMOTE_ADDR = "1" }', "cannot be set"),
    ('[[rewrite.rule]]\nurl = "/x"\nrequest_headers = { "X-A" = "a\\nb" }', "CR, LF or NUL"),
    ('[[route.rewrite.rule]]\nhost = "a.example"\nurl = "/x"', "a route has its own 'host'"),
])
def test_load_refuses(rules: str, words: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse(ROUTE + rules, "t")
    assert words in str(refused.value) and "rewrite" in refused.value.key


def test_map_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "legacy.txt").write_text("# old to new\n/old /new\n\n/older /new  # same\n")
    rules = '[[rewrite.map]]\nname = "legacy"\nfile = "legacy.txt"\n'
    plan = serving_plan(parse(ROUTE + rules, "t"), tmp_path, tmp_path)
    assert plan.rewrite.maps[0].entries == {"/old": "/new", "/older": "/new"}
