"""The process that serves ``portico run``, handed a checked config (a RunPlan).

``portico run`` validates the TOML (pydantic, click, ``cryptography`` for the
certificates), reduces it to a ``RunPlan`` and, on POSIX, ``exec``s
``python -m portico.server.main PLAN_FILE [CONFIG_FILE]`` (the config file only
for ``ps`` to show): same pid (systemd, signals), a
fresh interpreter that imports none of those libraries. That is what keeps
the serving process near 30 MiB instead of 55 (docs/performance.md). Config
checks it needs later (a reload, a changed certificate) run in a short-lived
child (config/prepare.py). Elsewhere (Windows) the checking process serves
itself, with the same code.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape

from portico.config.plan import DEFAULT_NAME, RunPlan
from portico.errors import ConfigError

err = Console(stderr=True, highlight=False, soft_wrap=True)


def hand_over(plan: RunPlan) -> NoReturn:
    """Serve ``plan``: in a fresh interpreter where ``exec`` keeps the pid, else here."""
    if os.name == "posix" and not os.environ.get("PORTICO_NO_EXEC"):
        name = ""
        try:
            plan.state_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="run-plan-", suffix=".json", dir=plan.state_dir)
            with os.fdopen(fd, "w", encoding="utf-8") as file:  # 0600: headers may be secret
                file.write(plan.to_json())
            sys.stdout.flush()
            sys.stderr.flush()
            shown = [str(plan.config_file)] if plan.config_file else []  # for ps and pgrep
            os.execv(sys.executable, [sys.executable, "-m", "portico.server.main", name, *shown])
        except OSError as exc:
            if name:
                Path(name).unlink(missing_ok=True)
            err.print(f"[bold cyan]portico[/] cannot hand over to a lean process "
                      f"({escape(str(exc))}); serving from this one")
    serve_and_exit(plan, lean=False)


def serve_and_exit(plan: RunPlan, lean: bool) -> NoReturn:
    """Run until SIGTERM/SIGINT; a failure to start is said plainly, with its exit status."""
    from portico.admin.runtime import RuntimeDirError
    from portico.server.run import RunContext, run
    from portico.server.workers import WorkerStartError
    from portico.supervisor.process import AppStartError

    def announce(message: str) -> None:
        err.print(f"[bold cyan]portico[/] {escape(message)}")

    def echo(name: str, line: str) -> None:
        sys.stderr.write(f"{name} | {line}\n")

    try:
        code = run(plan, RunContext(announce, echo, lean))
    except ConfigError as exc:
        where = ConfigError(exc.file or str(plan.config_file or DEFAULT_NAME), exc.key,
                            exc.message)
        err.print(f"[bold red]config error[/] {escape(str(where))}")
        sys.exit(2)
    except (WorkerStartError, RuntimeDirError) as exc:
        err.print(f"[bold red]error[/] {escape(str(exc))}")
        sys.exit(1)
    except AppStartError as exc:
        err.print(f"[bold red]error[/] {escape(str(exc))}")
        if exc.stderr_tail:
            err.print(f"last {len(exc.stderr_tail)} lines of its output:")
            for line in exc.stderr_tail:
                err.print("  " + line.rstrip(), markup=False)
        sys.exit(1)
    except OSError as exc:
        err.print(f"[bold red]error[/] cannot listen: {escape(exc.strerror or str(exc))}")
        sys.exit(1)
    sys.exit(code)


def main() -> NoReturn:
    path = Path(sys.argv[1])
    plan = RunPlan.from_json(path.read_bytes())
    path.unlink()
    serve_and_exit(plan, lean=True)


if __name__ == "__main__":
    main()
