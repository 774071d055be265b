"""The Django app: installs into the Open edX LMS as a plugin app, and into the demo workbench project."""

from __future__ import annotations

from django.apps import AppConfig


class LtiXBlockConfig(AppConfig):
    name = "lti_xblock"
    verbose_name = "LTI publish"
    default_auto_field = "django.db.models.AutoField"

    # edx-django-utils plugin conventions: the LMS mounts our URLs under /lti_publish/.
    plugin_app = {
        "url_config": {
            "lms.djangoapp": {
                "namespace": "lti_xblock",
                "regex": r"^lti_publish/",
                "relative_path": "urls",
            }
        },
        # Studio needs the settings too: the block's studio view shows the launch URLs.
        "settings_config": {
            app: {
                "common": {"relative_path": "settings.common"},
                "production": {"relative_path": "settings.production"},
            }
            for app in ("lms.djangoapp", "cms.djangoapp")
        },
    }
