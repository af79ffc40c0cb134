"""``portico init|check|explain|run``: a config for the app here, checked, explained, served."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from portico.admin.runtime import state_dir
from portico.cli.console import (
    chosen,
    config_file,
    config_option,
    err,
    load_config,
    out,
    print_problems,
)
from portico.cli.status import refuse_a_second_instance
from portico.config.compile import upstream_of
from portico.config.load import DEFAULT_FILE
from portico.config.plan import DEFAULT_NAME
from portico.errors import ConfigError


@click.command()
@click.option("--app", "target", default=None, metavar="MODULE:ATTR",
              help="The app (default: found in app.py, wsgi.py, main.py, asgi.py or server.py).")
@click.option("--prefix", default="/", show_default=True,
              help="The public path the app is served under, e.g. /myapp.")
@click.option("--server", type=click.Choice(["gunicorn", "waitress", "uvicorn"]), default=None,
              help="What serves the app (default: gunicorn for WSGI on POSIX, waitress on "
                   "Windows; uvicorn for ASGI).")
@click.option("--listen", default="http://127.0.0.1:8080", show_default=True,
              help="Where portico listens.")
@click.option("--force", is_flag=True, help=f"Replace an existing ./{DEFAULT_FILE}.")
def init(target: str | None, prefix: str, server: str | None, listen: str, force: bool) -> None:
    """Write a commented ./portico.toml for the app in this directory."""
    from portico.config.load import parse
    from portico.config.starter import StarterError, app_here, app_name, starter_text

    here = Path.cwd()
    file = here / DEFAULT_FILE
    if file.exists() and not force:
        err.print(f"[bold red]error[/] {escape(str(file))} exists; not overwritten (edit it, "
                  "or add --force to replace it)")
        sys.exit(1)
    try:
        found = app_here(here, target, server)
        prefix = prefix if prefix == "/" else prefix.rstrip("/")
        text = starter_text(found, app_name(here), prefix, server, listen)
        parse(text, DEFAULT_FILE)  # a bad --prefix or --listen is named before anything is written
    except StarterError as exc:
        err.print(f"[bold red]error[/] {escape(str(exc))}")
        sys.exit(1)
    except ConfigError as exc:
        option = "--listen" if exc.key.startswith("server") else "--prefix"
        err.print(f"[bold red]error[/] {option}: {escape(exc.message)}")
        sys.exit(1)
    file.write_text(text, "utf-8")
    out.print(f"wrote {file}: {found.kind} {found.target} under {prefix}", markup=False)
    out.print("next: `portico check` (is it fit to run here?), then `portico run`", markup=False)


@click.command()
@config_option
@click.option("--config-only", is_flag=True,
              help="Validate the file alone: skip the checks against this machine "
                   "(certificate files, cwd, free ports, imports).")
def check(config_path: str | None, config_only: bool) -> None:
    """Validate a config and what `portico run` needs here; show what it would serve.

    Exit status 2: the file is not valid. 1: it is, but `portico run` would stop here
    (a line per problem: file: key: what to change). 0: fit to run.
    """
    config_path = chosen(config_path)
    config, base_dir = load_config(config_path)
    if not config_only:
        from portico.config.preflight import preflight

        problems = preflight(config, base_dir, config_path or DEFAULT_NAME)
        if problems:
            print_problems(problems)
            count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
            err.print(f"[bold red]portico check[/]: {count} above; `portico run` would not "
                      "serve this config as it stands")
            sys.exit(1)
    table = Table(title=f"portico: {config_path or DEFAULT_NAME} is valid")
    table.add_column("route")
    table.add_column("upstream")
    table.add_column("path sent upstream")
    for route in config.route:
        backend, base = upstream_of(route, config)
        target = f"app {route.app}" if route.app else f"http://{backend.authority.decode()}{base}"
        if route.redirect is not None:  # config/local_routes.py
            target = f"redirect {route.redirect_status} {route.redirect}"
        mode = "full path (preserve_path)" if route.preserve_path else "prefix stripped"
        table.add_row((route.host or "") + route.path, target, mode)
    out.print(table)


@click.command()
@config_option
def explain(config_path: str | None) -> None:
    """Print, per route and app, the app-side settings that agree with portico."""
    from portico.advice import explain as advise

    config, _ = load_config(chosen(config_path))
    for advice in advise(config):
        out.print(f"[bold]{escape(advice.title)}[/]")
        for line in advice.lines:
            out.print("  " + line, markup=False)
        out.print()


@click.command()
@config_option
def run(config_path: str | None) -> None:
    """Start the apps and serve until SIGTERM/SIGINT."""
    from portico.config.compile import run_plan
    from portico.config.preflight import server_problems
    from portico.server.main import hand_over

    config_path = chosen(config_path)
    config, base_dir = load_config(config_path)
    refuse_a_second_instance(config_file(config_path))
    problems = server_problems(config, base_dir, config_path or DEFAULT_NAME)
    if problems:  # before anything is spawned
        print_problems(problems)
        sys.exit(1)

    def announce(message: str) -> None:
        err.print(f"[bold cyan]portico[/] {escape(message)}")

    try:
        plan = run_plan(config, base_dir, state_dir(), config_file(config_path), announce)
    except ConfigError as exc:
        where = ConfigError(exc.file or (config_path or DEFAULT_NAME), exc.key, exc.message)
        err.print(f"[bold red]config error[/] {escape(str(where))}")
        sys.exit(2)
    hand_over(plan)  # the serving process carries no pydantic (server/main.py)
