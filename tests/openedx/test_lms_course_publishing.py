"""A whole course published as LTI content inside a real Open edX LMS.

An admin publishes the course (``lti_courses publish``, checked against the modulestore); it is offered
to its course team only (``OpenEdxHost.published_contents``), as a whole course; an LTI 1.3 launch of
its created link (custom ``content_id``, from ``lti_peer``'s platform on loopback) enrols the learner,
never as staff, and lands on the course's home; edx-platform's ``COURSE_GRADE_CHANGED`` (sent by the
LMS's CourseGradeFactory, and with a real ``CourseGrade`` of a chosen percent) puts percent x the course's
maximum score into the outbox for that link. An unpublished course is refused at launch. Nothing of
edx-platform is mocked (conftest.py: MongoDB is mongomock). One course, made once for the class.
"""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from common.djangoapps.student.models import CourseEnrollment
from common.djangoapps.student.roles import CourseStaffRole
from common.djangoapps.student.tests.factories import UserFactory
from django.core.management import CommandError, call_command
from django.test import Client
from lms.djangoapps.grades.course_data import CourseData
from lms.djangoapps.grades.course_grade import CourseGrade
from lms.djangoapps.grades.course_grade_factory import CourseGradeFactory
from openedx.core.djangoapps.signals.signals import COURSE_GRADE_CHANGED
from xmodule.modulestore.tests.django_utils import SharedModuleStoreTestCase
from xmodule.modulestore.tests.factories import BlockFactory, CourseFactory

from lti_core.ags import SCOPE_SCORE
from lti_core.types import Deployment, Registration
from lti_peer.claims import LEARNER_ROLES
from lti_peer.platform import PlatformPeer
from lti_xblock import models
from lti_xblock.compat import ContentKind, OpenEdxHost, PublishedContent
from lti_xblock.launch_details import launch_details
from lti_xblock.store import DjangoStore

BASE = "http://testserver"  # the Django test client's host
LOGIN = "/lti_publish/lti13/login"
MAX_SCORE = 40.0
LINEITEM = "https://moodle.example/mod/lti/services.php/2/lineitems/7/lineitem?type_id=1"


def refusal(response) -> str:
    match = re.search(rb"<code>([a-z_]+)</code>", response.content)
    return f"{response.status_code} {match.group(1).decode() if match else response.content[:800]!r}"


class CoursePublishingInTheLms(SharedModuleStoreTestCase):
    """A course with one problem, and a Moodle-like LTI 1.3 platform."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.course = CourseFactory.create(org="LtiPublish", course="CP101", run="2025", display_name="Whole course")
        chapter = BlockFactory.create(parent=cls.course, category="chapter", display_name="Week 1")
        sequential = BlockFactory.create(parent=chapter, category="sequential", display_name="Lesson")
        unit = BlockFactory.create(parent=sequential, category="vertical", display_name="Unit")
        BlockFactory.create(parent=unit, category="problem", display_name="Question")
        cls.course_id = str(cls.course.id)
        cls.details = launch_details(BASE, cls.course_id)
        cls.platform = PlatformPeer(redirect_uris=[cls.details.lti13_redirect_uri]).start()

    @classmethod
    def tearDownClass(cls):
        cls.platform.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        peer = self.platform
        DjangoStore().save_registration(
            Registration(
                issuer=peer.issuer,
                client_id=peer.client_id,
                auth_login_url=peer.auth_url,
                auth_token_url=peer.token_url,
                key_set_url=peer.jwks_url,
                deployments=(Deployment(peer.deployment_id),),
            )
        )

    def publish(self, *args: str) -> str:
        out = io.StringIO()
        call_command("lti_courses", "publish", *args, stdout=out)
        return out.getvalue()

    def launch_course(self, client: Client, sub: str, **claims: Any):
        """The created link's LTI 1.3 launch: login initiation, the platform's /auth, the launch POST."""
        custom = {"content_id": self.course_id}
        form = self.platform.login_form(
            self.details.lti13_login_url,
            self.details.lti13_target_link_uri,
            claims={"sub": sub, "roles": list(LEARNER_ROLES), "custom": custom, **claims},
        )
        login = client.post(LOGIN, form)
        assert login.status_code == 302, refusal(login)
        status, action, fields = self.platform.authorize_redirect(login["Location"])
        assert status == 200 and "id_token" in fields, fields
        return client.post(urlsplit(action).path, fields)

    def test_the_launch_url_of_a_course_key_round_trips(self):
        target = self.details.lti13_target_link_uri
        assert target == f"{BASE}/lti_publish/content/{self.course_id}/" and "+" in target
        assert Client().get(urlsplit(target).path).status_code in (301, 302)  # the LMS's course, not a 404

    def test_a_published_course_is_offered_to_its_staff_only(self):
        staff = UserFactory.create(username="cp_staff")
        CourseStaffRole(self.course.id).add_users(staff)
        learner = UserFactory.create(username="cp_learner")
        CourseEnrollment.enroll(learner, self.course.id)
        assert OpenEdxHost().published_contents(staff) == []  # not published yet

        with pytest.raises(CommandError, match="unknown_course"):
            self.publish("course-v1:LtiPublish+Nope+2025")
        assert "'Whole course'  max_score=40" in self.publish(self.course_id, "--max-score", "40")
        whole = PublishedContent(self.course_id, "Whole course", MAX_SCORE, ContentKind.COURSE)
        assert OpenEdxHost().published_contents(staff) == [whole]
        assert OpenEdxHost().published_contents(learner) == []

    def test_a_launch_enrols_the_learner_lands_on_the_course_and_its_grade_reaches_the_outbox(self):
        self.publish(self.course_id, "--max-score", "40")
        client = Client()
        launched = self.launch_course(client, "51", ags={"scope": [SCOPE_SCORE], "lineitem": LINEITEM})
        assert launched.status_code == 302, refusal(launched)
        assert launched["Location"].endswith(f"/course/{self.course_id}/home"), launched["Location"]
        learner = models.LtiUserLink.objects.get(platform=self.platform.issuer, platform_user_id="51").user
        assert CourseEnrollment.is_enrolled(learner, self.course.id)
        assert not CourseStaffRole(self.course.id).has_user(learner)

        receivers = [ref() for _, ref in COURSE_GRADE_CHANGED.receivers]
        assert any(getattr(r, "__name__", "") == "openedx_course_grade_changed" for r in receivers)
        # The LMS grades the learner (nothing answered: 0) and sends the signal itself.
        CourseGradeFactory().update(learner, course_key=self.course.id)
        store = DjangoStore()
        [entry] = store.list_outbox()
        assert LINEITEM.split("?")[0] in entry.key.target and (entry.score.given, entry.score.maximum) == (
            0.0,
            MAX_SCORE,
        )

        grade = CourseGrade(learner, CourseData(learner, course=self.course), percent=0.75, letter_grade="B")
        COURSE_GRADE_CHANGED.send(
            sender=None, user=learner, course_grade=grade, course_key=self.course.id, deadline=None
        )
        [entry] = store.list_outbox()
        assert (entry.score.given, entry.score.maximum) == (30.0, MAX_SCORE)

    def test_an_unpublished_course_is_refused_at_launch(self):
        refused = self.launch_course(Client(), "52")
        assert refused.status_code == 404 and "<code>unknown_content</code>" in refused.content.decode()
        assert not models.LtiUserLink.objects.filter(platform_user_id="52").exists()
