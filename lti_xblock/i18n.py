"""The host's translations: the ``lti_publish`` catalogs shipped in translations/, in Django's language."""

from __future__ import annotations

from django.utils import translation as django_translation

from lti_core.i18n import translation
from lti_publish_assets import TRANSLATIONS_DIR


def gettext(message: str) -> str:
    """``message`` in the language Django activated for this request (Accept-Language, user setting)."""
    language = django_translation.get_language() or "en"
    return translation(str(TRANSLATIONS_DIR), language).gettext(message)


_ = gettext
