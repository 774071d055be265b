"""Django settings for the demo and the tests: the XBlock SDK workbench plus the lti_xblock app.

Open edX installs lti_xblock as a plugin app instead (see lti_xblock/apps.py); nothing here is
used there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

VAR_DIR = Path(os.environ.get("LTI_PUBLISH_VAR", Path.cwd() / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = os.environ.get("LTI_PUBLISH_DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]
SECRET_KEY = os.environ.get("LTI_PUBLISH_SECRET_KEY", "lti-publish-demo-only-not-a-secret")

if "LTI_PUBLISH_DATABASES" in os.environ:
    DATABASES = json.loads(os.environ["LTI_PUBLISH_DATABASES"])
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "lti_publish.db")}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "workbench",
    "lti_xblock",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "lti_xblock.demo.urls"


def _sample_xblock_templates() -> list[str]:
    """The workbench's sample blocks (the demo content's problems) render templates from here."""
    import sample_xblocks

    return [str(Path(sample_xblocks.__file__).parent / "basic" / "templates")]


TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": _sample_xblock_templates(),
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.request",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
USE_I18N = True
USE_TZ = True
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
STATIC_URL = "/static/"
STATIC_ROOT = str(VAR_DIR / "static")

# Launches arrive as cross-site form POSTs from the platform, inside its iframe or in a new window.
# Inside an iframe the session cookie is a third-party cookie: browsers send it only when it is
# SameSite=None, which they accept only with Secure, i.e. over HTTPS. On plain-HTTP loopback (the
# demo) Lax is the only setting browsers keep, and launches work in a new window or same-site.
_HTTPS = os.environ.get("LTI_PUBLISH_BASE_URLS", "").startswith("https://")
SESSION_COOKIE_SAMESITE = "None" if _HTTPS else "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SAMESITE = SESSION_COOKIE_SAMESITE
# Behind a TLS-terminating proxy, signatures and redirects must use the public URL.
USE_X_FORWARDED_HOST = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The workbench the demo and tests run the XBlock in.
EXCLUDED_XBLOCKS: set[str] = set()
WORKBENCH = {
    "reset_state_on_restart": False,
    "services": {"fs": "xblock.reference.plugins.FSService", "settings": "workbench.services.SettingsService"},
}
DJFS = {"type": "osfs", "directory_root": str(VAR_DIR / "djpyfs"), "url_root": "/static/djpyfs"}

LTI_PUBLISH = {
    # Which edx-platform calls lti_xblock.compat uses: "workbench" here, "openedx" in the LMS.
    "HOST": "workbench",
    # Public base URLs of this tool; target_link_uri must be below one of them. Empty: the request's own.
    "TOOL_BASE_URLS": [u for u in os.environ.get("LTI_PUBLISH_BASE_URLS", "").split(",") if u],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"lti_xblock": {"handlers": ["console"], "level": os.environ.get("LTI_PUBLISH_LOG_LEVEL", "INFO")}},
}
