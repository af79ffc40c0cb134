"""``portico doctor [ROUTE]``: what each hosted app sees of a request, and how to fix it."""

from __future__ import annotations

import json
import sys

import click
from rich.markup import escape
from rich.table import Table

from portico.cli.console import config_file, config_option, err, load_config, out
from portico.config.load import config_in_use


@click.command()
@config_option
@click.argument("route", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
def doctor(config_path: str | None, route: str | None, as_json: bool) -> None:
    """Send a marked request through the running portico to each app (or ROUTE: a route
    path or an app name) and show what the app computes (client, scheme, host, port,
    prefix, its own root URL) beside what it should, with the setting to change."""
    from portico.admin.runtime import runtime_dir
    from portico.cli.status import find_instance
    from portico.doctor.probe import pick, probe, targets_of
    from portico.doctor.token import read_token

    here = config_file(config_in_use(None)) if config_path is None else None
    instance = find_instance(config_file(config_path), here)
    config, _ = load_config(instance.config)
    chosen = pick(targets_of(config), route)
    if not chosen:
        err.print(f"[bold red]error[/] no route or app {escape(route or '')} in "
                  f"{escape(instance.config or 'the built-in config')}")
        sys.exit(2)
    token = read_token(runtime_dir(), instance.key)
    if token is None or not instance.listen:
        err.print("[bold red]error[/] this portico left no doctor token or listener; "
                  "restart it with this version")
        sys.exit(1)
    reports = [probe(instance.listen[0], target, token) for target in chosen]
    if as_json:
        out.print(json.dumps([r.as_json() for r in reports], indent=2), markup=False)
    else:
        for report in reports:
            _show(report)
    sys.exit(0 if all(r.ok for r in reports) else 1)


def _show(report: object) -> None:
    from portico.doctor.probe import Report

    assert isinstance(report, Report)
    verdict = "[green]ok[/]" if report.ok else "[bold red]mismatch[/]"
    out.print(f"route {escape(report.route)}: GET {escape(report.url)} -> {verdict}")
    if report.problem:
        out.print(f"  {escape(report.problem)}")
        return
    if report.app_error:
        out.print(f"  the app raised {escape(report.app_error)}")
    table = Table(show_edge=False)
    for column in ("", "the app sees", "it should be"):
        table.add_column(column)
    for finding in report.findings:
        mark = "[green]✓[/]" if finding.ok else "[red]✗[/]"
        table.add_row(f"{mark} {finding.name}", escape(str(finding.seen)),
                      escape(str(finding.expected)))
    out.print(table)
    for finding in report.findings:
        for line in finding.fix:
            out.print(f"  {finding.name}: {escape(line)}")
