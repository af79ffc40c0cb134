"""``portico reload|ui|admin|config``: change a running portico through its admin API.

Every command here that changes something calls the API on the control socket, the
way the UI does, so the two never drift and every change lands in the audit log.
``portico reload --signal`` (or ``kill -HUP PID``) still reloads without the API, for
scripts. ``portico admin passwd`` and ``portico admin token`` write the credentials
files themselves when no portico runs (they are needed before one can be reached).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from portico.cli.console import config_file, config_option, err, out
from portico.config.load import config_in_use


def _instance(config_path: str | None) -> tuple[Any, Path]:
    from portico.admin.runtime import control_socket, runtime_dir
    from portico.cli.status import find_instance

    here = config_file(config_in_use(None)) if config_path is None else None
    instance = find_instance(config_file(config_path), here)
    return instance, control_socket(runtime_dir(), instance.key)


def api(config_path: str | None, method: str, path: str, body: Any = None,
        headers: dict[str, str] | None = None) -> Any:
    """Call the running portico; exit 1 with its reason if it refuses."""
    from portico.admin.client import call

    instance, control = _instance(config_path)
    try:
        answer = asyncio.run(call(control, method, path, body, headers))
    except (OSError, TimeoutError) as exc:
        err.print(f"[bold red]error[/] portico {escape(instance.describe())} does not answer "
                  f"at {escape(str(control))} ({escape(str(exc))})")
        sys.exit(1)
    if not answer.ok:
        err.print(f"[bold red]error[/] {method} {path}: {answer.status}", markup=True)
        err.print(answer.error(), markup=False)
        sys.exit(1)
    return answer.body


@click.command()
@config_option
@click.option("--signal", "by_signal", is_flag=True,
              help="Send SIGHUP instead of calling the API (what `kill -HUP PID` does).")
def reload(config_path: str | None, by_signal: bool) -> None:
    """Read the running portico's config file again; say why if it is refused."""
    if by_signal:
        instance, _ = _instance(config_path)
        os.kill(instance.pid, signal.SIGHUP)
        out.print(f"sent SIGHUP to portico pid {instance.pid}", markup=False)
        return
    api(config_path, "POST", "/api/reload")
    out.print("reloaded", markup=False)


@click.command()
@config_option
@click.option("--no-browser", is_flag=True, help="Print the sign-in URL only.")
def ui(config_path: str | None, no_browser: bool) -> None:
    """Open the admin UI: a one-time sign-in link on a loopback port, no password."""
    import webbrowser

    answer = api(config_path, "POST", "/api/ui-session")
    url = answer["url"]
    opened = False
    if not no_browser:
        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            opened = False
    out.print(("opened " if opened else "open this link (once, within "
               f"{int(answer['expires_in'])}s): ") + url, markup=False)


@click.group()
def admin() -> None:
    """The admin API's credentials: the password and API tokens."""


def _state(config_path: str | None) -> Path:
    """The admin state directory of the config (when no portico runs)."""
    from portico.admin.facade import admin_state_dir
    from portico.admin.runtime import instance_key, state_dir

    return admin_state_dir(state_dir(), instance_key(config_file(config_in_use(config_path))))


def _running(config_path: str | None) -> bool:
    from portico.admin.runtime import instance_key, running, runtime_dir

    key = instance_key(config_file(config_in_use(config_path)))
    try:
        return any(i.key == key for i in running(runtime_dir()))
    except OSError:
        return False


@admin.command()
@config_option
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def passwd(config_path: str | None, password_stdin: bool) -> None:
    """Set the admin password (argon2 hash; there is no default)."""
    from portico.admin import auth

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("new admin password", hide_input=True,
                                confirmation_prompt=True)
    if _running(config_path):
        api(config_path, "POST", "/api/password", {"password": password})
    else:
        try:
            auth.set_password(_state(config_path), password)
        except ValueError as exc:
            err.print(f"[bold red]error[/] {escape(str(exc))}")
            sys.exit(1)
    out.print("admin password set", markup=False)


@admin.group()
def token() -> None:
    """API tokens: scoped (read, operate, admin), hashed at rest, expiring."""


@token.command("create")
@config_option
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "operate", "admin"]), default="read",
              show_default=True)
@click.option("--expires", default="90d", show_default=True,
              help="Lifetime: 3600, 12h, 30d; `never` for none.")
def token_create(config_path: str | None, name: str, scope: str, expires: str) -> None:
    """Make a token; its secret is printed once."""
    from portico.admin import auth

    expires_in = _lifetime(expires)
    if _running(config_path):
        answer = api(config_path, "POST", "/api/tokens",
                     {"name": name, "scope": scope, "expires_in": expires_in})
        secret = answer["secret"]
    else:
        try:
            _, secret = auth.create_token(_state(config_path), name, scope, expires_in)
        except ValueError as exc:
            err.print(f"[bold red]error[/] {escape(str(exc))}")
            sys.exit(1)
    err.print(f"token {name!r} ({scope}); send it as Authorization: Bearer ... "
              "(shown once):", markup=False)
    out.print(secret, markup=False)


@token.command("list")
@config_option
def token_list(config_path: str | None) -> None:
    """The tokens (never their secrets)."""
    from portico.admin import auth

    if _running(config_path):
        rows = api(config_path, "GET", "/api/tokens")
    else:
        rows = [t.public() for t in auth.load_tokens(_state(config_path))]
    out.print(json.dumps(rows, indent=2), markup=False)


@token.command("revoke")
@config_option
@click.argument("token_id")
def token_revoke(config_path: str | None, token_id: str) -> None:
    """Revoke a token by its id."""
    from portico.admin import auth

    if _running(config_path):
        api(config_path, "DELETE", f"/api/tokens/{token_id}")
    elif not auth.revoke_token(_state(config_path), token_id):
        err.print(f"[bold red]error[/] no token {escape(token_id)}")
        sys.exit(1)
    out.print(f"revoked {token_id}", markup=False)


def _lifetime(text: str) -> float | None:
    if text == "never":
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1:] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: a number of seconds, or 30m, 12h, 90d, never",
                                 param_hint="--expires") from None


@click.group("config")
def config_group() -> None:
    """Edit a running portico's config through the admin API (validated, diffed,
    applied with If-Match, watched, kept in the history)."""


def _etag(config_path: str | None) -> str:
    etag: str = api(config_path, "GET", "/api/config")["etag"]
    return etag


def _report(answer: dict[str, Any]) -> None:
    if answer.get("diff"):
        out.print(answer["diff"], markup=False, end="")
    if answer.get("applied"):
        out.print(f"applied as version {answer['version']}"
                  + (f"; watching {', '.join(answer['changed_routes'])} for "
                     f"{answer['watch']:g}s" if answer.get("watch") else ""), markup=False)
    elif "reason" in answer:
        out.print(answer["reason"], markup=False)


@config_group.command("set")
@config_option
@click.argument("key")
@click.argument("value")
@click.option("--dry-run", is_flag=True, help="Show the diff, apply nothing.")
def config_set(config_path: str | None, key: str, value: str, dry_run: bool) -> None:
    """Set KEY (route[0].upstream) to VALUE (a TOML value; a bare word is a string)."""
    import tomllib

    try:
        parsed: Any = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    body = {"changes": [{"key": key, "value": parsed}], "apply": not dry_run}
    answer = api(config_path, "POST", "/api/config/edit", body,
                 {} if dry_run else {"If-Match": _etag(config_path)})
    if dry_run:
        out.print(answer["diff"] or "no change", markup=False, end="")
        for problem in answer["errors"]:
            err.print(f"{problem['key']}: {problem['message']}", markup=False)
        return
    _report(answer)


@config_group.command("apply")
@config_option
@click.argument("new_file", type=click.Path(exists=True, dir_okay=False))
def config_apply(config_path: str | None, new_file: str) -> None:
    """Validate NEW_FILE, show the diff and put it in place of the running config."""
    text = Path(new_file).read_text(encoding="utf-8")
    answer = api(config_path, "PUT", "/api/config", {"text": text},
                 {"If-Match": _etag(config_path)})
    _report(answer)


@config_group.command("history")
@config_option
def config_history(config_path: str | None) -> None:
    """The last applied configs: version, when, who, what."""
    import time

    answer = api(config_path, "GET", "/api/config/history")
    for version in answer["versions"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(version["when"]))
        out.print(f"{version['version']:>4}  {when}  {version['who']}: {version['action']}",
                  markup=False)
    if answer.get("watch"):
        out.print(f"watch of version {answer['watch']['version']}: "
                  f"{answer['watch']['result']}", markup=False)


@config_group.command("rollback")
@config_option
@click.argument("version", type=int)
def config_rollback(config_path: str | None, version: int) -> None:
    """Apply an earlier config version again."""
    _report(api(config_path, "POST", f"/api/config/rollback/{version}"))


@click.group("backend")
def backend_group() -> None:
    """Take a backend out of rotation on every route, or put it back."""


def _backend(config_path: str | None, verb: str, address: str) -> None:
    from urllib.parse import quote

    bare = address.split("://", 1)[-1].rstrip("/")  # the API's path takes host:port
    answer = api(config_path, "POST", f"/api/backends/{quote(bare, safe=':[]')}/{verb}")
    done = "drained" if verb == "drain" else "enabled"
    for each in answer["addresses"]:
        out.print(f"{done} {each}", markup=False)
    if verb == "drain" and answer["in_flight"]:
        out.print(f"{answer['in_flight']} request(s) in flight there finish", markup=False)


@backend_group.command("drain")
@config_option
@click.argument("address")
def backend_drain(config_path: str | None, address: str) -> None:
    """Send ADDRESS (host:port, as `portico status` lists it) no new requests; those in
    flight finish. It stays drained across reloads until `portico backend enable`."""
    _backend(config_path, "drain", address)


@backend_group.command("enable")
@config_option
@click.argument("address")
def backend_enable(config_path: str | None, address: str) -> None:
    """Send a drained ADDRESS requests again."""
    _backend(config_path, "enable", address)
