"""``portico import apache``: directives, Apache's ordering traps, and broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from portico.config.load import parse
from portico.config.schema import Config
from portico.importers.apache import read_apache
from portico.importers.apache_syntax import split_arguments
from portico.importers.emit import Untranslated, emit
from portico.importers.model import Imported, Origin, UnreadableConfig


def read(tmp_path: Path, text: str, name: str = "httpd.conf") -> Imported:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return read_apache(path)


def config(tmp_path: Path, text: str) -> Config:
    return parse(emit(read(tmp_path, text)), "imported.toml")


def problems(tmp_path: Path, text: str) -> list[str]:
    return [f"{p.origin.line}: {p.origin.directive}: {p.reason}"
            for p in read(tmp_path, text).problems]


def test_arguments_are_split_as_httpd_does() -> None:
    origin = Origin("x", 1, "X")
    assert split_arguments('Header set X-A "a b" \'c\\\'d\'', origin) == [
        "Header", "set", "X-A", "a b", "c'd"]
    with pytest.raises(UnreadableConfig, match="unterminated"):
        split_arguments('Header set X "a', origin)


def test_location_proxy_pass_is_a_route_with_its_headers(tmp_path: Path) -> None:
    (route,) = config(tmp_path, "<Location /myapp>\n ProxyPass http://127.0.0.1:8000/\n"
                      " RequestHeader set X-Forwarded-Prefix /myapp\n"
                      " RequestHeader add X-A 1\n Header unset Server\n</Location>\n").route
    assert (route.path, route.upstream) == ("/myapp", "http://127.0.0.1:8000/")
    assert route.request_headers.set == {"X-Forwarded-Prefix": "{prefix}"}
    assert route.request_headers.add == {"X-A": "1"}
    assert route.response_headers.remove == ["Server"]


def test_virtual_hosts_give_hosts_and_aliases(tmp_path: Path) -> None:
    routes = config(tmp_path, "<VirtualHost *:80>\nServerName a.example\nServerAlias "
                    "b.example\nProxyPreserveHost On\nProxyPass / http://127.0.0.1:1/\n"
                    "</VirtualHost>\n").route
    assert [(r.host, r.preserve_host) for r in routes] == [("a.example", True),
                                                           ("b.example", True)]


def test_line_continuations_and_comments(tmp_path: Path) -> None:
    (route,) = config(tmp_path, "# a comment\nProxyPass /a \\\n  http://127.0.0.1:1/a\n").route
    assert route.upstream == "http://127.0.0.1:1/a"


@pytest.mark.parametrize(("line", "expected"), [
    ("RewriteRule ^/a$ /b [R,L]", {"action": "redirect", "status": 302}),  # [R] is 302
    ("RewriteRule ^/a$ /b [R=permanent,L]", {"status": 301}),
    ("RewriteRule ^/a$ /b [R=410]", {"action": "respond", "status": 410}),
    ("RewriteRule ^/a$ - [F]", {"action": "respond", "status": 403}),
    ("RewriteRule ^/a$ - [G]", {"action": "respond", "status": 410}),
    ("RewriteRule ^/a$ http://other.example/b", {"action": "redirect", "status": 302}),
    ("RewriteRule ^/a(.*)$ http://127.0.0.1:9/b$1 [P]", {"action": "proxy", "stop": True}),
    ("RewriteRule ^/a$ /b?x=1 [QSA,L]", {"query": "append", "stop": True}),
    ("RewriteRule ^/a$ /b [QSD]", {"query": "replace"}),
    ("RewriteRule ^/a$ /b [NC,C]", {"ignore_case": True, "chain": True}),
    ("RewriteRule ^/a$ /b [S=2]", {"skip": 2}),
    ("RewriteRule ^/a$ /b [N]", {"restart": True}),
    ("RewriteRule ^/a(.*)$ /b$1 [B,NE,END]", {"escape_backreferences": True,
                                              "no_escape": True, "stop": True}),
    ("RewriteRule !^/a - [L]", {"negate": True, "action": "none"}),
    ("Redirect /old http://new.example/new", {"pattern": "^/old(/.*)?$",
                                               "url": "http://new.example/new$1"}),
    ("Redirect gone /old", {"action": "respond", "status": 410}),
    ("RedirectMatch 301 ^/x/(.*)$ /y/$1", {"status": 301, "url": "/y/$1"}),
])
def test_rewrite_rules_mean_what_apache_means(tmp_path: Path, line: str,
                                             expected: dict[str, object]) -> None:
    (rule,) = config(tmp_path, f"RewriteEngine On\n{line}\n").rewrite.rule
    assert rule.dialect == "apache"
    for key, value in expected.items():
        assert getattr(rule, key) == value, key


def test_conditions_with_or_and_comparisons(tmp_path: Path) -> None:
    (rule,) = config(tmp_path, "RewriteEngine On\nRewriteCond %{HTTP_ACCEPT} >6 [OR]\n"
                     "RewriteCond %{REQUEST_FILENAME} !-f\nRewriteRule ^/ - [F]\n").rewrite.rule
    assert rule.match_any
    first, second = rule.conditions
    assert (first.match_type, first.pattern) == (">", "6")
    assert (second.match_type, second.negate) == ("is_file", True)


def test_rules_without_rewrite_engine_on_are_left_out_and_said(tmp_path: Path) -> None:
    imported = read(tmp_path, "RewriteRule ^/a /b\n")
    assert not imported.rules and "RewriteEngine is not On" in imported.notes[0].reason


@pytest.mark.parametrize(("text", "expected"), [
    ("ProxyPass / http://127.0.0.1:1/\nProxyPass /a http://127.0.0.1:2/\n",
     "2: ProxyPass: Apache sends /a to the ProxyPass of / (line 1) first"),
    ("ProxyPass /a http://127.0.0.1:2/\n<Location />\nProxyPass http://127.0.0.1:1/\n"
     "</Location>\n", "1: ProxyPass: Apache sends /a to the ProxyPass of / (line 3) first"),
    ("ProxyPass /a !\n", "1: ProxyPass: ProxyPass ... ! (an exclusion) is not translated"),
    ("ProxyPass /a http://127.0.0.1:1/ retry=0\n", "ProxyPass parameters (retry=0)"),
    ("ProxyPass /a ftp://x/\n", "http:// and https:// URLs only"),
    ("ProxyPassReverse /b http://127.0.0.1:1/\n", "no ProxyPass of /b"),
    ("ProxyAddHeaders Off\n", "always sends X-Forwarded"),
    ("ProxyPass /a http://127.0.0.1:1/\nRedirect /a/x /y\n",
     "2: Redirect: the ProxyPass of /a (1) takes these requests first"),
    ("RewriteEngine On\nRewriteRule ^/a /b [R]\n", "[R] without [L]"),
    ("RewriteEngine On\nRewriteRule ^/a /b [CO=a:b:c]\n", "[CO] (setting cookies)"),
    ("RewriteEngine On\nRewriteCond %{A} a\n", "a RewriteCond with no RewriteRule after it"),
    ("RewriteEngine On\nRewriteCond %{A} a [OR]\nRewriteCond %{B} b\nRewriteCond %{C} c\n"
     "RewriteRule ^/ - [F]\n", None),
    ("RewriteMap m prg:/bin/x\n", "RewriteMap type prg"),
    ("Alias /static /var/www\n", "1: Alias: static files are not served"),
    ("<Directory /var/www>\n</Directory>\n", "1: <Directory>: <Directory> sections"),
    ("RequestHeader set X-A %{REMOTE_USER}e\n", "only plain values"),
    ("RequestHeader edit X-A a b\n", "only 'set', 'add' and 'unset'"),
    ("Frobnicate on\n", "1: Frobnicate: Frobnicate is not translated"),
])
def test_what_cannot_be_translated_is_an_error_with_its_line(
        tmp_path: Path, text: str, expected: str | None) -> None:
    imported = read(tmp_path, text)
    with pytest.raises(Untranslated) as caught:
        emit(imported)
    messages = [str(problem) for problem in caught.value.problems]
    assert all(message.startswith(str(tmp_path / "httpd.conf") + ":") for message in messages)
    if expected is not None:
        assert any(expected in message for message in messages), messages
    else:
        assert any("mixing [OR] and AND" in message for message in messages), messages
    parse(emit(imported, allow_partial=True), "partial.toml")


@pytest.mark.parametrize(("text", "expected"), [
    ("<VirtualHost *:80>\nProxyPass / http://x/\n", "1: <VirtualHost>: <VirtualHost> is never "
     "closed"),
    ("</Location>\n", "1: </Location>: closes a section that is not open"),
    ("<Location /a>\n</VirtualHost>\n", "2: </VirtualHost>: closes a section that is not open; "
     "open: <Location> (line 1)"),
    ("ProxyPass /a \\\n", "ends inside a continued line"),
    ("Include missing.conf\n", "1: Include: missing.conf: no such file"),
    ("Include httpd.conf\n", "includes itself"),
])
def test_broken_files_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(UnreadableConfig) as caught:
        read(tmp_path, text)
    assert expected in str(caught.value)


def test_include_globs_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "b.conf").write_text("ProxyPass /b http://127.0.0.1:2/\n")
    (tmp_path / "sites" / "a.conf").write_text("ProxyPass /a http://127.0.0.1:1/\n")
    imported = read(tmp_path, "IncludeOptional nothing/*.conf\nInclude sites/*.conf\n")
    assert [(r.path, Path(r.origin.file).name) for r in imported.routes] == [
        ("/a", "a.conf"), ("/b", "b.conf")]


def test_server_header_rules_reach_virtual_host_routes(tmp_path: Path) -> None:
    (route,) = config(tmp_path, "<VirtualHost *:80>\nServerName a.example\nProxyPass / "
                      "http://127.0.0.1:1/\n</VirtualHost>\nHeader set X-Site portico\n").route
    assert route.response_headers.set == {"X-Site": "portico"}


def test_proxy_preserve_host_takes_on_or_off(tmp_path: Path) -> None:
    assert problems(tmp_path, "ProxyPreserveHost yes\n") == [
        "1: ProxyPreserveHost: ProxyPreserveHost takes On or Off"]
