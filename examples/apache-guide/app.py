"""The Apache guide's Flask app: behind one reverse proxy, so ProxyFix trusts one hop.

``/`` says hello; ``/whoami`` shows what the app sees of the request.
"""

from flask import Flask, jsonify, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

app = Flask(__name__)
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)


@app.route("/")
def hello():
    return "Hello from behind the proxy!\n"


@app.route("/whoami")
def whoami():
    return jsonify(
        remote_addr=request.remote_addr,
        scheme=request.scheme,
        host=request.host,
        script_root=request.script_root,
        external_url=url_for("hello", _external=True),
    )
