"""Check a config text with the model the file is checked with, every error at its key.

In the lean serving process (server/main.py: no pydantic there) the check runs in a
short-lived child, ``python -m portico.admin.validate NAME`` (the text on stdin, the
errors as JSON on stdout), as a reload's does (config/prepare.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

CHECK_TIMEOUT = 30.0


def errors_of(text: str, name: str) -> list[dict[str, str]]:
    """``[{"key": "route[0].upstream", "message": ...}]``; empty when the text is valid."""
    import tomllib

    from pydantic import ValidationError

    from portico.config.load import describe
    from portico.config.schema import Config
    from portico.errors import key_path

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [{"key": "", "message": f"not valid TOML: {exc}"}]
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        return [{"key": key_path(tuple(error["loc"])), "message": describe(error, data)}
                for error in exc.errors()]
    return []


async def validate(text: str, name: str, in_process: bool) -> list[dict[str, str]]:
    if in_process:
        return errors_of(text, name)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portico.admin.validate", name,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(child.communicate(text.encode()), CHECK_TIMEOUT)
    except TimeoutError:
        child.kill()
        await child.wait()
        return [{"key": "", "message": f"the config check took over {CHECK_TIMEOUT:g}s"}]
    try:
        answer: list[dict[str, str]] = json.loads(out)
    except ValueError:
        return [{"key": "", "message": f"the config check failed (exit status "
                                       f"{child.returncode})"}]
    return answer


def main() -> int:
    answer: Any = errors_of(sys.stdin.buffer.read().decode("utf-8", "replace"), sys.argv[1])
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
