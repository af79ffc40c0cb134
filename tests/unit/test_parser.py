"""The wire layer, run against both parsers (httptools and h11) behind one interface."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portico.http.events import END, Body, Data, Event, Rejected, Request, Response
from portico.http.limits import RESPONSE_LIMITS, HeadLimits
from portico.http.parser import RequestParser
from portico.http.response_parser import ResponseParser
from tests.support.events import simplify
from tests.support.h11_parser import H11RequestParser

Parser = Callable[..., RequestParser | H11RequestParser]


@pytest.fixture(params=["httptools", "h11"])
def make_parser(request: pytest.FixtureRequest) -> Parser:
    return RequestParser if request.param == "httptools" else H11RequestParser


def parse(make_parser: Parser, data: bytes, **limits: int) -> list[Event]:
    parser = make_parser(HeadLimits(**limits)) if limits else make_parser()
    return parser.feed(data)


PIPELINE = (
    b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    b"GET /c?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
)
EXPECTED = [
    ("request", b"POST", b"/a", Body.LENGTH, True), b"hello", "end",
    ("request", b"POST", b"/b", Body.CHUNKED, True), b"abcde", "end",
    ("request", b"GET", b"/c?q=1", Body.NONE, False), "end",
]


def test_pipelined_requests_parse_in_order(make_parser: Parser) -> None:
    assert simplify(parse(make_parser, PIPELINE)) == EXPECTED


def test_any_split_gives_the_same_events(make_parser: Parser) -> None:
    for cut in range(1, len(PIPELINE)):
        parser = make_parser()
        events = parser.feed(PIPELINE[:cut]) + parser.feed(PIPELINE[cut:])
        assert simplify(events) == EXPECTED, cut


def test_byte_at_a_time(make_parser: Parser) -> None:
    parser = make_parser()
    events: list[Event] = []
    for index in range(len(PIPELINE)):
        events += parser.feed(PIPELINE[index : index + 1])
    assert simplify(events) == EXPECTED


def test_data_after_close_is_ignored(make_parser: Parser) -> None:
    events = parse(make_parser, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGARBAGE")
    assert simplify(events) == [("request", b"GET", b"/", Body.NONE, False), "end"]


def test_http10_defaults_to_close_and_needs_no_host(make_parser: Parser) -> None:
    events = parse(make_parser, b"GET / HTTP/1.0\r\n\r\n")
    assert simplify(events) == [("request", b"GET", b"/", Body.NONE, False), "end"]


def test_absolute_form_for_the_same_host_becomes_origin_form(make_parser: Parser) -> None:
    events = parse(make_parser, b"GET http://a.example/x?y HTTP/1.1\r\nHost: a.example\r\n\r\n")
    assert simplify(events)[0] == ("request", b"GET", b"/x?y", Body.NONE, True)


BAD = {
    "cl-te": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400),
    "two-cl": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", 400),
    "cl-plus": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\nxx", 400),
    "te-gzip-chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                        b"0\r\n\r\n", 400),
    "te-http10": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "bad-chunk": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    "no-host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "host-comma": (b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
    "host-at": (b"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400),
    "host-port": (b"GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n", 400),
    "space-colon": (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
    "nul-value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", 400),
    "asterisk": (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "fragment": (b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "absolute-elsewhere": (b"GET http://evil/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "http2": (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    "connect": (b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405),
    "expect-unknown": (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417),
}

# Where h11 parts from llhttp: the quirks this parametrisation exists to show.
H11_QUIRKS = {
    "obs-fold": "h11 unfolds obs-fold into a space (RFC 9112 §5.2 allows it); llhttp refuses",
    "bare-lf": "h11 accepts bare LF line endings (RFC 9112 §2.2 MAY); llhttp refuses them",
    "http09": "h11 treats 'GET /' without a version as an incomplete head, not an error",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_heads_are_rejected_and_nothing_is_emitted(make_parser: Parser, name: str) -> None:
    data, status = BAD[name]
    events = parse(make_parser, data)
    rejected = [e for e in events if isinstance(e, Rejected)]
    if make_parser is H11RequestParser and name in H11_QUIRKS:
        assert not rejected, "h11 changed: " + H11_QUIRKS[name]
        return
    assert rejected, f"{name} was accepted: {events}"
    if make_parser is RequestParser or name not in ("two-cl", "cl-te", "obs-fold"):
        assert rejected[0].status == status
    assert not any(isinstance(e, Request) for e in events), "a bad request leaked upstream"


def test_bare_lf_is_rejected(make_parser: Parser) -> None:
    events = parse(make_parser, b"GET / HTTP/1.1\nHost: a\n\n")
    if make_parser is H11RequestParser:
        assert any(isinstance(e, Request) for e in events), H11_QUIRKS["bare-lf"]
    else:
        assert isinstance(events[-1], Rejected)


def test_http09_is_not_served(make_parser: Parser) -> None:
    events = parse(make_parser, b"GET /\r\n\r\n")
    assert not any(isinstance(e, Request) for e in events)


def test_slow_oversized_header_is_caught_before_it_ends(make_parser: Parser) -> None:
    parser = make_parser(HeadLimits(max_header_size=8192, max_head_size=32768))
    events = parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ")
    for _ in range(80):  # 80 KiB of one header value, a KiB at a time
        events += parser.feed(b"a" * 1024)
        if events:
            break
    assert events and isinstance(events[-1], Rejected)
    assert events[-1].status in (431, 400)


def test_request_line_limit_gives_414(make_parser: Parser) -> None:
    events = parse(make_parser, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(events[-1], Rejected)
    if make_parser is RequestParser:
        assert events[-1].status == 414


def test_header_count_limit_gives_431(make_parser: Parser) -> None:
    many = b"".join(b"X-%d: n\r\n" % i for i in range(101))
    events = parse(make_parser, b"GET / HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n")
    assert isinstance(events[-1], Rejected) and events[-1].status == 431


def test_fields_of_a_small_first_read_count_when_the_head_goes_on() -> None:
    # A head that begins in a short read is only counted there (no size per field);
    # when it goes on in a next read, its fields so far must count towards the limits.
    parser = RequestParser(HeadLimits(max_headers=100))
    first = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: n\r\n" % i for i in range(60))
    assert parser.feed(first) == []
    events = parser.feed(b"".join(b"Y-%d: n\r\n" % i for i in range(60)) + b"\r\n")
    assert isinstance(events[-1], Rejected) and events[-1].status == 431

    parser = RequestParser(HeadLimits(max_header_size=8192, max_head_size=6000))
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: " + b"a" * 4000 + b"\r\n") == []
    events = parser.feed(b"X-B: " + b"b" * 4000 + b"\r\n\r\n")  # 8 KiB of head, over 6000
    assert isinstance(events[-1], Rejected) and events[-1].status == 431


def test_too_many_response_fields_in_one_short_read_are_refused() -> None:
    parser = ResponseParser()
    parser.expect(b"GET")
    many = b"".join(b"X-%d: n\r\n" % i for i in range(RESPONSE_LIMITS.max_headers + 1))
    events = parser.feed(b"HTTP/1.1 200 OK\r\n" + many + b"Content-Length: 0\r\n\r\n")
    assert isinstance(events[-1], Rejected) and events[-1].status == 502
    assert "too many header fields" in events[-1].reason


def test_body_error_after_head_in_same_read_takes_the_request_back() -> None:
    # httptools fires headers-complete before it sees the bad chunk; rule 4 of parser.py.
    events = RequestParser().feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    )
    assert [type(e) for e in events] == [Rejected]


def test_body_error_in_a_later_read_follows_the_request() -> None:
    parser = RequestParser()
    first = parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    second = parser.feed(b"2;\nxx\r\n")
    assert isinstance(first[0], Request)
    assert isinstance(second[-1], Rejected)


def test_nothing_after_an_upgrade_request_is_parsed_it_is_held_for_the_tunnel() -> None:
    # Issue 17: whether the upgrade becomes a tunnel or is refused, the bytes after its
    # head are never read as HTTP (they are the tunnel's, or dropped with the connection).
    parser = RequestParser()
    events = parser.feed(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    [request, end] = events
    assert isinstance(request, Request) and end is END
    assert request.upgrade == b"websocket" and not request.keep_alive
    assert parser.feed(b"\x81\x00") == [] and parser.finished
    assert parser.held == 33
    assert parser.take_held() == b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n\x81\x00"


def test_an_upgrade_request_with_a_body_gets_its_body_then_the_rest_is_held() -> None:
    # llhttp ends an upgrade request at its head; its Content-Length body is read here.
    parser = RequestParser()
    head = (b"POST /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Content-Length: 5\r\n\r\n")
    first = parser.feed(head + b"hel")
    second = parser.feed(b"loGET / HTTP/1.1\r\n\r\n")
    assert simplify(first)[1:] == [b"hel"] and simplify(second) == [b"lo", "end"]
    assert parser.take_held() == b"GET / HTTP/1.1\r\n\r\n"


def test_an_upgrade_request_with_a_chunked_body_is_refused() -> None:
    events = RequestParser().feed(
        b"POST /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert isinstance(events[-1], Rejected) and events[-1].status == 400


def test_upgrade_without_connection_upgrade_is_a_plain_request() -> None:
    [request, _] = RequestParser().feed(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")
    assert isinstance(request, Request) and request.upgrade == b"" and request.keep_alive


def test_an_http10_upgrade_is_plain_http_and_parsing_goes_on() -> None:
    events = RequestParser().feed(
        b"POST /ws HTTP/1.0\r\nHost: a\r\nConnection: Upgrade, keep-alive\r\nUpgrade: websocket\r\n"
        b"Content-Length: 5\r\n\r\nhelloGET /x HTTP/1.0\r\n\r\n")
    assert [e.target for e in events if isinstance(e, Request)] == [b"/ws", b"/x"]
    assert b"hello" in simplify(events)


def test_request_trailers_are_dropped_not_merged_into_headers(make_parser: Parser) -> None:
    events = parse(make_parser, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"1\r\nx\r\n0\r\nX-Trailer: t\r\nHost: evil\r\n\r\n")
    request = events[0]
    assert isinstance(request, Request)
    assert [name for name, _ in request.headers] == [b"Host", b"Transfer-Encoding"]
    assert simplify(events)[1:] == [b"x", "end"]


@pytest.mark.parametrize("make", [RequestParser, ResponseParser])
def test_a_closed_parser_is_freed_without_the_cyclic_gc(make: type) -> None:
    # httptools holds the adapter's bound methods: a cycle. Left to the cyclic GC it kept
    # each connection's last buffers alive for minutes (the soak saw RSS grow 45 -> 93 MiB).
    import sys

    parser = make()
    if make is ResponseParser:
        parser.expect(b"GET")
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    else:
        parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
    # Counted without weakref, which mypyc-compiled classes do not support: the local name
    # and getrefcount's own argument are all that may hold the parser once it is closed.
    assert sys.getrefcount(parser) > 2  # httptools' bound methods: the cycle
    parser.close()
    assert sys.getrefcount(parser) == 2  # freed by reference counting alone


def test_a_closing_http10_request_ends_the_stream_whole_or_split(make_parser: Parser) -> None:
    # Found by `make fuzz`: llhttp kept parsing after a 1.0 request that said both
    # "keep-alive" and "close" when both came in one read, but not when split.
    first = b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
    second = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    whole = simplify(make_parser().feed(first + second))
    parser = make_parser()
    split = simplify(parser.feed(first) + parser.feed(second))
    assert whole == split == [("request", b"GET", b"/", Body.NONE, False), "end"]


def test_a_content_length_body_after_its_head_passes_without_a_copy() -> None:
    # Issue 6: llhttp would copy every body byte into a new object; once the head is
    # parsed, the rest of a Content-Length body is handed on as the very bytes read.
    response = ResponseParser()
    response.expect(b"GET")
    first = response.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + b"a" * 1000)
    assert [type(e) for e in first] == [Response, Data]
    chunk = b"b" * 65536
    (data,) = response.feed(chunk)
    assert isinstance(data, Data) and data.data is chunk
    last = response.feed(b"c" * 3464)
    assert [type(e) for e in last] == [Data, type(END)] and response.clean

    request = RequestParser()
    request.feed(b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 65540\r\n\r\nab")
    (data,) = request.feed(chunk)
    assert isinstance(data, Data) and data.data is chunk
    # The body's last bytes and the next request in one read: both come out right.
    tail = request.feed(b"cdGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [type(e) for e in tail] == [Data, type(END), Request, type(END)]
    assert tail[0].data == b"cd" and tail[2].target == b"/next"  # type: ignore[union-attr]


def test_the_version_read_from_the_bytes_is_the_version_llhttp_parsed() -> None:
    # The parsers read "1.1"/"1.0" from the read in which a message began at the first
    # byte, and ask llhttp otherwise. Every layout must give llhttp's answer: leading
    # CRLF, pipelined messages, a head split across reads, and a head that began after
    # a complete message and whose next read holds "HTTP/1.1\r\n" where the version
    # would stand had the message begun there.
    def versions(reads: list[bytes]) -> list[bytes]:
        parser = RequestParser()
        return [e.version for read in reads for e in parser.feed(read) if isinstance(e, Request)]

    one_one = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
    one_oh = b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    assert versions([one_one, one_oh, one_one]) == [b"1.1", b"1.0", b"1.1"]
    assert versions([one_oh + one_one + one_oh]) == [b"1.0", b"1.1", b"1.0"]
    assert versions([b"\r\n" + one_oh]) == [b"1.0"]
    assert versions([one_oh[:9], one_oh[9:]]) == [b"1.0"]
    decoy = b"X: abcdHTTP/1.1\r\n\r\n"  # "HTTP/1.1\r\n" at len("GET") + len("/a") + 2
    assert versions([one_one + b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n", decoy]) == [
        b"1.1", b"1.0"]
    assert versions([b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab" + one_oh,
                     b"GET /a HTTP/1.0\r\n", decoy]) == [b"1.1", b"1.0", b"1.0"]

    def response_versions(reads: list[bytes]) -> list[bytes]:
        parser = ResponseParser()
        out = []
        for read in reads:
            parser.expect(b"GET")
            out += [e.version for e in parser.feed(read) if isinstance(e, Response)]
        return out

    ok10 = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
    ok11 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert response_versions([ok10, ok11, ok10]) == [b"1.0", b"1.1", b"1.0"]
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
    assert response_versions([interim + ok10]) == [b"1.1", b"1.0"]
