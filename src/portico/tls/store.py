"""The listener's certificates: chosen by SNI, reloaded from disk without a restart.

One ``SSLContext`` per ``[[tls.certificate]]``. The listener's own context
carries the default certificate (the first one) and an SNI callback that
switches each handshake to the context for the name the client asked for:
exact names first, then ``*.suffix`` wildcards (one label), then the default.
Reloading builds a new context from the changed files and swaps it in for
new handshakes; a file that fails to load leaves the old certificate in
place and says why.

The main process also reads each certificate with ``cryptography`` (expiry,
names, serial) to refuse an expired one and warn before one expires; a worker
loads the files with ``ssl`` alone (``inspect=False``) and swaps a certificate
only when the main process, having checked it, says so.
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
    """What ``cryptography`` reads off the leaf certificate (main process only)."""

    not_after: dt.datetime
    names: list[str]
    serial: int

    def days_left(self) -> float:
        return (self.not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400


@dataclass
class Loaded:
    source: CertSource
    context: ssl.SSLContext
    facts: CertFacts | None  # None in a worker
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


def load(source: CertSource, inspect: bool = True) -> Loaded:
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
    context = server_context()
    try:
        context.load_cert_chain(source.cert, source.key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise CertError(source.key, f"this key does not belong to {source.cert}") from None
        raise CertError(source.key, f"cannot load the key: {exc.reason or exc}") from None
    return Loaded(source, context, facts, stamp)


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
    def __init__(
        self, sources: list[CertSource], log: Callable[[str], None], inspect: bool = True
    ) -> None:
        self.sources = sources
        self.log = log
        self.inspect = inspect
        self.loaded: list[Loaded] = [load(source, inspect) for source in sources]  # CertError
        self._exact: dict[str, Loaded] = {}
        self._wildcard: dict[str, Loaded] = {}
        self._index()
        self.listener = server_context()
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

    def reload(self, force: bool = False, only: list[int] | None = None) -> list[int]:
        """Re-read changed files (all with ``force``, or those at ``only``); returns the
        indices of the certificates swapped in."""
        swapped: list[int] = []
        for index, entry in enumerate(self.loaded):
            source = entry.source
            if only is not None and index not in only:
                continue
            if only is None and not force and _stamp(source) == entry.stamp:
                continue
            try:
                fresh = load(source, self.inspect)
            except CertError as exc:
                entry.stamp = _stamp(source)  # say it once per change, not on every check
                self.log(f"tls: {source.where}: keeping the old certificate: {exc}")
                continue
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
