"""A route's ``basic_auth``: 401 with a challenge, then the upstream once the password
matches an argon2 hash; ``portico passwd`` makes the hash."""

from __future__ import annotations

import base64

import pytest
from click.testing import CliRunner

from portico.cli import main
from portico.config.load import parse
from portico.errors import ConfigError
from portico.policy.basic_auth import BasicAuth, make_hash
from tests.support.harness import ProxyHarness

HASH = make_hash("s3cret: with colon")  # one hash for the module: each costs ~0.1 s


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def test_only_the_right_password_passes_and_is_remembered() -> None:
    auth = BasicAuth({"alice": HASH})
    assert auth.permits(basic("alice", "s3cret: with colon"), now=0.0)
    assert not auth.permits(basic("alice", "wrong"), now=0.0)
    assert not auth.permits(basic("bob", "s3cret: with colon"), now=0.0)
    for garbled in (b"Basic !!!", b"Bearer abc", b"Basic " + base64.b64encode(b"no-colon"),
                    b"Basic " + base64.b64encode(b"\xff:\xfe")):
        assert not auth.permits(garbled, now=0.0)
    auth._users.clear()  # remembered: no hash check within REMEMBER seconds
    assert auth.permits(basic("alice", "s3cret: with colon"), now=10.0)
    assert not auth.permits(basic("alice", "s3cret: with colon"), now=1000.0)


def test_a_plain_password_in_the_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be an argon2 hash"):
        parse('[[route]]\npath = "/"\nupstream = "http://127.0.0.1:1/"\n'
              'basic_auth = { users = { alice = "secret" } }\n', "portico.toml")


def test_the_route_answers_401_until_the_password_matches() -> None:
    config = ('[[route]]\npath = "/private"\nupstream = "{url}"\n'
              'basic_auth = {{ realm = "Staff \\"only\\"", users = {{ alice = "{hash}" }} }}\n'
              '[[route]]\npath = "/"\nupstream = "{url}"\n')
    harness, upstream = ProxyHarness.with_upstream(
        lambda url: config.format(url=url, hash=HASH))
    try:
        refused = harness.exchange(b"GET /private/x HTTP/1.1\r\nHost: a\r\n\r\n")
        assert refused.data.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
        assert refused.header(b"www-authenticate") == b'Basic realm="Staff \\"only\\"", charset="UTF-8"'
        wrong = harness.exchange(b"GET /private/x HTTP/1.1\r\nHost: a\r\nAuthorization: "
                                 + basic("alice", "nope") + b"\r\n\r\n")
        assert wrong.status == 401 and not upstream.requests
        right = harness.exchange(b"GET /private/x HTTP/1.1\r\nHost: a\r\nAuthorization: "
                                 + basic("alice", "s3cret: with colon") + b"\r\n\r\n")
        assert right.status == 200 and len(upstream.requests) == 1
        assert harness.exchange(b"GET /open HTTP/1.1\r\nHost: a\r\n\r\n").status == 200
    finally:
        harness.close()


def test_passwd_prints_a_hash_that_loads() -> None:
    result = CliRunner().invoke(main, ["passwd", "alice", "--stdin"], input="pw\n")
    assert result.exit_code == 0, result.output
    line = next(text for text in result.output.splitlines() if text.startswith("alice = "))
    config = parse(f'[[route]]\npath = "/"\nupstream = "http://127.0.0.1:1/"\n'
                   f"basic_auth = {{ users = {{ {line} }} }}\n", "portico.toml")
    (route,) = config.route
    assert route.basic_auth is not None
    assert BasicAuth(route.basic_auth.users).permits(basic("alice", "pw"))
    assert CliRunner().invoke(main, ["passwd", "--stdin"], input="\n").exit_code == 2
