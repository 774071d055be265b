"""Test settings: the demo's, plus a PostgreSQL database alias when tests/services/postgres.sh runs one
and a MariaDB one (``mysql``) when tests/services/mariadb.sh does."""

import os
from urllib.parse import unquote, urlsplit

from lti_xblock.demo.settings import *  # noqa: F403

_dsn = os.environ.get("LTI_TEST_POSTGRES_DSN", "")
if _dsn:
    _parts = urlsplit(_dsn)
    DATABASES["postgres"] = {  # noqa: F405
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _parts.path.lstrip("/"),
        "USER": unquote(_parts.username or ""),
        "PASSWORD": unquote(_parts.password or ""),
        "HOST": _parts.hostname,
        "PORT": str(_parts.port or 5432),
        "TEST": {"NAME": "test_" + _parts.path.lstrip("/")},
    }

_dsn = os.environ.get("LTI_TEST_MYSQL_DSN", "")
if _dsn:
    _parts = urlsplit(_dsn)
    DATABASES["mysql"] = {  # noqa: F405
        "ENGINE": "django.db.backends.mysql",
        "NAME": _parts.path.lstrip("/"),
        "USER": unquote(_parts.username or ""),
        "PASSWORD": unquote(_parts.password or ""),
        "HOST": _parts.hostname,
        "PORT": str(_parts.port or 3306),
        # Open edX's settings: 4-byte UTF-8 everywhere.
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {"NAME": "test_" + _parts.path.lstrip("/"), "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    }

# A file, not SQLite's shared-cache memory database: that one answers concurrent writers with
# "table is locked" at once instead of waiting, unlike any SQLite database a site really runs on.
DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20  # noqa: F405
