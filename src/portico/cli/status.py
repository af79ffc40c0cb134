"""``portico status``: find the running portico in the runtime directory and show it."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from portico.cli.certs import cert_table
from portico.cli.console import config_file, config_option, err, out
from portico.config.load import config_in_use
from portico.config.plan import DEFAULT_NAME

if TYPE_CHECKING:
    from portico.admin.runtime import Instance


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
def status(config_path: str | None, as_json: bool) -> None:
    """Show a running portico's apps and routes (over its local control socket).

    Finds it in the runtime directory by its config file (-c, from any directory)
    or, when only one portico runs, without arguments."""
    import json

    from portico.admin.control import fetch_status
    from portico.admin.runtime import control_socket, runtime_dir

    here = config_file(config_in_use(None)) if config_path is None else None
    instance = find_instance(config_file(config_path), here)
    control = control_socket(runtime_dir(), instance.key)
    try:
        info = asyncio.run(fetch_status(control))
    except (OSError, TimeoutError, ValueError) as exc:
        err.print(f"[bold red]error[/] portico {escape(instance.describe())} does not answer "
                  f"at {escape(str(control))} ({escape(str(exc))})")
        sys.exit(1)
    if as_json:
        out.print(json.dumps(info, indent=2), markup=False)
        return
    out.print(f"portico pid {info['pid']}, listening on {', '.join(info['listen'])}, "
              f"{info['connections']} client connections, {info.get('requests', 0)} open "
              "requests", markup=False)
    out.print(f"config: {info.get('config') or DEFAULT_NAME}", markup=False)
    if info["apps"]:
        out.print(f"app logs: {info.get('logs')}", markup=False)
    apps = Table(title="apps")
    for column in ("name", "server", "state", "pid", "restarts", "uptime", "bind", "last reason"):
        apps.add_column(column)
    for app in info["apps"]:
        uptime = "-" if app["uptime"] is None else f"{app['uptime']:g}s"
        apps.add_row(app["name"], app["server"], app["state"], str(app["pid"] or "-"),
                     str(app["restarts"]), uptime, app["bind"],
                     escape(app.get("last_reason") or "-"))
    routes = Table(title="routes")
    for column in ("route", "upstream", "app", "state", "path"):
        routes.add_column(column)
    for route in info["routes"]:
        routes.add_row(route["route"], route["upstream"], route["app"] or "-",
                       route["state"] or "-", route["path"])
    if info["apps"]:
        out.print(apps)
    out.print(routes)
    if any(len(route.get("backends", ())) > 1 or any(b["check"] for b in route["backends"])
           for route in info["routes"]):
        out.print(backend_table(info["routes"]))
    if info.get("certificates"):
        out.print(cert_table(info["certificates"]))


def backend_table(routes: list[dict[str, Any]]) -> Table:
    """Each backend of the balanced routes: up/down and why, in flight, fails, last check."""
    table = Table(title="backends")
    for column in ("route", "backend", "weight", "state", "in flight", "fails", "last check",
                   "why"):
        table.add_column(column)
    now = time.time()
    for route in routes:
        for backend in route.get("backends", ()):
            checked = backend["last_check"]
            last = "-" if checked is None else f"{max(0.0, now - checked):.0f}s ago"
            table.add_row(route["route"], backend["address"], str(backend["weight"]),
                          backend["state"], str(backend["in_flight"]), str(backend["fails"]),
                          last, escape(backend["why"] or "-"))
    return table


def find_instance(config_file: Path | None, here: Path | None = None) -> Instance:
    """The running portico of ``config_file``; without one, that of ``here`` (./portico.toml)
    if it runs, else the only one running; else say where we looked."""
    from portico.admin.runtime import instance_key, record_path, runtime_dir

    directory = runtime_dir()
    instances = running_instances(directory)
    if config_file is None and here is not None:
        key = instance_key(here)
        found = next((i for i in instances if i.key == key), None)
        if found is not None:
            return found
        if len(instances) == 1:
            err.print(f"./{here.name} is not running here; the one portico running is "
                      f"{escape(instances[0].describe())}")
            return instances[0]
    if config_file is not None:
        key = instance_key(config_file)
        found = next((i for i in instances if i.key == key), None)
        if found is not None:
            return found
        err.print(f"[bold red]error[/] no running portico for {escape(str(config_file))}: "
                  f"looked for {escape(str(record_path(directory, key)))} in the runtime "
                  "directory")
        if instances:
            err.print("running there instead:")
    elif len(instances) == 1:
        return instances[0]
    elif not instances:
        err.print(f"[bold red]error[/] no running portico: the runtime directory "
                  f"{escape(str(directory))} holds no live instance")
    else:
        err.print(f"[bold red]error[/] {len(instances)} porticos are running; pick one "
                  "with -c CONFIG:")
    for other in instances:
        err.print(f"  {other.describe()}", markup=False)
    if not instances:
        err.print(f"start one with `portico run -c {escape(str(config_file or 'CONFIG'))}`; "
                  "PORTICO_RUNTIME_DIR or PORTICO_STATE_DIR, if set, must be the same for both")
    sys.exit(1)


def running_instances(directory: Path) -> list[Instance]:
    """The live instances in the runtime directory; exit 1 if it is not safely the user's."""
    from portico.admin.runtime import RuntimeDirError, running

    try:
        return running(directory)
    except RuntimeDirError as exc:
        err.print(f"[bold red]error[/] {escape(str(exc))}")
        sys.exit(1)


def refuse_a_second_instance(config_file: Path | None) -> None:
    """Two porticos of one config would share its control socket and, with workers,
    split its listen port between them (SO_REUSEPORT) without a word."""
    from portico.admin.runtime import instance_key, runtime_dir

    key = instance_key(config_file)
    same = next((i for i in running_instances(runtime_dir()) if i.key == key), None)
    if same is not None:
        err.print(f"[bold red]error[/] this config is already served by portico "
                  f"{escape(same.describe())}; stop it first, or reload it with "
                  f"`kill -HUP {same.pid}`")
        sys.exit(1)
