"""The base of every config table: unknown keys are errors, values frozen, and each
field's docstring is its reference text (config/reference.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
