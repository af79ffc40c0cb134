"""The command line: ``portico init|run|check|explain|status|service``. One TOML file, one command.

Without ``-c``, every command reads ``./portico.toml``; where there is none, ``run``,
``check`` and ``explain`` use the built-in demo and say so in one line.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from portico import __version__
from portico.admin.runtime import state_dir
from portico.config.compile import upstream_of
from portico.config.load import DEFAULT_FILE, config_in_use, load
from portico.config.plan import DEFAULT_NAME
from portico.config.schema import Config
from portico.errors import ConfigError
from portico.service.systemd import ServiceSpec

if TYPE_CHECKING:
    from portico.admin.runtime import Instance

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


def _load(path: str | None) -> tuple[Config, Path]:
    try:
        return load(path)
    except ConfigError as exc:
        err.print(f"[bold red]config error[/] {escape(str(exc))}")
        sys.exit(2)


def _chosen(path: str | None) -> str | None:
    """The config file to read (``config_in_use``), saying so when ``-c`` was left out."""
    chosen = config_in_use(path)
    if path is None and chosen is None:
        err.print(f"[bold cyan]portico[/] no ./{DEFAULT_FILE} here: using the built-in demo "
                  "(`portico init` writes one for your app; -c FILE reads another)")
    elif path is None:
        err.print(f"[bold cyan]portico[/] using ./{DEFAULT_FILE}")
    return chosen


def _print_problems(problems: list[ConfigError]) -> None:
    """One ``file: key: what to change`` line each (no markup: extras look like it)."""
    for problem in problems:
        err.print(str(problem), markup=False)


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


@main.command()
@config_option
@click.option("--config-only", is_flag=True,
              help="Validate the file alone: skip the checks against this machine "
                   "(certificate files, cwd, free ports, imports).")
def check(config_path: str | None, config_only: bool) -> None:
    """Validate a config and what `portico run` needs here; show what it would serve.

    Exit status 2: the file is not valid. 1: it is, but `portico run` would stop here
    (a line per problem: file: key: what to change). 0: fit to run.
    """
    config_path = _chosen(config_path)
    config, base_dir = _load(config_path)
    if not config_only:
        from portico.config.preflight import preflight

        problems = preflight(config, base_dir, config_path or DEFAULT_NAME)
        if problems:
            _print_problems(problems)
            count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
            err.print(f"[bold red]portico check[/]: {count} above; `portico run` would not "
                      "serve this config as it stands")
            sys.exit(1)
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

    config, _ = _load(_chosen(config_path))
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
    from portico.config.preflight import server_problems
    from portico.server.main import hand_over

    config_path = _chosen(config_path)
    config, base_dir = _load(config_path)
    _refuse_a_second_instance(_config_file(config_path))
    problems = server_problems(config, base_dir, config_path or DEFAULT_NAME)
    if problems:  # before anything is spawned
        _print_problems(problems)
        sys.exit(1)

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
    """Show a running portico's apps and routes (over its local control socket).

    Finds it in the runtime directory by its config file (-c, from any directory)
    or, when only one portico runs, without arguments."""
    import json

    from portico.admin.control import fetch_status
    from portico.admin.runtime import control_socket, runtime_dir

    here = _config_file(config_in_use(None)) if config_path is None else None
    instance = _find_instance(_config_file(config_path), here)
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
    if info.get("certificates"):
        out.print(_cert_table(info["certificates"]))


def _find_instance(config_file: Path | None, here: Path | None = None) -> Instance:
    """The running portico of ``config_file``; without one, that of ``here`` (./portico.toml)
    if it runs, else the only one running; else say where we looked."""
    from portico.admin.runtime import instance_key, record_path, runtime_dir

    directory = runtime_dir()
    instances = _running(directory)
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


def _running(directory: Path) -> list[Instance]:
    """The live instances in the runtime directory; exit 1 if it is not safely the user's."""
    from portico.admin.runtime import RuntimeDirError, running

    try:
        return running(directory)
    except RuntimeDirError as exc:
        err.print(f"[bold red]error[/] {escape(str(exc))}")
        sys.exit(1)


def _refuse_a_second_instance(config_file: Path | None) -> None:
    """Two porticos of one config would share its control socket and, with workers,
    split its listen port between them (SO_REUSEPORT) without a word."""
    from portico.admin.runtime import instance_key, runtime_dir

    key = instance_key(config_file)
    same = next((i for i in _running(runtime_dir()) if i.key == key), None)
    if same is not None:
        err.print(f"[bold red]error[/] this config is already served by portico "
                  f"{escape(same.describe())}; stop it first, or reload it with "
                  f"`kill -HUP {same.pid}`")
        sys.exit(1)


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

    config, base_dir = _load(config_in_use(config_path))
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
