"""Studio's own test settings (``cms.envs.test``), with lti-publish installed as the plugin it is on a real site.

As lms_settings.py: nothing here names lti_xblock's app or settings; Studio finds the app through its
``cms.djangoapp`` entry point and the block through ``xblock.v1``.
"""

from cms.envs.test import *  # noqa: F403
from lms_settings import OnlyLtiXBlockMigrates

MIGRATION_MODULES = OnlyLtiXBlockMigrates()
