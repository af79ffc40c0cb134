"""``make fuzz``: hostile byte streams through portico's whole request path, in process.

Hypothesis generates request streams (valid, broken and mutated, cut at random
points) and feeds them to a real ClientConnection of a real gateway; a fake
upstream answers. After every example the invariants are checked:

- nothing raises out of the protocol callbacks;
- every request portico sends upstream is well-formed HTTP/1.1 to an independent
  parser (h11): one Host, one X-Forwarded-For, Via, framing portico wrote itself,
  no CR/LF/NUL smuggled into a field, no ``_`` in a name, never a ``//`` target;
- every reply to the client is a sequence of HTTP/1.1 responses.

``python fuzz/request_path.py --seconds 60`` runs rounds of examples until the time
is up and prints how many ran; a failure prints the smallest input that shows it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

import h11
from hypothesis import given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.harness import Client, ProxyHarness, idle_upstream
from tests.unit.test_properties import streams

CONFIG = """
[server]
listen = ["http://127.0.0.1:8080"]
access_log = "off"
[[route]]
path = "/myapp"
upstream = "http://127.0.0.1:9/"
request_headers.set = { "X-Forwarded-Prefix" = "{prefix}" }
[[route]]
path = "/"
upstream = "http://127.0.0.1:9/base/"
"""
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nLocation: http://127.0.0.1:9/base/x\r\n\r\nok"
STATUS_LINE = re.compile(rb"HTTP/1\.1 [1-5][0-9][0-9] ")


harness = ProxyHarness(CONFIG)
loop, loop_errors, gateway = harness.loop, harness.loop_errors, harness.gateway
counts = {"examples": 0, "upstream requests": 0, "client bytes": 0}


def run_one(data: bytes, cuts: list[int]) -> None:
    client = Client(harness, ("203.0.113.7", 50000), ("127.0.0.1", 8080), b"http")
    upstreams = [idle_upstream(gateway, index) for index in range(len(gateway.routes.routes))]
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        if cut > start:
            client.send(data[start:cut])
            for upstream, _ in upstreams:
                if upstream.user is not None:
                    upstream.data_received(RESPONSE)
            loop.run_until_complete(asyncio.sleep(0))  # let refused connects fail (502)
        start = cut
    client.disconnect()
    gateway.pool.close_all()
    counts["examples"] += 1
    counts["client bytes"] += len(client.received)
    for _, side in upstreams:
        check_upstream(bytes(side.written))
    check_client(client.received)
    assert not loop_errors, loop_errors  # nothing failed inside a callback or task either


def check_upstream(sent: bytes) -> None:
    server = h11.Connection(h11.SERVER)
    server.receive_data(sent)
    while True:
        event = server.next_event()
        if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            return
        if isinstance(event, h11.Request):
            counts["upstream requests"] += 1
            names = [name.lower() for name, _ in event.headers.raw_items()]
            assert names.count(b"host") == 1, event
            assert names.count(b"x-forwarded-for") == 1, event
            assert b"via" in names, event
            assert not any(b"_" in name for name in names), event
            assert not event.target.startswith(b"//"), event.target
            assert not (b"content-length" in names and b"transfer-encoding" in names), event
            for _, value in event.headers.raw_items():
                assert not any(c in value for c in b"\r\n\x00"), value
        elif isinstance(event, h11.EndOfMessage):
            server.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
            server.send(h11.EndOfMessage())
            if server.our_state is h11.MUST_CLOSE:
                return
            server.start_next_cycle()


def check_client(received: bytes) -> None:
    if not received:
        return
    assert STATUS_LINE.match(received), received[:80]
    for line in received.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 "):
            assert STATUS_LINE.match(line + b" "), line


@settings(max_examples=500, deadline=None, database=None)
@given(data=streams, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def fuzz_round(data: bytes, cuts: list[int]) -> None:
    run_one(data, cuts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    rounds = 0
    while time.monotonic() < deadline:
        seed(rounds)(fuzz_round)()
        rounds += 1
    print(f"fuzz: {counts['examples']} examples in {rounds} rounds ({args.seconds:g}s): "
          f"{counts['upstream requests']} requests reached the upstream, all well-formed; "
          f"{counts['client bytes']} bytes of replies, all HTTP/1.1 responses; no exception")
    return 0


if __name__ == "__main__":
    sys.exit(main())
