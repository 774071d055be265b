"""External services the tests use (a throwaway PostgreSQL server, see postgres.sh)."""

from __future__ import annotations

import os

import pytest

POSTGRES_DSN_ENV = "LTI_TEST_POSTGRES_DSN"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def postgres_dsn() -> str:
    """The DSN of the test PostgreSQL server that `make test` started.

    Without one the calling test is skipped on a developer's machine, but FAILS under CI=true: CI must
    never pass by silently skipping the PostgreSQL tests.
    """
    dsn = os.environ.get(POSTGRES_DSN_ENV, "").strip()
    if dsn:
        return dsn
    message = (
        f"{POSTGRES_DSN_ENV} is not set: run the suite with `make test`, or start a server with "
        "`tests/services/postgres.sh start` and export the DSN it prints"
    )
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
