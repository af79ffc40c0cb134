"""Build hook: compile the request path with mypyc when it can.

The modules in ``REQUEST_PATH`` are plain, strictly typed Python. mypyc (part of
mypy) turns them into C extensions that run the same code about twice as fast
(docs/performance.md). Without mypyc or a C compiler, or with ``PORTICO_PURE=1``,
portico installs as pure Python and behaves the same.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

REQUEST_PATH = [
    "src/portico/http/events.py",
    "src/portico/http/headers.py",
    "src/portico/http/limits.py",
    "src/portico/http/heads.py",
    "src/portico/http/parser.py",
    "src/portico/http/response_parser.py",
    "src/portico/http/validate.py",
    "src/portico/http/writer.py",
    "src/portico/policy/context.py",
    "src/portico/policy/forwarded.py",
    "src/portico/policy/header_ops.py",
    "src/portico/proxy/accesslog.py",
    "src/portico/proxy/exchange.py",
    "src/portico/proxy/framing.py",
    "src/portico/proxy/gateway.py",
    "src/portico/proxy/route_policy.py",
    "src/portico/routing/path.py",
    "src/portico/routing/proxypass.py",
    "src/portico/routing/table.py",
    "src/portico/server/protocol.py",
    "src/portico/upstream/connection.py",
    "src/portico/upstream/pool.py",
]


def compiled_request_path() -> list[Extension]:
    if os.environ.get("PORTICO_PURE"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    extensions: list[Extension] = mypycify(REQUEST_PATH, opt_level="3", debug_level="0")
    for extension in extensions:
        extension.optional = True  # no compiler: install the pure-Python modules instead
    return extensions


setup(ext_modules=compiled_request_path())
