"""Config types for upgrade tunnels (WebSocket): the ``upgrades`` list of a route's limits."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:/[!#$%&'*+.^_`|~0-9A-Za-z-]+)?\Z")


def check_protocols(protocols: tuple[str, ...]) -> tuple[str, ...]:
    """Upgrade protocol names (RFC 9110 §7.8 tokens), lower-cased; [] turns upgrades off."""
    for name in protocols:
        if not _TOKEN.match(name):
            raise ValueError(
                f"invalid upgrade protocol {name!r}: use a protocol name as it appears in "
                "the Upgrade header, e.g. [\"websocket\"] (or [] for none)"
            )
    return tuple(name.lower() for name in protocols)


Protocols = Annotated[tuple[str, ...], AfterValidator(check_protocols)]
