"""lti-publish inside a real Open edX LMS: its plugin app, a course holding the block, LTI 1.1 launches.

Nothing of edx-platform is mocked (MongoDB is mongomock, see conftest.py): the LMS's settings, URLs,
middleware, modulestore, block structures, ``CourseEnrollment``, ``CourseStaffRole`` and views are the real ones.
One course, made once for the class, serves every test (the LMS's setup is what is slow).
"""

from __future__ import annotations

import importlib.metadata
import logging
import pickle
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from common.djangoapps.student.models import CourseEnrollment, UserProfile
from common.djangoapps.student.roles import CourseStaffRole
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from django.urls import reverse
from openedx.core.djangoapps.content.block_structure.api import get_course_in_cache
from openedx.core.djangoapps.content.block_structure.factory import BlockStructureFactory
from openedx.core.djangoapps.content.block_structure.transformers import BlockStructureTransformers
from xmodule.modulestore import ModuleStoreEnum
from xmodule.modulestore.django import SignalHandler, modulestore
from xmodule.modulestore.tests.django_utils import SharedModuleStoreTestCase
from xmodule.modulestore.tests.factories import BlockFactory, CourseFactory

import lti_xblock
from lti_core.types import Consumer
from lti_peer.lti11 import INSTRUCTOR, LEARNER, moodle_lti11_params, sign_lti11_launch
from lti_xblock.compat import OpenEdxHost
from lti_xblock.launch_details import launch_details
from lti_xblock.store import DjangoStore

BASE = "http://testserver"  # the Django test client's host
CHILD_TEXT = "Inside the published content: a real HTML block"
CONSUMER = Consumer("moodle-key", "moodle-secret-0123456789", "Moodle")
# Every migration the installed lti_xblock ships.
APPLIED = {path.stem for path in Path(lti_xblock.__file__).parent.joinpath("migrations").glob("0*.py")}


def test_lti_xblock_is_the_installed_wheel_not_the_checkout():
    site_packages = Path(importlib.metadata.distribution("lti-publish").locate_file(""))
    assert Path(lti_xblock.__file__).is_relative_to(site_packages), lti_xblock.__file__
    assert importlib.metadata.version("Django").startswith("4.2.")
    assert importlib.metadata.version("XBlock").startswith("5.")


@pytest.mark.django_db
def test_the_lms_installs_the_plugin_app_from_its_entry_point():
    entry_points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="lms.djangoapp")}
    assert entry_points["lti_xblock"] == "lti_xblock.apps:LtiXBlockConfig"
    # Put there by get_plugin_apps() (lms_settings names no app), as the AppConfig's dotted path.
    assert "lti_xblock.apps.LtiXBlockConfig" in settings.INSTALLED_APPS, settings.INSTALLED_APPS[-20:]
    assert apps.get_app_config("lti_xblock").name == "lti_xblock"
    # The settings hook (settings_config "common") ran: the defaults, and the proxy middleware first.
    assert settings.LTI_PUBLISH["HOST"] == "openedx"
    assert settings.LTI_PUBLISH["TRUSTED_PROXIES"] == []
    assert settings.MIDDLEWARE[0] == "lti_xblock.proxy.TrustedProxyMiddleware"
    # The URLs, under /lti_publish/ in the lti_xblock namespace.
    assert reverse("lti_xblock:lti13_jwks") == "/lti_publish/lti13/jwks"
    # Its real migrations made its tables (every other app's come from its models).
    applied = {name for app, name in MigrationRecorder(connection).applied_migrations() if app == "lti_xblock"}
    assert len(APPLIED) >= 5 and APPLIED <= applied, applied
    response = Client().get("/lti_publish/lti13/jwks")
    assert response.status_code == 200 and response.json()["keys"][0]["kty"] == "RSA"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def unpicklable_fields(course) -> str:
    """Which collected block fields stop the block structure from being pickled (what the LMS caches)."""
    structure = BlockStructureFactory.create_from_modulestore(course.location, modulestore())
    BlockStructureTransformers.collect(structure)
    bad = []
    for usage_key, data in structure.iteritems():
        for name, value in data.fields.items():
            try:
                pickle.dumps(value, 4)
            except Exception as error:  # whatever pickle raises is the finding
                bad.append(f"{usage_key.block_type}.{name} = {value!r} ({type(error).__name__})")
    return "unpicklable collected fields: " + ("; ".join(bad) or "none")


def refusal(response) -> str:
    """The status and, for a refusal page, its reason code: what a failed assertion should show."""
    match = re.search(rb"<code>([a-z_]+)</code>", response.content)
    return f"{response.status_code} {match.group(1).decode() if match else response.content[:500]!r}"


class LtiPublishInTheLms(SharedModuleStoreTestCase):
    """A course: chapter > sequential > vertical > lti_publish > html, published in the modulestore."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.course = CourseFactory.create(org="LtiPublish", course="LMS101", run="2025", display_name="LMS course")
        chapter = BlockFactory.create(parent=cls.course, category="chapter", display_name="Week 1")
        sequential = BlockFactory.create(parent=chapter, category="sequential", display_name="Lesson")
        cls.unit = BlockFactory.create(parent=sequential, category="vertical", display_name="Unit")
        cls.block = BlockFactory.create(parent=cls.unit, category="lti_publish", display_name="Published in LTI")
        cls.html = BlockFactory.create(
            parent=cls.block, category="html", display_name="Page", data=f"<p>{CHILD_TEXT}</p>"
        )
        cls.content_id = str(cls.block.location)
        # The Tool URL as the block's studio view and launch_details give it: the usage id percent-encoded.
        cls.tool_url = launch_details(BASE, cls.content_id).lti11_tool_url
        # The same URL with the usage id as it is (":", "+" and "@" are legal in a path): what a browser sends
        # and the LMS sees (Django's request.path is decoded), so the platform's signature covers it as is.
        cls.raw_tool_url = f"{BASE}/lti_publish/content/{cls.content_id}/ltiaccess"

    def setUp(self):
        super().setUp()
        DjangoStore().save_consumer(CONSUMER)

    def launch(self, client: Client, roles: str, user_id: str = "2", url: str = ""):
        """A Moodle LTI 1.1 launch POSTed through the LMS's middleware, signed for ``url``."""
        url = url or self.raw_tool_url
        form = sign_lti11_launch(url, CONSUMER.key, CONSUMER.secret, moodle_lti11_params(roles=roles, user_id=user_id))
        return client.post(url.removeprefix(BASE), form)

    def test_the_block_is_in_the_modulestore_with_its_child(self):
        block = self.store.get_item(self.block.location)
        assert block.scope_ids.block_type == "lti_publish"
        assert [child.block_type for child in block.children] == ["html"]
        assert OpenEdxHost().content_title(self.content_id) == "Published in LTI"
        assert OpenEdxHost().content_title(str(self.html.location)) is None
        assert OpenEdxHost().content_title("block-v1:nobody+nothing+never+type@html+block@x") is None

    def test_learner_launch_enrols_a_learner_lands_on_jump_to_and_the_lms_renders_the_block(self):
        client = Client()
        response = self.launch(client, LEARNER)
        assert response.status_code == 302, refusal(response)
        jump_to = reverse("jump_to", kwargs={"course_id": str(self.course.id), "location": self.content_id})
        assert response["Location"] == jump_to
        # jump_to sends the learner on to the courseware (the learning app) at the unit holding the block.
        landing = client.get(jump_to)
        assert landing.status_code == 302 and landing["Location"].endswith(str(self.unit.location)), landing
        user = self.launched_user()
        assert UserProfile.objects.get(user=user).name
        assert CourseEnrollment.is_enrolled(user, self.course.id)
        assert not CourseStaffRole(self.course.id).has_user(user)
        assert client.session["_auth_user_id"] == str(user.pk)

        # The same Moodle user again: the same LMS user, still a learner.
        again = self.launch(Client(), LEARNER)
        assert again.status_code == 302
        assert self.launched_user() == user
        assert get_user_model().objects.filter(pk=user.pk).count() == 1

        # Signed in by the launch, the learner gets the block's student_view, child included, from the LMS.
        page = client.get(reverse("render_xblock", kwargs={"usage_key_string": self.content_id}))
        assert page.status_code == 200, page.content[:2000]
        html = page.content.decode()
        assert "Published in LTI" in html and CHILD_TEXT in html

        # The LTI 1.3 target link (the content URL), opened again later: the LMS's own courseware.
        content = client.get(reverse("lti_xblock:content", args=[self.content_id]))
        assert content.status_code == 302 and content["Location"] == jump_to

    def test_instructor_launch_gets_the_course_staff_role(self):
        response = self.launch(Client(), INSTRUCTOR, user_id="3")
        assert response.status_code == 302, refusal(response)
        user = self.launched_user("3")
        assert CourseEnrollment.is_enrolled(user, self.course.id)
        assert CourseStaffRole(self.course.id).has_user(user)

    def test_launch_on_the_tool_url_the_studio_view_shows(self):
        """Moodle signs the Tool URL exactly as the admin pasted it: as the Studio view shows it, or with
        the usage id percent-encoded (copied from elsewhere); both launch."""
        assert f"/content/{self.block.location}/ltiaccess" in self.tool_url
        response = self.launch(Client(), LEARNER, user_id="4", url=self.tool_url)
        assert response.status_code == 302, refusal(response)
        encoded = self.tool_url.replace(str(self.block.location), quote(str(self.block.location), safe=""))
        assert "%3A" in encoded
        response = self.launch(Client(), LEARNER, user_id="4", url=encoded)
        assert response.status_code == 302, refusal(response)

    def test_publishing_a_course_that_holds_the_block_keeps_the_course_cache(self):
        """Publishing fires course_published; the LMS then collects the course's block structure (every
        block's fields its transformers ask for, ``title`` among them) and pickles it into its cache."""
        # The signal's handler runs the task update_course_in_cache_v2 (eager here), which logs and retries its
        # errors, never raising them: they are caught in its log.
        task_errors = Records()
        task_log = logging.getLogger("edx.celery.task")
        task_log.addHandler(task_errors)
        SignalHandler.course_published.enable()
        try:
            self.store.publish(self.block.location, ModuleStoreEnum.UserID.test)
        finally:
            SignalHandler.course_published.disable()
            task_log.removeHandler(task_errors)
        if task_errors.records:
            first = task_errors.records[0]
            error = first.exc_info[1] if first.exc_info else first.getMessage()
            pytest.fail(
                f"updating the course's block structure on publish failed: {error!r}; {unpicklable_fields(self.course)}"
            )
        try:
            structure = get_course_in_cache(self.course.id)
        except pickle.PicklingError as error:
            pytest.fail(f"the course's block structure cannot be cached ({error}); {unpicklable_fields(self.course)}")
        assert self.block.location in structure and self.html.location in structure
        assert structure.get_xblock_field(self.block.location, "display_name") == "Published in LTI"

    def launched_user(self, user_id: str = "2"):
        from lti_xblock.models import LtiUserLink

        return LtiUserLink.objects.get(platform=CONSUMER.key, platform_user_id=user_id).user
