"""Read a TOML file into a validated :class:`Config`, or raise one clear ConfigError."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from portico.config.plan import DEFAULT_NAME
from portico.config.schema import Config
from portico.errors import ConfigError

DEFAULT_FILE = "portico.toml"  # read from the current directory when no -c is given


def config_in_use(path: str | None) -> str | None:
    """The file to read: ``-c``'s, else ``./portico.toml`` when there is one, else None
    (the built-in demo: it keeps ``make demo``, a bare ``portico run`` in a directory
    without a config, working)."""
    if path is not None:
        return path
    return DEFAULT_FILE if Path(DEFAULT_FILE).is_file() else None


def default_text() -> str:
    return resources.files("portico.config").joinpath("default.toml").read_text("utf-8")


def load(path: str | Path | None) -> tuple[Config, Path]:
    """The config and the directory its relative paths are read from."""
    if path is None:
        return parse(default_text(), DEFAULT_NAME), Path.cwd()
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(str(file), "", f"cannot read the file: {exc.strerror}") from None
    return parse(text, str(file)), file.resolve().parent


def parse(text: str, name: str) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"not valid TOML: {exc}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError.at(error["loc"], describe(error, data), name) from None


def describe(error: Any, data: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = error["loc"][:-1]
        valid = _valid_keys(parent)
        return "unknown key" + (f"; valid keys here: {', '.join(valid)}" if valid else "")
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind == "missing":
        return "required key is missing"
    return message


def _valid_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", None)
        model = args[0] if args else annotation
        if not hasattr(model, "model_fields"):
            return []
    return list(model.model_fields)
