"""Who already listens on a TCP address: found without binding it.

``portico check`` uses this to say, before ``portico run`` tries, that a listen
address or an app's bind address is taken, and by whom. On Linux the
listening sockets are read from ``/proc/net/tcp`` and ``/proc/net/tcp6`` and
their inodes matched to the ``/proc/<pid>/fd`` links that hold them (only the
processes this user may inspect: another user's holder is "another process").
Elsewhere a connection attempt tells whether something listens, not who.

Only LISTEN sockets count: a socket in TIME_WAIT does not stop a bind with
SO_REUSEADDR, which portico and the servers it starts all set.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

_LISTEN = "0A"  # the TCP state column of /proc/net/tcp
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def holder_of(host: str, port: int) -> str | None:
    """Who listens where a bind to ``host:port`` would collide: ``"pid 812 (nginx)"``,
    ``"another process"`` when the holder cannot be read, or None when it is free."""
    if sys.platform.startswith("linux") and Path("/proc/net/tcp").exists():
        inodes = _listening_inodes(_addresses(host), port)
        if not inodes:
            return None
        pids = _pids_holding(inodes)
        if not pids:
            return "another process"
        first = min(pids)  # a pre-fork server's parent usually has the lowest pid
        more = f" and {len(pids) - 1} more" if len(pids) > 1 else ""
        return f"pid {first} ({_command_name(first)}){more}"
    return "another process" if _accepts(host, port) else None


def _addresses(host: str) -> set[Address]:
    """The addresses a bind to ``host`` takes: one literal, or what the name resolves to."""
    host = host.strip("[]")
    if host in ("", "*"):
        return {ipaddress.ip_address("0.0.0.0")}
    try:
        return {ipaddress.ip_address(host)}
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return set()
    return {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}


def _collides(listening: Address, wanted: Address) -> bool:
    """A bind to ``wanted`` fails with EADDRINUSE against a listener on ``listening``."""
    for address in (listening, wanted):
        if address.is_unspecified and address.version == 6:
            return True  # [::] is dual-stack by default (V6ONLY is not shown in /proc)
    if listening.is_unspecified or wanted.is_unspecified:
        return listening.version == wanted.version
    return listening == wanted


def _listening_inodes(wanted: set[Address], port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            address_hex, port_hex = local.split(":")
            if state != _LISTEN or int(port_hex, 16) != port:
                continue
            listening = _decode(address_hex)
            if any(_collides(listening, want) for want in wanted):
                inodes.add(inode)
    return inodes


def _decode(address_hex: str) -> Address:
    """``0100007F`` → 127.0.0.1: the kernel prints each 32-bit word in host byte order."""
    raw = bytes.fromhex(address_hex)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _pids_holding(inodes: set[str]) -> list[int]:
    links = {f"socket:[{inode}]" for inode in inodes}
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:  # another user's process, or gone
            continue
        for fd in fds:
            try:
                if os.readlink(entry / "fd" / fd) in links:
                    pids.append(int(entry.name))
                    break
            except OSError:
                continue
    return pids


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or "?"
    except OSError:
        return "?"


def _accepts(host: str, port: int) -> bool:
    """Something accepts connections at ``host:port`` (a wildcard is tried on loopback)."""
    target = {"": "127.0.0.1", "*": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(
        host.strip("[]"), host.strip("[]"))
    try:
        with socket.create_connection((target, port), timeout=1.0):
            return True
    except OSError:
        return False
