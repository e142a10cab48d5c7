# printfarm developer entry points (GNU make). `make help` lists them.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
PY := .venv/bin/python

# Use the Python found here; never let uv download an interpreter of its own.
export UV_PYTHON_DOWNLOADS := never

empty :=
space := $(empty) $(empty)
TEST_PATHS = $(wildcard libs/*/tests services/*/tests tools/*/tests) tests
SRC_DIRS = $(patsubst %/,%,$(wildcard libs/*/src/ services/*/src/ tools/*/src/))
PACKAGES = $(notdir $(patsubst %/,%,$(wildcard $(addsuffix /*/,$(SRC_DIRS)))))
BENCH ?= $(wildcard bench/*.py)

.PHONY: help install run smoke test lint bench chaos clean distclean check-python test-tools run-tools deploy-check

help:
	@echo "make install    create .venv from uv.lock (idempotent; first run also installs uv into .tools)"
	@echo "make run        start the whole stack locally (API on http://127.0.0.1:8080); ARGS='...' go to devstack"
	@echo "make smoke      walk one order through a running stack's public API (PORT, API, API_TOKEN as for make run)"
	@echo "make test       run every test: libs, services, tools and tests/ (integration starts its own stack)"
	@echo "make lint       ruff and mypy --strict over every src folder"
	@echo "make deploy-check  render and validate the Kubernetes manifests, lint Dockerfiles and YAML"
	@echo "make bench      run each bench/*.py script (they print figures); BENCH=bench/x.py runs one"
	@echo "make chaos      60 jobs on 8 printers while every process is killed (tools/chaos); SEED=\"1 2 3\" runs those seeds"
	@echo "make clean      remove caches and the dev stack's data (.data)"
	@echo "make distclean  clean, and remove .venv and .tools too"

check-python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "make: '$(PYTHON)' is not on PATH. Install Python 3.11 or newer, or run make PYTHON=/path/to/python3.11" >&2; \
	  exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "make: printfarm needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) -V 2>&1)." \
	       "Run make PYTHON=/path/to/python3.11" >&2; \
	  exit 1; }

$(UV): | check-python
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: check-python $(UV)
	$(UV) sync --all-packages --frozen

# Compiled as for the tests (below): a service restarted after a crash loads bytecode instead of compiling
# everything it imports again (a killed queue took 17 s to come back on a busy machine).
run: export UV_COMPILE_BYTECODE := 1
run: install run-tools
	$(PY) -m compileall -q $(SRC_DIRS)
	$(PY) -m devstack run $(ARGS)

# Our own outside client (standard library only) against a stack that is up: `make run` in another
# terminal, with the same PORT / DEVSTACK_DATA_DIR, or API=<url> API_TOKEN=<token> for any deployment.
smoke: install
	$(PY) tests/smoke/smoke_client.py

# System programs installed with apt-get as root on Debian/Ubuntu when missing; elsewhere the missing ones
# are named once, with what that costs. $(1): the programs as <command>:<Debian package> (or one name when
# both are the same), $(2): for what, $(3): what happens without them.
define system_tools
	@missing=""; for pair in $(1); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing$$missing for $(2) (apt-get)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
	      || echo "make: could not install$$missing; $(3)" >&2; \
	  else \
	    echo "make: not on PATH:$$missing; $(3) (install them with your package manager)" >&2; \
	  fi; \
	fi
endef

# The slicer renders OpenSCAD parts and slices STL/3MF with PrusaSlicer (Debian: `openscad`, `prusa-slicer`).
SLICER_TOOLS := openscad prusa-slicer
# The printer gateway decodes X1/H2 cameras' H.264 video with the ffmpeg CLI (Debian: `ffmpeg`).
GATEWAY_TOOLS := ffmpeg

run-tools:
	$(call system_tools,$(SLICER_TOOLS),the slicer,the slicer answers slice requests that need them with the tool's error)
	$(call system_tools,$(GATEWAY_TOOLS),the printer gateway,X1/H2 camera views answer 409 saying no decoder is installed)

# What the tests use when present: Chromium (browser tests), OpenSCAD (the real render check of .scad
# parts), PrusaSlicer (the slicer's pipeline and service tests), strace (the OpenSCAD sandbox test watches
# which files the real binary opens), promtool (Debian package prometheus: the alert rules' checks and
# unit tests) and ffmpeg (the X1/H2 camera tests decode the simulator's RTSPS stream). Without them those
# tests are skipped with a message and .scad uploads are accepted as "not rendered".
SYSTEM_TEST_TOOLS := chromium openscad prusa-slicer strace promtool:prometheus ffmpeg

test-tools:
	$(call system_tools,$(SYSTEM_TEST_TOOLS),the tests,the tests that need them adapt or are skipped)

deploy-check: install
	$(PY) -m pytest -q tests/deploy

# The suite starts well over a hundred Python processes (each test stack's services, the simulator, restarts,
# CLI runs). Where PYTHONDONTWRITEBYTECODE is set (as on these shared machines), each one compiled every module
# again (about half of a service's start-up); compiled once here, before pytest, they load bytecode instead.
#
# Three pytest processes at once, each a third of the suite's time on one process: the tests that use the
# session's whole stack (one stack, started once, its tests one after another, most of their time spent waiting
# on simulated prints and restarts), the other tests under tests/ (integration tests with stacks of their own)
# and the libraries', services' and tools' own tests (mostly CPU). The last two reports follow the first's.
# `--session-stack` is tests/conftest.py's option (the session's stack is a fixture of tests/ only).
PYTEST_ARGS = -q -rfE --tb=short --durations=30
OWN_TEST_PATHS = $(filter-out tests,$(TEST_PATHS))
test: export UV_COMPILE_BYTECODE := 1
test: install test-tools
	$(PY) -m compileall -q $(SRC_DIRS) $(TEST_PATHS)
	@logs=$$(mktemp -d); trap 'rm -rf "$$logs"' EXIT; \
	( trap - INT; exec $(PY) -m pytest $(PYTEST_ARGS) --session-stack=without tests >"$$logs/own-stacks" 2>&1 ) & \
	own_stacks=$$!; \
	( trap - INT; exec $(PY) -m pytest $(PYTEST_ARGS) $(OWN_TEST_PATHS) >"$$logs/own-tests" 2>&1 ) & \
	own_tests=$$!; \
	rc=0; $(PY) -m pytest $(PYTEST_ARGS) --session-stack=only tests || rc=$$?; \
	rc_stacks=0; wait $$own_stacks || rc_stacks=$$?; rc_own=0; wait $$own_tests || rc_own=$$?; \
	echo; echo "== make test: the tests under tests/ without the session's stack (run at the same time)"; \
	cat "$$logs/own-stacks"; \
	echo; echo "== make test: $(OWN_TEST_PATHS) (run at the same time)"; cat "$$logs/own-tests"; \
	if [ $$rc -eq 5 ] && [ $$rc_stacks -eq 5 ] && [ $$rc_own -eq 5 ]; then \
	  echo "make test: pytest collected no tests in $(TEST_PATHS)" >&2; exit 5; fi; \
	for code in $$rc $$rc_stacks $$rc_own; do [ $$code -eq 0 ] || [ $$code -eq 5 ] || exit $$code; done

lint: install
	$(PY) -m ruff check $(SRC_DIRS)
	MYPYPATH=$(subst $(space),:,$(SRC_DIRS)) $(PY) -m mypy --strict $(addprefix -p ,$(PACKAGES))

bench: install
	@if [ -z "$(BENCH)" ]; then echo "make bench: no bench/*.py scripts yet" >&2; exit 1; fi
	@for script in $(BENCH); do echo "== $$script"; $(PY) $$script; done

# One summary line per seed; without SEED a random one (printed, so `make chaos SEED=n` replays it).
chaos: install
	$(PY) -m chaos $(foreach seed,$(SEED),--seed $(seed)) $(ARGS)

clean:
	@if [ -e .data/devstack.lock ] && ! flock --nonblock .data/devstack.lock true; then \
	  echo "make clean: a dev stack is running on .data; stop it first (.venv/bin/python -m devstack down)" >&2; \
	  exit 1; fi
	rm -rf .data .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -not -path './.venv/*' -not -path './.tools/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf .venv .tools
