"""A Windows service for ``portico run -c FILE``.

Python is not a service executable, so the service host is nssm (as in the
IIS guide) when it is on PATH; the command lines are printed or run exactly
as shown. nssm's stop method sends Ctrl+C first, which portico treats like
SIGTERM (drain, then stop the apps).
"""

from __future__ import annotations

from portico.service.systemd import ServiceSpec


def nssm_commands(spec: ServiceSpec, nssm: str = "nssm") -> list[list[str]]:
    name = spec.name
    args = " ".join(_quote(part) for part in spec.argv[1:])
    commands = [
        [nssm, "install", name, spec.python, args],
        [nssm, "set", name, "AppDirectory", str(spec.config_file.parent)],
        [nssm, "set", name, "DisplayName", f"Portico ({spec.config_file.name})"],
        [nssm, "set", name, "Start", "SERVICE_AUTO_START"],
        [nssm, "set", name, "AppStopMethodConsole", str(int(spec.stop_timeout * 1000))],
        [nssm, "set", name, "AppExit", "Default", "Restart"],
        [nssm, "set", name, "AppStdout", str(spec.config_file.parent / f"{name}.out.log")],
        [nssm, "set", name, "AppStderr", str(spec.config_file.parent / f"{name}.err.log")],
    ]
    if spec.state_dir:
        commands.append(
            [nssm, "set", name, "AppEnvironmentExtra", f"PORTICO_STATE_DIR={spec.state_dir}"]
        )
    if spec.user:
        commands.append([nssm, "set", name, "ObjectName", spec.user])
    commands.append([nssm, "start", name])
    return commands


def nssm_uninstall_commands(name: str, nssm: str = "nssm") -> list[list[str]]:
    return [[nssm, "stop", name], [nssm, "remove", name, "confirm"]]


def _quote(part: str) -> str:
    """Windows command-line quoting for one argument (CommandLineToArgvW rules)."""
    if part and not any(c in part for c in ' \t"'):
        return part
    out, backslashes = ['"'], 0
    for char in part:
        if char == "\\":
            backslashes += 1
            continue
        if char == '"':
            out.append("\\" * (2 * backslashes + 1) + '"')
        else:
            out.append("\\" * backslashes + char)
        backslashes = 0
    out.append("\\" * (2 * backslashes) + '"')
    return "".join(out)
