"""Settings the LMS merges in (edx-django-utils plugin settings)."""

from __future__ import annotations

from typing import Any

# lti_xblock.proxy.MIDDLEWARE; not imported: settings hooks run before Django is set up.
PROXY_MIDDLEWARE = "lti_xblock.proxy.TrustedProxyMiddleware"
# lti_xblock.tasks.deliver_grades_task's name; not imported: Celery is optional.
GRADE_TASK = "lti_xblock.deliver_grades"
GRADE_SCHEDULE_ENTRY = "lti-publish-deliver-grades"


def plugin_settings(settings: Any) -> None:
    # TRUSTED_PROXIES: reverse proxies (IPs or CIDR networks) whose X-Forwarded-* headers give the public URL
    # that LTI 1.1 signatures and LTI 1.3 target links are checked against. Empty: the LMS's own view of the
    # request (its ALLOWED_HOSTS, and its USE_X_FORWARDED_HOST/SECURE_PROXY_SSL_HEADER if it sets them: this
    # plugin never does, they believe any client).
    # APPROVE_REGISTRATIONS: platforms registered by LTI Dynamic Registration wait for an admin's
    # `lti-publish registrations approve` before they can launch (False: they can launch at once).
    # GRADE_SYNC_INTERVAL: seconds between two periodic grade deliveries (Celery beat); a score is also
    # sent a few seconds after it is given, when Celery is set up. GRADE_SYNC_CONCURRENCY: scores sent at
    # once by one delivery. ALLOW_PRIVATE_SERVICE_URLS: send scores over http and to private or loopback
    # addresses (a demo or test platform on loopback only: never in production).
    # PROVISIONING: how a first launch gets a local account, per local role, for content whose Studio
    # settings keep the site's default: lti_core.linking.ProvisioningMode values, "new_only" (New accounts
    # only (automatic)), "existing_and_new_prompt", "existing_only_prompt"; Moodle's defaults.
    # STAFF_ROLES: more LTI context roles (names, URNs or URIs) that give staff rights on the content, e.g.
    # ["Mentor"] for Moodle's non-editing teachers (lti_core.roles.RoleTable.extended).
    defaults = {
        "HOST": "openedx",
        "TOOL_BASE_URLS": [],
        "TRUSTED_PROXIES": [],
        "APPROVE_REGISTRATIONS": True,
        "GRADE_SYNC_INTERVAL": 1800,
        "GRADE_SYNC_CONCURRENCY": 8,
        "ALLOW_PRIVATE_SERVICE_URLS": False,
        "PROVISIONING": {"instructor": "existing_and_new_prompt", "learner": "new_only"},
        "STAFF_ROLES": [],
    }
    settings.LTI_PUBLISH = {**defaults, **getattr(settings, "LTI_PUBLISH", {})}
    schedule_grade_delivery(settings, float(settings.LTI_PUBLISH["GRADE_SYNC_INTERVAL"]))
    # First, before anything that reads the host or scheme or rewrites REMOTE_ADDR from X-Forwarded-For;
    # with an empty TRUSTED_PROXIES it changes nothing.
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if PROXY_MIDDLEWARE not in middleware:
        settings.MIDDLEWARE = [PROXY_MIDDLEWARE, *middleware]


def schedule_grade_delivery(settings: Any, interval: float) -> None:
    """The periodic grade delivery in Celery beat's schedule, merged with the entries already there.

    Under both names: Open edX configures Celery from its settings without a namespace, so beat reads
    ``CELERYBEAT_SCHEDULE``; a Django project using ``namespace="CELERY"`` reads ``CELERY_BEAT_SCHEDULE``.
    Each app ignores the other name.
    """
    entry = {"task": GRADE_TASK, "schedule": interval}
    for name in ("CELERYBEAT_SCHEDULE", "CELERY_BEAT_SCHEDULE"):
        settings_schedule = getattr(settings, name, None) or {}
        setattr(settings, name, {**settings_schedule, GRADE_SCHEDULE_ENTRY: entry})
