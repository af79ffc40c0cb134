"""ProxyPassReverse done safely: Location-type headers and cookies."""

from __future__ import annotations

import pytest

from portico.routing.proxypass import ReverseMap
from portico.upstream.backend import Backend

PUBLIC = b"https://my.site.com"
STRIPPED = ReverseMap(Backend("http", "127.0.0.1", 8000), b"/", b"/myapp", stripped=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Apache's <Location> trap turns this into /myappx; portico keeps the slash.
        (b"http://127.0.0.1:8000/login", b"https://my.site.com/myapp/login"),
        (b"HTTP://127.0.0.1:8000/login?next=/a", b"https://my.site.com/myapp/login?next=/a"),
        (b"http://127.0.0.1:8000", b"https://my.site.com/myapp"),
        (b"http://127.0.0.1:8000/", b"https://my.site.com/myapp"),
        (b"http://127.0.0.1:8000?x", b"https://my.site.com/myapp/?x"),
        (b"/login", b"/myapp/login"),
        (b"/myapp/login", b"/myapp/login"),  # already prefix-aware (ProxyFix x_prefix)
        # Prefix-aware and absolute (uvicorn --root-path): the origin alone is replaced.
        (b"http://127.0.0.1:8000/myapp/items/", b"https://my.site.com/myapp/items/"),
        (b"http://127.0.0.1:8000/myapp?x", b"https://my.site.com/myapp?x"),
        (b"http://127.0.0.1:8000/myappx", b"https://my.site.com/myapp/myappx"),  # not the prefix
        (b"/myapp", b"/myapp"),
        (b"//evil.example/x", b"//evil.example/x"),
        (b"/\\evil.example", b"/\\evil.example"),
        (b"\\\\evil.example", b"\\\\evil.example"),
        (b"https://evil.example/x", b"https://evil.example/x"),
        (b"http://127.0.0.1:80001/x", b"http://127.0.0.1:80001/x"),
        (b"http://127.0.0.1:8000.evil/x", b"http://127.0.0.1:8000.evil/x"),
        (b"relative/path", b"relative/path"),
    ],
)
def test_location_rewriting(value: bytes, expected: bytes) -> None:
    assert STRIPPED.location(value, PUBLIC) == expected


def test_base_path_is_honoured() -> None:
    reverse = ReverseMap(Backend("http", "10.0.0.5", 8000), b"/api/", b"/myapp", stripped=True)
    assert reverse.location(b"http://10.0.0.5:8000/api/x", PUBLIC) == PUBLIC + b"/myapp/x"
    assert reverse.location(b"http://10.0.0.5:8000/other", PUBLIC) == b"http://10.0.0.5:8000/other"
    assert reverse.location(b"/api/x", PUBLIC) == b"/myapp/x"
    assert reverse.location(b"/other", PUBLIC) == b"/other"


def test_a_base_path_that_begins_like_the_prefix_is_the_upstreams() -> None:
    # route /app -> http://backend:8000/app/v2: the app's own paths are under /app/v2.
    reverse = ReverseMap(Backend("http", "backend", 8000), b"/app/v2/", b"/app", stripped=True)
    public = b"https://pub"
    assert reverse.location(b"http://backend:8000/app/v2/login", public) == b"https://pub/app/login"
    assert reverse.location(b"/app/v2/login?x=1", public) == b"/app/login?x=1"
    # Already public (a prefix-aware app): kept, never /app/app/x.
    assert reverse.location(b"http://backend:8000/app/x", public) == b"https://pub/app/x"
    assert reverse.location(b"/app/x", public) == b"/app/x"


def test_default_port_is_normalised() -> None:
    reverse = ReverseMap(Backend("http", "backend", 80), b"/", b"/p", stripped=True)
    assert reverse.location(b"http://backend/x", PUBLIC) == PUBLIC + b"/p/x"
    assert reverse.location(b"http://backend:80/x", PUBLIC) == PUBLIC + b"/p/x"


def test_preserve_path_maps_host_only() -> None:
    reverse = ReverseMap(Backend("http", "127.0.0.1", 50100), b"/", b"/myApp", stripped=False)
    assert reverse.location(b"http://127.0.0.1:50100/myApp/help", PUBLIC) == PUBLIC + b"/myApp/help"
    assert reverse.location(b"/myApp/help", PUBLIC) == b"/myApp/help"


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        (b"sid=1; Path=/", b"sid=1; Path=/myapp"),
        (b"sid=1; path=/shop; HttpOnly", b"sid=1; Path=/myapp/shop; HttpOnly"),
        (b"sid=1; Path=/myapp/x", b"sid=1; Path=/myapp/x"),
        (b"sid=1; Domain=127.0.0.1; Path=/", b"sid=1; Path=/myapp"),
        (b"sid=1; Domain=other.example", b"sid=1; Domain=other.example"),
        (b"sid=1", b"sid=1"),
        (b"a=b; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/", b"a=b; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/myapp"),
    ],
)
def test_cookie_rewriting(cookie: bytes, expected: bytes) -> None:
    assert STRIPPED.set_cookie(cookie) == expected
