"""A backend that closes pooled connections early loses no idempotent request (in process).

From integration/test_faults.py, where gunicorn's 2 s keep-alive raced portico's pool
for about a minute of wall time under load to hit the race a few times. Here the
scripted backend closes connections in each way the race can end, chosen at random
(seeded) per connection, and portico is hit by four clients at once on one loop.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from tests.conftest import proxy_config
from tests.support.harness import ProxyHarness
from tests.support.scripted import UpstreamConn

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
GET = b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n"
CLIENTS, REQUESTS = 4, 200


def test_backend_closing_pooled_connections_early_loses_no_idempotent_request() -> None:
    rng = random.Random(16)
    endings: Counter[str] = Counter()

    async def early_closer(conn: UpstreamConn) -> None:
        # Answers a few requests, then ends the connection one of three ways:
        ending = rng.choice(["fin-when-idle", "fin-on-next-request", "rst-on-next-request"])
        endings[ending] += 1
        for _ in range(rng.randint(1, 3)):
            if await conn.read_request() is None:
                return
            conn.send(OK)
        if ending == "fin-when-idle":  # its keep-alive expired while the connection sat idle
            await asyncio.sleep(0)
            conn.close()
            return
        await conn.read_request()  # ... or just as portico reused it
        conn.close() if ending == "fin-on-next-request" else conn.reset()

    harness, upstream = ProxyHarness.with_upstream(proxy_config, early_closer)
    try:
        clients = [harness.client(peer=("127.0.0.1", 50000 + n)) for n in range(CLIENTS)]
        done: Counter[str] = Counter()
        failures: list[bytes] = []
        sent = [0] * CLIENTS

        def step() -> bool:
            """Each client sends its next GET once it has its last answer whole."""
            for n, client in enumerate(clients):
                data = client.received
                if sent[n] and answered(data):
                    done[data.split(b" ", 2)[1].decode()] += 1
                    if not data.startswith(b"HTTP/1.1 200 "):
                        failures.append(data)
                    client.take()
                    sent[n] = 0
                elif client.closed:
                    failures.append(data or b"closed")
                if not sent[n] and sum(done.values()) + sum(sent) < CLIENTS * REQUESTS:
                    client.send(GET)
                    sent[n] = 1
            return sum(done.values()) >= CLIENTS * REQUESTS or bool(failures)

        harness.run_until(step, timeout=60)
        assert not failures, failures[:3]
        assert done == Counter({"200": CLIENTS * REQUESTS}), done
        assert all(endings[e] > 20 for e in ("fin-when-idle", "fin-on-next-request",
                                             "rst-on-next-request")), endings
        assert len(upstream.connections) > 100  # the pool met many closed connections
    finally:
        harness.close()


def answered(data: bytes) -> bool:
    """``data`` holds one whole Content-Length-framed response."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    length = next((int(line.split(b":", 1)[1]) for line in data[:head_end].split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return len(data) >= head_end + 4 + length
