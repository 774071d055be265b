"""The lti_publish XBlock in the real XBlock SDK workbench runtime: parsing, views, the settings handler."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.template.defaultfilters import slugify
from django.utils import translation
from webob import Request
from workbench.models import XBlockState
from workbench.runtime import ScenarioIdManager, WorkbenchRuntime
from xblock.core import XBlock

from lti_core.i18n import translation as catalog
from lti_publish_assets import STATIC_DIR, TRANSLATIONS_DIR, static_text
from lti_xblock.block import DEFAULT_TITLE, LtiPublishBlock
from lti_xblock.i18n import gettext
from lti_xblock.launch_details import launch_details

pytestmark = pytest.mark.django_db

DESCRIPTION, SCENARIO_XML = LtiPublishBlock.workbench_scenarios()[0]
# What the demo workbench (and so the demo's launch URLs) calls the published block.
DEMO_USAGE_ID = "lti-publish-published-content.lti_publish.d0.u0"
WORKBENCH_HOST = "http://127.0.0.1:8000"


@dataclass
class Scenario:
    ids: ScenarioIdManager
    usage_id: str

    def runtime(self, student: str = "student_1") -> WorkbenchRuntime:
        """A fresh runtime (as for a new request) reading this scenario's ids, not the global ones."""
        runtime = WorkbenchRuntime(student)
        runtime.id_reader = runtime.id_generator = self.ids
        return runtime

    def block(self, student: str = "student_1") -> Any:
        return self.runtime(student).get_block(self.usage_id)


@pytest.fixture
def scenario() -> Scenario:
    """The block's workbench scenario, parsed the way the workbench does, with private id numbering."""
    ids = ScenarioIdManager()
    slug = slugify(DESCRIPTION)
    ids.set_scenario(slug)
    # Parsing appends children; start from none, as the workbench does before loading scenarios.
    XBlockState.objects.filter(scope="children", scenario=slug).delete()
    runtime = WorkbenchRuntime("student_1")
    runtime.id_reader = runtime.id_generator = ids
    usage_id = runtime.parse_xml_string(SCENARIO_XML)
    return Scenario(ids, str(usage_id))


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
    assert block.grade_sync is False
    assert block.max_score == 100.0
    runtime = block.runtime
    child_types = [runtime.get_block(child).scope_ids.block_type for child in block.children]
    assert child_types == ["html_demo", "problem_demo", "problem_demo"]


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
    assert save(scenario.block(), {"display_name": title}) == {"result": "success"}
    for view in ("student_view", "studio_view", "author_view"):
        html, _ = render(scenario.block(), view)
        assert "<script>alert" not in html, view
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in html, view


# ---------------------------------------------------------------------------- handler


def test_save_settings_saves_valid_settings(scenario: Scenario) -> None:
    block = scenario.block()
    payload = {"display_name": "  Fractions, part 1 ", "grade_sync": True, "max_score": 12.5}
    assert save(block, payload) == {"result": "success"}
    saved = scenario.block("another_student")  # a new runtime reads the stored fields back
    assert saved.display_name == "Fractions, part 1"
    assert saved.grade_sync is True
    assert saved.max_score == 12.5

    # What studio.js sends for a number input can also arrive as text; a partial update keeps the rest.
    assert save(saved, {"max_score": "7", "grade_sync": False}) == {"result": "success"}
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
    reply = save(scenario.block(), payload)
    assert reply["result"] == "error"
    assert set(reply["errors"]) == bad_fields
    assert all(isinstance(message, str) and message for message in reply["errors"].values())
    saved = scenario.block()
    assert (saved.display_name, saved.grade_sync, saved.max_score) == ("Published content: fractions", False, 100.0)


@pytest.mark.parametrize("body", ["[1, 2]", '"title"', "null", "3"])
def test_save_settings_refuses_a_payload_that_is_not_an_object(scenario: Scenario, body: str) -> None:
    status, reply = post_json(scenario.block(), body)
    assert status == 200
    assert reply["result"] == "error"
    assert set(reply["errors"]) == {"__all__"}


def test_save_settings_answers_bad_requests_without_raising(scenario: Scenario) -> None:
    assert post_json(scenario.block(), b"{not json")[0] == 400
    assert post_json(scenario.block(), b"\xff\xfe")[0] == 400
    assert post_json(scenario.block(), "{}", method="GET")[0] == 405
    assert scenario.block().display_name == "Published content: fractions"


def test_error_messages_are_the_translated_ones(scenario: Scenario) -> None:
    with translation.override("fr"):
        reply = save(scenario.block(), {"display_name": "", "max_score": -1})
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
    assert save(scenario.block(), {"display_name": DEFAULT_TITLE}) == {"result": "success"}
    with translation.override("fr"):
        html = render(scenario.block(), "studio_view")[0] + render(scenario.block(), "student_view")[0]
    from django.utils.html import escape

    for source, french in translated.items():
        assert escape(french) in html, source
