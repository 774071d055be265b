"""LTI 1.3 launches through the LMS's middleware, the refusals of the security work as the LMS serves them,
and who may author the block in the LMS's runtime.

The platform is ``lti_peer``'s Moodle-like LTI 1.3 platform, on loopback in this process: the tool fetches
its JWKS over real HTTP, and its /auth endpoint signs the id_token for the tool's state and nonce. Nothing
of edx-platform is mocked (conftest.py: MongoDB is mongomock). One course, made once for the class.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from common.djangoapps.student.models import CourseEnrollment, UserProfile
from common.djangoapps.student.roles import CourseAccessRole, CourseStaffRole
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse
from lms.djangoapps.courseware.block_render import load_single_xblock
from xmodule.modulestore.tests.django_utils import SharedModuleStoreTestCase
from xmodule.modulestore.tests.factories import BlockFactory, CourseFactory

from lti_core.types import Consumer, Deployment, Registration
from lti_peer.lti11 import INSTRUCTOR, LEARNER, moodle_lti11_params, sign_lti11_launch
from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer, attacker_key, parse_autosubmit_form
from lti_xblock import models
from lti_xblock.launch_details import launch_details
from lti_xblock.store import DjangoStore

BASE = "http://testserver"  # the Django test client's host
LOGIN = "/lti_publish/lti13/login"
LAUNCH = "/lti_publish/lti13/launch"
CONSUMER = Consumer("moodle-key", "moodle-secret-0123456789", "Moodle")


def written_rows() -> dict[str, int]:
    """Everything a launch may write (the OIDC state excepted: the login writes it)."""
    return {
        "users": get_user_model().objects.count(),
        "profiles": UserProfile.objects.count(),
        "links": models.LtiUserLink.objects.count(),
        "nonces": models.LtiNonce.objects.count(),
        "enrollments": CourseEnrollment.objects.count(),
        "course_roles": CourseAccessRole.objects.count(),
        "launch_contexts": models.LtiLaunchContext.objects.count(),
    }


def assert_refused(response, reason: str, status: int) -> None:
    """A readable HTML page with its reason code and a 4xx status: lti_core's refusal page, never the LMS's
    500 page or a traceback."""
    body = response.content.decode()
    assert response.status_code == status, (reason, response.status_code, body[:800])
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
    assert body.lstrip().lower().startswith("<!doctype html"), body[:300]
    assert f"<code>{reason}</code>" in body, body[:800]
    assert "Traceback" not in body


class Lti13AndRefusalsInTheLms(SharedModuleStoreTestCase):
    """A course: chapter > sequential > vertical > lti_publish > html, and a Moodle-like LTI 1.3 platform."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.course = CourseFactory.create(org="LtiPublish", course="LTI13", run="2025", display_name="LTI 1.3 course")
        chapter = BlockFactory.create(parent=cls.course, category="chapter", display_name="Week 1")
        sequential = BlockFactory.create(parent=chapter, category="sequential", display_name="Lesson")
        cls.unit = BlockFactory.create(parent=sequential, category="vertical", display_name="Unit")
        cls.block = BlockFactory.create(parent=cls.unit, category="lti_publish", display_name="Published by LTI 1.3")
        BlockFactory.create(parent=cls.block, category="html", display_name="Page", data="<p>inside</p>")
        cls.content_id = str(cls.block.location)
        cls.details = launch_details(BASE, cls.content_id)
        cls.jump_to = reverse("jump_to", kwargs={"course_id": str(cls.course.id), "location": cls.content_id})
        cls.platform = PlatformPeer(redirect_uris=[cls.details.lti13_redirect_uri]).start()

    @classmethod
    def tearDownClass(cls):
        cls.platform.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        store = DjangoStore()
        store.save_consumer(CONSUMER)
        peer = self.platform
        store.save_registration(
            Registration(
                issuer=peer.issuer,
                client_id=peer.client_id,
                auth_login_url=peer.auth_url,
                auth_token_url=peer.token_url,
                key_set_url=peer.jwks_url,
                deployments=(Deployment(peer.deployment_id),),
            )
        )

    # -- LTI 1.3 ---------------------------------------------------------------------------------------

    def login(self, client: Client, *, method: str = "post", target: str = "", **claims: Any) -> dict[str, str]:
        """Moodle's login initiation to the LMS; returns the query of the tool's redirect to /auth."""
        form = self.platform.login_form(
            self.details.lti13_login_url, target or self.details.lti13_target_link_uri, claims=claims
        )
        response = getattr(client, method)(LOGIN, form)
        assert response.status_code == 302, response.content[:800]
        location = response["Location"]
        assert location.startswith(self.platform.auth_url + "?"), location
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query["state"] and query["nonce"] and query["redirect_uri"] == self.details.lti13_redirect_uri
        # The state cookie, bound to this browser, for the launch path only.
        name = f"lti1p3_state_{query['state']}"
        assert name in client.cookies, list(client.cookies)
        assert "Path=/lti_publish/lti13/" in response.cookies[name].OutputString()
        query["location"] = location
        return query

    def full_launch(self, client: Client, *, method: str = "post", **claims: Any):
        """Login initiation, the platform's /auth over HTTP (it signs the id_token for the tool's state and
        nonce), the auto-submitted form POSTed back with the same client (its state cookie)."""
        query = self.login(client, method=method, **claims)
        status, action, fields = self.platform.authorize_redirect(query["location"])
        assert status == 200 and action == self.details.lti13_redirect_uri and "id_token" in fields, fields
        assert fields["state"] == query["state"]
        return client.post(urlsplit(action).path, fields)

    def lti13_user(self, sub: str):
        return models.LtiUserLink.objects.get(platform=self.platform.issuer, platform_user_id=sub).user

    def test_lti13_learner_launch_through_the_lms_middleware(self):
        client = Client()
        response = self.full_launch(client, sub="13")
        assert response.status_code == 302, response.content[:800]
        assert response["Location"] == self.jump_to
        # The tool fetched the platform's JWKS over HTTP (once: its key cache outlives requests).
        assert self.platform.jwks_fetches == 1
        user = self.lti13_user("13")
        assert UserProfile.objects.get(user=user).name
        assert CourseEnrollment.is_enrolled(user, self.course.id)
        assert not CourseStaffRole(self.course.id).has_user(user)
        assert client.session["_auth_user_id"] == str(user.pk)
        landing = client.get(self.jump_to)
        assert landing.status_code == 302 and landing["Location"].endswith(str(self.unit.location)), landing

        # The same platform user again, in another browser, logging in by GET: the same LMS user.
        again = self.full_launch(Client(), method="get", sub="13")
        assert again.status_code == 302 and again["Location"] == self.jump_to
        assert self.lti13_user("13") == user
        assert models.LtiUserLink.objects.filter(platform=self.platform.issuer).count() == 1

    def test_lti13_instructor_launch_gets_the_course_staff_role(self):
        response = self.full_launch(Client(), sub="17", roles=list(INSTRUCTOR_ROLES))
        assert response.status_code == 302 and response["Location"] == self.jump_to, response.content[:800]
        user = self.lti13_user("17")
        assert UserProfile.objects.filter(user=user).exists()
        assert CourseEnrollment.is_enrolled(user, self.course.id)
        assert CourseStaffRole(self.course.id).has_user(user)

    # -- refusals: lti_core's pages, inside the LMS ---------------------------------------------------------

    def lti11_form(self, url: str, *, secret: str = CONSUMER.secret, nonce: str | None = None) -> dict[str, str]:
        params = moodle_lti11_params(roles=LEARNER, user_id="21")
        return sign_lti11_launch(url, CONSUMER.key, secret, params, nonce=nonce)

    def test_lti11_replayed_nonce_is_refused(self):
        url = self.details.lti11_tool_url
        form = self.lti11_form(url, nonce="lms-replay-nonce-1")
        assert Client().post(url.removeprefix(BASE), form).status_code == 302
        before = written_rows()
        assert_refused(Client().post(url.removeprefix(BASE), form), "nonce_reused", 401)
        assert written_rows() == before

    def test_lti11_bad_signature_is_refused(self):
        url = self.details.lti11_tool_url
        before = written_rows()
        form = self.lti11_form(url, secret="not-the-secret-0123456789")
        assert_refused(Client().post(url.removeprefix(BASE), form), "bad_signature", 401)
        assert written_rows() == before

    def test_unknown_content_is_refused_before_anything_is_written(self):
        unknown = self.content_id.replace(self.block.location.block_id, "nothing_here")
        url = launch_details(BASE, unknown).lti11_tool_url
        before = written_rows()
        # LTI 1.1: refused before its commit: the nonce is not even consumed.
        assert_refused(Client().post(url.removeprefix(BASE), self.lti11_form(url)), "unknown_content", 404)
        # LTI 1.3: a target link to content the LMS does not have (the html child is not published content).
        client = Client()
        query = self.login(client, target=launch_details(BASE, unknown).lti13_target_link_uri)
        status, action, fields = self.platform.authorize_redirect(query["location"])
        assert status == 200 and "id_token" in fields
        assert_refused(client.post(LAUNCH, fields), "unknown_content", 404)
        assert written_rows() == before

    def test_lti13_launch_without_its_state_cookie_gets_the_browser_check_then_state_not_bound(self):
        query = self.login(Client())  # the state cookie stays in that browser
        status, action, fields = self.platform.authorize_redirect(query["location"])
        assert status == 200 and "id_token" in fields
        before = written_rows()
        other = Client()  # a browser without the cookie (a frame that keeps none, or a login CSRF's victim)
        check = other.post(LAUNCH, fields)
        assert check.status_code == 200, check.content[:800]
        assert check["Content-Type"].startswith("text/html") and check["Cache-Control"] == "no-store"
        repost_action, repost_fields = parse_autosubmit_form(check.content)
        assert repost_fields["lti_repost"] == "1" and urlsplit(repost_action).path == LAUNCH
        # The re-post without proof (no cookie, no same-origin request, no platform storage value).
        for headers in ({}, {"HTTP_SEC_FETCH_SITE": "cross-site"}, {"HTTP_SEC_FETCH_SITE": "same-origin"}):
            assert_refused(other.post(LAUNCH, repost_fields, **headers), "state_not_bound", 403)
        assert "_auth_user_id" not in other.session
        assert written_rows() == before

    def test_get_on_the_launch_urls_is_refused(self):
        before = written_rows()
        assert_refused(Client().get(LAUNCH), "method_not_allowed", 405)
        assert_refused(Client().get(self.details.lti11_tool_url.removeprefix(BASE)), "method_not_allowed", 405)
        assert written_rows() == before

    def test_lti13_forged_signature_is_refused(self):
        client = Client()
        query = self.login(client)
        token = self.platform.id_token(
            query["nonce"], target_link_uri=self.details.lti13_target_link_uri, key=attacker_key()
        )
        before = written_rows()
        assert_refused(client.post(LAUNCH, {"id_token": token, "state": query["state"]}), "bad_signature", 401)
        assert written_rows() == before

    # -- the LMS's runtime: who may author ---------------------------------------------------------------

    def block_for(self, user):
        """The block as the LMS loads it for ``user`` (what its xblock handler view does)."""
        request = RequestFactory().get("/")
        request.user = user
        return load_single_xblock(request, user.id, str(self.course.id), self.content_id)

    def test_user_may_author_with_the_lms_user_service(self):
        assert self.launch_lti11(INSTRUCTOR, "31").status_code == 302
        assert self.launch_lti11(LEARNER, "32").status_code == 302
        staff = models.LtiUserLink.objects.get(platform=CONSUMER.key, platform_user_id="31").user
        learner = models.LtiUserLink.objects.get(platform=CONSUMER.key, platform_user_id="32").user
        assert CourseStaffRole(self.course.id).has_user(staff)

        staff_block = self.block_for(staff)
        users = staff_block.runtime.service(staff_block, "user")
        assert users.get_current_user().opt_attrs["edx-platform.user_is_staff"] is True
        assert staff_block.runtime.service(staff_block, "studio_user_permissions") is None  # the LMS has none
        assert staff_block.user_may_author() is True

        learner_block = self.block_for(learner)
        learner_user = learner_block.runtime.service(learner_block, "user").get_current_user()
        assert learner_user.opt_attrs["edx-platform.user_is_staff"] is False
        assert learner_block.user_may_author() is False

    def launch_lti11(self, roles: str, user_id: str):
        url = self.details.lti11_tool_url
        form = sign_lti11_launch(url, CONSUMER.key, CONSUMER.secret, moodle_lti11_params(roles=roles, user_id=user_id))
        return Client().post(url.removeprefix(BASE), form)
