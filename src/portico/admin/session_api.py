"""Sign-in and credentials: password sessions, `portico ui`'s one-time links, API tokens.

Sessions are cookies (``__Host-portico-session``: HttpOnly, SameSite=Strict, Secure);
nothing is kept in the browser's storage. The pages here are plain HTML with one
external script (``/auth.js``), as the CSP allows.
"""

from __future__ import annotations

import asyncio
from html import escape
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from portico.admin import auth
from portico.admin.api import BadRequest, Json, body_json, context, error
from portico.admin.audit import record

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>portico admin: {title}</title>
<script src="/auth.js" defer></script></head>
<body><h1>portico admin</h1>{body}</body></html>
"""
AUTH_JS = b"""// Sends the one-time sign-in form of /auth by itself (the CSP forbids inline script).
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("one-time");
  if (form) { form.submit(); }
});
"""
FAILED_LOGIN_DELAY = 0.5  # seconds a wrong password waits before its answer
_one_at_a_time: list[asyncio.Lock] = []  # password checks, one after another (guessing)


async def _fields(request: Request) -> dict[str, str]:
    """A JSON object or a urlencoded form (the sign-in pages post forms)."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        return {key: values[0] for key, values in form.items()}
    data = await body_json(request)
    return {key: str(value) for key, value in data.items()}


def _signed_in(request: Request, actor: str, scope: str, location: str | None) -> Response:
    sessions: auth.Sessions = request.scope["portico.sessions"]
    sid = sessions.open(actor, scope)
    response: Response
    if location is not None:
        response = Response(status_code=303, headers={"Location": location})
    else:
        response = Json({"signed_in": True, "scope": scope})
    response.headers["Set-Cookie"] = auth.cookie_header(sid)
    return response


async def login_page(request: Request) -> Response:
    body = ("<form method=\"post\" action=\"/api/login\"><label>Password "
            "<input type=\"password\" name=\"password\" autocomplete=\"current-password\" "
            "autofocus></label><button>Sign in</button></form>")
    if not auth.has_password(context(request).state_dir):
        body = ("<p>No admin password is set. Run <code>portico admin passwd</code>, or "
                "<code>portico ui</code> for a one-time sign-in link.</p>")
    return HTMLResponse(PAGE.format(title="sign in", body=body))


async def login(request: Request) -> Response:
    admin = context(request)
    fields = await _fields(request)
    password = fields.get("password", "")
    if not _one_at_a_time:
        _one_at_a_time.append(asyncio.Lock())
    async with _one_at_a_time[0]:  # a guesser waits for each answer: about 2 a second
        ok = await asyncio.to_thread(auth.check_password, admin.state_dir, password)
        if not ok:
            await asyncio.sleep(FAILED_LOGIN_DELAY)
    record(admin, request, "login", None, {"ok": ok}, actor="password")
    if not ok:
        return error(401, "wrong password (or none set: `portico admin passwd`)")
    form = "json" not in request.headers.get("content-type", "")
    return _signed_in(request, "password", "admin", "/ui/" if form else None)


async def logout(request: Request) -> Response:
    sessions: auth.Sessions = request.scope["portico.sessions"]
    sid = request.cookies.get(auth.SESSION_COOKIE)
    if sid:
        sessions.close(sid)
    response = Json({"signed_in": False})
    response.headers["Set-Cookie"] = auth.clear_cookie()
    return response


async def one_time_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    body = ("<form id=\"one-time\" method=\"post\" action=\"/auth\">"
            f"<input type=\"hidden\" name=\"token\" value=\"{escape(token, quote=True)}\">"
            "<button>Open the admin UI</button></form>")
    return HTMLResponse(PAGE.format(title="signing in", body=body))


async def redeem(request: Request) -> Response:
    sessions: auth.Sessions = request.scope["portico.sessions"]
    token = (await _fields(request)).get("token", "")
    if not token or not sessions.redeem(token):
        record(context(request), request, "login.one_time", None, {"ok": False})
        return error(401, "this sign-in link was used or has expired; run `portico ui` again")
    record(context(request), request, "login.one_time", None, {"ok": True})
    return _signed_in(request, "portico ui", "admin", "/ui/")


async def auth_js(request: Request) -> Response:
    return Response(AUTH_JS, media_type="text/javascript")


async def ui_session(request: Request) -> Response:
    admin = context(request)
    if admin.open_loopback is None:
        return error(501, "this portico cannot open a loopback UI listener")
    port = await admin.open_loopback()
    sessions: auth.Sessions = request.scope["portico.sessions"]
    token = sessions.one_time()
    record(admin, request, "ui.session", f"127.0.0.1:{port}", {"ok": True})
    return Json({"url": f"http://127.0.0.1:{port}/auth?token={token}",
                 "expires_in": auth.ONE_TIME_TTL})


async def set_password(request: Request) -> Response:
    admin = context(request)
    password = (await body_json(request)).get("password")
    if not isinstance(password, str):
        raise BadRequest("send {\"password\": \"...\"}")
    try:
        await asyncio.to_thread(auth.set_password, admin.state_dir, password)
    except ValueError as exc:
        return error(422, str(exc))
    record(admin, request, "password.set", None, {"ok": True})
    return Json({"password": "set"})


async def tokens(request: Request) -> Response:
    return Json([t.public() for t in auth.load_tokens(context(request).state_dir)])


async def create_token(request: Request) -> Response:
    admin = context(request)
    data = await body_json(request)
    name, scope, expires_in = data.get("name"), data.get("scope"), data.get("expires_in")
    if not isinstance(name, str) or not name or not isinstance(scope, str):
        raise BadRequest("send {\"name\": ..., \"scope\": \"read|operate|admin\"}")
    if expires_in is not None and not isinstance(expires_in, int | float):
        raise BadRequest("expires_in is a number of seconds")
    try:
        token, secret = auth.create_token(admin.state_dir, name, scope, expires_in)
    except ValueError as exc:
        return error(422, str(exc))
    record(admin, request, "token.create", token.id, {"ok": True, "scope": scope})
    return Json({**token.public(), "secret": secret}, status_code=201)


async def revoke_token(request: Request) -> Response:
    admin = context(request)
    token_id = request.path_params["token_id"]
    if not auth.revoke_token(admin.state_dir, token_id):
        return error(404, f"no token {token_id!r}")
    record(admin, request, "token.revoke", token_id, {"ok": True})
    return Json({"revoked": token_id})


HANDLERS = {
    ("GET", "/login"): login_page,
    ("POST", "/api/login"): login,
    ("POST", "/api/logout"): logout,
    ("GET", "/auth"): one_time_page,
    ("POST", "/auth"): redeem,
    ("GET", "/auth.js"): auth_js,
    ("POST", "/api/ui-session"): ui_session,
    ("POST", "/api/password"): set_password,
    ("GET", "/api/tokens"): tokens,
    ("POST", "/api/tokens"): create_token,
    ("DELETE", "/api/tokens/{token_id}"): revoke_token,
}
