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
        # The LMS's score signals: a published block's score follows its children's (edx-platform's grades
        # app), a published course's is its course grade. Connected by the LMS only; Studio grades nothing.
        "signals_config": {
            "lms.djangoapp": {
                "relative_path": "compat",
                "receivers": [
                    {
                        "receiver_func_name": "openedx_score_changed",
                        "signal_path": "lms.djangoapps.grades.signals.signals.PROBLEM_WEIGHTED_SCORE_CHANGED",
                        "dispatch_uid": "lti_xblock.compat.openedx_score_changed",
                    },
                    {
                        "receiver_func_name": "openedx_course_grade_changed",
                        "signal_path": "openedx.core.djangoapps.signals.signals.COURSE_GRADE_CHANGED",
                        "dispatch_uid": "lti_xblock.compat.openedx_course_grade_changed",
                    },
                ],
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

    def ready(self) -> None:
        # The workbench (the demo and the tests' host) only logs grade events: hook them. edx-platform
        # has its own score signal, connected through ``signals_config`` above.
        from lti_xblock import compat

        if isinstance(compat.host(), compat.WorkbenchHost):
            compat.install_workbench_grade_hook()
