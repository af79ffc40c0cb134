"""Properties, checked by Hypothesis: the wire layer, routing, and response rewriting.

- Any byte stream, split at any points, gives the same events as fed whole.
- A request written by portico's writer parses back to what was written.
- Routing never matches outside whole segments, never lets a path leave its prefix,
  and never builds an upstream target with ``//`` or CR/LF.
- Location and Set-Cookie rewriting never produce ``//host``, CR, LF or NUL, and a
  rewritten path stays under the route's prefix.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portico.errors import ProxyError
from portico.http import writer
from portico.http.events import END, Data, Event, Request
from portico.http.parser import RequestParser
from portico.routing.path import decode_path, merge_slashes, remove_dot_segments, under_prefix
from portico.routing.proxypass import ReverseMap
from portico.routing.table import Route, RouteTable
from portico.upstream.backend import Backend
from tests.support.events import simplify
from tests.support.h11_parser import H11RequestParser

# Example counts come from the profile: "default" (300, in make test) or "fuzz" (make fuzz).
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- byte streams that look like HTTP, with hostile pieces mixed in ------------------------
def weighted(common: list[bytes], rare: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from(common), st.sampled_from(common), st.sampled_from(common),
                     st.sampled_from(rare))


request_lines = st.tuples(
    weighted([b"GET", b"POST", b"HEAD", b"PUT"], [b"get", b"CONNECT", b"G\x00T"]),
    weighted([b"/", b"/myapp/x", b"/a?b=c"], [b"*", b"/#f", b"http://a/x", b"/%2e%2e/", b"/a b"]),
    weighted([b"HTTP/1.1", b"HTTP/1.0"], [b"HTTP/2.0", b"HTTP/1.1 ", b"HTTP/0.9"]),
).map(lambda parts: b" ".join(parts) + b"\r\n")
header_lines = weighted(
    [b"Connection: close", b"Connection: keep-alive", b"X-C: c", b"Accept: */*", b"X-A: \xff"],
    [b"Host: b", b"Content-Length: 3", b"Content-Length: 0", b"Transfer-Encoding: chunked",
     b"Expect: 100-continue", b"X_Y: 1", b"Content-Length: -1", b"Transfer-Encoding: gzip, chunked",
     b": x", b"X-B: a\rb", b" X: folded"],
)
framings = st.sampled_from([
    b"\r\n", b"Content-Length: 3\r\n\r\nabc", b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\r\n", b"Content-Length: 0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", b"Content-Length: 5\r\n\r\nab",
])
messages = st.tuples(request_lines, st.lists(header_lines, max_size=4), framings).map(
    lambda m: m[0] + b"Host: a\r\n" + b"".join(line + b"\r\n" for line in m[1]) + m[2])
clean_streams = st.lists(messages, min_size=1, max_size=3).map(b"".join)
streams = clean_streams | st.tuples(clean_streams, st.integers(0, 300), st.binary(max_size=4)).map(
    lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :])


def feed_split(parser: RequestParser | H11RequestParser, data: bytes, cuts: list[int]) -> list[Event]:
    events: list[Event] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        if cut > start:  # a socket never delivers zero bytes (to h11, b"" would mean EOF)
            events += parser.feed(data[start:cut])
        start = cut
    return events


@pytest.mark.parametrize("make", [RequestParser, H11RequestParser])
@SETTINGS
@given(data=streams, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_splitting_a_stream_never_changes_the_events(make: type, data: bytes, cuts: list[int]) -> None:
    whole = simplify(make().feed(data), with_headers=True)
    split = simplify(feed_split(make(), data, cuts), with_headers=True)
    if whole and isinstance(whole[-1], tuple) and whole[-1][0] == "rejected":
        # A broken stream is rejected however it is cut. What came before may be longer
        # when split: a message that fails within the read that began it is taken back
        # (nothing of it is forwarded), one whose start was already forwarded cannot be.
        # The status may differ too (a long head is 431 at the end, 400 if a bad byte
        # came first).
        assert split[: len(whole) - 1] == whole[:-1]
        assert isinstance(split[-1], tuple) and split[-1][0] == "rejected"
    elif split and isinstance(split[-1], tuple) and split[-1][0] == "rejected":
        # A slow head is measured per read: only a split stream can run over that bound.
        assert split[-1][1] in (414, 431)
    else:
        assert split == whole


# -- write, then parse back ------------------------------------------------------------------
token = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).map(str.encode)
value = st.binary(min_size=0, max_size=20).filter(
    lambda v: not any(c in v for c in b"\r\n\x00") and v == v.strip(b" \t")
    and all(c >= 0x20 or c == 0x09 for c in v) and 0x7F not in v)
segment = st.text("abcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=1, max_size=8).map(str.encode)


@SETTINGS
@given(
    method=st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE"]),
    path=st.lists(segment, max_size=4).map(lambda s: b"/" + b"/".join(s)),
    headers=st.lists(st.tuples(token.map(lambda t: b"x-" + t), value), max_size=6),
    body=st.binary(max_size=200),
    chunked=st.booleans(),
)
def test_what_the_writer_writes_parses_back(method: bytes, path: bytes, headers: list[tuple[bytes, bytes]],
                                            body: bytes, chunked: bool) -> None:
    fields = [(b"Host", b"a"), *headers]
    if chunked:
        fields.append((b"Transfer-Encoding", b"chunked"))
        framed = b"".join(writer.chunk(body)) if body else b""
        framed += writer.LAST_CHUNK
    else:
        fields.append((b"Content-Length", b"%d" % len(body)))
        framed = body
    data = writer.head(writer.request_line(method, path), fields) + framed
    events = RequestParser().feed(data)
    request = events[0]
    assert isinstance(request, Request)
    assert (request.method, request.target) == (method, path)
    assert request.headers == fields
    assert b"".join(e.data for e in events if isinstance(e, Data)) == body
    assert events[-1] is END


# -- routing ------------------------------------------------------------------------------------
PREFIXES = [b"/myapp", b"/myapp/api", b"/a", b"/my"]
TABLE = RouteTable([Route(index=i, prefix=p, host=None, backend=Backend("http", "127.0.0.1", 8000 + i))
                    for i, p in enumerate(PREFIXES)])
segments = st.sampled_from([b"myapp", b"myapp", b"my", b"a", b"api", b"..", b".", b"%2e", b"%2E%2e",
                            b"%2f", b"%252e", b";x", b"x", b"%00", b"%20", b"\\", b"app", b""])
targets = st.lists(segments, min_size=1, max_size=6).map(lambda p: b"/" + b"/".join(p))


@SETTINGS
@given(target=targets, query=st.sampled_from([b"", b"?q=1", b"?a=/../b"]))
def test_routing_stays_inside_whole_segments(target: bytes, query: bytes) -> None:
    try:
        match = TABLE.resolve(b"a", target + query)
    except ProxyError as exc:
        assert exc.status in (400, 404)
        return
    prefix = match.route.prefix
    # Repeated slashes are one (issue 20: as Apache and nginx, //myapp/x is /myapp/x).
    canonical = remove_dot_segments(merge_slashes(decode_path(target)))
    assert under_prefix(canonical, prefix)  # whole segments, after decoding and dot-segments
    assert not match.target.startswith(b"//")
    assert not any(c in match.target for c in b"\r\n\x00")
    assert match.target.endswith(query)
    # The longest matching prefix won.
    assert all(not under_prefix(canonical, other) or len(other) <= len(prefix) for other in PREFIXES)


# -- Location and Set-Cookie rewriting ---------------------------------------------------------
BACKEND = Backend("http", "127.0.0.1", 8000)
MAPS = [ReverseMap(BACKEND, b"/", b"/myapp", stripped=True), ReverseMap(BACKEND, b"/", b"/myApp", stripped=False),
        ReverseMap(Backend("http", "10.0.0.5", 80), b"/base/", b"/p", stripped=True)]
location_piece = st.sampled_from([b"http://127.0.0.1:8000", b"http://10.0.0.5", b"https://evil.com", b"//",
                                  b"/", b"\\", b"evil.com", b"myapp", b"base", b"..", b"?", b"#", b"x",
                                  b"\r", b"\n", b"%2f", b"@"])
locations = st.lists(location_piece, min_size=1, max_size=8).map(b"".join)


@SETTINGS
@given(value=locations, index=st.integers(0, len(MAPS) - 1))
def test_location_rewriting_is_safe(value: bytes, index: int) -> None:
    result = MAPS[index].location(value, b"https://public.example")
    if result == value:
        return  # untouched is always safe: it is what the upstream said
    assert not result.startswith((b"//", b"/\\"))
    assert not any(c in result for c in b"\r\n\x00")
    path = result.removeprefix(b"https://public.example")
    assert path.startswith(b"/")
    if index != 1:  # stripped routes: the rewritten path is under the public prefix
        assert under_prefix(path.split(b"?")[0].split(b"#")[0], [b"/myapp", b"", b"/p"][index])


cookie_attr = st.sampled_from([b" Path=/", b" Path=/x", b" Path=/myapp/a", b" Path=//evil", b" Domain=127.0.0.1",
                               b" Domain=evil.com", b" HttpOnly", b" Path=/base/y", b" Path=\\x"])


@SETTINGS
@given(attributes=st.lists(cookie_attr, max_size=5), index=st.integers(0, len(MAPS) - 1))
def test_cookie_rewriting_is_safe(attributes: list[bytes], index: int) -> None:
    value = b"sid=1;" + b";".join(attributes)
    result = MAPS[index].set_cookie(value)
    assert result.startswith(b"sid=1")
    assert not any(c in result for c in b"\r\n\x00")
    for attribute in result.split(b";")[1:]:
        name, _, path = attribute.strip().partition(b"=")
        if name.lower() == b"path" and path not in [a.strip().partition(b"=")[2] for a in attributes]:
            assert path.startswith(b"/") and not path.startswith(b"//")
            assert under_prefix(path, [b"/myapp", b"/myApp", b"/p"][index])
