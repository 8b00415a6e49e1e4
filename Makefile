# coapy_micro: every target sets up what it needs (a .venv with the pinned
# test dependencies, the MicroPython VM from npm) on first use.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
MPVM := tools/mpvm

.PHONY: all setup test bench demo board clean

all: test

setup: $(VENV)/.installed $(MPVM)/node_modules/.installed

$(VENV)/.installed: requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements-test.txt
	touch $@

# npm ci installs exactly what package-lock.json pins.
$(MPVM)/node_modules/.installed: $(MPVM)/package.json $(MPVM)/package-lock.json
	cd $(MPVM) && npm ci --no-audit --no-fund
	touch $@

# Every test, on CPython and (through tests/test_micropython_vm.py) on the
# real MicroPython VM.
test: setup
	$(VPY) -m pytest -q

# MicroPython pitfalls in the code that runs on boards (`python3
# tools/upy_lint.py --rules` lists what is checked, and why). Standard
# library only: no set-up needed.
.PHONY: lint
lint:
	$(PYTHON) tools/upy_lint.py coapy_micro ports

bench: setup
	$(VPY) tools/bench_codec.py
	$(VPY) tools/bench_server.py

# The main job: a sensor node and a gateway talking CoAP over loopback.
# Standard library only, so it needs no set-up.
demo:
	$(PYTHON) tools/demo.py

# What to copy to a board: coapy_micro compiled with mpy-cross (host-only
# modules left out) and ports/common/*.py, in build/board/.
board: setup
	$(VPY) tools/build_board.py

clean:
	rm -rf $(VENV) $(MPVM)/node_modules .pytest_cache .hypothesis build/board
