"""``portico import iis|apache FILE``: a web.config or httpd.conf as a portico config.

The TOML goes to stdout, or to ``-o FILE``. What cannot be translated is an error
(file: line: directive: why), one line each, and nothing is written; with
``--allow-partial`` those lines become comments in the output instead.
``--check samples.txt`` replays expected outcomes through the result, and
``--against URL`` asks the old server the same requests.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from portico.cli.console import err, out
from portico.errors import ConfigError
from portico.importers.model import Imported, UnreadableConfig
from portico.importers.samples import Evaluate, Outcome


def _options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed([
        click.argument("source", type=click.Path(exists=True, dir_okay=False)),
        click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
                     help="Write the config to this file instead of printing it."),
        click.option("--allow-partial", is_flag=True,
                     help="Write what cannot be translated as comments instead of failing."),
        click.option("--check", "samples", type=click.Path(exists=True, dir_okay=False),
                     default=None, help="Replay 'GET /path -> EXPECTED' lines through the "
                     "imported config and print a pass/fail table."),
        click.option("--against", default=None, metavar="URL",
                     help="With --check: also ask the old server at URL and compare status "
                     "and Location."),
    ]):
        command = option(command)
    return command


@click.group("import")
def import_() -> None:
    """Translate an IIS web.config or Apache httpd.conf into a portico config."""


@import_.command("iis")
@_options
def iis(source: str, output: str | None, allow_partial: bool, samples: str | None,
        against: str | None) -> None:
    """A web.config, applicationHost.config (<globalRules>) or <rewrite> fragment."""
    from portico.importers.iis import read_iis

    _import(lambda: read_iis(Path(source)), output, allow_partial, samples, against)


@import_.command("apache")
@_options
def apache(source: str, output: str | None, allow_partial: bool, samples: str | None,
           against: str | None) -> None:
    """An httpd.conf or site file (Include files are read too)."""
    from portico.importers.apache import read_apache

    _import(lambda: read_apache(Path(source)), output, allow_partial, samples, against)


def _import(read: Callable[[], Imported], output: str | None, allow_partial: bool,
            samples: str | None, against: str | None) -> None:
    from portico.config.load import parse
    from portico.importers.emit import Untranslated, emit

    if against and not samples:
        err.print("[bold red]error[/] --against needs --check samples.txt")
        sys.exit(2)
    try:
        imported = read()
        text = emit(imported, allow_partial)
    except UnreadableConfig as exc:
        err.print(f"[bold red]error[/] {escape(str(exc))}")
        sys.exit(2)
    except Untranslated as exc:
        for problem in exc.problems:
            err.print(f"[bold red]not translated[/] {escape(str(problem))}")
        err.print(f"{len(exc.problems)} thing(s) not translated; nothing written "
                  "(--allow-partial writes them as comments)")
        sys.exit(1)
    name = output or "the imported config"
    try:
        parse(text, name)
    except ConfigError as exc:  # a translation portico itself refuses: say so, keep the text
        err.print(f"[bold red]error[/] the translation does not load: {escape(str(exc))}")
        err.print(text, markup=False)
        sys.exit(1)
    if output:
        Path(output).write_text(text, "utf-8")
        err.print(f"wrote {output}: {len(imported.routes)} route(s), {len(imported.rules)} "
                  f"rule(s); next: portico check -c {output}", markup=False)
    elif not samples:
        out.print(text, markup=False, end="")
    if imported.problems:
        err.print(f"[yellow]{len(imported.problems)} thing(s) not translated[/]: see the "
                  "NOT TRANSLATED comments")
    if samples:
        if output:
            _check(Path(output), Path(samples), against)
        else:
            with tempfile.TemporaryDirectory(prefix="portico-import-") as tmp:
                config_file = Path(tmp) / "imported.toml"
                config_file.write_text(text, "utf-8")
                _check(config_file, Path(samples), against)


def _evaluator(config_file: Path) -> Evaluate:
    """The same in-process evaluation as ``portico try --json`` (cli/try_url.py)."""
    from portico.cli.try_url import evaluate

    def run(method: str, target: str) -> Outcome:
        result, _, _ = evaluate(str(config_file), method, target, [], "127.0.0.1")
        return result

    return run


def _check(config_file: Path, samples_file: Path, against: str | None) -> None:
    from portico.importers.samples import (
        SampleError,
        compare_live,
        judge,
        outcomes_of,
        parse_samples,
    )

    try:
        samples = parse_samples(samples_file.read_text("utf-8"), str(samples_file))
    except SampleError as exc:
        err.print(f"[bold red]error[/] {escape(str(exc))}")
        sys.exit(2)
    outcomes = outcomes_of(samples, _evaluator(config_file))
    verdicts = [judge(sample, outcome) for sample, outcome in zip(samples, outcomes,
                                                                   strict=True)]
    table = _table(str(samples_file), "expected")
    for verdict in verdicts:
        table.add_row(str(verdict.sample.line), escape(f"{verdict.sample.method} "
                      f"{verdict.sample.target}"), escape(verdict.sample.text),
                      escape(verdict.got), "[green]pass[/]" if verdict.passed
                      else "[bold red]FAIL[/]")
    out.print(table)
    failed = sum(not v.passed for v in verdicts)
    if against:
        live = compare_live(samples, outcomes, against)
        table = _table("against the old server", against)
        for verdict in live:
            table.add_row(str(verdict.sample.line), escape(f"{verdict.sample.method} "
                          f"{verdict.sample.target}"), escape(verdict.sample.forwarded or ""),
                          escape(verdict.got), "[green]same[/]" if verdict.passed
                          else "[bold red]DIFFERS[/]")
        out.print(table)
        failed += sum(not v.passed for v in live)
    out.print(f"{len(verdicts) - sum(not v.passed for v in verdicts)} of {len(verdicts)} "
              f"samples pass" + (f"; {failed} failure(s) in all" if against else ""),
              markup=False)
    sys.exit(1 if failed else 0)


def _table(title: str, expected: str) -> Table:
    table = Table(title=title)
    for name in ("line", "request", expected, "portico", ""):
        table.add_column(name, overflow="fold")
    return table
