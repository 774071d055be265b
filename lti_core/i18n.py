"""Translation helpers that need no framework.

lti_core only *marks* strings (``N_``); hosts translate them when they render a page, in the
language of the request, from the ``lti_publish`` catalogs shipped in ``translations/``.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

DOMAIN = "lti_publish"


def N_(message: str) -> str:
    """Mark ``message`` for extraction; translation happens later, in the host."""
    return message


@lru_cache(maxsize=32)
def translation(localedir: str, language: str) -> gettext.NullTranslations:
    """The catalog for ``language`` (``fr``, ``pt-br``...), falling back to English."""
    languages = [language.replace("-", "_"), language.split("-")[0]]
    return gettext.translation(DOMAIN, localedir=Path(localedir), languages=languages, fallback=True)


def preferred_language(accept_language: str) -> str:
    """The first language of an Accept-Language header ("fr-CA,fr;q=0.9" -> "fr-CA"), else "en"."""
    first = accept_language.split(",")[0].split(";")[0].strip()
    return first if first and first != "*" else "en"
