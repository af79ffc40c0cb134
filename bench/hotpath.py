"""Time portico's per-request Python path with no sockets: fake transports, real code.

``python bench/hotpath.py [N]`` prints microseconds per proxied small GET; with
``--headers`` the request carries ten browser headers more; with ``--metrics``
``[metrics]`` is on (its deltas handed to a no-op at each tick); with ``--rules`` the
route has 20 rewrite rules (``RULES``); with ``--profile``
it prints a cProfile summary (of the pure-Python build: ``make setup PORTICO_PURE=1``).
Used to guide the hot-path work described in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.harness import CountingTransport, idle_upstream

from portico import memory
from portico.config.compile import serving_plan
from portico.config.load import parse
from portico.config.provision import build_gateway
from portico.server.protocol import ClientConnection

CONFIG = """
[server]
listen = ["http://127.0.0.1:8080"]
access_log = "/dev/null"
[server.limits]
max_keepalive_requests = 1000000000
[server.pool]
idle_timeout = "30s"
[[route]]
path = "/myapp"
upstream = "http://127.0.0.1:9/"
request_headers.set = { "X-Forwarded-Prefix" = "{prefix}" }
"""
# ``--rules``: 20 rewrite rules on the route, legacy redirects none of which this request
# matches (the common case; bench/rules.py compares the same with wrk).
RULES = "".join(f"""
[[route.rewrite.rule]]
name = "legacy-{i}"
match_input = "route_relative"
pattern = "^legacy{i}/(.*)"
action = "redirect"
url = "/myapp/v2/{i}/{{R:1}}"
""" for i in range(20))
REQUEST = b"GET /myapp/small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
BROWSER = (  # ten more request headers, as bench/run.py's "10 headers" workload sends
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-GB,en;q=0.9,de;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\n"
    b"Referer: https://www.example.com/myapp/dashboard?tab=overview\r\n"
    b"Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n"
    b"Cache-Control: no-cache\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Site: same-origin\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
)
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 21 Nov 2026 01:00:00 GMT\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello")


def main() -> None:
    count = int(next((a for a in sys.argv[1:] if a.isdigit()), "100000"))
    request = REQUEST[:-2] + BROWSER + b"\r\n" if "--headers" in sys.argv else REQUEST
    loop = asyncio.new_event_loop()
    config = CONFIG + ("[metrics]\nenabled = true\n" if "--metrics" in sys.argv else "")
    config += RULES if "--rules" in sys.argv else ""
    plan = serving_plan(parse(config, "hotpath"), Path.cwd(), Path.cwd())
    gateway = build_gateway(plan, loop, metrics_send=lambda deltas: None)
    client = ClientConnection(gateway)
    client.connection_made(CountingTransport(("127.0.0.1", 50000), ("127.0.0.1", 8080)))
    upstream_side = CountingTransport(("127.0.0.1", 9), ("127.0.0.1", 40000))
    upstream, _ = idle_upstream(gateway, 0, upstream_side)

    def one() -> None:
        client.data_received(request)
        upstream.data_received(RESPONSE)

    for _ in range(1000):
        one()
    memory.settle()  # as portico run does once it is ready
    if "--profile" in sys.argv:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(count):
            one()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    started = time.perf_counter()
    for _ in range(count):
        one()
    elapsed = time.perf_counter() - started
    gateway.access_log.flush()
    if gateway.metrics is not None:
        gateway.metrics.flush()
    print(f"{elapsed / count * 1e6:.2f} us per proxied request (Python path, no syscalls)")


if __name__ == "__main__":
    main()
