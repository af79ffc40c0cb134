"""Who holds a TCP port: read without binding it, or proven by a bind test.

Routing to whatever answers on an app's ``bind`` would serve another
program's responses if that program took the port first, and a listen port
in use stops ``portico run``. Three questions, one source of truth:

- ``holder_of``: does anything listen where a bind to ``host:port`` would
  collide, and who (``portico check``: no bind, no side effect)?
- ``bind_holder``: the same, proven by a bind test (before an app is
  spawned; elsewhere than Linux also a connect test, since SO_REUSEADDR
  there may let a bind succeed beside a listener).
- ``foreign_listener``: once an app answers, is every socket listening on its
  port held by the app's own process group (Linux)?

On Linux the listening sockets come from ``/proc/net/tcp`` and
``/proc/net/tcp6``, and their inodes are matched to the ``/proc/<pid>/fd``
links that hold them (only the processes this user may inspect: another
user's holder is "another process"). Elsewhere a connection attempt tells
whether something listens, not who. Only LISTEN sockets count: one in
TIME_WAIT does not stop a bind with SO_REUSEADDR, which portico and the
servers it starts all set.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

LINUX = sys.platform.startswith("linux")
LISTEN = "0A"  # TCP_LISTEN in the "st" column of /proc/net/tcp
IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Holder:
    """A process holding a port, as far as /proc lets it be read."""

    pid: int | None
    command: str | None

    def __str__(self) -> str:
        if self.pid is None:
            return "another process"
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def holder_of(host: str, port: int) -> Holder | None:
    """Who listens where a bind to ``host:port`` would collide; None when it is free."""
    if LINUX and Path("/proc/net/tcp").exists():
        held = listeners(host, port)
        if not held:
            return None
        pids = sorted(pid for holders in held.values() for pid in holders)
        return _holder(pids[0]) if pids else Holder(None, None)  # a pre-fork parent first
    return Holder(None, None) if _accepts(host, port) else None


def bind_holder(host: str, port: int) -> Holder | None:
    """Who stops a bind to ``host:port`` right now, proven by trying it; None if free."""
    if can_bind(host, port) and (LINUX or not _accepts(host, port)):
        return None
    return holder_of(host, port) or Holder(None, None)


def foreign_listener(host: str, port: int, group: int) -> Holder | None:
    """A process outside process group ``group`` listening where ``host:port`` is
    (Linux); None when every listener there is the group's, or without /proc."""
    if not LINUX:
        return None
    for pids in listeners(host, port).values():
        if not any(_group_of(pid) == group for pid in pids):
            return _holder(min(pids)) if pids else Holder(None, None)
    return None


def listeners(host: str, port: int) -> dict[int, set[int]]:
    """Sockets listening on ``port`` where a bind to ``host`` would collide: inode → the
    pids holding it (empty where their /proc/PID/fd cannot be read)."""
    inodes = _listening_inodes(_addresses(host), port)
    held: dict[int, set[int]] = {inode: set() for inode in inodes}
    if not inodes:
        return held
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:  # gone, or another user's
            continue
        for fd in fds:
            try:
                inode = wanted.get(os.readlink(entry / "fd" / fd))
            except OSError:
                continue
            if inode is not None:
                held[inode].add(int(entry.name))
    return held


def can_bind(host: str, port: int) -> bool:
    """False only when the address is in use (other errors are the binder's to report)."""
    host = host.strip("[]")
    host = "0.0.0.0" if host in ("", "*") else host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name != "nt":  # as the servers do; on Windows it would allow stealing
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno not in IN_USE
    return True


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


def _listening_inodes(wanted: set[Address], port: int) -> set[int]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address_hex, _, port_hex = fields[1].partition(":")
            if fields[3] != LISTEN or int(port_hex, 16) != port:
                continue
            listening = _decode(address_hex)
            if any(_collides(listening, want) for want in wanted):
                inodes.add(int(fields[9]))
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


def _accepts(host: str, port: int) -> bool:
    """Something accepts connections at ``host:port`` (a wildcard is tried on loopback)."""
    host = host.strip("[]")
    target = {"": "127.0.0.1", "*": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(
        host, host)
    try:
        with socket.create_connection((target, port), timeout=1.0):
            return True
    except OSError:
        return False


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _holder(pid: int) -> Holder:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return Holder(pid, None)
    command = " ".join(part.decode("utf-8", "replace") for part in argv)
    return Holder(pid, command[:200] or None)
