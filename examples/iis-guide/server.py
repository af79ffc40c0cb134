"""The IIS guide's server.py: the app mounted under /myApp by DispatcherMiddleware.

As in the guide, apart from two things: the module no longer calls
``hostedApp.run()`` on import (waitress serves ``server:hostedApp``), and
``/whoami`` is added to show what the app sees, including X-Original-Host
(IIS's HTTP_X_ORIGINAL_HOST server variable).
"""

from flask import Flask, jsonify, request
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

# create a server instance
app = Flask(__name__)


@app.route("/")
def index():
    return "Hello World!!!"


@app.route("/help")
def helpPage():  # the guide's name
    return "This is the Help Page"


@app.route("/whoami")
def whoami():
    return jsonify(
        remote_addr=request.remote_addr,
        scheme=request.scheme,
        host=request.host,
        script_root=request.script_root,
        original_host=request.headers.get("X-Original-Host"),
    )


hostedApp = Flask(__name__)
hostedApp.wsgi_app = DispatcherMiddleware(NotFound(), {"/myApp": app})

if __name__ == "__main__":
    # the guide's way, for comparison: python server.py
    hostedApp.run(host="127.0.0.1", port=50100, debug=False)
