"""The lti_publish XBlock in the real XBlock SDK workbench runtime: parsing, views, the settings handler."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from django.contrib.auth import get_user_model
from django.template.defaultfilters import slugify
from django.utils import translation
from webob import Request
from workbench.models import XBlockState
from workbench.runtime import ScenarioIdManager, WorkbenchRuntime
from xblock.core import XBlock

from lti_core.i18n import translation as catalog
from lti_core.types import Role
from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer
from lti_publish_assets import STATIC_DIR, TRANSLATIONS_DIR, static_text
from lti_xblock.block import DEFAULT_TITLE, LtiPublishBlock
from lti_xblock.compat import openedx_may_author
from lti_xblock.i18n import gettext
from lti_xblock.launch_details import launch_details
from lti_xblock.models import LtiContentEnrollment
from tests.conftest import Tool
from tests.test_host_lti13 import full_launch

pytestmark = pytest.mark.django_db

DESCRIPTION, SCENARIO_XML = LtiPublishBlock.workbench_scenarios()[0]
# What the demo workbench (and so the demo's launch URLs) calls the published block.
DEMO_USAGE_ID = "lti-publish-published-content.lti_publish.d0.u0"
WORKBENCH_HOST = "http://127.0.0.1:8000"


@dataclass
class Scenario:
    ids: ScenarioIdManager
    usage_id: str
    author: str  # the workbench user id (a Django user's pk) of a user launched into the content as staff

    def runtime(self, student: str | None = "student_1") -> WorkbenchRuntime:
        """A fresh runtime (as for a new request) reading this scenario's ids, not the global ones."""
        runtime = WorkbenchRuntime(student)
        runtime.id_reader = runtime.id_generator = self.ids
        return runtime

    def block(self, student: str | None = "student_1") -> Any:
        return self.runtime(student).get_block(self.usage_id)

    def author_block(self) -> Any:
        """The block as its author (course staff) gets it, e.g. in a handler request: they may save."""
        return self.block(self.author)


def enrolled_user(username: str, content_id: str, role: Role) -> str:
    """A user with ``role``'s rights on the content, as a launch leaves them; their workbench user id."""
    user = get_user_model().objects.create_user(username)
    LtiContentEnrollment.objects.create(user=user, content_id=content_id, role=role.value)
    return str(user.pk)


def parse_scenario(description: str, xml: str) -> Scenario:
    """A workbench scenario, parsed the way the workbench does, with private id numbering."""
    ids = ScenarioIdManager()
    slug = slugify(description)
    ids.set_scenario(slug)
    # Parsing appends children; start from none, as the workbench does before loading scenarios.
    XBlockState.objects.filter(scope="children", scenario=slug).delete()
    runtime = WorkbenchRuntime("student_1")
    runtime.id_reader = runtime.id_generator = ids
    usage_id = runtime.parse_xml_string(xml)
    return Scenario(ids, str(usage_id), enrolled_user(f"author-{slug}", str(usage_id), Role.STAFF))


@pytest.fixture
def scenario() -> Scenario:
    """The block's (first) workbench scenario: the demo's content."""
    return parse_scenario(DESCRIPTION, SCENARIO_XML)


@pytest.fixture
def base_urls(settings: Any) -> Iterator[Any]:
    """LTI_PUBLISH without configured base URLs (the demo's default); tests may set their own."""
    settings.LTI_PUBLISH = {**settings.LTI_PUBLISH, "TOOL_BASE_URLS": []}
    yield settings


def post_json(block: Any, body: bytes | str, method: str = "POST") -> tuple[int, Any]:
    request = Request.blank("/", method=method)
    request.body = body.encode() if isinstance(body, str) else body
    request.content_type = "application/json"
    response = block.handle("save_settings", request)
    try:
        payload = json.loads(response.body)
    except ValueError:
        payload = None
    return response.status_code, payload


def save(block: Any, data: Any) -> dict[str, Any]:
    status, payload = post_json(block, json.dumps(data))
    assert status == 200
    return payload


def render(block: Any, view: str) -> tuple[str, Any]:
    fragment = block.render(view, {})
    return fragment.body_html(), fragment


# --------------------------------------------------------------------------- loading


def test_entry_point_loads_the_block() -> None:
    assert XBlock.load_class("lti_publish") is LtiPublishBlock


def test_scenario_parses_into_a_container_with_the_sample_problems(scenario: Scenario) -> None:
    assert DESCRIPTION == "lti-publish: published content"
    assert scenario.usage_id == DEMO_USAGE_ID
    block = scenario.block()
    assert isinstance(block, LtiPublishBlock)
    assert block.display_name == "Published content: fractions"
    assert block.grade_sync is True  # the demo content sends its scores back
    assert block.max_score == 100.0
    runtime = block.runtime
    child_types = [runtime.get_block(child).scope_ids.block_type for child in block.children]
    assert child_types == ["html_demo", "problem_demo", "problem_demo"]


def test_a_second_scenario_publishes_another_block_for_the_picker() -> None:
    # Deep linking's "Published content" page lists more than one item in the workbench.
    (description, xml) = LtiPublishBlock.workbench_scenarios()[1]
    second = parse_scenario(description, xml)
    assert second.usage_id == "lti-publish-published-content-2.lti_publish.d0.u0" != DEMO_USAGE_ID
    block = second.block()
    assert isinstance(block, LtiPublishBlock) and block.display_name == "Published content: decimals"
    assert block.grade_sync is True
    children = [block.runtime.get_block(child) for child in block.children]
    assert [child.scope_ids.block_type for child in children] == ["html_demo", "problem_demo"]
    assert "How many hundredths make" in block.render("student_view", {}).body_html()


def test_field_defaults() -> None:
    fields = LtiPublishBlock.fields
    assert fields["display_name"].default == DEFAULT_TITLE == "Published content"
    assert fields["grade_sync"].default is False
    assert fields["max_score"].default == 100.0
    assert fields["grade_sync"].help == "Send scores back to the platform's gradebook"
    assert LtiPublishBlock.has_children is True


def test_css_text_comes_from_the_assets_package() -> None:
    css = LtiPublishBlock.css_text()
    assert css == static_text("css/lti_publish.css")
    assert css.strip()
    assert (STATIC_DIR / "css" / "lti_publish.css").read_text(encoding="utf-8") == css


# ------------------------------------------------------------------------------ views


def test_student_view_renders_every_child_under_the_title(scenario: Scenario) -> None:
    html, fragment = render(scenario.block(), "student_view")
    assert "Published content: fractions" in html
    assert 'class="lti-publish"' in html
    # The html intro, both problems with their text input and checker, each wrapped by the runtime.
    assert "Adding fractions that share a denominator" in html
    assert "How many eighths make" in html
    assert html.count("data-block-type='problem_demo'") == 2
    assert html.count("data-block-type='textinput_demo'") == 2
    assert html.count("data-block-type='equality_demo'") == 2
    assert "name='input'" in html
    # The children's own resources (the problem's JS) and our stylesheet travel with the fragment.
    texts = [resource.data for resource in fragment.resources]
    assert LtiPublishBlock.css_text() in texts
    assert any("function ProblemBlock" in text for text in texts)


def test_studio_view_shows_the_form_and_the_launch_details(scenario: Scenario, base_urls: Any) -> None:
    html, fragment = render(scenario.block(), "studio_view")
    for name in ("display_name", "grade_sync", "max_score"):
        assert f'name="{name}"' in html
    assert 'type="checkbox"' in html
    assert 'value="Published content: fractions"' in html
    assert 'value="100"' in html
    assert "Send scores back to the platform&#x27;s gradebook" in html

    # No configured base URL: the workbench runtime's host.
    details = launch_details(WORKBENCH_HOST, DEMO_USAGE_ID)
    assert details.lti11_tool_url == f"{WORKBENCH_HOST}/lti_publish/content/{DEMO_USAGE_ID}/ltiaccess"
    for url in (
        details.lti11_tool_url,
        details.lti13_target_link_uri,
        details.lti13_login_url,
        details.lti13_redirect_uri,
        details.lti13_jwks_url,
    ):
        assert f"<code>{url}</code>" in html
    assert "Tool URL" in html
    assert "Login initiation URL" in html
    assert "<code>lti-publish issue-consumer --name &lt;platform&gt;</code>" in html
    assert "relative" not in html

    # Studio's editor JavaScript and our stylesheet.
    texts = [resource.data for resource in fragment.resources]
    assert static_text("js/studio.js") in texts
    assert LtiPublishBlock.css_text() in texts
    assert "data-init='LtiPublishStudio'" in html


def test_studio_view_uses_the_configured_base_url(scenario: Scenario, base_urls: Any) -> None:
    base_urls.LTI_PUBLISH = {**base_urls.LTI_PUBLISH, "TOOL_BASE_URLS": ["https://tool.example.org/"]}
    html, _ = render(scenario.block(), "studio_view")
    details = launch_details("https://tool.example.org", DEMO_USAGE_ID)
    assert f"<code>{details.lti13_target_link_uri}</code>" in html
    assert f"<code>{details.lti11_tool_url}</code>" in html
    assert WORKBENCH_HOST not in html


def test_studio_view_without_any_host_shows_relative_urls_and_says_so(scenario: Scenario, base_urls: Any) -> None:
    block = scenario.block()
    block.runtime.hostname = ""
    html, _ = render(block, "studio_view")
    assert f"<code>/lti_publish/content/{DEMO_USAGE_ID}/ltiaccess</code>" in html
    assert "<code>/lti_publish/lti13/jwks</code>" in html
    assert "These URLs are relative" in html


def test_author_view_shows_launch_details_and_previews_the_children(scenario: Scenario, base_urls: Any) -> None:
    html, _ = render(scenario.block(), "author_view")
    assert f"<code>{launch_details(WORKBENCH_HOST, DEMO_USAGE_ID).lti13_login_url}</code>" in html
    assert "How many eighths make" in html
    assert "name='input'" in html


def test_interpolated_text_is_escaped(scenario: Scenario, base_urls: Any) -> None:
    title = "<script>alert('x')</script> & co"
    assert save(scenario.author_block(), {"display_name": title}) == {"result": "success"}
    for view in ("student_view", "studio_view", "author_view"):
        html, _ = render(scenario.block(), view)
        assert "<script>alert" not in html, view
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in html, view


# ---------------------------------------------------------------------------- handler


def test_save_settings_saves_valid_settings(scenario: Scenario) -> None:
    block = scenario.author_block()
    payload = {"display_name": "  Fractions, part 1 ", "grade_sync": True, "max_score": 12.5}
    assert save(block, payload) == {"result": "success"}
    saved = scenario.block("another_student")  # a new runtime reads the stored fields back
    assert saved.display_name == "Fractions, part 1"
    assert saved.grade_sync is True
    assert saved.max_score == 12.5

    # What studio.js sends for a number input can also arrive as text; a partial update keeps the rest.
    assert save(scenario.author_block(), {"max_score": "7", "grade_sync": False}) == {"result": "success"}
    again = scenario.block()
    assert (again.display_name, again.grade_sync, again.max_score) == ("Fractions, part 1", False, 7.0)

    html, _ = render(again, "studio_view")
    assert 'value="7"' in html
    assert "checked" not in html


@pytest.mark.parametrize(
    ("payload", "bad_fields"),
    [
        ({"display_name": ""}, {"display_name"}),
        ({"display_name": "   "}, {"display_name"}),
        ({"display_name": None}, {"display_name"}),
        ({"display_name": 42}, {"display_name"}),
        ({"max_score": 0}, {"max_score"}),
        ({"max_score": -5}, {"max_score"}),
        ({"max_score": -0.5}, {"max_score"}),
        ({"max_score": "ten"}, {"max_score"}),
        ({"max_score": ""}, {"max_score"}),
        ({"max_score": None}, {"max_score"}),  # studio.js sends null for an empty number input
        ({"max_score": True}, {"max_score"}),
        ({"max_score": [10]}, {"max_score"}),
        ({"max_score": "nan"}, {"max_score"}),
        ({"max_score": math.inf}, {"max_score"}),
        ({"grade_sync": "yes"}, {"grade_sync"}),
        ({"grade_sync": 1}, {"grade_sync"}),
        # One bad field: nothing is saved, not even the good ones.
        ({"display_name": "New title", "grade_sync": True, "max_score": 0}, {"max_score"}),
        ({"display_name": "", "grade_sync": True, "max_score": -1}, {"display_name", "max_score"}),
    ],
)
def test_save_settings_refuses_invalid_settings(
    scenario: Scenario, payload: dict[str, Any], bad_fields: set[str]
) -> None:
    reply = save(scenario.author_block(), payload)
    assert reply["result"] == "error"
    assert set(reply["errors"]) == bad_fields
    assert all(isinstance(message, str) and message for message in reply["errors"].values())
    saved = scenario.block()
    assert (saved.display_name, saved.grade_sync, saved.max_score) == ("Published content: fractions", True, 100.0)


@pytest.mark.parametrize("body", ["[1, 2]", '"title"', "null", "3"])
def test_save_settings_refuses_a_payload_that_is_not_an_object(scenario: Scenario, body: str) -> None:
    status, reply = post_json(scenario.author_block(), body)
    assert status == 200
    assert reply["result"] == "error"
    assert set(reply["errors"]) == {"__all__"}


def test_save_settings_answers_bad_requests_without_raising(scenario: Scenario) -> None:
    assert post_json(scenario.author_block(), b"{not json")[0] == 400
    assert post_json(scenario.author_block(), b"\xff\xfe")[0] == 400
    assert post_json(scenario.author_block(), "{}", method="GET")[0] == 405
    assert scenario.block().display_name == "Published content: fractions"


def test_error_messages_are_the_translated_ones(scenario: Scenario) -> None:
    with translation.override("fr"):
        reply = save(scenario.author_block(), {"display_name": "", "max_score": -1})
        expected = {
            "display_name": gettext("Enter a title."),
            "max_score": gettext("The maximum score must be a number greater than 0."),
        }
    assert reply["errors"] == expected


# ------------------------------------------------------------------------------- i18n

# Strings the block shows, as its source marks them for translation.
BLOCK_STRINGS = [
    DEFAULT_TITLE,
    "Launch details",
    "Paste these into the platform that will show this content.",
    "Content ID",
    "Tool URL",
    "Target link URI",
    "Login initiation URL",
    "Redirection URI",
    "Public keyset URL",
    "Title",
    "Maximum score",
    "Save",
    "Cancel",
    "Send scores back to the platform's gradebook",
]


def french_catalog() -> dict[str, str]:
    """The French .po file's translated messages (what `make translations` compiles into the .mo)."""
    from babel.messages.pofile import read_po

    po = TRANSLATIONS_DIR / "fr" / "LC_MESSAGES" / "lti_publish.po"
    if not po.is_file():
        pytest.fail(f"{po} is missing: run `make translations`")
    with po.open("rb") as f:
        messages = read_po(f)
    return {str(m.id): str(m.string) for m in messages if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


def test_french_catalog_is_compiled_and_used() -> None:
    translated = french_catalog()
    assert translated, "the French catalog translates nothing"
    msgid, msgstr = sorted(translated.items())[0]
    assert catalog(str(TRANSLATIONS_DIR), "fr").gettext(msgid) == msgstr, "the .mo is stale: run `make translations`"
    with translation.override("fr"):
        assert gettext(msgid) == msgstr
    with translation.override("en"):
        assert gettext(msgid) == msgid


def test_block_views_are_translated_when_the_catalog_has_their_strings(scenario: Scenario, base_urls: Any) -> None:
    translated = {s: t for s, t in french_catalog().items() if s in BLOCK_STRINGS}
    if not translated:
        pytest.fail("the French catalog has none of the block's strings yet: run `make translations` and translate")
    # The default title is shown translated (an author's own title never is).
    assert save(scenario.author_block(), {"display_name": DEFAULT_TITLE}) == {"result": "success"}
    with translation.override("fr"):
        html = render(scenario.block(), "studio_view")[0] + render(scenario.block(), "student_view")[0]
    from django.utils.html import escape

    for source, french in translated.items():
        assert escape(french) in html, source


# ------------------------------------------------------------------ who may change the settings

UNCHANGED = ("Published content: fractions", True, 100.0)  # the scenario syncs grades


def settings_of(block: Any) -> tuple[str, bool, float]:
    return (block.display_name, block.grade_sync, block.max_score)


@pytest.mark.parametrize(
    "who",
    ["learner", "staff_of_other_content", "unknown_user_id", "workbench_student", "anonymous", "inactive_staff"],
)
def test_save_settings_is_refused_to_anyone_but_the_content_staff(scenario: Scenario, who: str) -> None:
    student: str | None
    if who == "learner":
        student = enrolled_user("sam", scenario.usage_id, Role.LEARNER)
    elif who == "staff_of_other_content":
        student = enrolled_user("grace", "another.lti_publish.d0.u0", Role.STAFF)
    elif who == "unknown_user_id":
        student = "999999"
    elif who == "workbench_student":
        student = "student_1"  # the workbench's own default: not a user
    elif who == "anonymous":
        student = None
    else:
        student = enrolled_user("left", scenario.usage_id, Role.STAFF)
        get_user_model().objects.filter(pk=student).update(is_active=False)
    block = scenario.block(student)
    assert block.user_may_author() is False
    status, reply = post_json(block, json.dumps({"display_name": "Renamed", "max_score": 1}))
    assert status == 403
    assert reply == {"error": "Only the course team can change the settings of this content."}
    assert settings_of(scenario.block()) == UNCHANGED
    # Refused before the data is looked at: a bad payload gets the same answer, not a validation error.
    assert post_json(block, "[]")[0] == 403


def test_a_launch_as_learner_after_one_as_staff_takes_the_right_away(scenario: Scenario) -> None:
    assert scenario.author_block().user_may_author() is True
    LtiContentEnrollment.objects.filter(user_id=scenario.author).update(role=Role.LEARNER.value)
    assert post_json(scenario.author_block(), json.dumps({"max_score": 1}))[0] == 403
    assert settings_of(scenario.block()) == UNCHANGED


def test_the_refusal_is_translated(scenario: Scenario) -> None:
    with translation.override("fr"):
        status, reply = post_json(scenario.block(), json.dumps({"max_score": 1}))
        expected = gettext("Only the course team can change the settings of this content.")
    assert status == 403
    assert reply == {"error": expected}


def test_every_handler_of_the_block_is_guarded(scenario: Scenario) -> None:
    """The block's handlers are all Studio ones: a new one must go through studio_handler too."""
    handlers = [
        name for name in dir(LtiPublishBlock) if getattr(getattr(LtiPublishBlock, name), "_is_xblock_handler", False)
    ]
    assert handlers == ["save_settings"]
    block = scenario.block()
    for name in handlers:
        request = Request.blank("/", method="POST", body=b"{}")
        assert block.handle(name, request).status_code == 403, name


# Open edX: what edx-platform's runtimes give the block (common/djangoapps/xblock_django/user_service.py,
# cms load_services_for_studio, lms block_render), faked.


class FakeUser:
    def __init__(self, **opt_attrs: Any) -> None:
        self.opt_attrs = {f"edx-platform.{name}": value for name, value in opt_attrs.items()}


class FakeUserService:
    def __init__(self, user: FakeUser) -> None:
        self.user = user

    def get_current_user(self) -> FakeUser:
        return self.user


class FakeStudioPermissions:
    def __init__(self, writable: set[str]) -> None:
        self.writable = writable
        self.asked: list[Any] = []

    def can_write(self, course_key: Any) -> bool:
        self.asked.append(course_key)
        return course_key in self.writable


COURSE = "course-v1:Org+Fractions+2025"


class FakeUsageKey(str):
    context_key = COURSE


LMS_LEARNER = FakeUser(is_authenticated=True, user_is_staff=False, user_role="student")
LMS_STAFF = FakeUser(is_authenticated=True, user_is_staff=True, user_role="staff")
ANONYMOUS = FakeUser(is_authenticated=False)
# Studio's user service: no course role at all (user_is_staff defaults to False, user_role to "student").
STUDIO_USER = FakeUser(is_authenticated=True, user_is_staff=False, user_role="student")


@pytest.mark.parametrize(
    ("user", "studio_permissions", "allowed"),
    [
        (LMS_LEARNER, None, False),
        (FakeUser(is_authenticated=True, user_is_staff=False, user_role="instructor"), None, False),
        (LMS_STAFF, None, True),
        (ANONYMOUS, None, False),
        (FakeUser(is_authenticated=False, user_is_staff=True), None, False),
        (None, None, False),
        (STUDIO_USER, FakeStudioPermissions({COURSE}), True),
        (STUDIO_USER, FakeStudioPermissions(set()), False),
        (LMS_STAFF, FakeStudioPermissions(set()), False),  # in Studio, write access to the course decides
        (ANONYMOUS, FakeStudioPermissions({COURSE}), False),
    ],
)
def test_openedx_rule(user: Any, studio_permissions: Any, allowed: bool) -> None:
    assert openedx_may_author(user, studio_permissions, COURSE) is allowed


def test_openedx_rule_without_a_course_key_refuses() -> None:
    assert openedx_may_author(STUDIO_USER, FakeStudioPermissions({COURSE}), None) is False


@pytest.mark.parametrize(
    ("services", "allowed"),
    [
        ({"user": FakeUserService(LMS_STAFF)}, True),
        ({"user": FakeUserService(LMS_LEARNER)}, False),
        ({}, False),  # no user service at all
        ({"user": FakeUserService(STUDIO_USER), "studio_user_permissions": FakeStudioPermissions({COURSE})}, True),
        ({"user": FakeUserService(STUDIO_USER), "studio_user_permissions": FakeStudioPermissions(set())}, False),
    ],
)
def test_the_block_asks_the_openedx_runtime_services(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, services: dict[str, Any], allowed: bool
) -> None:
    from lti_xblock import compat

    monkeypatch.setattr(compat, "host", lambda: compat.OpenEdxHost())
    block = scenario.block()
    block.runtime._services = {"field-data": block.runtime._services["field-data"], **services}
    # An opaque_keys UsageKey knows its course as context_key.
    monkeypatch.setattr(block, "scope_ids", block.scope_ids._replace(usage_id=FakeUsageKey(scenario.usage_id)))
    assert block.user_may_author() is allowed
    permissions = services.get("studio_user_permissions")
    if permissions is not None:
        assert permissions.asked == [COURSE]
    status, _ = post_json(block, json.dumps({"max_score": 5}))
    assert status == (200 if allowed else 403)


# ----------------------------------------------- over HTTP: the tool served for real, after launches


def live_block(tool: Tool) -> Any:
    """The published block as the live server stores it (the workbench's global scenario ids)."""
    return WorkbenchRuntime("reader").get_block(tool.content_id)


def launch_onto_content(browser: requests.Session, tool: Tool, platform: PlatformPeer, **claims: Any) -> str:
    """A Moodle launch, then the content page it lands on (which sets the CSRF cookie its JavaScript posts with)."""
    response = full_launch(browser, tool, platform, **claims)
    assert response.status_code == 302, response.text
    page = browser.get(urljoin(tool.base_url, response.headers["Location"]))
    assert page.status_code == 200, page.text[:500]
    return page.text


def post_handler(browser: requests.Session, tool: Tool, usage_id: str, name: str, data: Any, query: str = "") -> Any:
    """What the workbench's XBlock JavaScript runtime posts: /handler/<usage id>/<name>/?student=..., CSRF header."""
    return browser.post(
        tool.url(f"/handler/{usage_id}/{name}/{query}"),
        data=json.dumps(data),
        headers={"X-CSRFToken": browser.cookies.get("csrftoken", ""), "Content-Type": "application/json"},
    )


def assert_refused(response: requests.Response) -> None:
    """A 403 with the handler's JSON error: refused by permission, not for a missing CSRF token."""
    assert response.status_code == 403, response.text[:500]
    assert set(response.json()) == {"error"} and response.json()["error"]


RENAME = {"display_name": "Renamed by a learner", "max_score": 1}


@pytest.mark.django_db(transaction=True)
def test_launched_learner_cannot_change_the_settings_but_answers_problems(browser, tool, platform):
    page = launch_onto_content(browser, tool, platform)
    assert "Published content: fractions" in page and "(learner)" in page
    learner = get_user_model().objects.get(lti_links__platform_user_id="2")

    assert_refused(post_handler(browser, tool, tool.content_id, "save_settings", RENAME))
    # The runtime's ?student= is not who the handler runs as: naming staff changes nothing.
    staff = enrolled_user("someone_staff", tool.content_id, Role.STAFF)
    assert_refused(post_handler(browser, tool, tool.content_id, "save_settings", RENAME, f"?student={staff}"))
    assert settings_of(live_block(tool)) == UNCHANGED
    assert "Published content: fractions" in browser.get(tool.details.lti13_target_link_uri).text

    # The problems still work for the learner, whose answers are stored as theirs.
    problem = live_block(tool).children[1]
    # What TextInputBlock's submit() sends: its form, serialized by jQuery.
    answer = {"numerator": [{"name": "input", "value": "3"}]}
    checked = post_handler(browser, tool, problem, "check", answer, "?student=someone_else")
    assert checked.status_code == 200, checked.text[:500]
    assert checked.json()["submitResults"] == {"numerator": None}  # accepted: no error message
    assert set(checked.json()["checkResults"]) == {"numerator_checker"}
    runtime = WorkbenchRuntime(str(learner.pk))
    textinput = runtime.get_block(runtime.get_block(problem).children[1])
    assert textinput.student_input == 3


@pytest.mark.django_db(transaction=True)
def test_instructor_launched_user_can_change_the_settings(browser, tool, platform):
    page = launch_onto_content(browser, tool, platform, roles=INSTRUCTOR_ROLES, sub="7")
    assert "(staff)" in page
    saved = post_handler(
        browser, tool, tool.content_id, "save_settings", {"display_name": "Fractions", "max_score": 20}
    )
    assert saved.status_code == 200, saved.text[:500]
    assert saved.json() == {"result": "success"}
    assert settings_of(live_block(tool)) == ("Fractions", True, 20.0)
    assert "<title>Fractions</title>" in browser.get(tool.details.lti13_target_link_uri).text

    # Launched again as a learner: the rights follow the latest launch.
    with requests.Session() as again:
        launch_onto_content(again, tool, platform, sub="7")
        assert_refused(post_handler(again, tool, tool.content_id, "save_settings", RENAME))
    assert settings_of(live_block(tool)) == ("Fractions", True, 20.0)


@pytest.mark.django_db(transaction=True)
def test_unauthenticated_client_is_refused_every_handler(browser, tool):
    # A CSRF cookie is anyone's to set: the check must not rest on it.
    browser.cookies.set("csrftoken", "a" * 32)
    assert_refused(post_handler(browser, tool, tool.content_id, "save_settings", RENAME))
    problem = live_block(tool).children[1]
    assert_refused(post_handler(browser, tool, problem, "check", {"numerator": "3"}, "?student=1"))
    assert settings_of(live_block(tool)) == UNCHANGED


@pytest.mark.django_db(transaction=True)
def test_a_user_launched_elsewhere_gets_no_handler_of_this_content(browser, tool, platform):
    launch_onto_content(browser, tool, platform, roles=INSTRUCTOR_ROLES, sub="7")
    LtiContentEnrollment.objects.update(content_id="another.lti_publish.d0.u0")
    assert_refused(post_handler(browser, tool, tool.content_id, "save_settings", RENAME))
    # Blocks that are no published content (the workbench's other scenarios) have no handlers here.
    from workbench.scenarios import get_scenarios

    other = next(s.usage_id for s in get_scenarios().values() if ".lti_publish." not in s.usage_id)
    assert post_handler(browser, tool, other, "anything", {}).status_code == 404
    assert post_handler(browser, tool, "no.such.block.d0.u0", "save_settings", {}).status_code == 404
    assert settings_of(live_block(tool)) == UNCHANGED


@pytest.mark.django_db(transaction=True)
def test_the_workbench_pages_do_not_show_the_content_without_a_launch(browser, tool):
    scenario_id = slugify(DESCRIPTION)
    index = browser.get(tool.url("/"), allow_redirects=False)
    assert index.status_code == 302 and index.headers["Location"] == "/demo/"
    for path in (
        f"/scenario/{scenario_id}/",
        f"/scenario/{scenario_id}/studio_view/",
        f"/view/{scenario_id}/",
        f"/view/{scenario_id}/author_view/",
        "/userlist/",
    ):
        response = browser.get(tool.url(path), allow_redirects=False)
        assert response.status_code == 404, path
        assert "Adding fractions" not in response.text and "Published content: fractions" not in response.text
    assert browser.post(tool.url("/reset_state"), allow_redirects=False).status_code == 404
    # Nor the content page itself, signed out.
    page = browser.get(tool.details.lti13_target_link_uri)
    assert page.status_code == 401 or page.status_code == 403
    assert "Adding fractions" not in page.text
