"""The runtime directory: where each running portico leaves its control socket and a record.

Where it is, first match wins:

1. ``$PORTICO_RUNTIME_DIR``;
2. ``$PORTICO_STATE_DIR/run`` when ``PORTICO_STATE_DIR`` is set (one directory holds
   everything of such a run: tests and side-by-side installs keep to themselves);
3. ``$XDG_RUNTIME_DIR/portico`` (systemd's per-user ``/run/user/UID``);
4. ``portico-UID`` in the temporary directory (``/tmp/portico-1000``).

It is made mode 0700 and must belong to the user: a directory someone else made
first is refused, never used. Per instance it holds ``KEY.sock`` (admin/control.py)
and ``KEY.json``, a small record: pid, config file, listen URLs, start time, log
directory. ``KEY`` names the config file: its stem and a hash of its full path, so
two configs of the same name in different directories never meet. ``portico status``
reads the records; one whose pid is gone is stale and removed.

The state directory (``state_dir``: logs, issued certificates) is also read here,
so the two agree on ``PORTICO_STATE_DIR``.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import stat
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_KEY = "portico"  # the built-in default config, which has no file


class RuntimeDirError(Exception):
    """The runtime directory cannot be made, or is not safely the user's."""


def explicit_state_dir() -> Path | None:
    """``$PORTICO_STATE_DIR``, when it is set (and not empty)."""
    state = os.environ.get("PORTICO_STATE_DIR")
    return Path(state) if state else None


def state_dir() -> Path:
    """Where portico keeps what outlives a run (logs, issued certificates):
    ``$PORTICO_STATE_DIR``, else ``$XDG_STATE_HOME/portico`` (``~/.local/state/portico``)."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return explicit_state_dir() or Path(base) / "portico"


def runtime_dir() -> Path:
    explicit = os.environ.get("PORTICO_RUNTIME_DIR")
    if explicit:
        return Path(explicit)
    state = explicit_state_dir()
    if state is not None:
        return state / "run"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "portico"
    user = str(os.getuid()) if hasattr(os, "getuid") else getpass.getuser()
    return Path(tempfile.gettempdir()) / f"portico-{user}"


def prepare(directory: Path) -> Path:
    """Make ``directory`` (0700) if it is missing; RuntimeDirError unless it is the user's own."""
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    except OSError as exc:
        raise RuntimeDirError(f"cannot make the runtime directory {directory}: "
                              f"{exc.strerror or exc}; set PORTICO_RUNTIME_DIR") from exc
    return owned(directory)


def owned(directory: Path) -> Path:
    """``directory`` if it is a real directory of the user's own (closed to others if it
    was open); RuntimeDirError otherwise. Nothing in a directory someone else could have
    made first (``/tmp/portico-UID``) is read, connected to or removed."""
    try:
        info = directory.lstat()
    except OSError as exc:
        raise RuntimeDirError(f"cannot read the runtime directory {directory}: "
                              f"{exc.strerror or exc}; set PORTICO_RUNTIME_DIR") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise RuntimeDirError(f"the runtime directory {directory} is not a directory "
                              "(a symlink or a file?); remove it or set PORTICO_RUNTIME_DIR")
    if hasattr(os, "getuid"):
        if info.st_uid != os.getuid():
            raise RuntimeDirError(f"the runtime directory {directory} belongs to uid "
                                  f"{info.st_uid}, not you (uid {os.getuid()}); remove it "
                                  "or set PORTICO_RUNTIME_DIR")
        if stat.S_IMODE(info.st_mode) & 0o077:
            directory.chmod(0o700)  # ours, but readable by others: close it
    return directory


def instance_key(config_file: Path | None) -> str:
    """``STEM-HASH`` of the config file's resolved path (the control socket's and the
    log directory's name); ``portico`` for the built-in default."""
    if config_file is None:
        return DEFAULT_KEY
    digest = hashlib.sha1(str(config_file.resolve()).encode()).hexdigest()[:8]
    return f"{config_file.stem[:40]}-{digest}"


@dataclass(frozen=True)
class Instance:
    """What a running portico says about itself in the runtime directory."""

    key: str
    pid: int
    config: str | None  # the resolved config file; None for the built-in default
    listen: list[str]
    started: float  # seconds since the epoch
    control: str  # the control socket
    logs: str  # the apps' log directory

    def describe(self) -> str:
        return (f"pid {self.pid}: {self.config or '(built-in default config)'}, "
                f"listening on {', '.join(self.listen) or '-'}")


def record_path(directory: Path, key: str) -> Path:
    return directory / f"{key}.json"


def control_socket(directory: Path, key: str) -> Path:
    """Where the instance ``key`` answers: derived from the key, never read from a record."""
    return directory / f"{key}.sock"


def write_record(directory: Path, instance: Instance) -> Path:
    """Write the record whole (a reader never sees half of it), readable by the user only."""
    path = record_path(directory, instance.key)
    fd, temporary = tempfile.mkstemp(prefix=f".{instance.key}-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(asdict(instance), file, indent=2)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def remove_record(directory: Path, key: str, pid: int) -> None:
    """Remove this instance's record, not one a later portico of the same config wrote."""
    path = record_path(directory, key)
    record = _read(path)
    if record is None or record.pid == pid:
        path.unlink(missing_ok=True)


def _read(path: Path) -> Instance | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Instance(**data)
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill(pid, 0) would end it there; a dead one fails to answer instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # there, but not ours to signal
    return True


def running(directory: Path) -> list[Instance]:
    """The instances whose process is alive, oldest first; stale records (and their
    sockets) are removed on the way."""
    found: list[Instance] = []
    if not directory.exists():
        return found
    owned(directory)
    for path in sorted(directory.glob("*.json")):
        record = _read(path)
        if record is None or record.key != path.stem:
            continue
        if _alive(record.pid):
            found.append(record)
            continue
        control = control_socket(directory, record.key)
        for stale in (path, control, control.with_name(control.name + ".port")):
            with contextlib.suppress(OSError):
                stale.unlink()
    return sorted(found, key=lambda instance: instance.started)
