"""Django settings for the demo and the tests: the XBlock SDK workbench plus the lti_xblock app.

Open edX installs lti_xblock as a plugin app instead (see lti_xblock/apps.py); nothing here is
used there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

VAR_DIR = Path(os.environ.get("LTI_PUBLISH_VAR", Path.cwd() / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = os.environ.get("LTI_PUBLISH_DEBUG", "") == "1"


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return f"[{host}]" if ":" in host else host


# The hosts the demo answers to: loopback, the hosts of LTI_PUBLISH_BASE_URLS (its public URLs) and those
# of LTI_PUBLISH_ALLOWED_HOSTS (comma-separated). Django refuses any other Host header: LTI 1.1 signatures
# are checked against the URL built from it, so a launch signed for another tool (sharing the consumer's
# key and secret) and sent with that tool's Host is turned away before it is even verified.
_BASE_URLS = _env_list("LTI_PUBLISH_BASE_URLS")
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", *map(_host, _BASE_URLS), *_env_list("LTI_PUBLISH_ALLOWED_HOSTS")]
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
    # Outermost: it sees every cookie the others set (Partitioned on SameSite=None; Secure ones).
    "lti_xblock.cookies.PartitionedCookieMiddleware",
    # Then: every later middleware and view sees the public host and scheme (LTI_PUBLISH["TRUSTED_PROXIES"]).
    "lti_xblock.proxy.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "demo.urls"


def _sample_xblock_templates() -> list[str]:
    """The workbench's sample blocks (the demo content's problems) render templates from here."""
    import sample_xblocks

    return [str(Path(sample_xblocks.__file__).parent / "basic" / "templates")]


TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The launch page (demo/templates/demo/), then the sample blocks'.
        "DIRS": [str(Path(__file__).resolve().parent / "templates"), *_sample_xblock_templates()],
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
_HTTPS = bool(_BASE_URLS) and _BASE_URLS[0].startswith("https://")
SESSION_COOKIE_SAMESITE = "None" if _HTTPS else "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SAMESITE = SESSION_COOKIE_SAMESITE
# Behind a TLS-terminating proxy, signatures and redirects must use the public URL: TrustedProxyMiddleware
# takes it from the proxies in LTI_PUBLISH["TRUSTED_PROXIES"] only. Django's USE_X_FORWARDED_HOST and
# SECURE_PROXY_SSL_HEADER are left off: they believe X-Forwarded-* headers from any client.

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
    "TOOL_BASE_URLS": _BASE_URLS,
    # Reverse proxies (IP addresses or CIDR networks) whose X-Forwarded-For/-Proto/-Host are believed, e.g.
    # "127.0.0.1" for a TLS-terminating proxy on this machine. Empty (default): none, a client's are ignored.
    "TRUSTED_PROXIES": _env_list("LTI_PUBLISH_TRUSTED_PROXIES"),
    # The demo platform and the tests' platforms serve their grade services on loopback, over http: a
    # site's tool sends scores to public https addresses only (the default, False).
    "ALLOW_PRIVATE_SERVICE_URLS": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"lti_xblock": {"handlers": ["console"], "level": os.environ.get("LTI_PUBLISH_LOG_LEVEL", "INFO")}},
}
