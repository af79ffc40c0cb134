"""``portico app restart|stop|start|status NAME``: one app of a running portico.

Each command is one request to the running portico's control socket
(``POST /api/apps/NAME/ACTION``, ``GET /api/apps/NAME``; admin/api.py),
found as ``portico status`` finds it. ``restart`` is rolling and returns once
every instance is back (or one did not come back: exit status 1).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from portico.cli.console import config_file, config_option, err, out
from portico.cli.status import find_instance
from portico.config.load import config_in_use

ACTION_TIMEOUT = 900.0  # a rolling restart waits for each instance's start_timeout


def _request(config_path: str | None, method: str, target: str) -> Any:
    from portico.admin.control import control_request
    from portico.admin.runtime import control_socket, runtime_dir

    here = config_file(config_in_use(None)) if config_path is None else None
    instance = find_instance(config_file(config_path), here)
    control = control_socket(runtime_dir(), instance.key)
    try:
        code, body = asyncio.run(control_request(control, method, target, ACTION_TIMEOUT))
        answer = json.loads(body)
    except (OSError, TimeoutError, ValueError) as exc:
        err.print(f"[bold red]error[/] portico {escape(instance.describe())} does not answer "
                  f"at {escape(str(control))} ({escape(str(exc))})")
        sys.exit(1)
    if code != 200:
        err.print(f"[bold red]error[/] {escape(str(answer.get('error', answer)))}")
        for line in answer.get("output", []):
            err.print(f"  {escape(line)}")
        sys.exit(1)
    return answer


def instance_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="instances")
    for column in ("name", "state", "pid", "restarts", "uptime", "bind", "last reason"):
        table.add_column(column)
    for row in rows:
        uptime = "-" if row["uptime"] is None else f"{row['uptime']:g}s"
        table.add_row(row["name"], row["state"], str(row["pid"] or "-"), str(row["restarts"]),
                      uptime, row["bind"], escape(row.get("last_reason") or "-"))
    return table


@click.group()
def app() -> None:
    """Restart, stop, start or show one app of a running portico."""


def _action(name: str, verb: str, done: str) -> click.Command:
    @click.command(name=name, help=f"{verb} the app NAME of the running portico.")
    @config_option
    @click.argument("app_name", metavar="NAME")
    def command(config_path: str | None, app_name: str) -> None:
        answer = _request(config_path, "POST", f"/api/apps/{app_name}/{name}")
        out.print(f"app {escape(app_name)}: {done}")
        out.print(instance_table(answer["instances"]))

    return command


app.add_command(_action("restart", "Restart (rolling, one instance at a time)", "restarted"))
app.add_command(_action("stop", "Stop", "stopped"))
app.add_command(_action("start", "Start", "started"))


@app.command()
@config_option
@click.argument("app_name", metavar="NAME", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
def status(config_path: str | None, app_name: str | None, as_json: bool) -> None:
    """Show the instances of the app NAME (every app's without NAME)."""
    rows = _request(config_path, "GET", f"/api/apps/{app_name}" if app_name else "/api/apps")
    if as_json:
        out.print(json.dumps(rows, indent=2), markup=False)
        return
    out.print(instance_table(rows))
