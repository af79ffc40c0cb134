"""The config reference (docs/reference/config.md), made from the schema itself.

Every table's docstring and every key's docstring, type, default and valid values
come from config/schema.py, so the reference cannot drift from what ``portico
check`` accepts. Regenerate it after changing the schema (a unit test fails
until then)::

    .venv/bin/python -m portico.config.reference > docs/reference/config.md
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from portico.config.schema import Config
from portico.config.units import parse_duration, parse_size

COMMAND = "python -m portico.config.reference > docs/reference/config.md"

HEADER = f"""\
# Configuration reference

<!-- Generated from src/portico/config/schema.py by `{COMMAND}`;
     edit the schema's docstrings, not this file. -->

Portico reads one TOML file (`portico.toml`, or the one given with `-c`). Every
table rejects keys it does not know, naming the key and the valid ones. Sizes are
a number of bytes or a number with a unit (`B`, `KiB`, `MiB`, `GiB`, or `KB`, `MB`,
`GB`): `"10MiB"`. Durations are seconds or a number with `ms`, `s`, `m` or `h`:
`"30s"`, `"1.5s"`, `"2m"`.
"""


def render() -> str:
    """The whole reference, as Markdown."""
    sections: dict[type[BaseModel], list[tuple[str, str]]] = {}
    _collect(Config, "", sections)
    parts = [HEADER]
    for model, names in sections.items():
        parts.append(_section(model, names))
    return "\n".join(parts)


def _collect(model: type[BaseModel], path: str,
             sections: dict[type[BaseModel], list[tuple[str, str]]]) -> None:
    for name, field in model.model_fields.items():
        table, is_list = _table_of(field)
        if table is None:
            continue
        key = f"{path}.{name}" if path else name
        heading = f"[[{key}]]" if is_list else f"[{key}]"
        sections.setdefault(table, []).append((heading, _prose(field.description or "")))
        _collect(table, key, sections)


def _table_of(field: FieldInfo) -> tuple[type[BaseModel] | None, bool]:
    kind = field.annotation
    is_list = typing.get_origin(kind) is list
    if is_list:
        kind = typing.get_args(kind)[0]
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return kind, is_list
    return None, False


def _section(model: type[BaseModel], headings: list[tuple[str, str]]) -> str:
    title = ", ".join(f"`{heading}`" for heading, _ in headings)
    lines = [f"## {title}", ""]
    if len(headings) > 1:
        lines += [f"- `{heading}`: {said}" for heading, said in headings if said] + [""]
    doc = _prose(model.__doc__ or "")
    if doc.startswith("`") and ":" in doc.split("\n", 1)[0]:  # "`[server]`: ...": the heading
        doc = doc.split(":", 1)[1].strip()
    if doc:
        lines += [doc[0].upper() + doc[1:], ""]
    keys = [(name, field) for name, field in model.model_fields.items()
            if _table_of(field)[0] is None]
    if not keys:
        return "\n".join(lines)
    lines += ["| key | type | default | |", "|---|---|---|---|"]
    for name, field in keys:
        description = _prose(field.description or "").replace("\n", " ")
        lines.append(f"| `{name}` | {_type(field)} | {_default(field)} | {description} |")
    lines.append("")
    return "\n".join(lines)


def _prose(text: str) -> str:
    """A docstring as Markdown: ``code`` → `code`, its indentation and line breaks dropped."""
    paragraphs = [" ".join(line.strip() for line in block.splitlines())
                  for block in re.split(r"\n\s*\n", text.strip())]
    return "\n\n".join(p for p in paragraphs if p).replace("``", "`").replace("|", "\\|")


def _unit(field: FieldInfo) -> str | None:
    for item in field.metadata:
        func = getattr(item, "func", None)
        if func is parse_size:
            return "size"
        if func is parse_duration:
            return "duration"
    return None


def _type(field: FieldInfo) -> str:
    text = _unit(field) or _kind(field.annotation)
    for item in field.metadata:
        if hasattr(item, "ge"):
            text += f", at least {item.ge}"
        if hasattr(item, "min_length"):
            text += f", at least {item.min_length}"
        if getattr(item, "pattern", None):
            text += f", matching `{item.pattern}`"
    return text


def _kind(kind: Any, plural: bool = False) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_kind(arg, plural) for arg in args if arg is not type(None))
    if origin is typing.Annotated:
        units = {parse_size: "size", parse_duration: "duration"}
        unit = next((units[f] for f in (getattr(m, "func", None) for m in kind.__metadata__)
                     if f in units), None)
        return (unit + ("s" if plural else "")) if unit else _kind(args[0], plural)
    if origin is typing.Literal:
        values = ", ".join(f'`"{arg}"`' for arg in args)
        return values if len(args) == 1 else f"one of {values}"
    if origin in (list, tuple):  # a tuple[str, ...] is written as a TOML list
        return ("lists" if plural else "list") + f" of {_kind(args[0], plural=True)}"
    if origin is dict:
        return ("tables" if plural else "table") + f" of {_kind(args[1], plural=True)}"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    name = names.get(kind, getattr(kind, "__name__", str(kind)))
    return name + ("s" if plural else "")


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    unit = _unit(field)
    if unit == "duration":
        return f'`"{value:g}s"`'
    if unit == "size":
        for name, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if value and value % scale == 0:
                return f'`"{value // scale}{name}"`'
        return f"`{value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, list | tuple):
        return "`[" + ", ".join(f'"{item}"' for item in value) + "]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


if __name__ == "__main__":
    print(render(), end="")
