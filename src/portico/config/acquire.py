"""The side effects of making a plan, each a named step around the pure compile.

compile.py reads the config and nothing else (the CA file of an https upstream
excepted, whose absence it reports); what touches the machine happens here:
``free_ports`` binds sockets to pick the apps' ports before compile, and
``issue_self_signed`` writes the ``self_signed`` certificates after it, at the
paths compile already put in the plan; ``checked_certificates`` reads them all.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

from portico.config.instances import instance_binds
from portico.config.provision import cert_config_error
from portico.config.schema import Config
from portico.tls.store import CertError, CertFacts, CertSource, check

Log = Callable[[str], None]


def free_ports(config: Config, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """A bind for every app that sets none: ``known``'s (a reload keeps the running
    apps' ports) or a free loopback port, found by binding port 0."""
    binds = dict(known or {})
    for app in config.app:
        if app.bind is not None:
            continue
        kept = binds.get(app.name)
        if kept is None or not _holds(kept, app.instances):  # instances changed: new ports
            binds[app.name] = _free_ports(app.instances)
    return {app.name: binds[app.name] for app in config.app if app.bind is None}


def _holds(bind: str, instances: int) -> bool:
    try:
        instance_binds(bind, instances)
    except ValueError:
        return False
    return True


def _free_ports(count: int) -> str:
    """A bind of ``count`` consecutive free loopback ports: one port, or a range."""
    for _ in range(50):
        with contextlib.ExitStack() as held:
            first = held.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            try:
                for extra in range(1, count):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", port + extra))
            except OSError:
                continue
        return f"127.0.0.1:{port}" if count == 1 else f"127.0.0.1:{port}-{port + count - 1}"
    raise OSError(f"found no {count} consecutive free loopback ports")


def issue_self_signed(config: Config, certificates: list[CertSource], state_dir: Path,
                      log: Log) -> None:
    """Issue (once) each ``self_signed`` certificate, at the paths compile planned."""
    for spec, source in zip(config.tls.certificate, certificates, strict=True):
        if not spec.self_signed:
            continue
        from portico.tls.authority import issue  # cryptography: only loaded when needed

        issued = issue(state_dir / "tls", spec.hosts)
        assert (issued.cert, issued.key) == (source.cert, source.key), "planned paths"
        if issued.created:
            log(f"tls: {source.where}: made a certificate for {', '.join(spec.hosts)} from "
                f"the local CA {issued.ca} (trust it: see `portico cert create --help`)")


def checked_certificates(sources: list[CertSource]) -> list[CertFacts]:
    """``check`` each; an unfit one is a ConfigError naming its key."""
    facts = []
    for source in sources:
        try:
            facts.append(check(source))
        except CertError as exc:
            raise cert_config_error(source, exc) from None
    return facts
