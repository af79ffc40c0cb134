"""Edges from the core issue, in process (from integration/test_edges.py, same assertions;
the client leaving mid-upload is also checked over sockets by conformance f63)."""

from __future__ import annotations

import functools

from tests.conftest import proxy_config
from tests.inprocess.conftest import StartRig
from tests.support.front import InProcessConversation
from tests.support.scripted import UpstreamConn


def test_client_leaving_mid_upload_closes_the_upstream(rig: StartRig) -> None:
    async def slow_sink(conn: UpstreamConn) -> None:
        while await conn.read_some():
            pass

    harness, upstream = rig(functools.partial(proxy_config, extra_route='limits.max_body_size = "1GiB"'),
                            slow_sink)
    client = harness.client()
    client.send(b"POST /myapp/up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 200000)
    harness.run_until(lambda: bool(upstream.connections)
                      and bytes(upstream.connections[0].received).endswith(b"x" * 1000))
    client.disconnect()
    harness.run(upstream.connections[0].closed_by_peer.wait(), timeout=5)


def test_last_keepalive_request_is_answered_with_connection_close(rig: StartRig) -> None:
    # The connection's last response must say so, or a client that already sent the
    # next request on it sees a reset (found under load in the supervisor tests).
    harness, _ = rig(functools.partial(proxy_config, server="[server.limits]\nmax_keepalive_requests = 3"))
    client = harness.client()
    conversation = InProcessConversation(harness, client)
    replies = []
    for _ in range(3):
        conversation.sendall(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
        replies.append(conversation.read_response())
    assert [r.status for r in replies] == [200, 200, 200]
    assert [r.header(b"connection") for r in replies] == [None, None, b"close"]
    harness.run_until(lambda: client.closed, timeout=5)
    assert client.take() == b""  # and then it closes
