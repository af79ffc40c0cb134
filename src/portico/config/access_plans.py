"""What the serving processes need of a route's ``access`` and ``basic_auth``: plain
data, no pydantic (config/plan.py keeps the serving processes free of it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccessPlan:
    allow: list[str]
    deny: list[str]


@dataclass(frozen=True)
class BasicAuthPlan:
    realm: str
    users: dict[str, str]
