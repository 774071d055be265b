"""Test settings: the demo's, plus a PostgreSQL database alias when tests/services/postgres.sh runs one
and a MariaDB one (``mysql``) when tests/services/mariadb.sh does."""

import os
from urllib.parse import unquote, urlsplit

from demo.settings import *  # noqa: F403


def _database(dsn: str, engine: str, default_port: int, **extra: dict[str, str]) -> dict[str, object]:
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    settings: dict[str, object] = {
        "ENGINE": engine,
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname,
        "PORT": str(parts.port or default_port),
        **extra,
    }
    settings["TEST"] = {"NAME": "test_" + name, **extra.get("TEST", {})}
    return settings


if os.environ.get("LTI_TEST_POSTGRES_DSN"):
    DATABASES["postgres"] = _database(  # noqa: F405
        os.environ["LTI_TEST_POSTGRES_DSN"], "django.db.backends.postgresql", 5432
    )
if os.environ.get("LTI_TEST_MYSQL_DSN"):
    DATABASES["mysql"] = _database(  # noqa: F405
        os.environ["LTI_TEST_MYSQL_DSN"],
        "django.db.backends.mysql",
        3306,
        # Open edX's settings: 4-byte UTF-8 everywhere.
        OPTIONS={"charset": "utf8mb4"},
        TEST={"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    )

# A file, not SQLite's shared-cache memory database: that one answers concurrent writers with
# "table is locked" at once instead of waiting, unlike any SQLite database a site really runs on.
DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20  # noqa: F405

# Every test request goes through the trusted-proxy middleware, first, as in the demo and the LMS (an empty
# LTI_PUBLISH["TRUSTED_PROXIES"] unless a test sets one).
_PROXY_MIDDLEWARE = "lti_xblock.proxy.TrustedProxyMiddleware"
MIDDLEWARE = [_PROXY_MIDDLEWARE, *(m for m in MIDDLEWARE if m != _PROXY_MIDDLEWARE)]  # noqa: F405

# Every role gets a new account at its first launch, as before the prompt modes: the launch tests keep
# their meaning; the linking tests (tests/test_xblock_linking.py) set the modes they try on the content.
AUTOMATIC_PROVISIONING = {"instructor": "new_only", "learner": "new_only"}
LTI_PUBLISH = {**LTI_PUBLISH, "PROVISIONING": AUTOMATIC_PROVISIONING}  # noqa: F405


def _keep_test_provisioning(*, setting: str, value: object, enter: bool, **_: object) -> None:
    """The shared ``tool`` fixture (tests/conftest.py) sets LTI_PUBLISH anew: it keeps this default
    unless the test sets another."""
    if setting == "LTI_PUBLISH" and enter and isinstance(value, dict):
        value.setdefault("PROVISIONING", AUTOMATIC_PROVISIONING)


def _connect() -> None:
    from django.test.signals import setting_changed

    setting_changed.connect(_keep_test_provisioning, weak=False)


_connect()
