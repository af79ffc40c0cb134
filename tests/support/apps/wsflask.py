"""A Flask-Sock app for the WebSocket tests (run under gunicorn with threads)."""

from __future__ import annotations

from flask import Flask, abort, request
from flask_sock import Server, Sock  # type: ignore[import-untyped]

app = Flask(__name__)
sock = Sock(app)
ALLOWED_ORIGIN = "http://good.example"


@app.before_request
def check_origin() -> None:
    """The app's own CSRF guard: a WebSocket from another origin gets 403."""
    if request.path.startswith("/guarded") and request.headers.get("Origin") != ALLOWED_ORIGIN:
        abort(403)


@sock.route("/ws")  # type: ignore[untyped-decorator]
def echo(ws: Server) -> None:
    while True:
        ws.send(ws.receive())


@sock.route("/guarded")  # type: ignore[untyped-decorator]
def guarded(ws: Server) -> None:
    ws.send("origin " + (request.headers.get("Origin") or "-"))


@sock.route("/first")  # type: ignore[untyped-decorator]
def first(ws: Server) -> None:
    """The server speaks first, before the client sends anything."""
    ws.send("hello from the server")
    ws.send(ws.receive())


@app.get("/plain")
def plain() -> str:
    return "plain"
