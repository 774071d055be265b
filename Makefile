# lti-publish developer entry points. Everything runs from the project's own virtualenv, .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make test` as a whole must stay under 15 minutes; pytest gets the bulk of it.
PYTEST_TIMEOUT ?= 780

LANGUAGES := fr
DOMAIN := lti_publish
POT := translations/$(DOMAIN).pot
I18N_SOURCES := lti_core lti_xblock static/js

.PHONY: venv test lint typecheck pytest demo bench translations clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

# --use-pep517 makes the editable install go through setuptools' PEP 660 hook, the only one that
# honours package_dir (static/ -> lti_publish_assets, translations/ -> lti_publish_assets.translations).
$(STAMP): setup.py | $(BIN)/python
	$(BIN)/python -m pip install --use-pep517 -e ".[xblock,demo,test]"
	touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict lti_core

# Starts a throwaway PostgreSQL server for the run and stops it afterwards, also on failure or ^C.
# pytest's exit code 5 (no tests collected) counts as a failure.
pytest: $(STAMP)
	@pg_dsn=""; export LTI_PG_INSTANCE="make-$$$$"; \
	trap 'tests/services/postgres.sh stop >/dev/null 2>&1 || true' EXIT; trap 'exit 130' INT TERM; \
	if pg_dsn="$$(tests/services/postgres.sh start)"; then \
	    echo "PostgreSQL for the tests: $${pg_dsn%%:*}://...@$${pg_dsn##*@}"; \
	else \
	    echo "WARNING: no PostgreSQL server; tests needing it skip (or fail when CI=true)" >&2; \
	    pg_dsn=""; \
	fi; \
	export LTI_TEST_POSTGRES_DSN="$$pg_dsn"; \
	rc=0; timeout --signal=TERM --kill-after=30 $(PYTEST_TIMEOUT) $(BIN)/pytest -q || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests" >&2; rc=1; fi; \
	if [ $$rc -eq 124 ]; then echo "ERROR: pytest exceeded $(PYTEST_TIMEOUT) s" >&2; fi; \
	exit $$rc

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python -m lti_xblock.demo

bench: $(STAMP)
	$(BIN)/python bench/launch.py

# Extract every marked string (N_, _, gettext... in Python and JavaScript), merge it into each
# language's catalog (creating missing ones) and compile the .mo files that ship in the wheel.
translations: $(STAMP)
	$(BIN)/pybabel -q extract -F translations/babel.cfg -o $(POT) \
	    --project=lti-publish --version="$$(sed -n 's/^ *version="\(.*\)",$$/\1/p' setup.py | head -n1)" \
	    --copyright-holder="lti-publish contributors" \
	    --sort-by-file \
	    -k N_ -k gettext_lazy -k gettext_noop -k ngettext_lazy:1,2 -k pgettext_lazy:1c,2 \
	    $(wildcard $(I18N_SOURCES))
	@for lang in $(LANGUAGES); do \
	    if [ -f translations/$$lang/LC_MESSAGES/$(DOMAIN).po ]; then \
	        $(BIN)/pybabel -q update -i $(POT) -d translations -D $(DOMAIN) -l $$lang || exit 1; \
	    else \
	        $(BIN)/pybabel -q init -i $(POT) -d translations -D $(DOMAIN) -l $$lang || exit 1; \
	    fi; \
	done
	$(BIN)/pybabel compile --statistics -d translations -D $(DOMAIN)

clean:
	-tests/services/postgres.sh stop
	-for state in var/postgres/*/state; do \
	    [ -f "$$state" ] && LTI_PG_INSTANCE="$$(basename "$$(dirname "$$state")")" tests/services/postgres.sh stop; \
	done; true
	rm -rf $(VENV) build dist var *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
