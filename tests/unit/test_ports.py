"""``portico.ports.holder_of`` against real listening sockets on loopback."""

from __future__ import annotations

import os
import socket
import sys

import pytest

from portico.ports import holder_of

ME = f"pid {os.getpid()} ("


def listening(family: socket.AddressFamily, host: str) -> socket.socket:
    sock = socket.socket(family)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, 0))
    sock.listen()
    return sock


def test_a_listener_is_named_by_pid_and_gone_once_closed() -> None:
    sock = listening(socket.AF_INET, "127.0.0.1")
    port = sock.getsockname()[1]
    with sock:
        assert str(holder_of("127.0.0.1", port)).startswith(ME)
        assert str(holder_of("0.0.0.0", port)).startswith(ME)  # a wildcard bind collides
        assert str(holder_of("localhost", port)).startswith(ME)
    assert holder_of("127.0.0.1", port) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the address is read on Linux")
def test_another_address_on_the_same_port_is_free() -> None:
    with listening(socket.AF_INET, "127.0.0.1") as sock:
        port = sock.getsockname()[1]
        assert holder_of("127.0.0.2", port) is None


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_an_ipv6_only_listener_holds_its_address_not_ipv4() -> None:
    try:
        sock = listening(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with sock:
        port = sock.getsockname()[1]
        assert str(holder_of("::1", port)).startswith(ME)
        assert str(holder_of("[::]", port)).startswith(ME)
        if sys.platform.startswith("linux"):
            assert holder_of("127.0.0.1", port) is None
