"""The listener's certificates: chosen by SNI, reloaded from disk without a restart.

One ``SSLContext`` per ``[[tls.certificate]]``. The listener's own context
carries the default certificate (the first one) and an SNI callback that
switches each handshake to the context for the name the client asked for:
exact names first, then ``*.suffix`` wildcards (one label), then the default.
Reloading builds a new context from the changed files and swaps it in for
new handshakes; a file that fails to load leaves the old certificate in
place and says why.

Before a certificate is served, ``check`` reads it with ``cryptography``
(expiry, names, serial) to refuse an expired one and warn before one expires.
That happens where the config is checked (``portico run`` before it hands over,
or a short-lived child: config/prepare.py); the store itself loads files with
``ssl`` alone and is given the facts, so no serving process imports
``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portico.tls.contexts import server_context

if TYPE_CHECKING:
    from cryptography import x509

EXPIRY_WARNING = dt.timedelta(days=14)


class CertError(Exception):
    """A certificate or key that cannot be used; ``path`` is the file at fault."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class CertSource:
    hosts: tuple[str, ...]
    cert: Path
    key: Path
    where: str  # the config key, for messages: "tls.certificate[0]"


@dataclass(frozen=True)
class CertFacts:
    """What ``cryptography`` reads off the leaf certificate (see ``check``)."""

    not_after: dt.datetime
    names: list[str]
    serial: int

    def days_left(self) -> float:
        return (self.not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400


@dataclass
class Loaded:
    source: CertSource
    context: ssl.SSLContext
    facts: CertFacts | None  # None in a worker: the main process has them
    stamp: tuple[int, ...] = field(default=())


def _stamp(source: CertSource) -> tuple[int, ...]:
    out: list[int] = []
    for path in (source.cert, source.key):
        try:
            info = path.stat()
        except OSError:
            out += [-1, -1]
        else:
            out += [info.st_mtime_ns, info.st_size]
    return tuple(out)


def load(source: CertSource, inspect: bool = True, http2: bool = True) -> Loaded:
    """Read, check and load one certificate and key; CertError names the file at fault."""
    stamp = _stamp(source)
    try:
        pem = source.cert.read_bytes()
    except OSError as exc:
        raise CertError(source.cert, f"cannot read the certificate: {exc.strerror}") from None
    facts = _inspect(source, pem) if inspect else None
    try:
        source.key.read_bytes()
    except OSError as exc:
        raise CertError(source.key, f"cannot read the key: {exc.strerror}") from None
    context = server_context(http2)
    try:
        context.load_cert_chain(source.cert, source.key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise CertError(source.key, f"this key does not belong to {source.cert}") from None
        raise CertError(source.key, f"cannot load the key: {exc.reason or exc}") from None
    return Loaded(source, context, facts, stamp)


def check(source: CertSource) -> CertFacts:
    """Read and check a certificate file (chain, dates) and its key; CertError if unfit."""
    facts = load(source, inspect=True).facts
    assert facts is not None  # inspected
    return facts


def _inspect(source: CertSource, pem: bytes) -> CertFacts:
    from cryptography import x509  # 10 MiB: loaded where certificates are checked, only

    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise CertError(source.cert, "not a PEM certificate (chain)") from None
    leaf = chain[0]
    now = dt.datetime.now(dt.UTC)
    if leaf.not_valid_after_utc <= now:
        raise CertError(source.cert, f"expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if leaf.not_valid_before_utc > now:
        raise CertError(source.cert, f"not valid before {leaf.not_valid_before_utc:%Y-%m-%d} UTC")
    return CertFacts(leaf.not_valid_after_utc, _names(leaf), leaf.serial_number)


def _names(cert: x509.Certificate) -> list[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name) for name in san.get_values_for_type(x509.DNSName)] + [
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    ]


class CertStore:
    """``facts``: what ``check`` read off each source (the main process), or None (a worker)."""

    def __init__(
        self,
        sources: list[CertSource],
        log: Callable[[str], None],
        facts: list[CertFacts] | None = None,
        http2: bool = True,
    ) -> None:
        self.sources = sources
        self.log = log
        self.http2 = http2  # ALPN offers h2 ([server.http2] enabled, read at start-up)
        self.loaded: list[Loaded] = [load(source, inspect=False, http2=http2)
                                     for source in sources]
        for entry, known in zip(self.loaded, facts or [], strict=False):
            entry.facts = known
        self._exact: dict[str, Loaded] = {}
        self._wildcard: dict[str, Loaded] = {}
        self._index()
        self.listener = server_context(http2)
        first = sources[0]
        self.listener.load_cert_chain(first.cert, first.key)
        self.listener.sni_callback = self._on_sni

    def adopt(self, other: CertStore) -> None:
        """Serve ``other``'s certificates from now on (a reload changed the list); the
        listener's SNI callback stays bound to this store."""
        self.sources, self.loaded = other.sources, other.loaded
        self._index()

    def _index(self) -> None:
        exact: dict[str, Loaded] = {}
        wildcard: dict[str, Loaded] = {}
        for entry in self.loaded:
            for host in entry.source.hosts:
                if host.startswith("*."):
                    wildcard.setdefault(host[1:], entry)  # ".example.com"
                else:
                    exact.setdefault(host, entry)
        self._exact, self._wildcard = exact, wildcard

    def lookup(self, server_name: str | None) -> Loaded:
        if server_name:
            name = server_name.lower().rstrip(".")
            found = self._exact.get(name)
            if found is not None:
                return found
            _, dot, rest = name.partition(".")
            if dot:
                found = self._wildcard.get("." + rest)
                if found is not None:
                    return found
        return self.loaded[0]

    def _on_sni(self, ssl_object: ssl.SSLObject, server_name: str | None,
                _context: ssl.SSLContext) -> None:
        ssl_object.context = self.lookup(server_name).context

    def changed(self) -> dict[int, tuple[int, ...]]:
        """The certificates whose files changed since they were loaded: index -> the
        files' stamp now (pass it to ``reload`` with what ``check`` said of them)."""
        stamps = {index: _stamp(entry.source) for index, entry in enumerate(self.loaded)}
        return {index: stamp for index, stamp in stamps.items()
                if stamp != self.loaded[index].stamp}

    def reload(self, only: list[int], checked: dict[int, CertFacts | str] | None = None,
               stamps: dict[int, tuple[int, ...]] | None = None) -> list[int]:
        """Load the certificates at ``only`` again; returns the indices swapped in.

        ``checked`` (the main process) holds what ``check`` said of each: its facts, or
        why it is unfit, in which case the old certificate stays; ``stamps``, the files'
        stamps when they were checked: a file replaced since is left for the next round
        to check afresh. A worker passes neither: the main process sends only what passed."""
        swapped: list[int] = []
        for index in only:
            entry = self.loaded[index]
            source = entry.source
            if stamps is not None and _stamp(source) != stamps[index]:
                continue  # changed again while it was checked
            verdict = checked.get(index) if checked is not None else None
            try:
                if isinstance(verdict, str):
                    raise ValueError(verdict)
                fresh = load(source, inspect=False, http2=self.http2)
            except (CertError, ValueError) as exc:
                entry.stamp = _stamp(source)  # say it once per change, not on every check
                self.log(f"tls: {source.where}: keeping the old certificate: {exc}")
                continue
            fresh.facts = verdict
            self.loaded[index] = fresh
            swapped.append(index)
            facts = fresh.facts
            self.log(f"tls: {source.where}: loaded {source.cert}" + (
                f" (serial {facts.serial:x}, expires {facts.not_after:%Y-%m-%d})" if facts else ""))
        if swapped:
            self._index()
        self.warn_expiring()
        return swapped

    def warn_expiring(self) -> None:
        for entry in self.loaded:
            facts = entry.facts
            if facts is not None and facts.days_left() < EXPIRY_WARNING.days:
                self.log(f"tls: warning: {entry.source.cert} expires in "
                         f"{facts.days_left():.1f} days ({facts.not_after:%Y-%m-%d %H:%M} UTC)")

    def status(self) -> list[dict[str, Any]]:
        return [status_row(entry) for entry in self.loaded]


def status_row(entry: Loaded) -> dict[str, Any]:
    """One certificate as ``portico status`` and ``portico cert list`` show it."""
    row: dict[str, Any] = {"hosts": list(entry.source.hosts), "cert": str(entry.source.cert)}
    facts = entry.facts
    if facts is not None:
        row |= {
            "names": facts.names,
            "expires": facts.not_after.isoformat(),
            "days_left": round(facts.days_left(), 1),
            "expiring": facts.days_left() < EXPIRY_WARNING.days,
        }
    return row
