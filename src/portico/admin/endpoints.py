"""The admin API's endpoints, declared once: method, path, the scope a caller needs and
what it does. The router (admin/api.py), the auth gate (admin/guard.py: an undeclared
path needs ``admin``, deny by default) and the OpenAPI schema (admin/openapi.py) all
read this table, so they cannot drift apart.

Scopes, HAProxy-socket style: ``read`` sees everything but the config text (it may
hold secrets: header values, app env); ``operate`` also
restarts apps, drains backends and reloads; ``admin`` also edits the config, rolls it
back and manages tokens. The control socket's owner is ``admin``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCOPES = ("read", "operate", "admin")


def allows(have: str, need: str) -> bool:
    return have in SCOPES and SCOPES.index(have) >= SCOPES.index(need)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # Starlette path syntax: /api/apps/{name}/restart
    scope: str  # "public" (login, the UI's shell), "read", "operate" or "admin"
    summary: str
    body: dict[str, Any] | None = None  # JSON schema of the request body
    params: list[str] = field(default_factory=list)  # query parameters
    responses: dict[str, str] = field(default_factory=dict)  # extra status -> why
    unix_only: bool = False


_TEXT = {"type": "object", "required": ["text"],
         "properties": {"text": {"type": "string", "description": "the whole TOML file"}}}
_CHANGES = {
    "type": "object", "required": ["changes"],
    "properties": {
        "changes": {"type": "array", "items": {
            "type": "object", "required": ["key"],
            "properties": {"key": {"type": "string", "description": "route[0].upstream"},
                           "value": {}, "delete": {"type": "boolean"}}}},
        "apply": {"type": "boolean", "description": "apply (needs If-Match), else preview"},
    },
}
_TOKEN = {"type": "object", "required": ["name", "scope"],
          "properties": {"name": {"type": "string"}, "scope": {"enum": list(SCOPES)},
                         "expires_in": {"type": "number", "description": "seconds"}}}
_PASSWORD = {"type": "object", "required": ["password"],
             "properties": {"password": {"type": "string"}}}

ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/status", "read", "The running portico's status (`portico status`)."),
    Endpoint("GET", "/api/status", "read", "The same as GET /status."),
    Endpoint("GET", "/api/config", "admin",
             "The config file's text and its ETag (send it back in If-Match to apply); "
             "admin only: it may hold header values and app env (secrets)."),
    Endpoint("GET", "/api/routes", "read", "Routes: match, upstream, app, state, headers."),
    Endpoint("GET", "/api/backends", "read", "Backends of each route and their state."),
    Endpoint("GET", "/api/apps", "read",
             "Supervised app instances: state, pid, uptime, restarts, last exit and reason."),
    Endpoint("GET", "/api/apps/{name}", "read", "The instances of one app.",
             responses={"404": "no app of that name"}),
    Endpoint("GET", "/api/listeners", "read", "Listen addresses, workers, admin listener."),
    Endpoint("GET", "/api/certificates", "read", "Certificates: hosts, not-after, days left."),
    Endpoint("GET", "/api/counters", "read",
             "Live counters: client connections and requests in flight, per worker."),
    Endpoint("GET", "/api/counters/stream", "read",
             "The counters and app states as server-sent events, every `interval` s.",
             params=["interval"]),
    Endpoint("GET", "/api/openapi.json", "read", "This API's OpenAPI schema."),
    Endpoint("GET", "/metrics", "read", "Prometheus metrics, text format.",
             responses={"404": "this portico has no metrics"}),
    Endpoint("GET", "/api/whoami", "public", "The caller's scope (none when not signed in)."),
    Endpoint("POST", "/api/reload", "operate",
             "Read the config file again (as SIGHUP); the reason if it was refused.",
             responses={"409": "refused: the old config keeps serving"}),
    Endpoint("POST", "/api/apps/{name}/restart", "operate",
             "Restart one app: rolling, one instance at a time; answers once it is done.",
             responses={"404": "no such app", "502": "an instance did not come back"}),
    Endpoint("POST", "/api/apps/{name}/stop", "operate", "Stop one app (not restarted).",
             responses={"404": "no such app"}),
    Endpoint("POST", "/api/apps/{name}/start", "operate", "Start a stopped app.",
             responses={"404": "no such app", "502": "an instance did not start"}),
    Endpoint("POST", "/api/backends/{backend}/drain", "operate",
             "Send no new requests to a backend (its address, host:port, as GET "
             "/api/backends lists it) on any route; requests in flight finish.",
             responses={"404": "no route has a backend at that address",
                        "409": "it is the only backend left in a route"}),
    Endpoint("POST", "/api/backends/{backend}/enable", "operate",
             "Send requests to a drained backend again.",
             responses={"404": "no route has a backend at that address"}),
    Endpoint("POST", "/api/config/validate", "admin",
             "Check a config text with the same model as the file; errors at their key.",
             body=_TEXT),
    Endpoint("POST", "/api/config/diff", "admin", "The unified diff from the running file.",
             body=_TEXT),
    Endpoint("PUT", "/api/config", "admin",
             "Validate, write and reload a config text, then watch it (If-Match required).",
             body=_TEXT, responses={"412": "the file changed since your GET",
                                    "428": "If-Match missing", "422": "invalid config"}),
    Endpoint("POST", "/api/config/edit", "admin",
             "Set or delete keys (comments kept); preview, or apply with If-Match.",
             body=_CHANGES, responses={"412": "the file changed", "422": "invalid config"}),
    Endpoint("GET", "/api/config/history", "read",
             "The last applied configs: who, when, what (their diffs for admin only)."),
    Endpoint("GET", "/api/config/history/{version}", "admin",
             "One applied config: its text and diff."),
    Endpoint("POST", "/api/config/rollback/{version}", "admin",
             "Apply an earlier config again (an audited edit like any other)."),
    Endpoint("GET", "/api/audit", "read", "The audit log, newest last.", params=["limit"]),
    Endpoint("GET", "/api/tokens", "admin", "API tokens (never their secret)."),
    Endpoint("POST", "/api/tokens", "admin",
             "Make an API token; its secret is shown once.", body=_TOKEN),
    Endpoint("DELETE", "/api/tokens/{token_id}", "admin", "Revoke an API token."),
    Endpoint("POST", "/api/login", "public", "Sign in with the admin password (a session "
             "cookie).", body=_PASSWORD, responses={"401": "wrong password"}),
    Endpoint("POST", "/api/logout", "public", "End the session."),
    Endpoint("POST", "/api/ui-session", "admin",
             "Open the loopback UI listener; a one-time sign-in URL (`portico ui`).",
             unix_only=True),
    Endpoint("GET", "/auth", "public", "The one-time sign-in page `portico ui` opens.",
             params=["token"]),
    Endpoint("POST", "/auth", "public", "Trade a one-time token for a session cookie."),
    Endpoint("GET", "/auth.js", "public", "The sign-in pages' script (no inline script)."),
    Endpoint("GET", "/login", "public", "The password sign-in page."),
    Endpoint("POST", "/api/password", "admin",
             "Set the admin password (`portico admin passwd`).", body=_PASSWORD,
             unix_only=True),
]


def find(method: str, path_template: str) -> Endpoint | None:
    for endpoint in ENDPOINTS:
        if endpoint.method == method and endpoint.path == path_template:
            return endpoint
    return None
