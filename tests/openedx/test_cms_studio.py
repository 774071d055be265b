"""lti-publish inside a real Open edX Studio (the CMS, ``cms.envs.test``): run by tests/openedx/run.sh in a
pytest session of its own (cms_settings.py).

Studio's own views, through its URLs and middleware: ``xblock_view_handler`` renders the block's
``studio_view`` (the edit dialog) and its ``author_view`` (the unit page's preview, through
``get_preview_fragment`` and Studio's preview runtime); ``component_handler`` runs the block's
``save_settings`` handler with Studio's "user" and ``studio_user_permissions`` services. One course, made
once for the class.
"""

from __future__ import annotations

import json

from common.djangoapps.student.models import CourseEnrollment
from common.djangoapps.student.roles import CourseStaffRole
from common.djangoapps.student.tests.factories import UserFactory
from django.conf import settings
from django.test import Client
from xmodule.modulestore.django import modulestore
from xmodule.modulestore.tests.django_utils import SharedModuleStoreTestCase
from xmodule.modulestore.tests.factories import BlockFactory, CourseFactory

from lti_xblock.block import NOT_AN_AUTHOR
from lti_xblock.launch_details import launch_details

CHILD_TEXT = "Inside the published content, previewed in Studio"
LAUNCH_LABELS = (
    "Tool URL",
    "Target link URI",
    "Login initiation URL",
    "Redirection URI",
    "Public keyset URL",
    "Dynamic registration URL",
)


class LtiPublishInStudio(SharedModuleStoreTestCase):
    """A course: chapter > sequential > vertical > lti_publish > html; a course-team author and a learner."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.course = CourseFactory.create(org="LtiPublish", course="CMS101", run="2025", display_name="CMS course")
        chapter = BlockFactory.create(parent=cls.course, category="chapter", display_name="Week 1")
        sequential = BlockFactory.create(parent=chapter, category="sequential", display_name="Lesson")
        unit = BlockFactory.create(parent=sequential, category="vertical", display_name="Unit")
        cls.block = BlockFactory.create(parent=unit, category="lti_publish", display_name="Published from Studio")
        BlockFactory.create(parent=cls.block, category="html", display_name="Page", data=f"<p>{CHILD_TEXT}</p>")
        cls.content_id = str(cls.block.location)

    def setUp(self):
        super().setUp()
        self.author = UserFactory.create(username="course_author")
        CourseStaffRole(self.course.id).add_users(self.author)
        self.learner = UserFactory.create(username="enrolled_learner")
        CourseEnrollment.enroll(self.learner, self.course.id)

    def client_for(self, user) -> Client:
        """Signed in as edx-platform's tests sign in (its test settings make Client.login write Studio's
        safe session cookie)."""
        client = Client()
        assert client.login(username=user.username, password=UserFactory._DEFAULT_PASSWORD)
        return client

    def view(self, user, view_name: str):
        """What Studio's JavaScript asks for: GET /xblock/<usage id>/<view>, as JSON."""
        return self.client_for(user).get(f"/xblock/{self.content_id}/{view_name}", HTTP_ACCEPT="application/json")

    def save_settings(self, user, data: dict):
        """What the block's studio.js posts: the JSON handler through Studio's component_handler."""
        return self.client_for(user).post(
            f"/xblock/{self.content_id}/handler/save_settings", json.dumps(data), content_type="application/json"
        )

    def assert_launch_details(self, html: str) -> None:
        for label in LAUNCH_LABELS:
            assert label in html, label
        # No TOOL_BASE_URLS configured: the block takes the host from Studio's runtime, which is the LMS's
        # (LMS_BASE): the URLs point where the tool is served, not at Studio.
        assert not settings.LTI_PUBLISH["TOOL_BASE_URLS"]
        details = launch_details(f"http://{settings.LMS_BASE}", self.content_id)
        for url in (
            details.lti11_tool_url,
            details.lti13_login_url,
            details.lti13_jwks_url,
            details.lti13_registration_url,
        ):
            assert f"<code>{url}</code>" in html, (url, html[:3000])
        assert self.content_id in html

    def test_studio_renders_the_studio_view_with_the_settings_form_and_the_launch_details(self):
        response = self.view(self.author, "studio_view")
        assert response.status_code == 200, response.content[:2000]
        html = response.json()["html"]
        assert "html_error" not in html and "Unable to render" not in html
        # Studio's own wrapper around the block's fragment (its StudioRuntime JavaScript binds to it).
        assert 'data-runtime-class="StudioRuntime"' in html and 'data-block-type="lti_publish"' in html
        assert 'data-init="LtiPublishStudio"' in html
        assert "Settings of the published content" in html
        for name in ('name="display_name"', 'name="grade_sync"', 'name="max_score"'):
            assert name in html, name
        assert 'value="Published from Studio"' in html
        self.assert_launch_details(html)
        resources = json.dumps(response.json()["resources"])
        assert "LtiPublishStudio" in resources  # the editor's JavaScript, sent along

    def test_studio_previews_the_author_view_with_the_launch_details_and_the_children(self):
        response = self.view(self.author, "author_view")
        assert response.status_code == 200, response.content[:2000]
        html = response.json()["html"]
        assert "html_error" not in html and "Unable to render" not in html
        # Rendered by get_preview_fragment with Studio's preview runtime (its PreviewRuntime wrapper).
        assert 'data-runtime-class="PreviewRuntime"' in html and 'data-block-type="lti_publish"' in html
        assert "Published from Studio" in html and CHILD_TEXT in html
        self.assert_launch_details(html)

    def test_a_learner_gets_no_studio_view(self):
        assert self.view(self.learner, "studio_view").status_code == 403

    def test_the_course_team_saves_the_settings_through_the_component_handler(self):
        response = self.save_settings(self.author, {"display_name": "Renamed in Studio", "max_score": "42"})
        assert response.status_code == 200, response.content[:2000]
        assert response.json() == {"result": "success"}
        saved = modulestore().get_item(self.block.location)
        assert (saved.display_name, saved.max_score) == ("Renamed in Studio", 42.0)

        # Invalid values: every field checked, nothing saved.
        response = self.save_settings(self.author, {"display_name": " ", "max_score": "-1"})
        assert response.status_code == 200 and response.json()["result"] == "error"
        assert set(response.json()["errors"]) == {"display_name", "max_score"}
        saved = modulestore().get_item(self.block.location)
        assert (saved.display_name, saved.max_score) == ("Renamed in Studio", 42.0)

    def test_a_learner_is_refused_by_the_block_and_nothing_is_saved(self):
        before = modulestore().get_item(self.block.location)
        response = self.save_settings(self.learner, {"display_name": "Taken over", "grade_sync": True})
        assert response.status_code == 403, response.content[:2000]
        assert response.json() == {"error": NOT_AN_AUTHOR}
        after = modulestore().get_item(self.block.location)
        assert (after.display_name, after.grade_sync) == (before.display_name, before.grade_sync)
        assert after.display_name != "Taken over"
