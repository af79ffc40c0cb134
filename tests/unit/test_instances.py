"""``[[app]]`` instances, ``args`` and ``python``: binds, names, command lines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from portico.config.acquire import free_ports
from portico.config.compile import app_plan
from portico.config.instances import instance_binds, instance_name
from portico.config.load import parse
from portico.errors import ConfigError
from portico.supervisor.commands import app_argv, interpreter
from portico.supervisor.supervisor import instance_plans


def app_config(extra: str) -> str:
    return f'[[app]]\nname = "web"\nwsgi = "m:app"\n{extra}\n'


def test_a_base_port_or_a_range_of_exactly_n_ports() -> None:
    assert instance_binds("127.0.0.1:8000", 3) == [
        "127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002"]
    assert instance_binds("127.0.0.1:8000-8001", 2) == ["127.0.0.1:8000", "127.0.0.1:8001"]
    with pytest.raises(ValueError, match="holds 3 ports but instances = 2"):
        instance_binds("127.0.0.1:8000-8002", 2)
    with pytest.raises(ConfigError, match="holds 2 ports but instances = 3"):
        parse(app_config('instances = 3\nbind = "127.0.0.1:8000-8001"'), "t.toml")
    with pytest.raises(ConfigError, match="invalid bind"):
        parse(app_config('bind = "127.0.0.1:80-"'), "t.toml")
    assert [instance_name("web", i, n) for n in (1, 2) for i in range(n)] == [
        "web", "web#1", "web#2"]


def test_free_ports_for_instances_are_consecutive_and_kept_while_they_fit() -> None:
    config = parse(app_config("instances = 3"), "t.toml")
    bind = free_ports(config)["web"]
    first, last = (int(p) for p in bind.rpartition(":")[2].split("-"))
    assert last == first + 2
    assert free_ports(config, {"web": bind}) == {"web": bind}
    fewer = parse(app_config("instances = 2"), "t.toml")
    assert free_ports(fewer, {"web": bind})["web"] != bind  # 3 ports cannot be 2


def test_each_instance_runs_with_its_bind_the_args_and_the_interpreter(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    config = parse(app_config('instances = 2\nbind = "127.0.0.1:9000"\npython = "venv"\n'
                              'args = ["--timeout", "60"]'), "t.toml")
    plan = app_plan(config.app[0], [], tmp_path)
    assert plan.python == str(venv / "bin" / "python")
    second = instance_plans(plan)[1]
    assert (second.name, second.bind) == ("web#2", "127.0.0.1:9001")
    argv = app_argv(second)
    assert argv[0] == str(venv / "bin" / "python")
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:9001"
    assert argv[-3:] == ["--timeout", "60", "m:app"]
    assert interpreter(None) == sys.executable
