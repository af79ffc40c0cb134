"""The imported config evaluated as ``portico try`` does, for ``--check``.

A thin adapter: the evaluation itself is the rule engine's (routing/), the same
code the proxy runs; this only builds it once for a config and calls it per sample.
"""

from __future__ import annotations

from pathlib import Path

from portico.importers.samples import Evaluate, Outcome


def evaluator(config: object, base_dir: Path) -> Evaluate:
    raise NotImplementedError("the rule engine is not merged yet")


__all__ = ["Outcome", "evaluator"]
