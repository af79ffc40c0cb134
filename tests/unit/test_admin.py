"""The admin API's parts without a server: [admin] checks, the guard's rules, credentials,
comment-keeping edits, the history and the OpenAPI schema."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import tomlkit
from pydantic import ValidationError

from portico.admin import auth
from portico.admin.configedit import EditError, History, apply_edits, parse_key
from portico.admin.endpoints import ENDPOINTS
from portico.admin.guard import cross_origin_refusal, needed_scope, split_host
from portico.admin.openapi import markdown, schema
from portico.admin.validate import validate
from portico.config.admin import Admin
from portico.config.load import parse
from portico.errors import ConfigError

# -- [admin]: a listener beyond loopback needs TLS (S1) ---------------------------------

@pytest.mark.parametrize("table", [
    {"listen": "http://0.0.0.0:9090"},
    {"listen": "http://192.0.2.1:9090"},
    {"listen": "http://admin.example.com:9090"},
    {"listen": "https://0.0.0.0:9443"},  # TLS without its cert and key
    {"listen": "http://127.0.0.1:9090", "cert": "c.pem", "key": "k.pem"},
    {"listen": "ftp://127.0.0.1:9090"},
    {"listen": "http://127.0.0.1:9090", "client_ca": "ca.pem"},
])
def test_unsafe_admin_listeners_are_refused_at_config_time(table: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Admin.model_validate(table)


def test_the_refusal_names_the_key_and_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        parse('[admin]\nlisten = "http://0.0.0.0:9090"\n', "p.toml")
    assert caught.value.key == "admin" and "https://" in caught.value.message


@pytest.mark.parametrize("listen", ["http://127.0.0.1:9090", "http://[::1]:9090",
                                    "http://localhost:9090"])
def test_loopback_http_and_remote_https_are_accepted(listen: str) -> None:
    assert Admin.model_validate({"listen": listen}).listen == listen
    remote = {"listen": "https://0.0.0.0:9443", "cert": "c.pem", "key": "k.pem"}
    assert Admin.model_validate(remote).cert == "c.pem"


def test_no_tcp_listener_by_default() -> None:
    assert Admin().listen is None


# -- the guard's rules -----------------------------------------------------------------

def test_every_route_is_behind_a_scope_deny_by_default() -> None:
    """S6: each declared endpoint has a scope; what is not declared needs admin."""
    public = {(e.method, e.path) for e in ENDPOINTS if e.scope == "public"}
    assert public == {("GET", "/api/whoami"), ("POST", "/api/login"), ("POST", "/api/logout"),
                      ("GET", "/auth"), ("POST", "/auth"), ("GET", "/auth.js"),
                      ("GET", "/login")}
    for endpoint in ENDPOINTS:
        path = endpoint.path.replace("{", "").replace("}", "")
        assert needed_scope(endpoint.method, path) == endpoint.scope
        if endpoint.method != "GET":
            assert endpoint.scope != "read", endpoint
    assert needed_scope("GET", "/api/not-declared") == "admin"
    assert needed_scope("POST", "/anything") == "admin"
    assert needed_scope("GET", "/ui/") == "read"
    assert needed_scope("POST", "/ui/x") == "operate"
    assert needed_scope("GET", "/ui/static/app.css") == "public"


def test_every_change_is_a_post_put_or_delete() -> None:
    """S4: no GET endpoint is scoped to act (``admin`` GETs read what may be secret)."""
    for endpoint in ENDPOINTS:
        if endpoint.method == "GET":
            assert endpoint.scope != "operate", endpoint
        if endpoint.scope == "operate":
            assert endpoint.method == "POST", endpoint


@pytest.mark.parametrize(("headers", "refused"), [
    ({}, False),  # not a browser
    ({"sec-fetch-site": "same-origin"}, False),
    ({"sec-fetch-site": "none"}, False),
    ({"sec-fetch-site": "cross-site"}, True),
    ({"sec-fetch-site": "same-site"}, True),
    ({"origin": "http://127.0.0.1:9090"}, False),
    ({"origin": "http://evil.test"}, True),
    ({"origin": "null"}, True),
    ({"sec-fetch-site": "same-origin", "sec-fetch-mode": "no-cors"}, True),
])
def test_cross_origin_writes(headers: dict[str, str], refused: bool) -> None:
    assert (cross_origin_refusal(headers, "http", "127.0.0.1:9090") is not None) is refused


def test_host_header_split() -> None:
    assert split_host("127.0.0.1:9090") == ("127.0.0.1", "9090")
    assert split_host("[::1]:9090") == ("[::1]", "9090")
    assert split_host("LocalHost") == ("localhost", "")


# -- credentials (S5, S7) --------------------------------------------------------------

def test_password_is_an_argon2_hash_and_has_no_default(tmp_path: Path) -> None:
    assert not auth.check_password(tmp_path, "")
    with pytest.raises(ValueError, match="8 characters"):
        auth.set_password(tmp_path, "short")
    auth.set_password(tmp_path, "correct horse")
    stored = (tmp_path / auth.PASSWORD_FILE).read_text()
    assert stored.startswith("$argon2") and "correct horse" not in stored
    assert (tmp_path / auth.PASSWORD_FILE).stat().st_mode & 0o077 == 0
    assert auth.check_password(tmp_path, "correct horse")
    assert not auth.check_password(tmp_path, "wrong horse")


def test_tokens_are_scoped_hashed_expiring_and_revocable(tmp_path: Path) -> None:
    token, secret = auth.create_token(tmp_path, "ci", "operate", 3600)
    assert secret not in (tmp_path / auth.TOKENS_FILE).read_text()
    found = auth.verify_token(tmp_path, secret)
    assert found is not None and found.scope == "operate"
    assert auth.verify_token(tmp_path, secret + "x") is None
    assert auth.verify_token(tmp_path, "not-a-token") is None
    short, short_secret = auth.create_token(tmp_path, "old", "read", 0.001)
    time.sleep(0.01)
    assert auth.verify_token(tmp_path, short_secret) is None
    assert "hash" not in short.public() and short.public()["expired"]
    assert auth.revoke_token(tmp_path, token.id)
    assert auth.verify_token(tmp_path, secret) is None
    with pytest.raises(ValueError, match="scope"):
        auth.create_token(tmp_path, "x", "root", None)


def test_sessions_expire_when_idle_and_one_time_tokens_work_once() -> None:
    sessions = auth.Sessions(idle_timeout=0.05)
    sid = sessions.open("password", "admin")
    assert sessions.get(sid) is not None
    time.sleep(0.06)
    assert sessions.get(sid) is None
    token = sessions.one_time()
    assert sessions.redeem(token) and not sessions.redeem(token)
    cookie = auth.cookie_header("abc")
    for part in ("__Host-portico-session=abc", "Path=/", "HttpOnly", "SameSite=Strict",
                 "Secure"):
        assert part in cookie
    assert "Domain" not in cookie


# -- edits keep comments (S9), history keeps N (S11) ------------------------------------

CONFIG = """\
# the team's proxy
[server]
listen = ["http://127.0.0.1:8080"]  # loopback only

[[route]]
path = "/a"
upstream = "http://127.0.0.1:9000/"  # the API
"""


def test_edits_change_one_value_and_keep_every_comment() -> None:
    text = apply_edits(CONFIG, [{"key": "route[0].upstream", "value": "http://127.0.0.1:9001/"},
                                {"key": "server.workers", "value": 2}])
    assert "# the team's proxy" in text and "# loopback only" in text
    assert 'upstream = "http://127.0.0.1:9001/"' in text
    assert tomlkit.parse(text)["server"]["workers"] == 2
    added = apply_edits(CONFIG, [{"key": "route[1].path", "value": "/b"},
                                 {"key": "route[1].upstream", "value": "http://x/"}])
    assert tomlkit.parse(added)["route"][1]["path"] == "/b"
    removed = apply_edits(CONFIG, [{"key": "route[0]", "delete": True}])
    assert "[[route]]" not in removed


def test_a_value_is_data_never_toml_text() -> None:
    """A value that looks like TOML stays one string (no injection of keys)."""
    text = apply_edits(CONFIG, [{"key": "route[0].upstream",
                                 "value": 'x"\n[admin]\nlisten = "http://0.0.0.0:1"'}])
    assert "admin" not in tomlkit.parse(text)


@pytest.mark.parametrize(("key", "message"), [
    ("route[5].path", "no item"), ("a..b", "write it as"), ("route[0].path.x", ""),
])
def test_bad_edit_keys_are_refused(key: str, message: str) -> None:
    with pytest.raises((EditError, TypeError, KeyError, AttributeError)):
        apply_edits(CONFIG, [{"key": key, "value": 1}])
    assert parse_key("route[0].limits.max_body_size") == ["route", 0, "limits",
                                                          "max_body_size"]


def test_history_keeps_the_last_n(tmp_path: Path) -> None:
    history = History(tmp_path, keep=3)
    for i in range(5):
        history.add(f"v{i}", "me", "apply", f'"{i}"', "")
    assert [v.version for v in history.versions()] == [3, 4, 5]
    assert history.text(5) == "v4" and history.text(1) is None


# -- the lean serving process checks a config text in a child -----------------------------

def test_validation_in_a_child_names_each_key() -> None:
    text = '[server]\ntick = "soon"\n\n[[route]]\npath = "/a"\n'
    errors = asyncio.run(validate(text, "p.toml", in_process=False))
    assert [e["key"] for e in errors] == ["server.tick", "route[0]"]
    assert asyncio.run(validate("[server]\n", "p.toml", in_process=False)) == []


# -- the OpenAPI schema covers every endpoint -------------------------------------------

def test_openapi_lists_every_endpoint_with_its_scope() -> None:
    paths = schema()["paths"]
    for endpoint in ENDPOINTS:
        operation = paths[endpoint.path][endpoint.method.lower()]
        assert operation["x-scope"] == endpoint.scope
    assert "| PUT | `/api/config` | admin |" in markdown()


def test_the_reference_page_is_up_to_date() -> None:
    page = Path(__file__).parents[2] / "docs" / "reference" / "admin-api.md"
    assert page.read_text() == markdown(), (
        "regenerate: python -m portico.admin.openapi > docs/reference/admin-api.md")
