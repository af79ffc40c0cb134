"""Fixtures for tests that drive portico's request path in process (tests/support/harness.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.harness import ProxyHarness
from tests.support.scripted import Script, ScriptedUpstream, ok_script

Rig = tuple[ProxyHarness, ScriptedUpstream]
StartRig = Callable[..., Rig]


@pytest.fixture
def rig() -> Iterator[StartRig]:
    """``rig(config_for, script)``: a ProxyHarness in front of a ScriptedUpstream; closed
    after the test, which fails it if anything raised inside the loop."""
    started: list[ProxyHarness] = []

    def start(config_for: Callable[[str], str], script: Script = ok_script) -> Rig:
        harness, upstream = ProxyHarness.with_upstream(config_for, script)
        started.append(harness)
        return harness, upstream

    yield start
    for harness in started:
        harness.close()
