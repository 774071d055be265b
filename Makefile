# lti-publish developer entry points. Everything runs from the project's own virtualenv, .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo needs no test tools (and none of the test extra's system libraries).
DEMO_STAMP := $(VENV)/.installed-demo
# configurable-http-proxy (npm, pinned by package-lock.json): the proxy of the real JupyterHub the
# tests and the demo run.
CHP := node_modules/.bin/configurable-http-proxy
# `make test` as a whole must stay under 15 minutes; pytest gets the bulk of it.
PYTEST_TIMEOUT ?= 780
# Two pytest workers (pytest-xdist), a test file each at a time: much of the suite waits on hubs,
# browsers and servers starting, which the other worker fills. A file's module fixtures stay in one
# worker; pytest-django gives each worker its own test databases. PYTEST_WORKERS= runs one process.
PYTEST_WORKERS ?= -n 2 --dist loadfile

LANGUAGES := fr
DOMAIN := lti_publish
POT := translations/$(DOMAIN).pot
I18N_SOURCES := lti_core lti_xblock jupyter_lti demo static/js

.PHONY: venv test lint typecheck pytest openedx demo bench translations clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

# --use-pep517 makes the editable install go through setuptools' PEP 660 hook, the only one that
# honours package_dir (static/ -> lti_publish_assets, translations/ -> lti_publish_assets.translations).
# The test extra's mysqlclient builds against the MariaDB client library: `mariadb.sh deps` installs
# pkg-config and libmariadb-dev first when they are missing (Debian, as root).
$(STAMP): setup.py | $(BIN)/python $(CHP)
	tests/services/mariadb.sh deps
	tests/services/chromium.sh deps
	$(BIN)/python -m pip install --use-pep517 -e ".[xblock,jupyterhub,demo,test]"
	touch $@

$(DEMO_STAMP): setup.py | $(BIN)/python $(CHP)
	$(BIN)/python -m pip install --use-pep517 -e ".[xblock,jupyterhub,demo]"
	touch $@

# npm ci installs exactly what package-lock.json records (emptying node_modules first); the touch
# makes sure the target ends up newer than the lockfile, whatever dates npm leaves.
$(CHP): package-lock.json
	npm ci --no-audit --no-fund
	touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

# The demo's hub modules too: the tests' hub (tests/hub.py) runs on demo/hubprocess.py.
typecheck: $(STAMP)
	$(BIN)/mypy --strict lti_core jupyter_lti lti_xblock demo/hubprocess.py demo/demohub.py demo/grade_loop.py

# Starts throwaway PostgreSQL and MariaDB servers for the run and stops them afterwards, also on
# failure or ^C. Without a server, the tests needing it skip (fail when CI=true).
# pytest's exit code 5 (no tests collected) counts as a failure.
pytest: $(STAMP)
	@export LTI_PG_INSTANCE="make-$$$$" LTI_MARIADB_INSTANCE="make-$$$$"; \
	trap 'for s in postgres mariadb; do tests/services/$$s.sh stop >/dev/null 2>&1 || true; done' EXIT; \
	trap 'exit 130' INT TERM; \
	start_server() { \
	    if dsn="$$(tests/services/$$1.sh start)"; then \
	        echo "$$2 for the tests: $${dsn%%:*}://...@$${dsn##*@}" >&2; \
	        echo "$$dsn"; \
	    else \
	        echo "WARNING: no $$2 server; tests needing it skip (or fail when CI=true)" >&2; \
	    fi; \
	}; \
	export LTI_TEST_POSTGRES_DSN="$$(start_server postgres PostgreSQL)"; \
	export LTI_TEST_MYSQL_DSN="$$(start_server mariadb MariaDB)"; \
	rc=0; timeout --signal=TERM --kill-after=30 $(PYTEST_TIMEOUT) $(BIN)/pytest -q $(PYTEST_WORKERS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests" >&2; rc=1; fi; \
	if [ $$rc -eq 124 ]; then echo "ERROR: pytest exceeded $(PYTEST_TIMEOUT) s" >&2; fi; \
	exit $$rc

# The Open edX host inside a real edx-platform LMS (Django 4.2, XBlock 5): tests/openedx/run.sh builds the
# LMS's environment once, outside the clone (~/.cache/lti-publish/openedx), then runs tests/openedx.
openedx:
	tests/openedx/run.sh

# pytest (Django 5.2 + XBlock 6, the workbench) and the LMS suite (Django 4.2 + XBlock 5) run side by side:
# the LMS's is mostly its environment's download and start-up; its output follows pytest's.
test: lint typecheck
	@log="$$(mktemp)"; tests/openedx/run.sh >"$$log" 2>&1 & lms=$$!; \
	trap 'kill $$lms 2>/dev/null; rm -f "$$log"' INT TERM; \
	rc=0; $(MAKE) --no-print-directory pytest || rc=$$?; \
	lms_rc=0; wait $$lms || lms_rc=$$?; \
	echo "---- Open edX LMS suite (tests/openedx/run.sh, exit $$lms_rc) ----"; \
	if [ $$lms_rc -ne 0 ]; then cat "$$log"; rc=$$lms_rc; else tail -n 12 "$$log"; fi; rm -f "$$log"; exit $$rc

# The workbench tool on 127.0.0.1:8000 (launch page /demo/) and a real JupyterHub with the LTI 1.3
# authenticator on :8001 (proxy API :8002, hub :8003), state in var/. Ctrl-C or SIGTERM stops both.
demo: $(DEMO_STAMP)
	$(BIN)/python -m demo

# The hub benchmark runs twice: the platform's key set on loopback (the best case for a tool that
# fetches it at every launch), then 20 ms away, as a platform across the internet is.
bench: $(STAMP)
	$(BIN)/python bench/launch.py --hub
	PYTHONPATH=. $(BIN)/python bench/hub.py --jwks-latency 20

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
	-tests/services/mariadb.sh stop
	-for state in var/postgres/*/state; do \
	    [ -f "$$state" ] && LTI_PG_INSTANCE="$$(basename "$$(dirname "$$state")")" tests/services/postgres.sh stop; \
	done; true
	-for state in var/mariadb/*/state; do \
	    [ -f "$$state" ] && LTI_MARIADB_INSTANCE="$$(basename "$$(dirname "$$state")")" tests/services/mariadb.sh stop; \
	done; true
	rm -rf $(VENV) node_modules build dist var *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
