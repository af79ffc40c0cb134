"""The config endpoints: read, validate, diff, apply (If-Match), edit, history, rollback,
and the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from portico.admin import audit
from portico.admin.api import BadRequest, Json, actor, body_json, context, error
from portico.admin.apply import Applier
from portico.admin.configedit import EditError, apply_edits, diff


def applier(request: Request) -> Applier:
    app_state = request.app.state
    if not hasattr(app_state, "applier"):
        app_state.applier = Applier(context(request))
    found: Applier = app_state.applier
    return found


async def _text(request: Request) -> str:
    text = (await body_json(request)).get("text")
    if not isinstance(text, str):
        raise BadRequest("send {\"text\": \"...the whole TOML file...\"}")
    return text


def _running(request: Request) -> str:
    return context(request).config_text().decode("utf-8", "replace")


async def validate(request: Request) -> Response:
    errors = await applier(request).check(await _text(request))
    return Json({"valid": not errors, "errors": errors})


async def show_diff(request: Request) -> Response:
    return Json({"diff": diff(_running(request), await _text(request))})


async def put_config(request: Request) -> Response:
    outcome = await applier(request).apply(
        await _text(request), request.headers.get("if-match"), actor(request), "apply",
        request)
    return Json(outcome.body, status_code=outcome.status)


async def edit(request: Request) -> Response:
    data = await body_json(request)
    changes = data.get("changes")
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise BadRequest("send {\"changes\": [{\"key\": \"route[0].upstream\", "
                         "\"value\": \"http://127.0.0.1:9000\"}]}")
    running = _running(request)
    try:
        text = apply_edits(running, changes)
    except EditError as exc:
        return error(422, str(exc), errors=[{"key": "", "message": str(exc)}])
    if not data.get("apply"):
        errors = await applier(request).check(text)
        return Json({"applied": False, "valid": not errors, "errors": errors, "text": text,
                     "diff": diff(running, text)})
    outcome = await applier(request).apply(
        text, request.headers.get("if-match"), actor(request), "edit", request)
    return Json(outcome.body, status_code=outcome.status)


async def history(request: Request) -> Response:
    found = applier(request)
    diffs = request.scope.get("portico.scope") == "admin"
    return Json({"versions": found.versions(diffs), "watch": found.watch_state})


def _version(request: Request) -> int:
    try:
        return int(request.path_params["version"])
    except ValueError:
        raise BadRequest("a version is a number (GET /api/config/history)") from None


async def version(request: Request) -> Response:
    found = applier(request)
    number = _version(request)
    text = found.history.text(number)
    meta = next((v for v in found.versions() if v["version"] == number), None)
    if text is None or meta is None:
        return error(404, f"no config version {number}")
    return Json({**meta, "text": text})


async def rollback(request: Request) -> Response:
    outcome = await applier(request).rollback(_version(request), actor(request), request)
    return Json(outcome.body, status_code=outcome.status)


async def audit_log(request: Request) -> Response:
    try:
        limit = int(request.query_params.get("limit", "200"))
    except ValueError:
        raise BadRequest("limit is a number") from None
    return Json(audit.tail(context(request), limit))


HANDLERS = {
    ("POST", "/api/config/validate"): validate,
    ("POST", "/api/config/diff"): show_diff,
    ("PUT", "/api/config"): put_config,
    ("POST", "/api/config/edit"): edit,
    ("GET", "/api/config/history"): history,
    ("GET", "/api/config/history/{version}"): version,
    ("POST", "/api/config/rollback/{version}"): rollback,
    ("GET", "/api/audit"): audit_log,
}
