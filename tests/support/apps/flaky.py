"""A backend that can be told to fail or slow down, for the balancing tests.

    flaky.py PORT NAME LOG

``GET /`` answers NAME; ``GET /slow`` after 0.2 s; ``POST /post`` reads the body
and appends ``NAME ID`` (the ``X-Id`` field) to LOG, flushed, so the record
outlives a SIGKILL; ``GET /health`` answers the status last set with
``PUT /control/health/STATUS`` (200 at first) and appends ``NAME health`` to LOG.
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, NAME, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
state = {"health": 200}
lock = threading.Lock()


def record(line: str) -> None:
    with lock, open(LOG, "a") as log:
        log.write(line + "\n")
        log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            record(f"{NAME} health")
            self.answer(state["health"], b"ok" if state["health"] == 200 else b"sick")
            return
        if self.path == "/slow":
            time.sleep(0.2)
        self.answer(200, NAME.encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        record(f"{NAME} {self.headers.get('X-Id', '-')} {len(body)}")
        self.answer(200, NAME.encode())

    def do_PUT(self) -> None:
        if self.path.startswith("/control/health/"):
            state["health"] = int(self.path.rsplit("/", 1)[1])
        self.answer(200, b"set")

    def log_message(self, format: str, *args: object) -> None:
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
