"""Build hook: compile the request path with mypyc when it can.

The modules in ``REQUEST_PATH`` are plain, strictly typed Python. mypyc (part of
mypy, a build requirement in pyproject.toml) turns them into C extensions that run
the same code about three times faster (docs/performance.md). The build is all or
nothing: without a C compiler (or when it fails), without mypyc, or with
``PORTICO_PURE=1``, portico installs as pure Python, says so in one line, and
behaves the same. ``portico --version`` says which one is installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist
from setuptools.errors import BaseError, CCompilerError

REQUEST_PATH = [
    "src/portico/http/events.py",
    "src/portico/http/headers.py",
    "src/portico/http/heads.py",
    "src/portico/http/limits.py",
    "src/portico/http/parser.py",
    "src/portico/http/response_parser.py",
    "src/portico/http/validate.py",
    "src/portico/http/writer.py",
    "src/portico/metrics/counters.py",
    "src/portico/policy/access.py",
    "src/portico/policy/basic_auth.py",
    "src/portico/policy/context.py",
    "src/portico/policy/forwarded.py",
    "src/portico/policy/header_ops.py",
    "src/portico/policy/redirect.py",
    "src/portico/policy/static_files.py",
    "src/portico/proxy/access.py",
    "src/portico/proxy/accesslog.py",
    "src/portico/proxy/auth.py",
    "src/portico/proxy/compress.py",
    "src/portico/proxy/dispatch.py",
    "src/portico/proxy/downstream.py",
    "src/portico/proxy/exchange.py",
    "src/portico/proxy/framing.py",
    "src/portico/proxy/gateway.py",
    "src/portico/proxy/phases.py",
    "src/portico/proxy/redirect.py",
    "src/portico/proxy/rewrite.py",
    "src/portico/proxy/route_policy.py",
    "src/portico/proxy/static.py",
    "src/portico/proxy/tunnel.py",
    "src/portico/routing/outbound.py",
    "src/portico/routing/path.py",
    "src/portico/routing/patterns.py",
    "src/portico/routing/proxypass.py",
    "src/portico/routing/rules.py",
    "src/portico/routing/table.py",
    "src/portico/routing/templates.py",
    "src/portico/routing/variables.py",
    "src/portico/server/h2.py",
    "src/portico/server/h2_stream.py",
    "src/portico/server/protocol.py",
    "src/portico/settings.py",
    "src/portico/upstream/backend.py",
    "src/portico/upstream/balancer.py",
    "src/portico/upstream/connection.py",
    "src/portico/upstream/health.py",
    "src/portico/upstream/pool.py",
]

# mypy's options for compiling, apart from the development check (`make lint`, which
# reads [tool.mypy] with --strict and the pydantic plugin): the build environment holds
# only setuptools and mypy, and the compiled modules import neither pydantic nor any
# stubs, so the build reads no config file and does not check the modules it only
# follows (those `make lint` checks).
MYPYC_OPTIONS = ["--config-file=", "--ignore-missing-imports", "--follow-imports=silent"]

# Stands in for the compiled modules until build_ext runs: metadata, sdist and the
# other commands do not run mypyc, and the wheel is still tagged for this platform.
PENDING = Extension("portico._request_path_pending", sources=[])


def notice(message: str) -> None:
    print(f"portico: {message}", file=sys.stderr, flush=True)


class BuildRequestPath(build_ext):
    """build_ext that runs mypyc first and installs all of its modules or none."""

    def finalize_options(self) -> None:
        modules = self.distribution.ext_modules
        if modules == [PENDING]:
            from mypyc.build import mypycify

            modules[:] = mypycify(
                [*MYPYC_OPTIONS, *REQUEST_PATH], opt_level="3", debug_level="0"
            )
        super().finalize_options()

    def run(self) -> None:
        try:
            super().run()
        except (BaseError, CCompilerError) as exc:
            # A shim module without its shared library would fail to import: remove both.
            inplace, self.inplace = self.inplace, False
            for ext in self.extensions:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            self.inplace = inplace
            compiler = getattr(self.compiler, "compiler_so", None) or ["cc"]
            notice(f"the C compiler ({compiler[0]}) is missing or failed ({type(exc).__name__});"
                   " installing the request path as pure Python")
            self.extensions = []


class SourceDistribution(sdist):
    """sdist that lists the package's files and no generated C."""

    def _add_defaults_ext(self) -> None:
        """The compiled modules' sources are the .py files already in the sdist, and
        asking build_ext for them would run mypyc."""


def request_path() -> list[Extension]:
    if os.environ.get("PORTICO_PURE"):
        notice("PORTICO_PURE is set; installing the request path as pure Python")
        return []
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        notice("mypyc is not installed; installing the request path as pure Python")
        return []
    return [PENDING]


setup(
    ext_modules=request_path(),
    cmdclass={"build_ext": BuildRequestPath, "sdist": SourceDistribution},
)
