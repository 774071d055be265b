"""The LMS's own test settings (``lms.envs.test``: SQLite, dummy caches, courses in "MongoDB", which
conftest.py serves with mongomock), with lti-publish installed as the plugin app it is on a real site.

Nothing here names lti_xblock's app, URLs, settings or middleware: the LMS finds the app through its
``lms.djangoapp`` entry point (``get_plugin_apps``) and runs its settings hook (``add_plugins``), as on a site.
Only the site's provisioning default is set, as a site's admin would: every role gets a new account at its
first launch, so the launch tests keep their meaning (the prompt modes are tried on the workbench).
"""

from lms.envs.test import *  # noqa: F403


class OnlyLtiXBlockMigrates:
    """MIGRATION_MODULES: lti_xblock's test tables come from its real migrations (lti_xblock/migrations),
    every other app's straight from its models, as pytest-django's --nomigrations makes them (the LMS's own
    migrations stop at course_overviews.0009 on SQLite, and take half an hour on MariaDB)."""

    def __contains__(self, app_label: object) -> bool:
        return app_label != "lti_xblock"

    def __getitem__(self, app_label: str) -> None:
        return None


MIGRATION_MODULES = OnlyLtiXBlockMigrates()

# lms.envs.test has run the plugin's settings hook already: set the one value over its defaults.
LTI_PUBLISH = {**LTI_PUBLISH, "PROVISIONING": {"instructor": "new_only", "learner": "new_only"}}  # noqa: F405
