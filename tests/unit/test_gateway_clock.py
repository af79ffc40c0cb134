"""The gateway's coarse clock: what every deadline is measured from."""

from __future__ import annotations

import asyncio
from pathlib import Path

from portico.config.compile import serving_plan
from portico.config.load import parse
from portico.config.provision import build_gateway

CONFIG = """
[server]
listen = ["http://127.0.0.1:0"]
[[route]]
path = "/x"
upstream = "http://127.0.0.1:9/"
"""


def test_the_clock_reads_the_time_it_is_started_not_the_time_of_the_build() -> None:
    # `portico run` builds the gateway, starts the apps (seconds), then starts the clock;
    # a request in the first tick after that took its response deadline from the build
    # time and could time out at once (504 after 0.09 s for a 1 s response_timeout).
    loop = asyncio.new_event_loop()
    try:
        plan = serving_plan(parse(CONFIG, "clock"), Path.cwd(), Path.cwd())
        gateway = build_gateway(plan, loop)
        gateway.now -= 5.0  # as if the apps took five seconds to come up
        gateway.start_clock()
        assert gateway.now >= loop.time() - 0.05
        gateway.stop_clock()
    finally:
        loop.close()
