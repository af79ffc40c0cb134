"""The admin server's bridge (admin/bridge.py) with small ASGI apps: framing, streaming,
disconnects and its bounds (S13)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from portico.admin.bridge import (
    AdminServer,
    ASGIApp,
    Bounds,
    Message,
    Receive,
    Scope,
    Send,
    Transport,
)


async def serve(tmp_path: Path, app: ASGIApp, bounds: Bounds) -> tuple[asyncio.Server, str]:
    tmp_path.mkdir(exist_ok=True)
    path = str(tmp_path / "admin.sock")
    loaded: list[int] = []

    def load() -> ASGIApp:
        loaded.append(1)
        assert len(loaded) == 1, "the app is made once"
        return app

    server = await asyncio.start_unix_server(
        AdminServer(load, bounds).handler(Transport("unix")), path=path)
    return server, path


async def exchange(path: str, request: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(request)
    data = await reader.read()
    writer.close()
    return data


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    body = b"%s %s %s %r" % (scope["method"].encode(), scope["raw_path"],
                             scope["query_string"], message["body"])
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def test_a_request_and_its_body_reach_the_app(tmp_path: Path) -> None:
    async def main() -> bytes:
        server, path = await serve(tmp_path, echo, Bounds())
        async with server:
            return await exchange(path, b"POST /a%20b?x=1 HTTP/1.1\r\nHost: h\r\n"
                                        b"Content-Length: 3\r\n\r\nabc")

    data = asyncio.run(main())
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" in data.lower()
    assert data.endswith(b"POST /a%20b x=1 b'abc'")


def test_a_stream_is_chunked_and_ends_when_the_client_goes(tmp_path: Path) -> None:
    ended = asyncio.Event()

    async def events(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"data: %d\n\n" % i,
                        "more_body": True})
        message: Message = await receive()
        assert message["type"] == "http.disconnect"
        ended.set()

    async def main() -> bytes:
        server, path = await serve(tmp_path, events, Bounds())
        async with server:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"GET /events HTTP/1.1\r\nHost: h\r\n\r\n")
            data = b""
            while b"data: 2" not in data:
                data += await reader.read(4096)
            writer.close()
            await asyncio.wait_for(ended.wait(), 5)
            return data

    data = asyncio.run(main())
    assert b"transfer-encoding: chunked" in data.lower()
    assert b"9\r\ndata: 0\n\n\r\n" in data


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", b"413"),
    (b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"40\r\n" + b"x" * 64 + b"\r\n40\r\n" + b"x" * 64 + b"\r\n0\r\n\r\n", b"413"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: h\r\n", b"408"),  # the head never ends
])
def test_bounds(request_bytes: bytes, status: bytes, tmp_path: Path) -> None:
    async def main() -> bytes:
        server, path = await serve(tmp_path, echo, Bounds(max_body_size=64,
                                                              request_timeout=0.3))
        async with server:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(request_bytes)
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return data

    assert asyncio.run(main()).split(b" ")[1] == status


def test_a_slow_app_gets_504_and_a_broken_one_500(tmp_path: Path) -> None:
    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(10)

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("bug")

    async def main(app: ASGIApp) -> bytes:
        server, path = await serve(tmp_path / app.__name__, app, Bounds(request_timeout=0.3))
        async with server:
            return await exchange(path, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")

    assert asyncio.run(main(slow)).startswith(b"HTTP/1.1 504")
    answer = asyncio.run(main(broken))
    assert answer.startswith(b"HTTP/1.1 500") and b"RuntimeError" in answer


def test_an_https_admin_listener_checks_host_and_credentials(tmp_path: Path) -> None:
    """``[admin] listen = "https://..."`` with ``client_ca``: mutual TLS, the Host allowlist
    and a token, in process."""
    import ssl
    from typing import Any, cast

    import trustme

    from portico.admin import auth
    from portico.admin.facade import AdminContext
    from portico.admin.plan import AdminPlan
    from portico.admin.server import serve_admin
    from tests.conftest import free_port

    ca = trustme.CA()
    leaf = ca.issue_cert("admin.test")
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = ca.issue_cert("admin.client.test")
    port = free_port()
    plan = AdminPlan(listen=f"https://127.0.0.1:{port}", allowed_hosts=["admin.test"],
                     cert=tmp_path / "cert.pem", key=tmp_path / "key.pem",
                     client_ca=tmp_path / "ca.pem")
    _, secret = auth.create_token(tmp_path, "t", "read", None)

    async def snapshot() -> dict[str, Any]:
        return {"pid": 1}

    async def get(host: str, token: str | None, certified: bool = True) -> bytes:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        if certified:
            client.configure_cert(context)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="admin.test")
        writer.write(f"GET /api/status HTTP/1.1\r\nHost: {host}\r\n".encode()
                     + (f"Authorization: Bearer {token}\r\n".encode() if token else b"")
                     + b"\r\n")
        try:
            data = await reader.read()
        except (ssl.SSLError, ConnectionResetError):
            data = b"refused"
        writer.close()
        return data

    async def main() -> list[bytes]:
        admin = AdminContext(snapshot, cast(Any, None), cast(Any, None), plan, tmp_path, "k")
        servers = await serve_admin(tmp_path / "k.sock", admin)
        try:
            return [await get(f"admin.test:{port}", secret), await get("evil.test", secret),
                    await get(f"admin.test:{port}", None),
                    await get(f"admin.test:{port}", secret, certified=False)]
        finally:
            servers.close()
            for server in servers.sockets:
                await server.wait_closed()

    good, rebound, anonymous, uncertified = asyncio.run(main())
    assert good.startswith(b"HTTP/1.1 200") and good.endswith(b'"pid": 1\n}\n')
    assert rebound.startswith(b"HTTP/1.1 403") and anonymous.startswith(b"HTTP/1.1 401")
    assert uncertified in (b"", b"refused")


def test_status_on_the_control_socket_never_loads_the_app(tmp_path: Path) -> None:
    """``portico status`` polled all day must not import Starlette into the server."""

    def load() -> ASGIApp:
        raise AssertionError("the ASGI app was loaded")

    async def snapshot() -> dict[str, object]:
        return {"pid": 7}

    async def main() -> bytes:
        path = str(tmp_path / "s.sock")
        handler = AdminServer(load, Bounds(), snapshot).handler(Transport("unix"))
        server = await asyncio.start_unix_server(handler, path=path)
        async with server:
            return await exchange(path, b"GET /status HTTP/1.0\r\n\r\n")

    answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b'"pid": 7\n}\n')
