"""Sizes ("10MiB") and durations ("1.5s") as config values."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?i?B)?\s*\Z", re.IGNORECASE)
_UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*\Z")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_size(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a size")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            unit = (match.group(2) or "B").lower()
            return int(float(match.group(1)) * _UNITS[unit])
    raise ValueError(
        f"invalid size {value!r}: use a number of bytes or a number with a unit "
        "B, KiB, MiB, GiB (or KB, MB, GB), e.g. \"10MiB\""
    )


def parse_duration(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a duration")
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _SECONDS[match.group(2) or "s"]
    raise ValueError(
        f"invalid duration {value!r}: use seconds or a number with ms, s, m or h, e.g. \"30s\""
    )


Size = Annotated[int, BeforeValidator(parse_size)]
Duration = Annotated[float, BeforeValidator(parse_duration)]
