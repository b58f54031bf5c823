# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).
#
# "make" (or "make install") sets everything up: missing Debian packages
# (when run as root), the virtualenv in .venv, the project installed in
# editable mode with its dev and test extras, bin/test and bin/lp-oci.
# Repeated runs only re-check the Debian packages; the virtualenv is
# rebuilt when setup.cfg or pyproject.toml change.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VENV_ABS := $(abspath $(VENV))
STAMP := $(VENV)/.lp-oci-installed
PIP_FLAGS := --quiet --disable-pip-version-check --no-input
# Extra arguments for bin/test, e.g. make test TESTOPTS='-vv -t digest'.
TESTOPTS ?=
FORMAT_PATHS := lib tests bench fuzz

.DEFAULT_GOAL := install
.PHONY: install system-deps test run bench fuzz format lint clean distclean \
	upstream-check upstream-lp-test

install: $(STAMP) bin/test bin/lp-oci

system-deps:
	@PYTHON=$(PYTHON) configs/install-system-deps.sh

# The stamp lives inside the virtualenv so that removing .venv starts over.
$(STAMP): setup.cfg pyproject.toml | system-deps
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -e '.[dev,test]'
	@touch $@

bin/test: configs/bin-test.in $(STAMP)
	@mkdir -p bin
	@sed 's|@PYTHON@|$(VENV_ABS)/bin/python|' $< >$@.tmp
	@chmod 755 $@.tmp && mv $@.tmp $@

bin/lp-oci: configs/bin-lp-oci.in $(STAMP)
	@mkdir -p bin
	@sed 's|@VENV@|$(VENV_ABS)|' $< >$@.tmp
	@chmod 755 $@.tmp && mv $@.tmp $@

test: install
	bin/test $(TESTOPTS)

run: install
	bin/lp-oci run --sample

# The patch series under upstream/ applied to upstream's own trees from
# ../shared/upstream (or $LP_OCI_UPSTREAM_DIR), with upstream's own suite
# and linters (see README "Upstream patch series"); skipped where that
# folder is absent.  Its virtualenvs live in .venv-upstream/.
upstream-check: | system-deps
	$(PYTHON) upstream/check

# The benchmarks are not installed: run as modules from the top of the tree.
bench: install
	$(VENV)/bin/python -m bench.gather
	$(VENV)/bin/python -m bench.ingest
	$(VENV)/bin/python -m bench.upload
	$(VENV)/bin/python -m bench.export
	$(VENV)/bin/python -m bench.push
	$(VENV)/bin/python -m bench.webservice
	$(VENV)/bin/python -m bench.upstream

# Fuzzing (see README "Fuzzing"): the atheris harnesses under fuzz/ for
# FUZZ_SECONDS in all, then the hypothesis suites with FUZZ_SCALE times
# their CI examples.  atheris comes with the "fuzz" extra.
FUZZ_SECONDS ?= 180
FUZZ_SCALE ?= 20

fuzz: install
	@$(VENV)/bin/python -c 'import atheris' 2>/dev/null || \
		$(VENV)/bin/python -m pip install $(PIP_FLAGS) -e '.[fuzz]'
	$(VENV)/bin/python -m fuzz --seconds $(FUZZ_SECONDS) \
		--hypothesis-scale $(FUZZ_SCALE)

format: install
	$(VENV)/bin/isort $(FORMAT_PATHS)
	$(VENV)/bin/black $(FORMAT_PATHS)

lint: install
	$(VENV)/bin/black --check $(FORMAT_PATHS)
	$(VENV)/bin/isort --check-only --diff $(FORMAT_PATHS)
	$(VENV)/bin/flake8 $(FORMAT_PATHS)

# Launchpad's own OCI test modules under its own bin/test, on the snapshot in
# ../shared/upstream, unpatched and with upstream/launchpad/*.patch applied
# (see README "Running Launchpad's own tests").  As root; everything is built
# in .upstream-lp/ (LPTESTOPTS='--state-dir DIR' elsewhere).  Not part of
# "make test": with a series, a cold run takes about 13 minutes, a warm one
# about 9.
LPTESTOPTS ?=

upstream-lp-test:
	upstream/run-launchpad-tests $(LPTESTOPTS)

clean:
	rm -rf bin build var lib/*.egg-info .fuzz .hypothesis
	find lib tests bench fuzz upstream -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .venv-upstream
