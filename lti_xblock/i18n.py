"""The host's translations: the ``lti_publish`` catalogs shipped in translations/, in Django's language."""

from __future__ import annotations

import json
import re

from django.utils import translation as django_translation

from lti_core.i18n import translation
from lti_publish_assets import TRANSLATIONS_DIR

#: A string the block's JavaScript translates: ``gettext('...')``, as pybabel extracts it (babel.cfg).
JS_MESSAGE = re.compile(r"\bgettext\('((?:[^'\\]|\\.)*)'\)")


def gettext(message: str) -> str:
    """``message`` in the language Django activated for this request (Accept-Language, user setting)."""
    language = django_translation.get_language() or "en"
    return translation(str(TRANSLATIONS_DIR), language).gettext(message)


_ = gettext


def js_catalog(script: str) -> str:
    """The block's own JavaScript catalog, as Open edX XBlocks ship one: a script putting the
    translations of ``script``'s strings, in Django's language, in ``window.LtiPublishCatalog`` (the
    LMS's and Studio's ``gettext`` know only their own strings). The block's JS reads it first."""
    translated = {message: gettext(message) for message in sorted(set(JS_MESSAGE.findall(script)))}
    catalog = {message: text for message, text in translated.items() if text != message}
    # Inside a <script> element: "<" escaped, so no "</script>" can end it early.
    data = json.dumps(catalog, ensure_ascii=False).replace("<", "\\u003c")
    return f"window.LtiPublishCatalog = Object.assign(window.LtiPublishCatalog || {{}}, {data});\n"
