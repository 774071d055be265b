"""Deep linking ("Published content") and the linking prompt inside a real Open edX LMS.

``OpenEdxHost.published_contents`` reads the LMS's course team (``CourseAccessRole``) and modulestore; an
instructor's LTI 1.3 LtiDeepLinkingRequest from ``lti_peer``'s platform (on loopback) lands on the page that
lists the course's published blocks, and the picked block goes back signed (checked with pyjwt against the
tool's JWKS as the LMS serves it); the prompt's "Sign in to an existing account" goes to the LMS's /login.
Nothing of edx-platform is mocked (conftest.py: MongoDB is mongomock). One course, made once for the class.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt as pyjwt
from common.djangoapps.student.models import CourseEnrollment
from common.djangoapps.student.roles import CourseStaffRole
from common.djangoapps.student.tests.factories import UserFactory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import resolve
from xmodule.modulestore.tests.django_utils import SharedModuleStoreTestCase
from xmodule.modulestore.tests.factories import BlockFactory, CourseFactory

from lti_core.types import Consumer, Deployment, Registration
from lti_peer import DELETE
from lti_peer.claims import INSTRUCTOR_ROLES, LEARNER_ROLES, deep_linking_settings
from lti_peer.lti11 import INSTRUCTOR, moodle_lti11_params, sign_lti11_launch
from lti_peer.platform import PlatformPeer, parse_autosubmit_form
from lti_xblock import models
from lti_xblock.compat import OpenEdxHost
from lti_xblock.launch_details import launch_details, tool_urls
from lti_xblock.store import DjangoStore

BASE = "http://testserver"  # the Django test client's host
LOGIN = "/lti_publish/lti13/login"
JWKS = "/lti_publish/lti13/jwks"
CONSUMER = Consumer("moodle-key", "moodle-secret-0123456789", "Moodle")
CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
MESSAGE_TYPE = "https://purl.imsglobal.org/spec/lti/claim/message_type"


def refusal(response) -> str:
    match = re.search(rb"<code>([a-z_]+)</code>", response.content)
    return f"{response.status_code} {match.group(1).decode() if match else response.content[:800]!r}"


def keep_cookies(client: Client, response) -> None:
    """Keep the cookies as a browser does, from their Set-Cookie lines: the test client copies the
    response's morsels, and reads the ones lti_xblock writes as whole lines (cookies.HeaderMorsel) as empty."""
    for morsel in response.cookies.values():
        client.cookies.load(morsel.OutputString())


def csrf_token(page) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert found is not None, page.content[:2000]
    return found.group(1)


class DeepLinkingInTheLms(SharedModuleStoreTestCase):
    """A course with two published blocks (in two units), and a Moodle-like LTI 1.3 platform."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.course = CourseFactory.create(org="LtiPublish", course="DL101", run="2025", display_name="DL course")
        chapter = BlockFactory.create(parent=cls.course, category="chapter", display_name="Week 1")
        sequential = BlockFactory.create(parent=chapter, category="sequential", display_name="Lesson")
        cls.blocks = []
        for number, title in ((1, "Fractions"), (2, "Decimals")):
            unit = BlockFactory.create(parent=sequential, category="vertical", display_name=f"Unit {number}")
            block = BlockFactory.create(parent=unit, category="lti_publish", display_name=title)
            BlockFactory.create(parent=block, category="html", display_name=f"Page {number}", data=f"<p>{title}</p>")
            cls.blocks.append(block)
        cls.content_ids = [str(block.location) for block in cls.blocks]
        cls.details = launch_details(BASE, cls.content_ids[0])
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

    def return_url(self) -> str:
        return self.platform.issuer + "/mod/lti/contentitem_return.php?course=2&id=2"

    def launch13(self, client: Client, target: str, **claims: Any):
        """Login initiation for ``target``, the platform's /auth over HTTP, the launch POSTed back."""
        form = self.platform.login_form(self.details.lti13_login_url, target, claims=claims)
        login = client.post(LOGIN, form)
        assert login.status_code == 302, refusal(login)
        status, action, fields = self.platform.authorize_redirect(login["Location"])
        assert status == 200 and "id_token" in fields, fields
        return client.post(urlsplit(action).path, fields)

    def select_content(self, client: Client, sub: str, roles: Any = INSTRUCTOR_ROLES):
        """Moodle's "Select content": an LtiDeepLinkingRequest (no resource link) to the deep-linking URL."""
        return self.launch13(
            client,
            tool_urls(BASE).deep_linking_url,
            sub=sub,
            roles=list(roles),
            message_type="LtiDeepLinkingRequest",
            resource_link=DELETE,
            deep_linking_settings=deep_linking_settings(self.return_url(), data="_2_lms"),
        )

    def decode_response(self, client: Client, token: str) -> dict[str, Any]:
        """The LtiDeepLinkingResponse as the platform checks it: signed by a key of the JWKS the LMS serves."""
        key_set = pyjwt.PyJWKSet.from_dict(client.get(JWKS).json())
        kid = pyjwt.get_unverified_header(token)["kid"]
        key = next(k for k in key_set.keys if k.key_id == kid)
        return pyjwt.decode(token, key.key, algorithms=["RS256"], audience=self.platform.issuer)

    def test_published_contents_lists_the_course_blocks_for_its_staff_only(self):
        staff = UserFactory.create(username="dl_staff")
        CourseStaffRole(self.course.id).add_users(staff)
        learner = UserFactory.create(username="dl_learner")
        CourseEnrollment.enroll(learner, self.course.id)

        contents = OpenEdxHost().published_contents(staff)
        assert sorted((c.content_id, c.title, c.max_score) for c in contents) == sorted(
            [(self.content_ids[0], "Fractions", 100.0), (self.content_ids[1], "Decimals", 100.0)]
        )
        assert OpenEdxHost().published_contents(learner) == []

    def test_course_staff_adds_a_block_to_the_gradebook_and_a_learner_is_refused(self):
        # The instructor's first launch (of content) makes their account, on the course team.
        client = Client()
        first = self.launch13(client, self.details.lti13_target_link_uri, sub="41", roles=list(INSTRUCTOR_ROLES))
        assert first.status_code == 302, refusal(first)
        staff = models.LtiUserLink.objects.get(platform=self.platform.issuer, platform_user_id="41").user
        assert CourseStaffRole(self.course.id).has_user(staff)

        # "Select content" in another browser: the request itself signs the linked account in.
        client = Client()
        launched = self.select_content(client, "41")
        assert launched.status_code == 302, refusal(launched)
        assert launched["Location"].startswith("/lti_publish/pick/"), launched["Location"]
        assert client.session["_auth_user_id"] == str(staff.pk)
        page = client.get(launched["Location"])
        assert page.status_code == 200, refusal(page)
        text = page.content.decode()
        assert "Fractions" in text and "Decimals" in text
        offered = [html.unescape(v) for v in re.findall(r'type="checkbox" name="item" value="([^"]+)"', text)]
        assert sorted(offered) == sorted(self.content_ids)

        picked = self.content_ids[0]
        data = {"csrfmiddlewaretoken": csrf_token(page), "action": "add", "item": [picked], "gradebook": [picked]}
        sent = client.post(launched["Location"], data)
        assert sent.status_code == 200, refusal(sent)
        assert ".submit()" in sent.content.decode()
        action, fields = parse_autosubmit_form(sent.content)
        assert action == self.return_url() and list(fields) == ["JWT"]
        body = self.decode_response(client, fields["JWT"])
        assert body["iss"] == self.platform.client_id and body[MESSAGE_TYPE] == "LtiDeepLinkingResponse"
        assert body[DL_DATA] == "_2_lms"
        assert body[CONTENT_ITEMS] == [
            {
                "type": "ltiResourceLink",
                "title": "Fractions",
                "url": launch_details(BASE, picked).lti13_target_link_uri,
                "custom": {"content_id": picked},
                "lineItem": {"scoreMaximum": 100.0, "label": "Fractions", "resourceId": picked},
            }
        ]

        # A learner's request: the refusal page, and no account made for it.
        users_before = get_user_model().objects.count()
        refused = self.select_content(Client(), "42", roles=LEARNER_ROLES)
        assert refused.status_code == 403, refusal(refused)
        assert "<code>deep_linking_instructors_only</code>" in refused.content.decode()
        assert get_user_model().objects.count() == users_before

    def test_prompt_sign_in_to_an_existing_account_goes_to_the_lms_login(self):
        provisioning = {"instructor": "existing_and_new_prompt", "learner": "new_only"}
        with self.settings(LTI_PUBLISH={**settings.LTI_PUBLISH, "PROVISIONING": provisioning}):
            client = Client()
            url = launch_details(BASE, self.content_ids[1]).lti11_tool_url
            params = moodle_lti11_params(roles=INSTRUCTOR, user_id="43")
            prompt = client.post(url.removeprefix(BASE), sign_lti11_launch(url, CONSUMER.key, CONSUMER.secret, params))
            assert prompt.status_code == 200, refusal(prompt)
            keep_cookies(client, prompt)
            text = prompt.content.decode()
            assert "How do you want to continue?" in text
            forms = re.findall(r'<form method="post" action="([^"]+)">(.*?)</form>', text, re.S)
            existing = [(a, b) for a, b in forms if 'name="choice" value="existing"' in b]
            assert existing, text[:2000]
            action, form = existing[0]
            fields = {k: html.unescape(v) for k, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form)}
            step = client.post(html.unescape(action), {**fields, "choice": "existing"})
        assert step.status_code == 302, refusal(step)
        location = urlsplit(step["Location"])
        assert location.path == "/login", step["Location"]
        next_url = parse_qs(location.query)["next"][0]
        assert re.fullmatch(r"/lti_publish/link/[^/]+/signed-in", next_url), next_url
        assert resolve(location.path) is not None  # the LMS's own sign-in page is there
        assert not models.LtiUserLink.objects.filter(platform=CONSUMER.key, platform_user_id="43").exists()
