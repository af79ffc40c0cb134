# make demo  - set up and serve the Apache guide's Flask app at http://127.0.0.1:8080/myapp/
# make test  - set up and run every test (lint, types, unit, integration), one of them
#              from the installed wheel (make wheel); load runs are left to make test-long
# make wheel - the sdist and the compiled wheel in build/dist, the wheel installed with
#              its apps extra in build/wheel-venv
# make bench - nginx, HAProxy and portico in front of one origin (installs what it needs)
# make fuzz  - property tests at 20,000 examples, then the request-path fuzzer (FUZZ_SECONDS)
# make soak  - 5 minutes of mixed traffic to a real gunicorn app: errors, RSS and fds

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup wheel demo test test-long test-deps lint unit bench bench-deps bench-budget fuzz soak clean \
        metrics-deps ui-deps test-ui bench-balancing bench-websocket autobahn bench-rules \
        test-deps-http2 bench-http2

$(STAMP): pyproject.toml setup.py Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77"
	PORTICO_PURE=1 $(BIN)/python -m pip install -q -e '.[apps,test]'
	@touch $(STAMP)

# The request path compiled in place with mypyc (setup.py), again whenever a source
# changes. PORTICO_PURE=1 removes the compiled modules and runs pure Python instead.
# (`pip install -e .` alone compiles in place too; here the install above stays pure
# so that a changed source needs only this step, not a reinstall.)
COMPILED := src/portico/.compiled-stamp
SOURCES  := $(wildcard src/portico/*.py src/portico/*/*.py)
ifeq ($(PORTICO_PURE),)
$(COMPILED): $(STAMP) $(SOURCES) setup.py
	find src -name '*.so' -delete
	$(BIN)/python setup.py -q build_ext --inplace
	@touch $(COMPILED)
else
$(COMPILED): FORCE
	find src -name '*.so' -delete
	rm -f $(COMPILED)
endif
FORCE:

setup: $(STAMP) $(COMPILED)

# The wheel as a user gets it: `python -m build` (the sdist, then the wheel built from
# it in build isolation, compiled even under PORTICO_PURE=1, which is for the checkout)
# into build/dist, installed with the apps extra into a venv of its own,
# build/wheel-venv; again whenever a source or the build changes.
# tests/integration/test_installed.py runs that copy (PORTICO_WHEEL_VENV).
WHEEL_VENV  := build/wheel-venv
WHEEL_STAMP := $(WHEEL_VENV)/.installed-stamp
$(WHEEL_STAMP): $(SOURCES) src/portico/config/default.toml setup.py pyproject.toml README.md | $(STAMP)
	rm -rf build/dist $(WHEEL_VENV)
	env -u PORTICO_PURE $(BIN)/python -m build -q -o build/dist .
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install -q "$$(ls build/dist/*.whl)[apps]"
	@touch $(WHEEL_STAMP)

wheel: $(WHEEL_STAMP)

demo: setup
	$(BIN)/portico run

lint: setup
	$(BIN)/ruff check src tests bench examples fuzz soak
	$(BIN)/mypy

# ip (network namespaces for the two-host test) and systemd-analyze (unit check);
# the tests that need them skip, saying why, where they cannot be installed.
test-deps:
	@command -v ip >/dev/null && command -v systemd-analyze >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive \
	   apt-get install -y -qq --no-install-recommends iproute2 systemd) || \
	  echo "make: could not install iproute2/systemd; their tests will skip"

# Three pytest processes (pytest-xdist): most tests wait on sockets and child
# processes, so even two cores run them about twice as fast as one process.
TEST_PROCESSES ?= 3
test: lint test-deps metrics-deps wheel
	PORTICO_WHEEL_VENV=$(abspath $(WHEEL_VENV)) $(BIN)/python -m pytest -q -m "not long" \
	  -n $(TEST_PROCESSES)

# The load runs and full conformance suites (tests marked `long`) that would take
# make test past its ten minutes.
test-long: setup test-deps ui-deps
	$(BIN)/python -m pytest -q -m long

# Hypothesis properties with 20,000 examples each, then the in-process request-path
# fuzzer for FUZZ_SECONDS (default 120).
FUZZ_SECONDS ?= 120
fuzz: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider --hypothesis-profile=fuzz tests/unit/test_properties.py
	$(BIN)/python fuzz/request_path.py --seconds $(FUZZ_SECONDS)

# Mixed traffic through portico to a real gunicorn app for SOAK_SECONDS (default 300).
SOAK_SECONDS ?= 300
soak: setup
	$(BIN)/python soak/run.py --seconds $(SOAK_SECONDS)

bench-deps: setup
	@command -v nginx >/dev/null && command -v haproxy >/dev/null && command -v wrk >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive \
	   apt-get install -y -qq --no-install-recommends nginx-light haproxy wrk)
	@$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install -q matplotlib

# nginx, HAProxy and portico side by side (about 20 minutes; BENCH_SECONDS and
# BENCH_ROUNDS shorten it). Table on stdout, JSON and PNG in bench/results/.
bench: setup bench-deps
	cd bench && ../$(BIN)/python run.py
	cd bench && ../$(BIN)/python rules.py --wrk

# The user time per request a Python proxy may spend on features and still reach
# 0.8x nginx here (the floor with added busy time; about 5 minutes).
bench-budget: setup bench-deps
	cd bench && ../$(BIN)/python budget.py

clean:
	find src -name '*.so' -delete
	rm -rf $(VENV) build $(COMPILED) *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

# A route with four backends and an active health check against a one-upstream route,
# the same portico, the same run (bench/balancing.py; the bar: at most 3% req/s).
bench-balancing: setup bench-deps
	cd bench && ../$(BIN)/python balancing.py

# promtool (Debian's prometheus package) for the metrics tests, which skip without it.
metrics-deps:
	@command -v promtool >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive \
	   apt-get install -y -qq --no-install-recommends prometheus) || \
	  echo "metrics-deps: could not install prometheus (promtool); the promtool checks skip"

# Browser tests (tests/browser, `long`): Debian's chromium, driven by Playwright from PyPI.
ui-deps:
	@command -v chromium >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive \
	   apt-get install -y -qq --no-install-recommends chromium) || \
	  echo "ui-deps: could not install chromium; tests/browser will skip"

test-ui: setup ui-deps
	$(BIN)/python -m pytest -q tests/browser

# WebSocket echo messages/s through portico and nginx, same backend, same run (issue 17).
bench-websocket: bench-deps
	cd bench && ../$(BIN)/python websocket.py

# The whole Autobahn|Testsuite (kosoku) directly and through portico: same result per
# case (AUTOBAHN_CASES="*,!9.*" to narrow it). A subset runs in make test.
autobahn: setup
	$(BIN)/python -m pytest -q -m long -k autobahn tests/integration/test_websocket.py

# HTTP/2: curl (tests/integration/test_http2.py) and h2load (bench/http2.py); the tests
# that need one skip, saying why, where it cannot be installed.
test-deps-http2:
	@command -v curl >/dev/null && command -v h2load >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive \
	   apt-get install -y -qq --no-install-recommends curl nghttp2-client) || \
	  echo "make: could not install curl/nghttp2-client; their HTTP/2 tests will skip"
test: test-deps-http2
bench-deps: test-deps-http2

# h2load -c 10 -m 10 small GETs through portico (h2c) and nginx (h2 over TLS) to one backend.
bench-http2: setup bench-deps
	cd bench && ../$(BIN)/python http2.py

# 20 rewrite rules on a route against none, same run (issue 20: at most 5% of req/s):
# in process by CPU time, then with wrk against two real portico processes.
bench-rules: setup bench-deps
	cd bench && ../$(BIN)/python rules.py --wrk
