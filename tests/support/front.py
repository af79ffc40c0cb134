"""One face for a portico under test, over sockets or in process (the ``proxy`` fixtures).

A test written against ``Front`` runs both ways (uvicorn's ``http_protocol_cls``
pattern): ``front.send_raw(data)`` is a whole exchange on a fresh connection, and
``front.connect()`` a connection to write to and read responses from one at a time.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from tests.support.client import Reply, read_response, read_until_quiet, send_raw
from tests.support.harness import Client, ProxyHarness
from tests.support.portico_proc import Portico


class Conversation(Protocol):
    def sendall(self, data: bytes) -> None: ...
    def read_response(self) -> Reply: ...
    def read_until_quiet(self, quiet: float = 1.0) -> Reply: ...


class SocketConversation:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_response(self) -> Reply:
        return read_response(self.sock)

    def read_until_quiet(self, quiet: float = 1.0) -> Reply:
        return read_until_quiet(self.sock, quiet)


class SocketFront:
    def __init__(self, proxy: Portico) -> None:
        self.proxy = proxy

    @property
    def port(self) -> int:
        return self.proxy.port

    def send_raw(self, data: bytes, quiet: float = 1.0) -> Reply:
        return send_raw(self.proxy.port, data, quiet)

    @contextmanager
    def connect(self) -> Iterator[Conversation]:
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=10) as sock:
            yield SocketConversation(sock)


class InProcessConversation:
    def __init__(self, harness: ProxyHarness, client: Client) -> None:
        self.harness = harness
        self.client = client
        self._unread = b""

    def sendall(self, data: bytes) -> None:
        self.client.send(data)

    def read_response(self) -> Reply:
        """One Content-Length-framed response, as ``client.read_response`` reads one."""
        def complete() -> bool:
            self._unread += self.client.take()
            head_end = self._unread.find(b"\r\n\r\n")
            if head_end < 0:
                return self.client.closed
            length = int(Reply(self._unread[:head_end + 4], False).header(b"content-length") or 0)
            return len(self._unread) >= head_end + 4 + length or self.client.closed

        self.harness.run_until(complete)
        data = self._unread
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            self._unread = b""
            return Reply(data, True)
        end = head_end + 4 + int(Reply(data[:head_end + 4], False).header(b"content-length") or 0)
        self._unread = data[end:]
        return Reply(data[:end], self.client.closed and not self._unread and end >= len(data))

    def read_until_quiet(self, quiet: float = 1.0) -> Reply:
        self.harness.settle(self.client, max(0.15, quiet / 4))
        data = self._unread + self.client.take()
        self._unread = b""
        return Reply(data, self.client.closed)


class InProcessFront:
    """A ProxyHarness seen as a listener on 127.0.0.1:``port`` (what its clients'
    transports give as their local address)."""

    def __init__(self, harness: ProxyHarness, port: int = 8080) -> None:
        self.harness = harness
        self._port = port

    @property
    def port(self) -> int:
        return self._port

    def send_raw(self, data: bytes, quiet: float = 1.0) -> Reply:
        return self.harness.exchange(data, max(0.15, quiet / 4))

    @contextmanager
    def connect(self) -> Iterator[Conversation]:
        client = self.harness.client(local=("127.0.0.1", self._port))
        try:
            yield InProcessConversation(self.harness, client)
        finally:
            client.disconnect()
            self.harness.turn()


Front = SocketFront | InProcessFront
