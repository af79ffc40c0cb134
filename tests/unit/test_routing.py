"""Route matching, canonical paths and ProxyPass joining."""

from __future__ import annotations

import pytest

from portico.errors import ProxyError
from portico.routing.path import join_upstream, remove_dot_segments
from portico.routing.table import Route, RouteTable
from portico.upstream.backend import Backend

UP = Backend("http", "127.0.0.1", 8000)


def table(*routes: tuple[str, str | None], base: bytes = b"/", preserve: bool = False) -> RouteTable:
    return RouteTable([
        Route(i, b"" if p == "/" else p.encode(), h, UP, base_path=base, preserve_path=preserve)
        for i, (p, h) in enumerate(routes)
    ])


def resolve(t: RouteTable, target: bytes, host: bytes = b"a.example") -> tuple[bytes, bytes, bool]:
    match = t.resolve(host, target)
    return match.route.prefix, match.target, match.stripped


@pytest.mark.parametrize(
    ("target", "upstream_target"),
    [
        (b"/myapp", b"/"),
        (b"/myapp/", b"/"),
        (b"/myapp/a/b?x=1", b"/a/b?x=1"),
        (b"/myapp?x=1", b"/?x=1"),
        (b"/myapp/a%2Fb%20c/%C3%A9", b"/a%2Fb%20c/%C3%A9"),
        (b"/my%61pp/x", b"/x"),
        # Issue 20: canonical as Apache and nginx forward it (dot-segments, double slashes).
        (b"/myapp/a/../b", b"/b"),
        (b"/myapp/./echo", b"/echo"),
        (b"//myapp//echo", b"/echo"),
        (b"/myapp/a/%2e%2E/b?x=/../y", b"/b?x=/../y"),
        (b"/myapp/a%2F..%2Fb/", b"/a%2F..%2Fb/"),
    ],
)
def test_prefix_is_replaced_by_one_slash_and_the_rest_is_byte_exact(
    target: bytes, upstream_target: bytes
) -> None:
    assert resolve(table(("/myapp", None)), target) == (b"/myapp", upstream_target, True)


@pytest.mark.parametrize("target", [b"/myappX", b"/myapp.bak", b"/myapp;x=1/a", b"/myapp..;/admin"])
def test_prefix_matches_whole_segments_only(target: bytes) -> None:
    with pytest.raises(ProxyError) as caught:
        table(("/myapp", None)).resolve(b"a", target)
    assert caught.value.status == 404


@pytest.mark.parametrize(
    "target",
    [
        b"/myapp/../admin",
        b"/myapp/%2e%2e/admin",
        b"/myapp%2f..%2fadmin",
        b"/myapp/..%5cadmin",
        b"/myapp/../myapp/x",
        b"/myapp/%2E%2E/%2e%2e/etc/passwd",
    ],
)
def test_paths_leaving_their_prefix_are_refused(target: bytes) -> None:
    with pytest.raises(ProxyError) as caught:
        table(("/myapp", None), ("/", None)).resolve(b"a", target)
    assert caught.value.status == 400


def test_double_encoding_is_decoded_once_only() -> None:
    prefix, target, _ = resolve(table(("/myapp", None)), b"/myapp/%252e%252e/admin")
    assert (prefix, target) == (b"/myapp", b"/%252e%252e/admin")


def test_nul_in_path_is_refused() -> None:
    with pytest.raises(ProxyError) as caught:
        table(("/", None)).resolve(b"a", b"/a%00b")
    assert caught.value.status == 400


def test_longest_prefix_wins() -> None:
    t = table(("/", None), ("/myapp", None), ("/myapp/api", None))
    assert resolve(t, b"/myapp/api/v1")[0] == b"/myapp/api"
    assert resolve(t, b"/myapp/apix")[0] == b"/myapp"
    assert resolve(t, b"/other")[0] == b""


def test_host_tiers_exact_then_wildcard_then_any() -> None:
    t = table(("/", "api.example.com"), ("/", "*.example.com"), ("/x", None))
    assert t.match("api.example.com", b"/x").host == "api.example.com"  # type: ignore[union-attr]
    assert t.match("www.example.com", b"/x").host == "*.example.com"  # type: ignore[union-attr]
    assert t.match("example.com", b"/x").host is None  # type: ignore[union-attr]
    assert t.match("other.org", b"/y") is None


def test_host_port_is_ignored_for_matching() -> None:
    t = table(("/", "my.site.com"))
    assert t.resolve(b"my.site.com:8080", b"/").route.host == "my.site.com"


def test_preserve_path_forwards_the_full_path() -> None:
    t = table(("/myApp", None), preserve=True)
    assert resolve(t, b"/myApp/help?x=1") == (b"/myApp", b"/myApp/help?x=1", False)


def test_upstream_base_path_joins_with_one_slash() -> None:
    t = table(("/myapp", None), base=b"/api/")
    assert resolve(t, b"/myapp/x")[1] == b"/api/x"
    assert resolve(t, b"/myapp")[1] == b"/api/"


@pytest.mark.parametrize(
    ("base", "rest", "expected"),
    [(b"/", b"", b"/"), (b"/", b"/a", b"/a"), (b"/api", b"/a", b"/api/a"), (b"/api/", b"/a", b"/api/a"),
     (b"/api", b"", b"/api"), (b"/", b"//a", b"/a"), (b"/", b"///a//b", b"/a//b"),
     (b"/api/", b"//a", b"/api/a")],
)
def test_join_upstream(base: bytes, rest: bytes, expected: bytes) -> None:
    assert join_upstream(base, rest) == expected


def test_remove_dot_segments() -> None:
    assert remove_dot_segments(b"/a/b/../c/./d") == b"/a/c/d"
    assert remove_dot_segments(b"/../a") == b"/a"
    assert remove_dot_segments(b"/a/..") == b"/"


def test_forward_raw_path_keeps_the_path_as_sent() -> None:
    t = RouteTable([Route(0, b"/myapp", None, UP, forward_raw_path=True)])
    assert t.resolve(b"a", b"/myapp/./x//y").target == b"/./x//y"
    assert t.resolve(b"a", b"//myapp/x").target == b"/x"
    with pytest.raises(ProxyError) as refused:
        t.resolve(b"a", b"/myapp/../etc")
    assert refused.value.status == 400
