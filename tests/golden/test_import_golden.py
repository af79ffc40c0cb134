"""Golden import files: a web.config or httpd.conf → the portico TOML ``portico import`` writes.

``tests/golden/import/NAME.web.config`` (also ``*.applicationHost.config``,
``*.rewrite.xml``) and ``NAME.conf`` are the inputs; ``NAME.toml`` beside each is
what ``portico import --allow-partial`` makes of it, and must load; ``NAME.samples``, where
there is one, says what the source server does with some requests, and the TOML must
do the same. After a
deliberate change, regenerate and read the diff::

    PORTICO_GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/golden/test_import_golden.py
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from portico.cli.try_url import evaluate as try_evaluate
from portico.config.load import parse
from portico.importers.apache import read_apache
from portico.importers.emit import emit
from portico.importers.iis import read_iis
from portico.importers.model import Imported
from portico.importers.samples import Outcome, check_samples, parse_samples
from portico.tls import contexts as tls_contexts

HERE = Path(__file__).parent / "import"
IIS = sorted(p.name for p in HERE.iterdir()
             if p.name.endswith((".web.config", ".applicationHost.config", ".rewrite.xml")))
APACHE = sorted(p.name for p in HERE.glob("*.conf"))
UPDATE = os.environ.get("PORTICO_GOLDEN_UPDATE") == "1"


def golden_name(source: str) -> str:
    for suffix in (".web.config", ".applicationHost.config", ".rewrite.xml", ".conf"):
        if source.endswith(suffix):
            return source[: -len(suffix)] + ".toml"
    raise AssertionError(source)


@pytest.mark.parametrize("source", IIS + APACHE)
def test_import_matches_its_golden_toml(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)  # file names in the comments are as the user typed them
    imported: Imported = read_iis(Path(source)) if source in IIS else read_apache(Path(source))
    text = emit(imported, allow_partial=True).replace(str(HERE), "$HERE")
    golden = HERE / golden_name(source)
    if UPDATE:
        golden.write_text(text, "utf-8")
    assert golden.is_file(), f"no {golden.name}: PORTICO_GOLDEN_UPDATE=1 makes it"
    assert text == golden.read_text("utf-8"), (
        f"{source}: the import differs from {golden.name}; if the change is meant, "
        "regenerate with PORTICO_GOLDEN_UPDATE=1 and review the diff")
    parse(text.replace("$HERE", str(HERE)), golden.name)  # what portico import writes loads


@pytest.mark.parametrize("source", [s for s in IIS + APACHE
                                    if (HERE / golden_name(s)).with_suffix(".samples").is_file()])
def test_the_import_behaves_as_the_source_server_does(source: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """NAME.samples: what IIS or Apache does with these requests (``--check`` lines),
    replayed through the golden TOML with ``portico try``'s evaluation."""
    # try builds the gateway per request, with a TLS context (0.1 s: the system CA
    # store) per https origin; the evaluation never uses it, so one is made per kind.
    made = tls_contexts.upstream_context
    monkeypatch.setattr(tls_contexts, "upstream_context", functools.cache(made))
    golden = HERE / golden_name(source)
    config_file = tmp_path / "imported.toml"
    config_file.write_text(golden.read_text("utf-8").replace("$HERE", str(HERE)), "utf-8")
    samples_file = golden.with_suffix(".samples")
    samples = parse_samples(samples_file.read_text("utf-8"), samples_file.name)

    def evaluate(method: str, target: str) -> Outcome:
        return try_evaluate(str(config_file), method, target, [], "127.0.0.1")[0]

    failed = [f"line {v.sample.line}: {v.sample.method} {v.sample.target}: expected "
              f"{v.sample.text}, got {v.got}" for v in check_samples(samples, evaluate)
              if not v.passed]
    assert not failed, "\n".join(failed)


def test_every_golden_toml_has_its_source() -> None:
    sources = {golden_name(name) for name in IIS + APACHE}
    stale = {path.name for path in HERE.glob("*.toml")} - sources
    assert not stale, f"golden files without a source: {sorted(stale)}"
