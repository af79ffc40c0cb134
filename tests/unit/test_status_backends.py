"""`portico status`'s backends table, from the status JSON's routes[].backends[]."""

from __future__ import annotations

import time

from rich.console import Console

from portico.cli.status import backend_table


def test_backend_table_shows_state_why_in_flight_fails_and_last_check() -> None:
    routes = [{"route": "/lb", "backends": [
        {"address": "http://10.0.0.5:8000", "weight": 1, "state": "up", "why": "",
         "in_flight": 2, "fails": 0, "last_check": time.time() - 3, "check": "/health"},
        {"address": "http://10.0.0.6:8000", "weight": 3, "state": "down",
         "why": "health check answered 503", "in_flight": 0, "fails": 1, "last_check": None,
         "check": "/health"},
    ]}]
    console = Console(width=200, record=True)
    console.print(backend_table(routes))
    text = console.export_text()
    assert "10.0.0.5:8000" in text and "3s ago" in text
    assert "down" in text and "health check answered 503" in text
