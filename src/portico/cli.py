"""The command line: ``portico run|check|explain|status|service``. One TOML file, one command."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from portico import __version__
from portico.config.compile import upstream_of
from portico.config.load import load
from portico.config.plan import DEFAULT_NAME
from portico.config.schema import Config
from portico.errors import ConfigError
from portico.service.systemd import ServiceSpec

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

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
        err.print(f"[bold red]config error[/] {escape(str(exc))}")
        sys.exit(2)


def state_dir() -> Path:
    explicit = os.environ.get("PORTICO_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "portico"


def _config_file(path: str | None) -> Path | None:
    return Path(path).resolve() if path else None


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
        if route.app:
            target = f"app {route.app}"
        else:
            target = f"http://{upstream.authority.decode()}{upstream.base_path.decode()}"
        mode = "full path (preserve_path)" if route.preserve_path else "prefix stripped"
        table.add_row((route.host or "") + route.path, target, mode)
    out.print(table)


@main.command()
@config_option
def explain(config_path: str | None) -> None:
    """Print, per route and app, the app-side settings that agree with portico."""
    from portico.advice import explain as advise

    config, _ = _load(config_path)
    for advice in advise(config):
        out.print(f"[bold]{escape(advice.title)}[/]")
        for line in advice.lines:
            out.print("  " + line, markup=False)
        out.print()


@main.command()
@config_option
def run(config_path: str | None) -> None:
    """Start the apps and serve until SIGTERM/SIGINT."""
    from portico.config.compile import run_plan
    from portico.server.main import hand_over

    config, base_dir = _load(config_path)

    def announce(message: str) -> None:
        err.print(f"[bold cyan]portico[/] {escape(message)}")

    try:
        plan = run_plan(config, base_dir, state_dir(), _config_file(config_path), announce)
    except ConfigError as exc:
        where = ConfigError(exc.file or (config_path or DEFAULT_NAME), exc.key, exc.message)
        err.print(f"[bold red]config error[/] {escape(str(where))}")
        sys.exit(2)
    hand_over(plan)  # the serving process carries no pydantic (server/main.py)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
def status(config_path: str | None, as_json: bool) -> None:
    """Show a running portico's apps and routes (over its local control socket)."""
    import json

    from portico.admin.control import control_path, fetch_status

    path = control_path(state_dir(), _config_file(config_path))
    try:
        info = asyncio.run(fetch_status(path))
    except (OSError, TimeoutError, ValueError) as exc:
        err.print(f"[bold red]error[/] no running portico answers at {path} "
                  f"({escape(str(exc))}); start it with `portico run"
                  f"{' -c ' + config_path if config_path else ''}`")
        sys.exit(1)
    if as_json:
        out.print(json.dumps(info, indent=2), markup=False)
        return
    out.print(f"portico pid {info['pid']}, listening on {', '.join(info['listen'])}, "
              f"{info['connections']} client connections")
    apps = Table(title="apps")
    for column in ("name", "server", "state", "pid", "restarts", "uptime", "bind"):
        apps.add_column(column)
    for app in info["apps"]:
        uptime = "-" if app["uptime"] is None else f"{app['uptime']:g}s"
        apps.add_row(app["name"], app["server"], app["state"], str(app["pid"] or "-"),
                     str(app["restarts"]), uptime, app["bind"])
    routes = Table(title="routes")
    for column in ("route", "upstream", "app", "state", "path"):
        routes.add_column(column)
    for route in info["routes"]:
        routes.add_row(route["route"], route["upstream"], route["app"] or "-",
                       route["state"] or "-", route["path"])
    if info["apps"]:
        out.print(apps)
    out.print(routes)
    if info.get("certificates"):
        out.print(_cert_table(info["certificates"]))


def _cert_table(certificates: list[dict[str, Any]]) -> Table:
    table = Table(title="certificates")
    for column in ("hosts", "names in the certificate", "expires", "days left", "file"):
        table.add_column(column)
    for cert in certificates:
        days = f"{cert['days_left']:g}"
        table.add_row(", ".join(cert["hosts"]), ", ".join(cert["names"]), cert["expires"][:16],
                      f"[bold red]{days} (renew!)[/]" if cert["expiring"] else days,
                      escape(cert["cert"]))
    return table


@main.group()
def cert() -> None:
    """Certificates for https listeners: a local CA for development, expiry at a glance."""


@cert.command("create")
@click.option("--host", "hosts", multiple=True, required=True,
              help="A name (or *.wildcard, or IP) the certificate is for; repeatable.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for the CA and certificate (default: <state dir>/tls).")
@click.option("--force", is_flag=True, help="Make a new leaf even if a valid one exists.")
def cert_create(hosts: tuple[str, ...], out_dir: str | None, force: bool) -> None:
    """Make a local CA (once) and a certificate for the hosts, signed by it."""
    from portico.tls.authority import issue

    directory = Path(out_dir) if out_dir else state_dir() / "tls"
    issued = issue(directory, [h.lower() for h in hosts], force=force)
    verb = "made" if issued.created else "kept (still valid)"
    out.print(f"certificate {verb}: {issued.cert}", markup=False)
    out.print(f"key:                {issued.key}", markup=False)
    out.print(f"local CA:           {issued.ca}", markup=False)
    toml_hosts = ", ".join(f'"{h}"' for h in hosts)
    out.print("\nUse it in portico.toml:\n", markup=False)
    out.print(f"[[tls.certificate]]\nhosts = [{toml_hosts}]\ncert = \"{issued.cert}\"\n"
              f"key = \"{issued.key}\"\n", markup=False)
    out.print("Trust the CA on the machines that connect (only your own!):", markup=False)
    out.print(f"  Debian/Ubuntu: sudo cp {issued.ca} /usr/local/share/ca-certificates/"
              "portico-local-ca.crt && sudo update-ca-certificates", markup=False)
    out.print(f"  macOS:         sudo security add-trusted-cert -d -r trustRoot -k "
              f"/Library/Keychains/System.keychain {issued.ca}", markup=False)
    out.print(f"  Windows:       certutil -addstore -f Root {issued.ca}", markup=False)
    out.print(f"  Python/curl:   SSL_CERT_FILE={issued.ca} / REQUESTS_CA_BUNDLE={issued.ca} / "
              f"curl --cacert {issued.ca}", markup=False)


@cert.command("show")
@config_option
def cert_show(config_path: str | None) -> None:
    """List the config's certificates (and those made under the state dir) with expiry."""
    from portico.tls.authority import leaf_stem
    from portico.tls.store import CertError, CertSource, load, status_row

    config, base_dir = _load(config_path)
    rows: list[dict[str, Any]] = []
    seen: set[Path] = set()
    sources = []
    for index, spec in enumerate(config.tls.certificate):
        if spec.self_signed:
            stem = leaf_stem(spec.hosts)
            cert_file = state_dir() / "tls" / f"{stem}.pem"
            key_file = state_dir() / "tls" / f"{stem}.key"
        else:
            assert spec.cert is not None and spec.key is not None
            cert_file, key_file = base_dir / spec.cert, base_dir / spec.key
        sources.append(CertSource(tuple(spec.hosts), cert_file, key_file,
                                  f"tls.certificate[{index}]"))
    for made in sorted((state_dir() / "tls").glob("*.pem")):
        if made.name != "ca.pem" and made not in {s.cert for s in sources}:
            sources.append(CertSource(("(made by portico cert create)",), made,
                                      made.with_suffix(".key"), str(made)))
    failed = False
    for source in sources:
        if source.cert in seen:
            continue
        seen.add(source.cert)
        try:
            loaded = load(source)
        except CertError as exc:
            err.print(f"[bold red]{escape(source.where)}[/]: {escape(str(exc))}")
            failed = True
            continue
        rows.append(status_row(loaded))
    if rows:
        out.print(_cert_table(rows))
    elif not failed:
        out.print("no certificates: add [[tls.certificate]] or run `portico cert create`")
    if failed:
        sys.exit(1)


@main.group()
def service() -> None:
    """Run portico as a system service (systemd on Linux, nssm on Windows)."""


def _spec(config_path: str, name: str, user: str | None) -> ServiceSpec:
    config, _ = _load(config_path)
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
