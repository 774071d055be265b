"""Test settings: the demo's, plus a PostgreSQL database alias when tests/services/postgres.sh runs one."""

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
