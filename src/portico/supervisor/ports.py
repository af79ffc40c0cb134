"""Who holds an app's port: checked before the app is spawned and, on Linux, once it answers.

Routing to whatever answers on ``bind`` would serve another program's
responses if that program took the port first. So before spawning, the bind
address must be free (a bind test; elsewhere than Linux also a connect test,
since SO_REUSEADDR there may let a bind succeed beside a listener). After the
app answers, on Linux, every socket listening on the port must be held by a
process of the app's own process group, which also catches an app that
handed its port to a process in a session of its own. /proc/net/tcp{,6} give
the listening sockets' inodes and /proc/PID/fd the processes holding them.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from portico.supervisor.commands import connect_host, split_bind

LINUX = sys.platform.startswith("linux")
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column
IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Holder:
    """A process holding a port, as far as /proc lets it be read."""

    pid: int | None
    command: str | None

    def __str__(self) -> str:
        if self.pid is None:
            return "another process (/proc does not show which)"
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def port_holder(bind: str) -> Holder | None:
    """Who already holds ``bind`` (HOST:PORT), before the app is spawned; None if free."""
    host, port = split_bind(bind)
    if _can_bind(host, port) and (LINUX or not _accepts(connect_host(bind), port)):
        return None
    pids = sorted(pid for pids in listeners(host, port).values() for pid in pids)
    return _holder(pids[0]) if pids else Holder(None, None)


def foreign_listener(bind: str, group: int) -> Holder | None:
    """A process outside process group ``group`` listening on ``bind``'s port (Linux);
    None when every listener there is the group's, or where /proc is not there."""
    if not LINUX:
        return None
    host, port = split_bind(bind)
    for pids in listeners(host, port).values():
        if not any(_group_of(pid) == group for pid in pids):
            return _holder(min(pids)) if pids else Holder(None, None)
    return None


def listeners(host: str, port: int) -> dict[int, set[int]]:
    """Sockets listening on ``port`` at an address that overlaps ``host``: inode → the
    pids holding it (empty where their /proc/PID/fd cannot be read)."""
    inodes = _listening_inodes(host, port)
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


def _listening_inodes(host: str, port: int) -> set[int]:
    try:
        wanted: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:  # a name, or a wildcard spelled "*": any address may be it
        wanted = None
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, _, port_hex = fields[1].partition(":")
            if fields[3] == LISTEN and int(port_hex, 16) == port and _overlaps(
                _address(address), wanted
            ):
                inodes.add(int(fields[9]))
    return inodes


def _address(hex_text: str) -> IPAddress:
    """/proc/net/tcp's address: 32-bit words, each in the machine's byte order."""
    raw = bytes.fromhex(hex_text)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(raw)


def _overlaps(listener: IPAddress, wanted: IPAddress | None) -> bool:
    if wanted is None or listener.is_unspecified or wanted.is_unspecified:
        return True
    mapped = listener.ipv4_mapped if isinstance(listener, ipaddress.IPv6Address) else None
    return listener == wanted or mapped == wanted


def _can_bind(host: str, port: int) -> bool:
    """False only when the address is in use (other errors are the app's to report)."""
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


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
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
