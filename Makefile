# Two commands for a fresh machine (see README.md):
#   make run    install everything and run the example on this machine
#   make test   install the test dependencies (Debian packages included) and run the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the test suite needs; installed with apt-get only when missing.
DEBIAN_PACKAGES ?= globus-gridftp-server-progs globus-gass-copy-progs globus-proxy-utils globus-gsi-cert-utils-progs openssl chromium bubblewrap busybox-static slurm-wlm munge strace
STAMP := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run pilot-bundle test install test-deps debian-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# setuptools warns on every editable install that a folder named like the
# package may shadow it; that is the point of an editable install, so quiet it.
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

debian-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

test-deps: install debian-deps

test: test-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The server (SQLite in ./frazil-data, local pilots) with the example datasets;
# serves until Ctrl-C. RUN_ARGS: e.g. --port 9000, --cpus 8, --no-serve, --provider slurm.
run: install
	$(BIN)/python examples/run_demo.py $(RUN_ARGS)

# A self-contained pilot for grid workers without frazil installed (docs/operators.md).
pilot-bundle: install
	$(BIN)/python -m server.provisioning.bundle --output build/frazil-pilot.pyz

clean:
	rm -rf $(VENV) frazil-data build *.egg-info
