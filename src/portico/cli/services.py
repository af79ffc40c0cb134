"""``portico service print|install|uninstall``: systemd on Linux, nssm on Windows."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from portico.cli.console import err, load_config, out
from portico.service.systemd import ServiceSpec


@click.group()
def service() -> None:
    """Run portico as a system service (systemd on Linux, nssm on Windows)."""


def _spec(config_path: str, name: str, user: str | None) -> ServiceSpec:
    config, _ = load_config(config_path)
    stop = config.server.drain_timeout + sum(app.stop_timeout for app in config.app) + 10
    return ServiceSpec(name, Path(config_path).resolve(), user=user, stop_timeout=stop)


service_options = [
    click.option("-c", "--config", "config_path", required=True,
                 type=click.Path(dir_okay=False, exists=True), help="TOML config file."),
    click.option("--name", default="portico", show_default=True, help="Service name."),
    click.option("--user", default=None, help="Run as this user (systemd User=, nssm ObjectName)."),
]


F = TypeVar("F", bound=Callable[..., Any])


def _with_service_options(func: F) -> F:
    for option in reversed(service_options):
        func = option(func)
    return func


@service.command("print")
@_with_service_options
def service_print(config_path: str, name: str, user: str | None) -> None:
    """Print the service definition without installing it."""
    from portico.service.systemd import unit_text
    from portico.service.windows import nssm_commands

    spec = _spec(config_path, name, user)
    if sys.platform == "win32":
        for command in nssm_commands(spec):
            out.print(subprocess.list2cmdline(command), markup=False)
    else:
        out.print(unit_text(spec), markup=False, end="")


@service.command("install")
@_with_service_options
@click.option("--unit-dir", type=click.Path(file_okay=False), default=None,
              help="Where to write the unit (default /etc/systemd/system).")
@click.option("--no-start", is_flag=True, help="Write the unit but do not enable or start it.")
def service_install(
    config_path: str, name: str, user: str | None, unit_dir: str | None, no_start: bool
) -> None:
    """Install (and start) portico as a service."""
    from portico.service.systemd import UNIT_DIR, install_commands, unit_text
    from portico.service.windows import nssm_commands

    spec = _spec(config_path, name, user)
    if sys.platform == "win32":
        _run_or_print(nssm_commands(spec), "nssm", no_start)
        return
    unit = Path(unit_dir or UNIT_DIR) / f"{name}.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(unit_text(spec))
    out.print(f"wrote {unit}")
    _run_or_print(install_commands(name), "systemctl", no_start)


@service.command("uninstall")
@click.option("--name", default="portico", show_default=True, help="Service name.")
@click.option("--unit-dir", type=click.Path(file_okay=False), default=None)
@click.option("--no-stop", is_flag=True, help="Only remove the unit file.")
def service_uninstall(name: str, unit_dir: str | None, no_stop: bool) -> None:
    """Stop and remove the service."""
    from portico.service.systemd import UNIT_DIR, uninstall_commands
    from portico.service.windows import nssm_uninstall_commands

    if sys.platform == "win32":
        _run_or_print(nssm_uninstall_commands(name), "nssm", no_stop)
        return
    if not no_stop:
        _run_or_print(uninstall_commands(name)[:1], "systemctl", False)
    unit = Path(unit_dir or UNIT_DIR) / f"{name}.service"
    if unit.exists():
        unit.unlink()
        out.print(f"removed {unit}")
    else:
        out.print(f"no unit at {unit}")
    if not no_stop:
        _run_or_print(uninstall_commands(name)[1:], "systemctl", False)


def _run_or_print(commands: list[list[str]], tool: str, print_only: bool) -> None:
    """Run the commands when ``tool`` is usable here; otherwise print them to run by hand."""
    usable = shutil.which(tool) is not None and (
        tool != "systemctl" or Path("/run/systemd/system").is_dir()
    )
    if print_only or not usable:
        why = "" if print_only else f" ({tool} is not usable here)"
        out.print(f"to finish, run{why}:")
        for command in commands:
            line = subprocess.list2cmdline(command) if sys.platform == "win32" else \
                shlex.join(command)
            out.print("  " + line, markup=False)
        return
    for command in commands:
        out.print("$ " + shlex.join(command), markup=False)
        result = subprocess.run(command, check=False)
        if result.returncode != 0:
            err.print(f"[bold red]error[/] {command[0]} exited with {result.returncode}")
            sys.exit(1)
