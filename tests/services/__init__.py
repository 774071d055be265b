"""External services the tests use (throwaway PostgreSQL and MariaDB servers, see postgres.sh and
mariadb.sh)."""

from __future__ import annotations

import os

import pytest

POSTGRES_DSN_ENV = "LTI_TEST_POSTGRES_DSN"
MYSQL_DSN_ENV = "LTI_TEST_MYSQL_DSN"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _dsn(variable: str, script: str) -> str:
    dsn = os.environ.get(variable, "").strip()
    if dsn:
        return dsn
    message = (
        f"{variable} is not set: run the suite with `make test`, or start a server with "
        f"`tests/services/{script} start` and export the DSN it prints"
    )
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def postgres_dsn() -> str:
    """The DSN of the test PostgreSQL server that `make test` started.

    Without one the calling test is skipped on a developer's machine, but FAILS under CI=true: CI must
    never pass by silently skipping the PostgreSQL tests.
    """
    return _dsn(POSTGRES_DSN_ENV, "postgres.sh")


def mysql_dsn() -> str:
    """The DSN of the test MariaDB server that `make test` started; skips or fails like postgres_dsn."""
    return _dsn(MYSQL_DSN_ENV, "mariadb.sh")
