# Two commands do all set-up on a fresh machine:
#   make run    - install, then enhance the bundled sample into ./out
#   make test   - install, then the whole test suite
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# This machine's pip config lists local indexes that may be absent: drop that noise only.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: install browser run test bench clean

install: $(STAMP)

# torch first, pinned: the CPU build lies on this disk; a looser pin pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0 $(QUIET_PIP)
	$(PY) -m pip install -q -e '.[dev,bench]' $(QUIET_PIP)
	touch $(STAMP)

# The report's screenshot test (tests/test_report.py) renders it in headless Chromium: the
# Debian packages, installed once where apt-get can run as root (directly or through sudo).
# Where it cannot, say why and go on: the test then fails saying so (IMGENHANCE_NO_BROWSER=1 skips it).
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
browser:
	@if command -v chromium >/dev/null; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "make browser: chromium missing and no apt-get here: install chromium yourself"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "make browser: chromium missing and not root, no password-less sudo: run 'sudo apt-get install chromium chromium-driver'"; exit 0; fi; \
	echo "make browser: installing chromium chromium-driver with apt-get"; \
	$$SUDO env $(APT_INSTALL) >/dev/null || { $$SUDO apt-get update -q >/dev/null && $$SUDO env $(APT_INSTALL) >/dev/null; } \
	  || echo "make browser: apt-get could not install chromium chromium-driver (see the messages above)"

run: install
	$(PY) -m jobs.enhance $(ARGS)

# pytest exits 5 when it collects nothing: that is a failure of this target too, but say so.
test: install browser
	rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

bench: install
	$(PY) -m jobs.benchmark --suite standard

clean:
	rm -rf out .pytest_cache
