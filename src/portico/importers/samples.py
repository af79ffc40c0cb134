"""``--check samples.txt``: expected outcomes replayed through the imported config.

One sample a line, ``#`` comments::

    GET /old/1 -> 301 https://example.com/new/1     a redirect: status and Location
    GET /myApp/x -> /myApp/x                       the path (and query) sent upstream
    GET http://a.example/x -> http://10.0.0.5/x    the absolute upstream URL; Host a.example
    GET /private -> 403                            a status portico answers with itself
    GET /bots -> abort                             the connection is closed

The outcome comes from the same evaluation ``portico try`` prints (its JSON fields),
so the check needs no network. ``--against URL`` asks the old server the same
requests and compares status and Location with what portico would answer.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

Outcome = Mapping[str, object]
"""``portico try --json``'s object: action, url, upstream_url, status, location, ..."""
Evaluate = Callable[[str, str], Outcome]
"""(method, path or absolute URL) → outcome."""

_LINE = re.compile(r"(?P<method>[A-Z]+)\s+(?P<target>\S+)\s+->\s+(?P<expect>.+?)\s*\Z")


@dataclass(frozen=True)
class Sample:
    line: int
    method: str
    target: str
    """A path (``/x?q``) or an absolute URL, whose host is sent as Host."""
    status: int | None = None
    location: str | None = None
    forwarded: str | None = None
    """The path or absolute URL portico should send upstream."""
    abort: bool = False

    @property
    def text(self) -> str:
        if self.abort:
            return "abort"
        parts = [str(self.status)] if self.status is not None else []
        parts += [p for p in (self.location, self.forwarded) if p]
        return " ".join(parts)


@dataclass(frozen=True)
class Verdict:
    sample: Sample
    got: str
    passed: bool


class SampleError(ValueError):
    pass


def parse_samples(text: str, name: str) -> list[Sample]:
    samples = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise SampleError(f"{name}:{number}: expected 'METHOD PATH -> EXPECTED', e.g. "
                              "'GET /old/1 -> 301 https://example.com/new/1'")
        expect = match.group("expect").split()
        target = match.group("target")
        if not (target.startswith("/") or re.match(r"https?://", target)):
            raise SampleError(f"{name}:{number}: {target!r}: use a path or an absolute URL")
        common = {"line": number, "method": match.group("method"), "target": target}
        if expect == ["abort"]:
            samples.append(Sample(**common, abort=True))  # type: ignore[arg-type]
        elif expect[0].isdigit() and len(expect) <= 2:
            status = int(expect[0])
            location = expect[1] if len(expect) == 2 else None
            samples.append(Sample(**common, status=status, location=location))  # type: ignore[arg-type]
        elif len(expect) == 1:
            samples.append(Sample(**common, forwarded=expect[0]))  # type: ignore[arg-type]
        else:
            raise SampleError(f"{name}:{number}: expected a status [Location], a path, an "
                              "absolute URL or 'abort' after '->'")
    return samples


def request_of(sample: Sample) -> tuple[str, dict[str, str]]:
    """The path to ask for and the headers (Host from an absolute sample URL)."""
    parts = urlsplit(sample.target)
    if parts.scheme:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return path, {"Host": parts.netloc}
    return sample.target, {}


def describe(outcome: Outcome) -> str:
    """An outcome in the sample's own notation."""
    action = outcome.get("action")
    if action == "abort":
        return "abort"
    if action == "proxy":
        return str(outcome.get("upstream_url"))
    parts = [str(outcome.get("status"))]
    if outcome.get("location"):
        parts.append(str(outcome["location"]))
    return " ".join(parts)


def judge(sample: Sample, outcome: Outcome) -> Verdict:
    action = outcome.get("action")
    got = describe(outcome)
    if sample.abort:
        return Verdict(sample, got, action == "abort")
    if sample.forwarded is not None:
        upstream = str(outcome.get("upstream_url") or "")
        if action != "proxy":
            return Verdict(sample, got, False)
        if sample.forwarded.startswith("/"):
            parts = urlsplit(upstream)
            forwarded = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            return Verdict(sample, forwarded, forwarded == sample.forwarded)
        return Verdict(sample, upstream, upstream == sample.forwarded)
    status = outcome.get("status")
    if action == "proxy":
        return Verdict(sample, got, False)
    passed = status == sample.status and (
        sample.location is None or outcome.get("location") == sample.location)
    return Verdict(sample, got, passed)


def check_samples(samples: list[Sample], evaluate: Evaluate) -> list[Verdict]:
    return [judge(sample, evaluate(sample.method, sample.target)) for sample in samples]


def outcomes_of(samples: list[Sample], evaluate: Evaluate) -> list[Outcome]:
    return [evaluate(sample.method, sample.target) for sample in samples]


def ask_live(base: str, sample: Sample, timeout: float = 10.0) -> tuple[int | None, str | None]:
    """Status and Location of the old server's answer (no redirect followed)."""
    parts = urlsplit(base)
    path, headers = request_of(sample)
    connection_type = (http.client.HTTPSConnection if parts.scheme == "https"
                       else http.client.HTTPConnection)
    connection = connection_type(parts.netloc, timeout=timeout)
    try:
        connection.request(sample.method, path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Location")
    except OSError:
        return None, None
    finally:
        connection.close()


def compare_live(samples: list[Sample], outcomes: list[Outcome], base: str) -> list[Verdict]:
    """The old server's status and Location against portico's own answer (``outcomes``,
    one per sample, as ``evaluate`` gave them for ``check_samples``).

    A request portico proxies is compared by status only when the old server
    answered it itself (not 3xx): the upstream decides that status in both.
    """
    verdicts = []
    for sample, outcome in zip(samples, outcomes, strict=True):
        status, location = ask_live(base, sample)
        old = "no answer" if status is None else f"{status} {location or ''}".strip()
        if outcome.get("action") == "proxy":
            passed = status is not None and not 300 <= status <= 399
        elif outcome.get("action") == "abort":
            passed = status is None
        else:
            passed = status == outcome.get("status") and (
                location or None) == (outcome.get("location") or None)
        verdicts.append(Verdict(Sample(sample.line, sample.method, sample.target,
                                       forwarded=old), describe(outcome), passed))
    return verdicts
