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

.PHONY: install run test bench clean

install: $(STAMP)

# torch first, pinned: the CPU build lies on this disk; a looser pin pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0 $(QUIET_PIP)
	$(PY) -m pip install -q -e '.[dev]' $(QUIET_PIP)
	touch $(STAMP)

run: install
	$(PY) -m jobs.enhance $(ARGS)

# pytest exits 5 when it collects nothing: that is a failure of this target too, but say so.
test: install
	rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

bench: install
	$(PY) -m jobs.benchmark --suite standard

clean:
	rm -rf out .pytest_cache
