"""The command line: ``portico init|run|check|explain|status|reload|app|ui|admin|config|
try|import|passwd|doctor|service``.
One TOML file, one command.

Without ``-c``, every command reads ``./portico.toml``; where there is none, ``run``,
``check`` and ``explain`` use the built-in demo and say so in one line.
"""

from __future__ import annotations

import click

from portico import __version__
from portico.cli.admin import admin, backend_group, config_group, reload, ui
from portico.cli.apps import app
from portico.cli.certs import cert
from portico.cli.doctor import doctor
from portico.cli.importing import import_
from portico.cli.passwd import passwd
from portico.cli.project import check, explain, init, run
from portico.cli.services import service
from portico.cli.status import status
from portico.cli.try_url import try_url


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    import portico

    click.echo(f"portico {__version__} ({'compiled' if portico.compiled() else 'pure'})")
    ctx.exit()


@click.group()
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Show the version, compiled or pure Python, and exit.")
def main() -> None:
    """Portico: a reverse proxy and app host for Python web apps."""


for command in (init, check, explain, run, status, reload, app, ui, admin, config_group, cert,
                service, doctor, try_url, import_, passwd, backend_group):
    main.add_command(command)
