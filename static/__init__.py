"""Static assets and translation catalogs of lti-publish, installed as ``lti_publish_assets``.

In the repository these files live in ``static/`` and ``translations/``; setup.py ships them as the
packages ``lti_publish_assets`` and ``lti_publish_assets.translations``. Hosts locate them only
through this module, so a wheel install, an editable install and a checkout all behave the same.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lti_core.lti13.binding import BrowserCheck
    from lti_core.pages import LinkPromptPage, Page, RefusalPage, RegistrationCompletePage, StorageLoginPage

__all__ = [
    "STATIC_DIR",
    "TRANSLATIONS_DIR",
    "page_html",
    "static_text",
]

#: The directory holding ``css/``, ``js/`` and ``html/``.
STATIC_DIR: Path = Path(__file__).resolve().parent


def _translations_dir() -> Path:
    try:
        return Path(str(files("lti_publish_assets.translations"))).resolve()
    except ModuleNotFoundError:  # imported straight from a checkout as ``static``, not installed
        return STATIC_DIR.parent / "translations"


#: The gettext ``localedir`` holding ``<lang>/LC_MESSAGES/lti_publish.mo``.
TRANSLATIONS_DIR: Path = _translations_dir()


def static_text(relpath: str) -> str:
    """The text of the asset at ``relpath`` (``"css/lti_publish.css"``), UTF-8 decoded.

    Raises ``ValueError`` for a path that leaves the asset directory and ``FileNotFoundError``
    for a missing asset.
    """
    path = (STATIC_DIR / relpath).resolve()
    if not path.is_relative_to(STATIC_DIR):
        raise ValueError(f"asset path outside the static directory: {relpath!r}")
    return path.read_text(encoding="utf-8")


def page_html(page: Page, *, lang: str, translate: Callable[[str], str]) -> str:
    """The HTML of one of lti_core's pages (``lti_core.pages``), in ``lang``: every host's pages."""
    from lti_core.pages import BrowserCheckPage, LinkPromptPage, RefusalPage, RegistrationCompletePage

    if isinstance(page, LinkPromptPage):
        return _link_prompt_html(page, lang, translate)
    if isinstance(page, RefusalPage):
        return _refusal_html(page, lang, translate)
    if isinstance(page, BrowserCheckPage):
        return _browser_check_html(page.check, lang, translate)
    if isinstance(page, RegistrationCompletePage):
        return _registration_complete_html(page, lang, translate)
    return _storage_login_html(page, lang, translate)


def _refusal_html(page: RefusalPage, lang: str, translate: Callable[[str], str]) -> str:
    """One template for all hosts (Django and the hub), so a refusal reads the same wherever it
    happens. An action link opens in a new window (the first-party relaunch)."""
    from lti_core import pages

    values = {
        "lang": lang,
        "title": translate(page.flow.title),
        "message": page.text(translate),
        "reason": page.reason,
        "reason_label": translate(pages.REASON_LABEL),
        "hint": translate(page.flow.hint),
    }
    escaped = {name: html.escape(value) for name, value in values.items()}
    action = ""
    if page.action_url:
        action = (
            f'<p><a class="lti-error__action" href="{html.escape(page.action_url)}" target="_blank" '
            f'rel="noopener">{html.escape(translate(page.action_label))}</a></p>'
        )
    return Template(static_text("html/error.html")).substitute(
        escaped, action=action, css=static_text("css/lti_publish.css")
    )


def _script_json(value: Mapping[str, str]) -> str:
    """JSON safe inside a <script> element: no "</script>", no HTML-significant characters."""
    text = json.dumps(dict(value))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _binding_page(
    template: str, *, lang: str, translate: Callable[[str], str], config: dict[str, str], **fields: str
) -> str:
    from lti_core.lti13 import binding

    return Template(static_text(template)).substitute(
        lang=html.escape(lang),
        title=html.escape(translate(binding.CHECK_PAGE_TITLE)),
        message=html.escape(translate(binding.CHECK_PAGE_MESSAGE)),
        continue_label=html.escape(translate(binding.CONTINUE_LABEL)),
        config=_script_json(config),
        script=static_text("js/lti_storage.js"),
        css=static_text("css/lti_publish.css"),
        **{name: html.escape(value) for name, value in fields.items()},
    )


def _browser_check_html(check: BrowserCheck, lang: str, translate: Callable[[str], str]) -> str:
    """Re-posts a launch from the tool's own origin, after reading the state back from platform
    storage when the login stored it there."""
    config = {
        "storage_target": check.storage_target,
        "storage_key": check.storage_key,
        "platform_origin": check.platform_origin,
    }
    return _binding_page(
        "html/browser_check.html",
        lang=lang,
        translate=translate,
        config=config,
        action=check.action,
        id_token=check.id_token,
        state=check.state,
    )


def _storage_login_html(page: StorageLoginPage, lang: str, translate: Callable[[str], str]) -> str:
    from lti_core.lti13.binding import storage_key

    redirect = page.redirect
    config = {
        "auth_url": redirect.url,
        "fallback_url": page.fallback_url,
        "state": redirect.state.state,
        "storage_target": redirect.lti_storage_target,
        "storage_key": storage_key(redirect.state.state),
        "platform_origin": redirect.platform_origin,
    }
    return _binding_page(
        "html/storage_login.html", lang=lang, translate=translate, config=config, fallback_url=page.fallback_url
    )


def _registration_complete_html(page: RegistrationCompletePage, lang: str, translate: Callable[[str], str]) -> str:
    """The end of a dynamic registration: what was registered, and the close message to the platform."""
    from lti_core import pages

    registration = page.registration
    deployment = ""
    if registration.deployments:
        ids = ", ".join(d.deployment_id for d in registration.deployments)
        deployment = (
            f'<p class="lti-error__reason">{html.escape(translate(pages.DEPLOYMENT_ID_LABEL))}: '
            f"<code>{html.escape(ids)}</code></p>"
        )
    config = {"platform_origin": page.platform_origin, "close_subject": page.close_subject}
    return Template(static_text("html/registration_complete.html")).substitute(
        lang=html.escape(lang),
        title=html.escape(translate(pages.REGISTRATION_TITLE)),
        message=html.escape(translate(page.message)),
        client_id_label=html.escape(translate(pages.CLIENT_ID_LABEL)),
        client_id=html.escape(registration.client_id),
        deployment=deployment,
        close_label=html.escape(translate(pages.CLOSE_LABEL)),
        config=_script_json(config),
        script=static_text("js/lti_registration.js"),
        css=static_text("css/lti_publish.css"),
    )


def _link_prompt_html(page: LinkPromptPage, lang: str, translate: Callable[[str], str]) -> str:
    """The linking prompt: one form per choice, each with the prompt's form token and the host's CSRF field."""
    from lti_core import pages
    from lti_core.prompt import CHOICE_EXISTING

    hidden = [("form_token", page.form_token), *([page.csrf] if page.csrf else [])]
    fields = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">' for name, value in hidden
    )
    forms = "".join(
        f'<p><a class="lti-error__action" href="{html.escape(page.sign_in_window_url)}" target="_blank" '
        f'rel="noopener">{html.escape(translate(label))}</a></p>'
        if choice == CHOICE_EXISTING and page.sign_in_window_url
        else f'<form method="post" action="{html.escape(page.step_url)}">{fields}'
        f'<button type="submit" name="choice" value="{html.escape(choice)}">{html.escape(translate(label))}</button>'
        "</form>"
        for choice, label in page.choices()
    )
    if page.new_window_url:
        forms = (
            f'<p><a class="lti-error__action" href="{html.escape(page.new_window_url)}" target="_blank" '
            f'rel="noopener">{html.escape(translate(pages.PROMPT_NEW_WINDOW_LABEL))}</a></p>'
        )
    return Template(static_text("html/link_prompt.html")).substitute(
        lang=html.escape(lang),
        title=html.escape(translate(page.title)),
        message=html.escape(page.message(translate)),
        forms=forms,
        css=static_text("css/lti_publish.css"),
    )
