"""What every command shares: the consoles, the -c option, reading the config file."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from portico.config.load import DEFAULT_FILE, config_in_use, load
from portico.config.schema import Config
from portico.errors import ConfigError

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"TOML config file (default: ./{DEFAULT_FILE}, else the built-in demo).",
)


def load_config(path: str | None) -> tuple[Config, Path]:
    try:
        return load(path)
    except ConfigError as exc:
        err.print(f"[bold red]config error[/] {escape(str(exc))}")
        sys.exit(2)


def chosen(path: str | None) -> str | None:
    """The config file to read (``config_in_use``), saying so when ``-c`` was left out."""
    chosen = config_in_use(path)
    if path is None and chosen is None:
        err.print(f"[bold cyan]portico[/] no ./{DEFAULT_FILE} here: using the built-in demo "
                  "(`portico init` writes one for your app; -c FILE reads another)")
    elif path is None:
        err.print(f"[bold cyan]portico[/] using ./{DEFAULT_FILE}")
    return chosen


def print_problems(problems: list[ConfigError]) -> None:
    """One ``file: key: what to change`` line each (no markup: extras look like it)."""
    for problem in problems:
        err.print(str(problem), markup=False)


def config_file(path: str | None) -> Path | None:
    return Path(path).resolve() if path else None
