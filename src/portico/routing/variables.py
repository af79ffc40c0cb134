"""Server variables as rules read them, in each dialect's spelling and values.

Where the dialects disagree, each gets its own: ``REQUEST_URI`` has the query in
IIS and not in Apache, ``HTTPS`` is ``ON``/``OFF`` in IIS and ``on``/``off`` in
Apache. Variables describe the request as it arrived (after the path was made
canonical); the rule pattern sees the URL as earlier rules left it.

``check_variable`` runs at load: an unknown name is a config error. The key it
returns is what ``RequestVariables.get`` reads at request time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import unquote

# The names both dialects know (values may differ by dialect, see get()).
_KNOWN: Final = frozenset((
    "QUERY_STRING", "REQUEST_URI", "URL", "HTTP_URL", "UNENCODED_URL", "PATH_INFO",
    "HTTPS", "SERVER_PORT_SECURE", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
    "SERVER_ADDR", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_PORT", "REQUEST_METHOD",
    "CONTENT_LENGTH", "CONTENT_TYPE", "CACHE_URL", "REQUEST_FILENAME", "SCRIPT_FILENAME",
    "THE_REQUEST", "REQUEST_SCHEME", "DOCUMENT_ROOT", "SERVER_SOFTWARE", "IS_SUBREQ",
    "X_ORIGINAL_URL",
))
SOFTWARE: Final = "portico"


def check_variable(name: str, dialect: str) -> str:
    """The key ``RequestVariables.get`` reads for ``name``; ValueError if unknown."""
    if dialect == "apache" and name.upper().startswith("HTTP:"):
        return "header:" + name[5:].strip().lower()
    upper = name.upper()
    if upper.startswith("RESPONSE_") and len(upper) > 9:  # outbound rules: a response header
        return "response:" + upper[9:].lower().replace("_", "-")
    if upper == "HTTP_HOST":
        return f"{dialect}:HTTP_HOST"
    if upper == "HTTP_X_ORIGINAL_URL":  # IIS keeps the URL as it arrived under this name
        return f"{dialect}:X_ORIGINAL_URL"
    if upper.startswith("HTTP_") and len(upper) > 5:
        return "header:" + upper[5:].lower().replace("_", "-")
    if upper in _KNOWN:
        return f"{dialect}:{upper}"
    raise ValueError(
        f"unknown server variable {name!r}: use HTTP_<HEADER> (e.g. HTTP_USER_AGENT), "
        "QUERY_STRING, REQUEST_URI, URL, HTTPS, HTTP_HOST, SERVER_NAME, SERVER_PORT, "
        "REMOTE_ADDR, REQUEST_METHOD, REQUEST_FILENAME... (docs/guide/rewrite.md)")


class RequestVariables:
    """One request's variables, each computed when first read."""

    __slots__ = ("_headers", "document_root", "host", "local_port", "method", "path",
                 "query", "raw_target", "remote_addr", "remote_port", "scheme", "version")

    def __init__(
        self,
        method: str,
        raw_target: str,
        path: str,
        query: str,
        headers: list[tuple[bytes, bytes]],
        host: str,
        scheme: str,
        version: str,
        remote_addr: str,
        remote_port: str,
        document_root: Path | None,
    ) -> None:
        self.method = method
        self.raw_target = raw_target  # as the client sent it
        self.path = path  # canonical, still %-encoded
        self.query = query  # without the '?'
        self._headers = headers
        self.host = host
        self.scheme = scheme
        self.version = version
        self.remote_addr = remote_addr
        self.remote_port = remote_port
        self.local_port = ""
        self.document_root = document_root

    def header(self, lname: str) -> str:
        wanted = lname.encode("latin-1")
        values = [v.decode("latin-1") for n, v in self._headers if n.lower() == wanted]
        return ", ".join(values)

    def server_name(self) -> str:
        host = self.host
        if host.startswith("["):
            return host[: host.find("]") + 1]
        return host.rpartition(":")[0] if ":" in host else host

    def server_port(self) -> str:
        host = self.host
        _, colon, port = host.rpartition(":")
        if colon and port.isdigit():
            return port
        return "443" if self.scheme == "https" else "80"

    def filename(self) -> str:
        decoded = unquote(self.path)
        if self.document_root is None:
            return decoded
        return str(self.document_root / decoded.lstrip("/"))

    def get(self, key: str) -> str:
        kind, _, name = key.partition(":")
        if kind == "header":
            return self.header(name)
        iis = kind == "iis"
        query = self.query
        full = self.path + ("?" + query if query else "")
        if name == "HTTP_HOST":
            return self.host
        if name == "QUERY_STRING":
            return query
        if name == "REQUEST_URI":
            return full if iis else unquote(self.path)
        if name in ("URL", "PATH_INFO"):
            return unquote(self.path)
        if name in ("HTTP_URL", "UNENCODED_URL", "X_ORIGINAL_URL"):
            return self.raw_target
        if name == "HTTPS":
            on = self.scheme == "https"
            return ("ON" if on else "OFF") if iis else ("on" if on else "off")
        if name == "SERVER_PORT_SECURE":
            return "1" if self.scheme == "https" else "0"
        if name == "SERVER_NAME":
            return self.server_name()
        if name == "SERVER_PORT":
            return self.server_port()
        if name == "SERVER_PROTOCOL":
            return "HTTP/" + self.version
        if name in ("REMOTE_ADDR", "REMOTE_HOST"):
            return self.remote_addr
        if name == "REMOTE_PORT":
            return self.remote_port
        if name == "REQUEST_METHOD":
            return self.method
        if name == "CONTENT_LENGTH":
            return self.header("content-length")
        if name == "CONTENT_TYPE":
            return self.header("content-type")
        if name == "CACHE_URL":
            return f"{self.scheme}://{self.host}{full}"
        if name in ("REQUEST_FILENAME", "SCRIPT_FILENAME"):
            return self.filename()
        if name == "THE_REQUEST":
            return f"{self.method} {self.raw_target} HTTP/{self.version}"
        if name == "REQUEST_SCHEME":
            return self.scheme
        if name == "DOCUMENT_ROOT":
            return str(self.document_root or "")
        if name == "SERVER_SOFTWARE":
            return SOFTWARE
        if name == "SERVER_ADDR":
            return ""
        return "false" if name == "IS_SUBREQ" else ""
