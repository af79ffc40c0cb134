"""A bad config is one ConfigError naming the file, the key path and what is valid.

In-process: ``load`` is what ``portico check`` and ``portico run`` call first
(tests/integration/test_cli.py runs the real commands once per kind of output).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portico.config.load import load
from portico.errors import ConfigError, key_path


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("[server]\nlisten = ['http://127.0.0.1:8080']\nlisen = 1\n", "server.lisen",
         "valid keys here: listen, trusted_proxies"),
        ("[[route]]\npath = '/myapp'\nupstream = 'ftp://x/'\n", "route[0].upstream", "http://host:port/"),
        ("[[route]]\npath = 'myapp'\nupstream = 'http://127.0.0.1:8000/'\n", "route[0].path", "must start with '/'"),
        ("[[route]]\npath = '/myapp'\nupstream = 'http://127.0.0.1:8000/'\nlimits.max_body_size = '10 potatoes'\n",
         "route[0].limits.max_body_size", "KiB, MiB, GiB"),
        ("[[route]]\npath = '/a'\nupstream = 'http://127.0.0.1:8000/'\nrequest_headers.set = { 'X-A' = \"a\\r\\nB: c\" }\n",
         "route[0].request_headers.set", "CR, LF or NUL"),
        ("[[route]]\npath = '/a'\nupstream = 'http://127.0.0.1:8000/'\nrequest_headers.set = { 'X-A' = '{nope}' }\n",
         "route[0].request_headers.set", "{prefix}"),
        ("[server]\ntrusted_proxies = ['0.0.0.0/0']\n", "server.trusted_proxies", "trusts every address"),
        ("[server]\nlog_format = 'xml'\n", "server.log_format", "'combined' or 'json'"),
        ("[server.limits]\nhead_timeout = 'soon'\n", "server.limits.head_timeout", "e.g. \"30s\""),
        ("[[route]]\npath = '/a'\n", "route[0]", "exactly one of 'upstream' or 'app'"),
        ("not toml = = 1", "", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_message(tmp_path: Path, text: str, key: str, hint: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    error = caught.value
    assert (error.file, error.key) == (str(path), key)
    assert hint in error.message, error.message
    where = f"{path}: {key}" if key else str(path)
    assert str(error) == f"{where}: {error.message}"


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "absent.toml")
    assert str(caught.value).startswith(f"{tmp_path / 'absent.toml'}: cannot read the file")


def test_key_paths_are_spelled_one_way() -> None:
    assert key_path(("route", 0, "limits", "max_body_size")) == "route[0].limits.max_body_size"
    assert key_path(("tls.certificate[1]", "key")) == "tls.certificate[1].key"
    assert str(ConfigError.at(("route", 2, "ca"), "no such file", "p.toml")) == (
        "p.toml: route[2].ca: no such file")
