"""Config checks for a running portico, in a short-lived child process.

``portico run`` checks its config itself (pydantic; ``cryptography`` for
certificates) and then hands over to a process that only serves
(server/main.py), which never imports either: they would keep it at ~55 MiB
instead of ~30. When that process has to check a config again (a reload, a
certificate file that changed on disk), it runs this module as a child,
``python -m portico.config.prepare reload|certificates``, with the request as
JSON on stdin and the answer as JSON on stdout. Where the checker libraries
are loaded anyway (Windows serves in the process that checked), the same
checks run in-process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from portico.config.plan import RunPlan, revive
from portico.errors import ConfigError
from portico.tls.store import CertFacts, CertSource

CHECK_TIMEOUT = 120.0  # issuing a certificate for a new name is the slowest part


async def reload_plan(running: RunPlan, in_process: bool) -> tuple[RunPlan, list[str]]:
    """The config file read and checked again, the running apps' ports kept; with what
    the check had to say. ConfigError if it is not fit to serve."""
    request = {
        "config_file": str(running.config_file),
        "base_dir": str(running.base_dir),
        "state_dir": str(running.state_dir),
        "binds": {app.name: app.bind for app in running.apps},
    }
    if in_process:
        return _reload(request)
    answer = await _ask("reload", request)
    if "error" in answer:
        raise ConfigError(*answer["error"])
    return revive(RunPlan, answer["plan"]), answer["said"]


async def check_certificates(
    sources: list[CertSource], in_process: bool
) -> list[CertFacts | str]:
    """Each certificate's facts, or why it is unfit (expired, unreadable, wrong key)."""
    request = {"sources": [[list(s.hosts), str(s.cert), str(s.key), s.where] for s in sources]}
    if in_process:
        return _check(request)
    answer = await _ask("certificates", request)
    return [revive(CertFacts, verdict) if isinstance(verdict, dict) else str(verdict)
            for verdict in answer["verdicts"]]


async def _ask(mode: str, request: dict[str, Any]) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portico.config.prepare", mode,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(
            child.communicate(json.dumps(request).encode()), CHECK_TIMEOUT)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise ConfigError("", "", f"the config check took over {CHECK_TIMEOUT:g}s") from None
    try:
        answer: dict[str, Any] = json.loads(out)
    except ValueError:
        raise ConfigError("", "", f"the config check failed (exit status {child.returncode}; "
                          "its error is above)") from None
    return answer


def _reload(request: dict[str, Any]) -> tuple[RunPlan, list[str]]:
    from portico.config.compile import run_plan
    from portico.config.load import load

    config_file = Path(request["config_file"])
    said: list[str] = []
    source, _ = load(config_file)
    plan = run_plan(source, Path(request["base_dir"]), Path(request["state_dir"]),
                    config_file, said.append, request["binds"])
    return plan, said


def _check(request: dict[str, Any]) -> list[CertFacts | str]:
    from portico.tls.store import CertError, check

    verdicts: list[CertFacts | str] = []
    for hosts, cert, key, where in request["sources"]:
        try:
            verdicts.append(check(CertSource(tuple(hosts), Path(cert), Path(key), where)))
        except CertError as exc:
            verdicts.append(str(exc))
    return verdicts


def main() -> int:
    """The child: one request on stdin, one answer on stdout (dataclasses as JSON)."""
    mode = sys.argv[1]
    request = json.loads(sys.stdin.buffer.read())
    answer: dict[str, Any]
    if mode == "reload":
        try:
            plan, said = _reload(request)
        except ConfigError as exc:
            answer = {"error": [exc.file, exc.key, exc.message]}
        else:
            answer = {"plan": dataclasses.asdict(plan), "said": said}
    else:
        answer = {"verdicts": [v if isinstance(v, str) else dataclasses.asdict(v)
                               for v in _check(request)]}
    sys.stdout.write(json.dumps(answer, default=str))  # Path, datetime -> str
    return 0


if __name__ == "__main__":
    sys.exit(main())
