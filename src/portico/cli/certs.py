"""``portico cert create|show``: a local CA for development, expiry at a glance."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from portico.admin.runtime import state_dir
from portico.cli.console import config_option, err, load_config, out
from portico.config.load import config_in_use


def cert_table(certificates: list[dict[str, Any]]) -> Table:
    table = Table(title="certificates")
    for column in ("hosts", "names in the certificate", "expires", "days left", "file"):
        table.add_column(column)
    for cert in certificates:
        days = f"{cert['days_left']:g}"
        table.add_row(", ".join(cert["hosts"]), ", ".join(cert["names"]), cert["expires"][:16],
                      f"[bold red]{days} (renew!)[/]" if cert["expiring"] else days,
                      escape(cert["cert"]))
    return table


@click.group()
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
    from portico.config.compile import certificate_sources
    from portico.tls.store import CertError, CertSource, load, status_row

    config, base_dir = load_config(config_in_use(config_path))
    rows: list[dict[str, Any]] = []
    seen: set[Path] = set()
    # The plan's paths, self-signed ones included, without issuing them.
    sources = certificate_sources(config, base_dir, state_dir())
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
        out.print(cert_table(rows))
    elif not failed:
        out.print("no certificates: add [[tls.certificate]] or run `portico cert create`")
    if failed:
        sys.exit(1)
