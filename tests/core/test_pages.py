"""The pages of the LTI flows as data (lti_core.pages), and their HTML (lti_publish_assets.page_html)."""

from __future__ import annotations

from html import escape as html_escape
from urllib.parse import parse_qs, urlsplit

from lti_core import pages
from lti_core.errors import Forbidden, LtiError
from lti_core.lti13 import binding
from lti_core.lti13.login import LoginRedirect
from lti_core.types import OidcState
from lti_publish_assets import page_html

LOGIN = "https://tool.example/lti13/login"
STATE = OidcState(
    state="s1",
    nonce="n1",
    issuer="https://moodle.example",
    client_id="abc",
    target_link_uri="https://tool.example/c/",
    expires_at=0,
    login_hint="2",
    lti_message_hint="hint<>",
    deployment_id="1",
    storage_target="_parent",
)


def upper(text: str) -> str:
    return text.upper()


def test_a_refusal_has_its_status_reason_and_no_action() -> None:
    page = pages.refusal_page(Forbidden("unknown_deployment", "Not registered <here>."), LOGIN)
    assert page == pages.RefusalPage(403, "unknown_deployment", "Not registered <here>.")
    html = page_html(page, lang="fr", translate=upper)
    assert "unknown_deployment" in html and "NOT REGISTERED &lt;HERE&gt;." in html
    assert upper(pages.LAUNCH.title) in html and upper(pages.LAUNCH.hint) in html and 'lang="fr"' in html
    assert "lti-error__action" not in html


def test_an_unbound_launch_offers_the_same_login_in_a_new_window() -> None:
    page = pages.refusal_page(binding.NotBoundToBrowser(binding.relaunch_params(STATE)), LOGIN)
    assert page.status == 403 and page.reason == "state_not_bound"
    parts = urlsplit(page.action_url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == LOGIN
    assert parse_qs(parts.query)["login_hint"] == ["2"]
    html = page_html(page, lang="en", translate=str)
    assert 'target="_blank"' in html and binding.RELAUNCH_LABEL in html


def test_every_refusal_status_is_a_4xx_or_5xx_from_the_error() -> None:
    assert pages.refusal_page(LtiError("x"), LOGIN).status == LtiError.status


def test_the_storage_login_falls_back_to_the_cookie_login() -> None:
    redirect = LoginRedirect("https://moodle.example/auth?x=1", STATE, "_parent", "https://moodle.example")
    page = pages.storage_login_page(redirect, LOGIN)
    assert page.fallback_url.startswith(LOGIN + "?") and "storage_target" not in page.fallback_url
    html = page_html(page, lang="en", translate=str)
    assert binding.storage_key("s1") in html and "hint<>" not in html


def test_pages_are_never_cached_nor_referred_on() -> None:
    assert dict(pages.HEADERS) == {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}


def test_a_refused_registration_says_so() -> None:
    page = pages.refusal_page(Forbidden("registration_refused", "Refused."), LOGIN, pages.REGISTRATION)
    html = page_html(page, lang="en", translate=str)
    assert pages.REGISTRATION.title in html and html_escape(pages.REGISTRATION.hint) in html
    assert pages.LAUNCH.title not in html


# -- the linking prompt -----------------------------------------------------------------------------


def test_the_prompt_offers_what_the_mode_allows_and_escapes_what_it_shows():
    from lti_core.pages import LinkPromptPage
    from lti_core.prompt import PromptState
    from lti_publish_assets import page_html

    choose = LinkPromptPage(PromptState.CHOOSING, True, "Moodle <b>", "/prompt/p1", "tok&en", csrf=("csrf", "c1"))
    text = page_html(choose, lang="en", translate=str)
    assert text.count("<form") == 2 and 'value="existing"' in text and 'value="new"' in text
    assert "Moodle &lt;b&gt;" in text and 'value="tok&amp;en"' in text and 'name="csrf" value="c1"' in text
    only = LinkPromptPage(PromptState.CHOOSING, False, "Moodle", "/prompt/p1", "t")
    text = page_html(only, lang="en", translate=str)
    assert text.count("<form") == 1 and 'value="new"' not in text and "Sign in to your account here" in text
    confirm = LinkPromptPage(PromptState.CONFIRMING, True, "Moodle", "/prompt/p1", "t", account="sam")
    text = page_html(confirm, lang="en", translate=str)
    assert "You are signed in as sam" in text and 'value="confirm"' in text and text.count("<form") == 3
    framed = LinkPromptPage(PromptState.CHOOSING, True, "Moodle", "/prompt/p1", "t", new_window_url="/prompt/p1?h=x")
    text = page_html(framed, lang="en", translate=str)
    assert "<form" not in text and 'target="_blank"' in text and "/prompt/p1?h=x" in text
