"""The audit log: one JSON line per change made through the admin (S12), append-only.

``STATE/admin/KEY/audit.jsonl``: time, actor (token id or session or the socket's
owner), peer, transport, action, target, before/after (config hashes, never
secrets) and result. Read back by ``GET /api/audit`` and the UI's audit page.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request

    from portico.admin.facade import AdminContext

AUDIT_FILE = "audit.jsonl"
SECRET_KEYS = frozenset({"password", "secret", "token", "key_pem"})


def audit_path(admin: AdminContext) -> Path:
    return admin.state_dir / AUDIT_FILE


def record(
    admin: AdminContext, request: Request | None, action: str, target: str | None,
    result: dict[str, Any], before: str | None = None, after: str | None = None,
    actor: str | None = None,
) -> None:
    """Append one line; a failure to write is said, never raised at the caller."""
    scope = request.scope if request is not None else {}
    entry = {
        "time": round(time.time(), 3),
        "actor": actor or scope.get("portico.actor", "portico"),
        "peer": scope.get("portico.peer"),
        "transport": scope.get("portico.transport"),
        "action": action,
        "target": target,
        "before": before,
        "after": after,
        "result": {k: v for k, v in result.items() if k not in SECRET_KEYS},
    }
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    try:
        fd = os.open(audit_path(admin), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        admin.reloader.announce(f"admin: cannot write the audit log: {exc}")


def tail(admin: AdminContext, limit: int = 200) -> list[dict[str, Any]]:
    """The last ``limit`` entries, oldest first."""
    try:
        with audit_path(admin).open(encoding="utf-8") as file:
            lines = deque(file, maxlen=max(1, min(limit, 10000)))
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows
