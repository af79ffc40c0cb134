"""A FastAPI app with WebSocket and SSE endpoints, and a python-socketio server beside it
(one ASGI app under uvicorn) for the WebSocket tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import socketio  # type: ignore[import-untyped]
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

api = FastAPI()
sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
app = socketio.ASGIApp(sio, other_asgi_app=api)
ALLOWED_ORIGIN = "http://good.example"
close_codes: list[int] = []  # what each /ws client's close said, for the reload test


@api.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    if websocket.headers.get("origin") not in (None, ALLOWED_ORIGIN):
        await websocket.close(code=1008)  # before accept: uvicorn answers 403
        return
    await websocket.accept()
    try:
        while True:
            await websocket.send_bytes(await websocket.receive_bytes())
    except WebSocketDisconnect as gone:
        close_codes.append(gone.code)


@api.get("/closes")
async def closes() -> list[int]:
    return close_codes


@api.get("/events")
async def events(count: int = 5, every: float = 0.3) -> StreamingResponse:
    """Server-Sent Events: one event every ``every`` seconds."""
    async def stream() -> AsyncIterator[bytes]:
        for n in range(count):
            yield b"data: event %d\n\n" % n
            await asyncio.sleep(every)

    return StreamingResponse(stream(), media_type="text/event-stream")


@sio.on("echo")  # type: ignore[untyped-decorator]
async def sio_echo(sid: str, data: Any) -> None:
    await sio.emit("echo", data, to=sid)
