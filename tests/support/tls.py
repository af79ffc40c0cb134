"""Helpers for HTTPS tests: configs with certificates from a local CA, handshakes, swaps."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

from portico.tls.authority import issue
from tests.support.portico_proc import StartPortico


def tls_config(tmp: Path, upstream: str, *, server: str = "", certs: str = "", extra: str = "") -> str:
    return f"""
[server]
listen = ["http://127.0.0.1:0", "https://127.0.0.1:0"]
tick = 0.1
{server}

{certs}

[[route]]
path = "/myapp"
upstream = "{upstream}"
{extra}
"""


def cert_block(cert: Path, key: Path, hosts: list[str]) -> str:
    return f'[[tls.certificate]]\nhosts = {json.dumps(hosts)}\ncert = "{cert}"\nkey = "{key}"\n'


def make(ca_dir: Path, *hosts: str) -> tuple[Path, Path]:
    issued = issue(ca_dir, list(hosts), force=True)
    return issued.cert, issued.key


def start_with_certificate(
    start_portico: StartPortico, tmp_path: Path, upstream: str, server: str = "", extra: str = ""
) -> tuple[Any, Path, Path, Path]:
    """portico with one certificate for localhost from a fresh local CA under tmp_path:
    (the proxy, ca.pem, the certificate, its key)."""
    cert, key = make(tmp_path / "ca", "localhost")
    proxy = start_portico(tls_config(tmp_path / "ca", upstream, server=server, extra=extra,
                                     certs=cert_block(cert, key, ["localhost"])))
    return proxy, tmp_path / "ca" / "ca.pem", cert, key


def s_client(port: int, *args: str) -> str:
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
        input="", capture_output=True, text=True, timeout=20,
    )
    return result.stdout + result.stderr


def handshake(port: int, ca: Path, server_name: str | None = "localhost") -> tuple[int, int]:
    """One new TLS connection and one request: (certificate serial, HTTP status)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = server_name is not None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=server_name) as sock:
        serial = int(sock.getpeercert()["serialNumber"], 16)  # type: ignore[index,arg-type]
        sock.sendall(b"GET /myapp/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return serial, int(data.split(b" ", 2)[1])


def serial_of(cert: Path) -> int:
    from cryptography import x509
    return x509.load_pem_x509_certificates(cert.read_bytes())[0].serial_number


def swap_in(ca_dir: Path, cert: Path, key: Path, hosts: list[str]) -> int:
    """Write a fresh certificate and key over the served files, each by an atomic rename."""
    staging = ca_dir / "next"
    staging.mkdir(exist_ok=True)
    for name in ("ca.pem", "ca.key"):  # signed by the same CA the clients trust
        shutil.copy(ca_dir / name, staging / name)
    new_cert, new_key = make(staging, *hosts)
    os.replace(new_key, key)
    os.replace(new_cert, cert)
    return serial_of(cert)
