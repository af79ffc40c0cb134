"""A scriptable stdlib HTTP app for supervisor tests.

    tinyapp.py PORT [--die-after S] [--unhealthy-for S] [--spam BYTES] [--never-listen]
                    [--fail-now] [--hang-on PATH] [--sick-on PATH] [--serve-from-own-session]

``/`` answers ``tiny pid=<pid>``; ``/healthz`` answers 503 for the first
``--unhealthy-for`` seconds, then 200; ``/stream`` is an endless event stream
(an event every 0.1 s, until the client goes). After a GET of ``--hang-on``'s path
every request is accepted and never answered (a hung app); after a GET of
``--sick-on``'s path ``/healthz`` answers 500.
``--serve-from-own-session`` does not listen itself: it starts another tinyapp
in a session of its own (outside its process group, as a daemonizing app
would) that serves the port for 30 s, and waits.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--die-after", type=float, default=0)
    parser.add_argument("--unhealthy-for", type=float, default=0)
    parser.add_argument("--spam", type=int, default=0)
    parser.add_argument("--never-listen", action="store_true")
    parser.add_argument("--fail-now", action="store_true")
    parser.add_argument("--hang-on")
    parser.add_argument("--sick-on")
    parser.add_argument("--serve-from-own-session", action="store_true")
    args = parser.parse_args()
    hung, sick = threading.Event(), threading.Event()

    print(f"tinyapp starting on {args.port}", flush=True)
    if args.fail_now:
        print("tinyapp: cannot open database 'nowhere.db'", file=sys.stderr, flush=True)
        sys.exit(3)
    if args.never_listen:
        time.sleep(3600)
    if args.serve_from_own_session:
        child = subprocess.Popen([sys.executable, __file__, str(args.port), "--die-after", "30"],
                                 start_new_session=True, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        print(f"tinyapp: serving from pid {child.pid} in its own session", flush=True)
        time.sleep(3600)
    if args.spam:
        line = "x" * 99
        for _ in range(args.spam // 100):
            print(line)
        sys.stdout.flush()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if hung.is_set():
                time.sleep(3600)  # accepted, never answered
            if self.path == args.hang_on:
                hung.set()
            if self.path == args.sick_on:
                sick.set()
            if self.path == "/stream":
                self.stream()
                return
            if self.path == "/healthz" and sick.is_set():
                body, status = b"sick\n", 500
            elif self.path == "/healthz" and time.monotonic() - STARTED < args.unhealthy_for:
                body, status = b"warming up\n", 503
            else:
                body, status = f"tiny pid={os.getpid()}\n".encode(), 200
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            count = 0
            try:
                while True:
                    self.wfile.write(f"data: {count}\n\n".encode())
                    self.wfile.flush()
                    count += 1
                    time.sleep(0.1)
            except OSError:
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.die_after:
        threading.Timer(args.die_after, lambda: os._exit(7)).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
