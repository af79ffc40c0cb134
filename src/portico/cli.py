"""``portico run`` and ``portico check``: one TOML file, one command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from portico import __version__
from portico.config.compile import upstream_of
from portico.config.load import DEFAULT_NAME, load
from portico.config.schema import Config
from portico.errors import ConfigError

err = Console(stderr=True, highlight=False, soft_wrap=True)

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file (default: the built-in demo).",
)


def _load(path: str | None) -> tuple[Config, Path]:
    try:
        return load(path)
    except ConfigError as exc:
        err.print(f"[bold red]config error[/] {exc}")
        sys.exit(2)


def state_dir() -> Path:
    explicit = os.environ.get("PORTICO_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "portico"


@click.group()
@click.version_option(__version__, prog_name="portico")
def main() -> None:
    """Portico: a reverse proxy and app host for Python web apps."""


@main.command()
@config_option
def check(config_path: str | None) -> None:
    """Validate a config and show what it would serve."""
    config, _ = _load(config_path)
    table = Table(title=f"portico: {config_path or DEFAULT_NAME} is valid")
    table.add_column("route")
    table.add_column("upstream")
    table.add_column("path sent upstream")
    for route in config.route:
        upstream = upstream_of(route, config)
        target = f"http://{upstream.authority.decode()}{upstream.base_path.decode()}"
        mode = "full path (preserve_path)" if route.preserve_path else "prefix stripped"
        table.add_row((route.host or "") + route.path, target + (f"  (app {route.app})"
                      if route.app else ""), mode)
    Console().print(table)


@main.command()
@config_option
def run(config_path: str | None) -> None:
    """Start the apps and serve until SIGTERM/SIGINT."""
    from portico.server.run import run as serve
    from portico.supervisor.process import AppStartError

    config, base_dir = _load(config_path)

    def announce(message: str) -> None:
        err.print(f"[bold cyan]portico[/] {message}")

    try:
        code = serve(config, base_dir, state_dir(), announce)
    except AppStartError as exc:
        err.print(f"[bold red]error[/] {exc}")
        if exc.stderr_tail:
            err.print(f"last {len(exc.stderr_tail)} lines of its output:")
            for line in exc.stderr_tail:
                err.print("  " + line.rstrip(), markup=False)
        sys.exit(1)
    except OSError as exc:
        err.print(f"[bold red]error[/] cannot listen: {exc.strerror or exc}")
        sys.exit(1)
    sys.exit(code)
