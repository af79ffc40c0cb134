"""The main process <-> worker channel: every message survives the wire as itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from portico.config.compile import run_plan
from portico.config.load import parse
from portico.server import channel

CONFIG = """
[server]
listen = ["http://127.0.0.1:0"]

[[route]]
path = "/a"
upstream = "http://127.0.0.1:9"
request_headers.set = { X-Stage = "one" }
"""


def test_a_serve_carries_the_whole_plan() -> None:
    plan = run_plan(parse(CONFIG, "test.toml"), Path.cwd(), Path.cwd(), None, print).serving
    line = channel.encode(channel.Serve(3, 8443, plan))
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one message, one line
    assert channel.decode(line) == channel.Serve(3, 8443, plan)


@pytest.mark.parametrize("message", [
    channel.AppChanged("api", "up"),
    channel.ReloadCertificates([0, 2]),
    channel.CountQuery(7),
    channel.Cut(),
    channel.Serving(2),
    channel.Serving(2, "cannot read the certificate"),
    channel.Counts(7, 6, 1),
])
def test_each_message_comes_back_as_itself(message: channel.Message) -> None:
    assert channel.decode(channel.encode(message)) == message


@pytest.mark.parametrize("line", [
    b"not json\n",
    b'{"ready": true}\n',  # no type
    b'{"type": "retire"}\n',  # not a message this version knows
    b'{"type": "counts", "seq": 1}\n',  # fields missing
])
def test_anything_else_is_a_channel_error(line: bytes) -> None:
    with pytest.raises(channel.ChannelError):
        channel.decode(line)
