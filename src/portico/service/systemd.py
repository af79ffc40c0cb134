"""A systemd unit that runs ``portico run -c FILE`` and keeps it up.

portico drains and stops its apps itself on SIGTERM, so the unit uses
``KillMode=mixed``: systemd signals only portico, and SIGKILLs what is left
in the cgroup only if the stop takes longer than ``TimeoutStopSec``.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

UNIT_DIR = Path("/etc/systemd/system")


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # the unit is <name>.service
    config_file: Path
    python: str = sys.executable
    user: str | None = None
    stop_timeout: float = 60.0  # drain_timeout plus every app's stop_timeout, with slack
    state_dir: str | None = None  # default: systemd's StateDirectory (/var/lib/<name>)

    @property
    def argv(self) -> list[str]:
        return [self.python, "-m", "portico", "run", "-c", str(self.config_file)]


def unit_text(spec: ServiceSpec) -> str:
    state = spec.state_dir or f"%S/{spec.name}"
    lines = [
        "[Unit]",
        f"Description=Portico reverse proxy and app host ({spec.config_file})",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"ExecStart={shlex.join(spec.argv)}",
        "ExecReload=/bin/kill -HUP $MAINPID",  # systemctl reload: the config, read again
        f"WorkingDirectory={spec.config_file.parent}",
        f"Environment=PORTICO_STATE_DIR={state}",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if spec.state_dir is None:
        lines.append(f"StateDirectory={spec.name}")
    if spec.user:
        lines.append(f"User={spec.user}")
    lines += [
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={int(spec.stop_timeout)}",
        "Restart=on-failure",
        "RestartSec=2",
        "LimitNOFILE=65536",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def install_commands(name: str) -> list[list[str]]:
    return [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", f"{name}.service"]]


def uninstall_commands(name: str) -> list[list[str]]:
    return [["systemctl", "disable", "--now", f"{name}.service"], ["systemctl", "daemon-reload"]]
