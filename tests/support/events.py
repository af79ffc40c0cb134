"""Parser events in a form that compares well: bodies joined, requests as tuples."""

from __future__ import annotations

from portico.http.events import END, Data, Event, Rejected, Request


def simplify(events: list[Event], with_headers: bool = False) -> list[object]:
    """Requests become ``("request", method, target, body, keep_alive[, headers])``, runs of
    Data one ``bytes``, END ``"end"``, a rejection ``("rejected", status)`` and the end."""
    out: list[object] = []
    for event in events:
        if isinstance(event, Request):
            fields = ("request", event.method, event.target, event.body, event.keep_alive)
            out.append((*fields, event.headers) if with_headers else fields)
        elif isinstance(event, Data):
            if out and isinstance(out[-1], bytes):
                out[-1] += event.data
            else:
                out.append(event.data)
        elif event is END:
            out.append("end")
        else:
            assert isinstance(event, Rejected)
            out.append(("rejected", event.status))
            break  # nothing follows a rejection
    return out
