"""Send the doctor's marked request through a real listener and route, and judge the answer.

The request comes from a loopback address other than the one portico uses to reach its
apps (``127.0.0.2`` when the listener is on ``127.0.0.1``), so an app that takes
portico's address for the client's is caught. What the app should see is what the
client sent: the listener's scheme, the Host header, its port and the route's prefix.
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from portico.doctor.explain import Context, fixes
from portico.doctor.hook import HEADER

if TYPE_CHECKING:
    from portico.config.schema import Config

FIELDS = ("client", "scheme", "host", "port", "prefix", "root_url")


@dataclass
class Target:
    """One route as the doctor probes it."""

    route: str  # the route's label: host and path
    path: str
    host: str | None
    app: str | None
    server: str | None  # gunicorn, waitress, uvicorn, command; None for an upstream
    kind: str | None  # wsgi, asgi or None
    preserve_path: bool
    preserve_host: bool


@dataclass
class Finding:
    name: str
    seen: Any
    expected: Any
    fix: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return str(self.seen) == str(self.expected)


@dataclass
class Report:
    route: str
    url: str
    answered: bool  # the doctor's middleware answered (the app is hosted through it)
    status: int | None
    app_status: str | None = None
    app_error: str | None = None
    middleware: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.answered and all(f.ok for f in self.findings)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        for entry, finding in zip(data["findings"], self.findings, strict=True):
            entry["ok"] = finding.ok
        return data


def _source_for(host: str) -> tuple[str, int] | None:
    """A loopback source other than portico's own (Linux routes all of 127/8 to lo)."""
    if host == "127.0.0.1" and sys.platform.startswith("linux"):
        return ("127.0.0.2", 0)
    return None


def _host_header(target: Target, listen_host: str, port: int, scheme: str) -> tuple[str, str]:
    """The host name the client asks for, and the Host header that carries it."""
    name = target.host if target.host and "*" not in target.host else listen_host
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    default = 443 if scheme == "https" else 80
    return name, name if port == default else f"{name}:{port}"


def probe(listen: str, target: Target, token: str, timeout: float = 10.0) -> Report:
    """Send the marked GET for ``target``'s prefix to the listener ``listen`` (a URL)."""
    url = urlsplit(listen)
    scheme = url.scheme or "http"
    listen_host = url.hostname or "127.0.0.1"
    port = url.port or (443 if scheme == "https" else 80)
    prefix = target.path.rstrip("/")
    path = prefix + "/"
    host_name, host = _host_header(target, listen_host, port, scheme)
    connection: http.client.HTTPConnection
    source = _source_for(listen_host)
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a loopback diagnosis, not a trust decision
        connection = http.client.HTTPSConnection(listen_host, port, timeout=timeout,
                                                 source_address=source, context=context)
    else:
        connection = http.client.HTTPConnection(listen_host, port, timeout=timeout,
                                                source_address=source)
    report = Report(target.route, f"{scheme}://{host}{path}", answered=False, status=None)
    try:
        connection.connect()
        client = connection.sock.getsockname()[0]
        connection.request("GET", path, headers={"Host": host, HEADER: token,
                                                 "Cache-Control": "no-cache"})
        response = connection.getresponse()
        body = response.read(65536)
        report.status = response.status
    except OSError as exc:
        report.problem = f"cannot reach {listen}: {exc}"
        return report
    finally:
        connection.close()
    try:
        seen = json.loads(body) if response.getheader("Content-Type") == "application/json" \
            else None
    except ValueError:
        seen = None
    if not isinstance(seen, dict) or "root_url" not in seen:
        report.problem = _no_answer(target, response.status)
        return report
    report.answered = True
    report.app_status = seen.get("app_status")
    report.app_error = seen.get("app_error")
    report.middleware = list(seen.get("middleware") or [])
    expected = {"client": client, "scheme": scheme, "host": host_name, "port": str(port),
                "prefix": prefix, "root_url": f"{scheme}://{host}{path}"}
    context_ = Context(kind=seen.get("kind") or target.kind or "wsgi", server=target.server,
                       preserve_path=target.preserve_path, preserve_host=target.preserve_host,
                       middleware=report.middleware, prefix=prefix)
    for name in FIELDS:
        finding = Finding(name, seen.get(name), expected[name])
        if not finding.ok:
            finding.fix = fixes(name, finding.seen, finding.expected, context_)
        report.findings.append(finding)
    return report


def _no_answer(target: Target, status: int) -> str:
    if target.app is None:
        return (f"status {status} and no doctor answer: this route proxies to an upstream "
                "portico does not start; add portico.doctor.hook.DoctorWSGI/DoctorASGI "
                "to that app (docs/guide/doctor.md)")
    if target.server == "command":
        return (f"status {status} and no doctor answer: app {target.app} runs its own "
                "command, so portico cannot wrap it; use wsgi = or asgi = "
                "(docs/guide/doctor.md)")
    return (f"status {status} and no doctor answer from app {target.app}: it was started "
            "before this portico run, or the route does not reach it")


def targets_of(config: Config) -> list[Target]:
    """Every route of ``config`` as the doctor probes it."""
    from portico.supervisor.commands import server_name

    apps = {app.name: app for app in config.app}
    out = []
    for route in config.route:
        app = apps.get(route.app or "")
        out.append(Target(
            route=f"{route.host or ''}{route.path}", path=route.path, host=route.host,
            app=route.app,
            server=server_name(app.command, app.asgi, app.server) if app else None,
            kind=("asgi" if app.asgi else "wsgi" if app.wsgi else None) if app else None,
            preserve_path=route.preserve_path, preserve_host=route.preserve_host))
    return out


def pick(targets: list[Target], wanted: str | None) -> list[Target]:
    """The routes ``wanted`` names (a route path, host+path or app name); all routes to an
    app without it."""
    if wanted is None:
        return [t for t in targets if t.app is not None] or targets
    return [t for t in targets if wanted in (t.route, t.path, t.app)]
