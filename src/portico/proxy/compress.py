"""``compress``: gzip (brotli when the ``brotli`` package is importable) of proxied
responses, streamed: a ``Downstream`` that encodes what the exchange sends.

``Compression.wrap`` runs when the exchange is made and returns the client itself
unless the client accepts a coding and the method is not HEAD; the wrapper decides at
the response head (``_encodable``) with the usual rules, nginx's and Caddy's: a 2xx but
204/206, no Content-Encoding yet, no ``Cache-Control: no-transform``, a compressible
Content-Type, and a Content-Length (when known) of at least ``MIN_SIZE``. Then the
length goes (the body is chunked, or close-delimited for HTTP/1.0), Content-Encoding
and Vary are set, and a strong ETag becomes weak (the bytes differ, the meaning not).
Each flush of the exchange (one per batch read from the upstream) flushes the encoder:
an event stream or a long poll keeps its pace.
"""

from __future__ import annotations

import contextlib
import importlib
import zlib
from typing import TYPE_CHECKING, Any

from portico.http.events import Body, Headers, Request, Response
from portico.policy.static_files import accepted
from portico.proxy.downstream import Downstream, LocalBody

if TYPE_CHECKING:
    from portico.errors import ProxyError

BROTLI: Any = None
with contextlib.suppress(ImportError):  # optional: the "compress" extra; untyped
    BROTLI = importlib.import_module("brotli")
MIN_SIZE = 256  # bytes: below, the coding's overhead outweighs the gain
_TYPES = (b"text/", b"application/json", b"application/javascript", b"application/xml",
          b"application/xhtml+xml", b"application/rss+xml", b"application/atom+xml",
          b"application/ld+json", b"application/manifest+json", b"image/svg+xml",
          b"application/wasm")
_SUFFIXES = (b"+json", b"+xml")


def compressible(content_type: bytes) -> bool:
    kind = content_type.partition(b";")[0].strip().lower()
    return kind.startswith(_TYPES) or kind.endswith(_SUFFIXES)


class Compression:
    """A route's ``compress``: which coding a request gets, if any."""

    __slots__ = ("_codings",)

    def __init__(self) -> None:
        self._codings = (b"br", b"gzip") if BROTLI is not None else (b"gzip",)

    def wrap(self, client: Downstream, request: Request) -> Downstream:
        if request.method == b"HEAD":
            return client
        offered = request.get(b"accept-encoding")
        if not offered:
            return client
        taken = accepted(offered)
        for coding in self._codings:
            if coding in taken:
                return Compressing(client, coding)
        return client


class Compressing(Downstream):
    """The client, with the response body encoded when ``_encodable`` says so."""

    def __init__(self, client: Downstream, coding: bytes) -> None:
        super().__init__()
        self.client = client
        self.coding = coding
        self.scheme = client.scheme
        self.remote_addr = client.remote_addr
        self.remote_port = client.remote_port
        self.trusted = client.trusted
        self.local_authority = client.local_authority
        self._encoder: Any = None  # zlib's compressobj or brotli's Compressor
        self._fed = False  # data since the last flush

    # -- the response, encoded -------------------------------------------------------
    def start_response(self, response: Response, headers: Headers) -> None:
        if _encodable(response, headers):
            headers = _encoded_fields(headers, self.coding)
            response = Response(response.status, response.reason, response.version,
                                [], Body.CHUNKED, 0, response.keep_alive)
            self._encoder = (BROTLI.Compressor(quality=4) if self.coding == b"br"
                             else zlib.compressobj(6, zlib.DEFLATED, 31))
        self.client.start_response(response, headers)

    def send_data(self, data: bytes) -> None:
        encoder = self._encoder
        if encoder is None:
            self.client.send_data(data)
            return
        out = encoder.process(data) if self.coding == b"br" else encoder.compress(data)
        self._fed = True
        if out:
            self.client.send_data(out)

    def flush(self) -> None:
        encoder = self._encoder
        if encoder is not None and self._fed:
            self._fed = False
            out = encoder.flush() if self.coding == b"br" else encoder.flush(zlib.Z_SYNC_FLUSH)
            if out:
                self.client.send_data(out)
        self.client.flush()

    def end(self) -> None:
        encoder = self._encoder
        if encoder is not None:
            self._encoder = None
            out = encoder.finish() if self.coding == b"br" else encoder.flush(zlib.Z_FINISH)
            if out:
                self.client.send_data(out)
        self.client.end()

    # -- the rest, as the client does it ----------------------------------------------
    @property
    def reading_paused(self) -> bool:
        return self.client.reading_paused

    def accept_body(self) -> None:
        self.client.accept_body()

    def send_informational(self, response: Response) -> None:
        self.client.send_informational(response)

    def send_error(self, error: ProxyError, request_id: bytes) -> int:
        return self.client.send_error(error, request_id)

    def send_answer(self, status: int, headers: Headers) -> None:
        self.client.send_answer(status, headers)

    def send_body_from(self, body: LocalBody) -> None:
        self.client.send_body_from(body)

    def pause_reading(self, reason: object) -> None:
        self.client.pause_reading(reason)

    def resume_reading(self, reason: object) -> None:
        self.client.resume_reading(reason)

    def finished(self, clean: bool) -> None:
        self.client.finished(clean)


def _encodable(response: Response, headers: Headers) -> bool:
    status = response.status
    if status < 200 or status >= 300 or status in (204, 206) or response.body is Body.NONE:
        return False
    if response.body is Body.LENGTH and response.content_length < MIN_SIZE:
        return False
    content_type = b""
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-encoding" and value.strip().lower() != b"identity":
            return False
        if lname == b"cache-control" and b"no-transform" in value.lower():
            return False
        if lname == b"content-type":
            content_type = value
    return compressible(content_type)


def _encoded_fields(headers: Headers, coding: bytes) -> Headers:
    out: Headers = []
    vary = False
    for name, value in headers:
        lname = name.lower()
        if lname in (b"content-length", b"content-encoding"):
            continue
        if lname == b"etag" and value.startswith(b'"'):
            value = b"W/" + value
        elif lname == b"vary":
            vary = True
            if value.strip() != b"*" and b"accept-encoding" not in value.lower():
                value += b", Accept-Encoding"
        out.append((name, value))
    if not vary:
        out.append((b"Vary", b"Accept-Encoding"))
    out.append((b"Content-Encoding", coding))
    return out


def compression(enabled: bool) -> Compression | None:
    """The route's; None (nothing on the request path) when ``compress`` is off."""
    return Compression() if enabled else None
