"""The admin API on a real portico: over its control socket and a TCP admin listener.

One portico for the module (a supervised tiny app, a route to nothing, a route whose
name carries script-like characters, ``[admin] listen`` on loopback); each security
requirement of docs/guide/admin.md has its test here or in tests/unit/test_admin.py.
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from portico.admin.endpoints import ENDPOINTS
from portico.cli import main
from tests.conftest import free_port
from tests.support.portico_proc import Portico
from tests.support.supervised import config, tiny, wait_until

SCRIPTY = "/x'+alert(1)+'&(y)"  # what a route path may hold that HTML would not like


class Admin:
    def __init__(self, proxy: Portico, port: int) -> None:
        self.proxy = proxy
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        (self.socket,) = (proxy.state_dir / "run").glob("*.sock")
        self.unix = httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)),
                                 base_url="http://localhost", timeout=30)
        self.tcp = httpx.Client(base_url=self.base, timeout=30)

    def cli(self, *args: str, stdin: str | None = None) -> Result:
        """``portico ARGS -c CONFIG``, in this process (a subprocess each costs a second)."""
        runner = CliRunner()
        return runner.invoke(main, [*args, "-c", str(self.proxy.config_path)], input=stdin,
                             env={"PORTICO_STATE_DIR": str(self.proxy.state_dir),
                                  "PORTICO_RUNTIME_DIR": None, "COLUMNS": "200"})

    def etag(self) -> str:
        return str(self.unix.get("/api/config").json()["etag"])

    def audit(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.unix.get("/api/audit").json()
        return rows


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    tmp = tmp_path_factory.mktemp("admin")
    port = free_port()
    text = config(tiny("web"), f"""
[[route]]
path = "{SCRIPTY}"
upstream = "http://127.0.0.1:{free_port()}/"  # nothing listens: a broken route

# the admin, on loopback only
[admin]
listen = "http://127.0.0.1:{port}"
watch = "1s"
max_body_size = "64KiB"
""")
    # Served by the checking process (no hand-over): config checks run in process, not in
    # a child each (tests/unit/test_admin.py runs that child once).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTICO_NO_EXEC", "1")
        proxy = Portico(text, tmp)
    found = Admin(proxy, port)
    yield found
    found.unix.close()
    found.tcp.close()
    proxy.stop()
    assert "Traceback" not in proxy.log_text(), proxy.log_text()


def _concrete(path: str) -> str:
    return path.replace("{name}", "web").replace("{backend}", "b").replace(
        "{version}", "1").replace("{token_id}", "t")


# -- S1: the control socket is the owner's; GET /status unchanged ------------------------

def test_control_socket_is_0600_and_status_is_unchanged(admin: Admin) -> None:
    assert stat.S_IMODE(admin.socket.stat().st_mode) == 0o600
    assert "no admin password or API token is set yet" in admin.proxy.log_text()
    status = admin.unix.get("/status").json()
    assert {"pid", "listen", "connections", "requests", "apps", "routes", "certificates",
            "workers", "config", "started", "logs"} <= set(status)
    assert admin.unix.get("/api/whoami").json()["scope"] == "admin"
    result = admin.cli("status", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["pid"] == admin.proxy.pid


def test_reads(admin: Admin) -> None:
    config_answer = admin.unix.get("/api/config")
    assert config_answer.headers["etag"] == config_answer.json()["etag"]
    assert "[admin]" in config_answer.json()["text"]
    routes = admin.unix.get("/api/routes").json()
    assert {r["path"] for r in routes} == {"/web", SCRIPTY}
    (app,) = admin.unix.get("/api/apps").json()
    assert app["name"] == "web" and app["state"] == "up" and app["pid"]
    assert len(admin.unix.get("/api/backends").json()) == 2
    assert admin.unix.get("/api/listeners").json()["admin"]["tcp"] == admin.base
    assert admin.unix.get("/api/certificates").json() == []
    assert "connections" in admin.unix.get("/api/counters").json()
    assert "/api/config" in admin.unix.get("/api/openapi.json").json()["paths"]
    with admin.unix.stream("GET", "/api/counters/stream?interval=0.2") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = (line for line in events.iter_lines() if line.startswith("data: "))
        first, second = json.loads(next(lines)[6:]), json.loads(next(lines)[6:])
    assert second["time"] > first["time"] and first["apps"] == {"web": "up"}


# -- S2: Host allowlist on every TCP request ---------------------------------------------

def test_wrong_host_is_refused_on_every_endpoint(admin: Admin) -> None:
    for endpoint in ENDPOINTS:
        for host in ("evil.test", f"evil.test:{admin.port}", "127.0.0.1:1"):
            answer = admin.tcp.request(endpoint.method, _concrete(endpoint.path),
                                       headers={"Host": host})
            assert answer.status_code == 403, (endpoint, host)
    assert admin.tcp.get("/api/whoami", headers={"Host": f"localhost:{admin.port}"}
                         ).status_code == 200


# -- S5, S6: no credentials, nothing but the sign-in pages -------------------------------

def test_without_credentials_every_endpoint_but_sign_in_is_refused(admin: Admin) -> None:
    for endpoint in ENDPOINTS:
        if endpoint.path == "/api/login":
            continue  # a wrong password: in test_password_sign_in_...
        answer = admin.tcp.request(endpoint.method, _concrete(endpoint.path))
        if endpoint.scope == "public":
            assert "Authorization: Bearer" not in answer.text, endpoint
        else:
            assert answer.status_code in (401, 403), endpoint
    assert admin.tcp.get("/api/not-declared").status_code == 401  # deny by default
    assert admin.tcp.get("/ui/", headers={"Accept": "text/html"}).headers["location"] \
        == "/login"
    assert admin.tcp.post("/api/password", json={"password": "x" * 9}).status_code == 403


# -- S7: tokens are scoped and expire; sessions are strict cookies ------------------------

def test_tokens_are_scoped(admin: Admin) -> None:
    made = admin.cli("admin", "token", "create", "ci", "--scope", "read")
    assert made.exit_code == 0, made.output
    read = made.stdout.strip()
    operate = admin.unix.post("/api/tokens", json={"name": "ops", "scope": "operate",
                                                   "expires_in": 600}).json()
    assert "hash" not in operate
    as_read = {"Authorization": f"Bearer {read}"}
    assert admin.tcp.get("/api/status", headers=as_read).status_code == 200
    assert admin.tcp.post("/api/reload", headers=as_read).status_code == 403
    assert admin.tcp.get("/api/config", headers=as_read).status_code == 403  # S14
    as_operate = {"Authorization": f"Bearer {operate['secret']}"}
    assert admin.tcp.post("/api/reload", headers=as_operate).status_code == 200
    assert admin.tcp.put("/api/config", headers=as_operate, json={"text": ""}
                         ).status_code == 403
    assert admin.tcp.get("/api/status", headers={"Authorization": "Bearer ptk_x_y"}
                         ).status_code == 401
    listed = admin.unix.get("/api/tokens").json()
    assert {t["name"] for t in listed} >= {"ci", "ops"} and all("hash" not in t for t in listed)
    assert admin.unix.delete(f"/api/tokens/{operate['id']}").status_code == 200
    assert admin.tcp.get("/api/status", headers=as_operate).status_code == 401
    short = admin.unix.post("/api/tokens", json={"name": "brief", "scope": "admin",
                                                 "expires_in": 0.2}).json()
    time.sleep(0.3)
    assert admin.tcp.get("/api/status", headers={"Authorization": f"Bearer {short['secret']}"}
                         ).status_code == 401
    actions = [row["action"] for row in admin.audit()]
    assert "token.create" in actions and "token.revoke" in actions
    assert read not in admin.socket.parent.parent.joinpath(
        "admin").rglob("tokens.json").__next__().read_text()


def test_password_sign_in_gives_a_strict_session_cookie(admin: Admin) -> None:
    assert admin.tcp.post("/api/login", json={"password": "nope"}).status_code == 401
    result = admin.cli("admin", "passwd", "--password-stdin", stdin="correct horse\n")
    assert result.exit_code == 0, result.output
    answer = admin.tcp.post("/api/login", json={"password": "correct horse"})
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"]
    for part in ("__Host-portico-session=", "HttpOnly", "SameSite=Strict", "Secure",
                 "Path=/"):
        assert part in cookie
    sid = cookie.split(";")[0].split("=", 1)[1]
    session = {"Cookie": f"__Host-portico-session={sid}"}
    assert admin.tcp.get("/api/whoami", headers=session).json()["scope"] == "admin"
    # S3: a cookie-borne write from another site is refused, from this one accepted
    pid = admin.unix.get("/api/apps").json()[0]["pid"]
    for foreign in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.test"},
                    {"Origin": "null"}, {"Sec-Fetch-Site": "same-origin",
                                         "Sec-Fetch-Mode": "no-cors"}):
        answer = admin.tcp.post("/api/apps/web/restart", headers={**session, **foreign})
        assert answer.status_code == 403, foreign
    assert admin.unix.get("/api/apps").json()[0]["pid"] == pid
    same = {**session, "Sec-Fetch-Site": "same-origin", "Origin": admin.base}
    assert admin.tcp.post("/api/reload", headers=same).status_code == 200
    assert admin.tcp.post("/api/logout", headers=same).status_code == 200
    assert admin.tcp.get("/api/status", headers=session).status_code == 401


# -- S4: a GET never acts ------------------------------------------------------------------

def test_get_on_an_action_changes_nothing(admin: Admin) -> None:
    def state() -> tuple[object, ...]:
        (app,) = admin.unix.get("/api/apps").json()
        return app["pid"], app["state"], app["restarts"], admin.etag(), len(admin.audit())

    before = state()
    for endpoint in ENDPOINTS:
        if endpoint.method != "GET":
            path = _concrete(endpoint.path)
            if not any(e.method == "GET" and e.path == endpoint.path for e in ENDPOINTS):
                assert admin.unix.get(path).status_code in (404, 405), endpoint
    assert state() == before


# -- S8: script-like names stay data; a strict CSP everywhere ----------------------------

def test_script_in_names_is_escaped_and_csp_is_strict(admin: Admin) -> None:
    raw = admin.unix.get("/api/routes").content
    assert b"alert(1)" in raw and b"'&" not in raw and b"\\u0026" in raw
    answer = admin.unix.post("/api/apps/<script>alert(1)<%2Fscript>/restart")
    assert answer.status_code == 404 and b"<script>" not in answer.content
    page = admin.tcp.get("/auth", params={"token": '"><script>alert(1)</script>'})
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"


# -- S13: bounded bodies; the admin stays up with a broken route and a stopped app --------

def test_an_oversized_body_is_refused(admin: Admin) -> None:
    answer = admin.unix.put("/api/config", content=b"x" * (65 * 1024),
                            headers={"If-Match": "*"})
    assert answer.status_code == 413


def test_admin_answers_with_a_broken_route_and_a_stopped_app(admin: Admin) -> None:
    proxy = httpx.Client(base_url=admin.proxy.url, timeout=30)
    assert proxy.get("/x'+alert(1)+'&(y)/").status_code == 502
    assert admin.unix.post("/api/apps/web/stop").json()["instances"][0]["state"] == "stopped"
    assert proxy.get("/web/").status_code == 503
    assert admin.unix.get("/api/status").status_code == 200
    (started,) = admin.unix.post("/api/apps/web/start").json()["instances"]
    assert started["state"] == "up"
    (restarted,) = admin.unix.post("/api/apps/web/restart").json()["instances"]
    assert restarted["pid"] != started["pid"] and restarted["state"] == "up"
    assert proxy.get("/web/").status_code == 200
    assert admin.unix.post("/api/apps/nope/restart").status_code == 404
    assert admin.unix.post("/api/backends/b/drain").status_code == 404  # no such address
    web = next(b for b in admin.unix.get("/api/backends").json() if b["route"] == "/web")
    refused = admin.unix.post(f"/api/backends/{web['address']}/drain")
    assert refused.status_code == 409 and "only backend" in refused.text  # /web: one
    assert proxy.get("/web/").status_code == 200
    proxy.close()
    actions = [row["action"] for row in admin.audit()]
    assert {"app.stop", "app.start", "app.restart"} <= set(actions)


# -- S9-S12: validate, diff, If-Match, history, rollback, audit ---------------------------

def test_config_edits_are_validated_conditional_kept_and_audited(admin: Admin) -> None:
    text = admin.unix.get("/api/config").json()["text"]
    assert admin.unix.put("/api/config", json={"text": text}).status_code == 428
    assert admin.unix.put("/api/config", json={"text": text},
                          headers={"If-Match": '"stale"'}).status_code == 412
    bad = text.replace('tick = 0.1', 'tick = "soon"')
    checked = admin.unix.post("/api/config/validate", json={"text": bad}).json()
    assert not checked["valid"] and checked["errors"][0]["key"] == "server.tick"
    refused = admin.unix.put("/api/config", json={"text": bad},
                             headers={"If-Match": admin.etag()})
    assert refused.status_code == 422 and admin.proxy.config_path.read_text() == text
    before = admin.etag()
    result = admin.cli("config", "set", "server.tick", "0.2")
    assert result.exit_code == 0, result.output
    assert "-tick = 0.1" in result.stdout and "+tick = 0.2" in result.stdout
    now = admin.proxy.config_path.read_text()
    assert "# nothing listens: a broken route" in now and "tick = 0.2" in now
    history = admin.unix.get("/api/config/history").json()["versions"]
    assert history[-1]["action"] == "edit" and history[-1]["who"] == "owner (control socket)"
    first = next(v for v in history if v["etag"] == before)
    rolled = admin.unix.post(f"/api/config/rollback/{first['version']}").json()
    assert rolled["applied"] and admin.proxy.config_path.read_text() == text
    entries = admin.audit()
    assert entries[-1]["action"] == f"rollback to {first['version']}"
    assert entries[-1]["before"] and entries[-1]["after"] == before
    reader = admin.unix.post("/api/tokens", json={"name": "viewer", "scope": "read"}).json()
    listed = admin.tcp.get("/api/config/history",
                           headers={"Authorization": f"Bearer {reader['secret']}"}).json()
    assert len(listed["versions"]) >= 3 and all("diff" not in v for v in listed["versions"])


def test_a_degrading_apply_is_rolled_back_by_itself(admin: Admin) -> None:
    dead = free_port()
    answer = admin.unix.post("/api/config/edit", headers={"If-Match": admin.etag()}, json={
        "apply": True,
        "changes": [{"key": "route[1].upstream", "value": f"http://127.0.0.1:{dead}/"}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed_routes"] == [SCRIPTY]
    def watch() -> dict[str, str]:
        found: dict[str, str] = admin.unix.get("/api/config/history").json()["watch"]
        return found

    wait_until(lambda: watch()["result"] != "watching", 10, "the watch's verdict")
    assert watch()["result"].startswith("rolled back: route")
    assert str(dead) not in admin.proxy.config_path.read_text()
    assert admin.audit()[-1]["action"].startswith("automatic rollback")


# -- CLI: reload and ui go through the API; the signal still works --------------------------

def test_reload_and_ui_from_the_command_line(admin: Admin) -> None:
    result = admin.cli("reload")
    assert result.exit_code == 0 and "reloaded" in result.stdout, result.output
    assert admin.audit()[-1]["action"] == "reload"
    shown = admin.cli("ui", "--no-browser")
    assert shown.exit_code == 0, shown.output
    url = shown.stdout.strip().rsplit(" ", 1)[1]
    port = int(url.split(":")[2].split("/")[0])
    token = url.split("token=")[1]
    browser = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    page = browser.get(f"/auth?token={token}")
    assert 'src="/auth.js"' in page.text and "<script>" not in page.text.replace(
        '<script src="/auth.js" defer></script>', "")
    signed = browser.post("/auth", data={"token": token},
                          headers={"Sec-Fetch-Site": "same-origin"})
    assert signed.status_code == 303 and "__Host-portico-session" in signed.headers[
        "set-cookie"]
    again = browser.post("/auth", data={"token": token}, headers={"Sec-Fetch-Site": "same-origin"})
    assert again.status_code == 401  # one time only
    assert browser.get("/api/status", headers={"Host": "evil.test"}).status_code == 403
    browser.close()
