"""The Apache guide's Flask app, behind ProxyFix as the guide wraps it.

``/`` says hello; ``/whoami`` shows what the app sees (client address,
scheme, host, script_root and ``url_for`` links), ``/whoami.json`` the same
as JSON for tests and ``portico`` itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Flask, Response, jsonify, redirect, render_template_string, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

app = Flask(__name__)
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]

PAGE = """<!doctype html>
<html><head><title>What the app sees</title></head>
<body>
<h1>What the app sees</h1>
<table>
<tr><th>client address</th><td id="remote_addr">{{ seen.remote_addr }}</td></tr>
<tr><th>scheme</th><td id="scheme">{{ seen.scheme }}</td></tr>
<tr><th>host</th><td id="host">{{ seen.host }}</td></tr>
<tr><th>script_root</th><td id="script_root">{{ seen.script_root }}</td></tr>
<tr><th>path</th><td id="path">{{ seen.path }}</td></tr>
</table>
<p><a id="hello" href="{{ seen.url_for_hello }}">hello (url_for)</a> ·
<a id="external" href="{{ seen.url_for_external }}">{{ seen.url_for_external }}</a></p>
</body></html>
"""


def seen() -> dict[str, str]:
    return {
        "remote_addr": request.remote_addr or "",
        "scheme": request.scheme,
        "host": request.host,
        "script_root": request.script_root,
        "path": request.path,
        "url_for_hello": url_for("hello"),
        "url_for_external": url_for("hello", _external=True),
    }


@app.route("/")
def hello() -> str:
    return "Hello from the guide's Flask app!"


@app.route("/whoami")
def whoami() -> str:
    return render_template_string(PAGE, seen=seen())


@app.route("/whoami.json")
def whoami_json() -> Response:
    return jsonify(seen())


@app.route("/go")
def go() -> Response:
    """A prefix-aware redirect: werkzeug writes ``/myapp/`` itself."""
    return redirect(url_for("hello"))  # type: ignore[return-value]


@app.route("/legacy-redirect")
def legacy_redirect() -> Response:
    """A redirect built the old way, from the address the app was reached at."""
    original = request.environ.get("werkzeug.proxy_fix.orig", {})
    host = original.get("HTTP_HOST", request.host)
    return redirect(f"http://{host}/whoami", code=302)  # type: ignore[return-value]


@app.route("/cookie")
def cookie() -> Response:
    response = jsonify(ok=True)
    response.set_cookie("theme", "dark", path="/")
    response.set_cookie("cart", "3", path="/shop")
    return response


@app.route("/stream")
def stream() -> Response:
    """``?pieces=N&delay=S``: N lines, S seconds apart (default 3 and 0.3)."""
    count = min(request.args.get("pieces", 3, type=int), 10_000)
    delay = min(request.args.get("delay", 0.3, type=float), 5.0)

    def pieces() -> Iterator[str]:
        for number in range(count):
            yield f"piece {number}\n"
            time.sleep(delay)

    return Response(pieces(), mimetype="text/plain")


@app.route("/slow")
def slow() -> str:
    """``?seconds=S``: answers after S seconds (at most 30)."""
    time.sleep(min(request.args.get("seconds", 1.0, type=float), 30.0))
    return "slow\n"


@app.route("/bytes")
def some_bytes() -> Response:
    """``?size=N``: N bytes (at most 64 MiB), streamed in 64 KiB pieces."""
    size = max(0, min(request.args.get("size", 1024, type=int), 64 * 2**20))
    piece = b"x" * 65536

    def pieces() -> Iterator[bytes]:
        left = size
        while left > 0:
            yield piece[: min(left, len(piece))]
            left -= len(piece)

    return Response(pieces(), mimetype="application/octet-stream",
                    headers={"Content-Length": str(size)})


@app.route("/echo", methods=["POST"])
def echo() -> Response:
    """Reads the whole body and says how long it was."""
    return jsonify(received=len(request.get_data()))
