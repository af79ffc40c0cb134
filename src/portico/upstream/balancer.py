"""How a balanced route picks one of its backends: one small class per ``balance`` policy.

Each policy picks among the members that are available now (``upstream/health.py``
decides that), so a backend that is down is skipped and its share goes to the
others. The hash policies use rendezvous hashing (highest random weight): each
member scores ``-weight / ln(h)``, ``h`` a hash of the key and the member, and
the highest wins, so removing one backend moves only the keys it had. Policies
that draw lots take a ``random.Random`` (seeded in tests).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from portico.http.events import Headers, Request
from portico.upstream.backend import Backend

if TYPE_CHECKING:
    from portico.policy.context import RequestFacts
    from portico.upstream.probes import CheckState

_SCALE: Final = float(2**64)


class Member:
    """A backend as one route balances over it: its weight and stable identity."""

    __slots__ = ("backend", "check", "current", "ident", "weight")

    def __init__(self, backend: Backend, weight: int = 1, check: CheckState | None = None
                 ) -> None:
        self.backend = backend
        self.weight = weight
        self.check = check  # the route's active check's verdict for it, if it has one
        self.current = 0  # smooth weighted round robin's running weight
        scheme, host, port, _ = backend.key
        self.ident = hashlib.blake2b(f"{scheme}://{host}:{port}".encode(),
                                     digest_size=6).hexdigest().encode("ascii")


class Policy:
    def pick(self, members: Sequence[Member], request: Request, facts: RequestFacts) -> Member:
        """One of ``members`` (never empty: the available ones)."""
        raise NotImplementedError


class RoundRobin(Policy):
    """Weighted, smooth (nginx's): weights 1 and 3 give a b b a b b..., not a a b b b b."""

    def pick(self, members: Sequence[Member], request: Request, facts: RequestFacts) -> Member:
        total = 0
        best = members[0]
        for member in members:
            member.current += member.weight
            total += member.weight
            if member.current > best.current:
                best = member
        best.current -= total
        return best


class First(Policy):
    """Failover order: the first available in the route's list."""

    def pick(self, members: Sequence[Member], request: Request, facts: RequestFacts) -> Member:
        return members[0]


class LeastConn(Policy):
    """Fewest requests in flight for its weight; ties drawn at random."""

    __slots__ = ("rng",)

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, members: Sequence[Member], request: Request, facts: RequestFacts) -> Member:
        best: list[Member] = []
        low = math.inf
        for member in members:
            load = member.backend.in_flight / member.weight
            if load < low:
                low, best = load, [member]
            elif load == low:
                best.append(member)
        return best[0] if len(best) == 1 else self.rng.choice(best)


class RandomTwo(Policy):
    """Power of two choices: two members at random, the one with fewer requests in flight."""

    __slots__ = ("rng",)

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, members: Sequence[Member], request: Request, facts: RequestFacts) -> Member:
        if len(members) == 1:
            return members[0]
        first, second = self.rng.sample(members, 2)
        if second.backend.in_flight < first.backend.in_flight:
            return second
        return first


class Hashed(Policy):
    """Rendezvous hashing of a request key; a request without one goes round robin."""

    __slots__ = ("fallback",)

    def __init__(self) -> None:
        self.fallback = RoundRobin()

    def key(self, request: Request, facts: RequestFacts) -> bytes | None:
        raise NotImplementedError

    def pick(self, members: Sequence[Member], request: Request, facts: RequestFacts) -> Member:
        key = self.key(request, facts)
        if key is None:
            return self.fallback.pick(members, request, facts)
        return rendezvous(key, members)


class IpHash(Hashed):
    def key(self, request: Request, facts: RequestFacts) -> bytes | None:
        return facts.remote_addr


class UriHash(Hashed):
    def key(self, request: Request, facts: RequestFacts) -> bytes | None:
        return request.target


class HeaderHash(Hashed):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name.lower().encode("latin-1")

    def key(self, request: Request, facts: RequestFacts) -> bytes | None:
        value = request.get(self.name)
        return value or None


class Sticky(Policy):
    """``cookie``: a request whose signed cookie names an available member goes there;
    any other is placed round robin and gets the cookie with its answer (``stamp``)."""

    __slots__ = ("cookie", "fallback", "secret")

    def __init__(self, cookie: str, secret: bytes) -> None:
        self.cookie = cookie.encode("latin-1")
        self.secret = secret
        self.fallback = RoundRobin()

    def pick(self, members: Sequence[Member], request: Request, facts: RequestFacts) -> Member:
        wanted = self.pinned(request)
        if wanted is not None:
            for member in members:
                if member.ident == wanted:
                    return member
        return self.fallback.pick(members, request, facts)

    def sign(self, ident: bytes) -> bytes:
        mac = hmac.new(self.secret, ident, hashlib.sha256).hexdigest()[:16]
        return ident + b"." + mac.encode("ascii")

    def pinned(self, request: Request) -> bytes | None:
        """The member identity the request's cookie names, if its signature holds."""
        value = cookie_value(request.get(b"cookie"), self.cookie)
        if value is None:
            return None
        ident, _, _ = value.partition(b".")
        return ident if hmac.compare_digest(self.sign(ident), value) else None

    def stamp(self, headers: Headers, request: Request, backend: Backend) -> Headers:
        """The response's fields, with the cookie if the request did not name ``backend``."""
        ident = Member(backend).ident
        if self.pinned(request) != ident:
            headers.append((b"Set-Cookie", self.cookie + b"=" + self.sign(ident)
                            + b"; Path=/; HttpOnly; SameSite=Lax"))
        return headers


def rendezvous(key: bytes, members: Sequence[Member]) -> Member:
    """The member with the highest weighted score for ``key``."""
    best, top = members[0], -math.inf
    for member in members:
        digest = hashlib.blake2b(key + b"|" + member.ident, digest_size=8).digest()
        h = (int.from_bytes(digest, "big") + 1) / (_SCALE + 1)  # in (0, 1)
        score = -member.weight / math.log(h)
        if score > top:
            best, top = member, score
    return best


def cookie_value(header: bytes, name: bytes) -> bytes | None:
    """The value of cookie ``name`` in a Cookie field, or None."""
    if not header:
        return None
    for part in header.split(b";"):
        key, sep, value = part.strip().partition(b"=")
        if sep and key == name:
            return value
    return None


def make_policy(name: str, key: str, secret: bytes, rng: random.Random) -> Policy:
    """The policy called ``name`` (a ``balance`` value), ``key`` its header or cookie."""
    if name == "round_robin":
        return RoundRobin()
    if name == "least_conn":
        return LeastConn(rng)
    if name == "random_two":
        return RandomTwo(rng)
    if name == "first":
        return First()
    if name == "ip_hash":
        return IpHash()
    if name == "uri_hash":
        return UriHash()
    if name == "header":
        return HeaderHash(key)
    if name == "cookie":
        return Sticky(key, secret)
    raise ValueError(f"unknown balance policy {name!r}")
