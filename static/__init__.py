"""Static assets and translation catalogs of lti-publish, installed as ``lti_publish_assets``.

In the repository these files live in ``static/`` and ``translations/``; setup.py ships them as the
packages ``lti_publish_assets`` and ``lti_publish_assets.translations``. Hosts locate them only
through this module, so a wheel install, an editable install and a checkout all behave the same.
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path
from string import Template

__all__ = ["STATIC_DIR", "TRANSLATIONS_DIR", "error_page_html", "static_text"]

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


def error_page_html(*, lang: str, title: str, message: str, reason: str, reason_label: str, hint: str) -> str:
    """The page every host shows for a refused request: translated text in, escaped HTML out.

    One template for all hosts (Django and the hub), so a refusal reads the same wherever it happens.
    """
    values = {
        "lang": lang,
        "title": title,
        "message": message,
        "reason": reason,
        "reason_label": reason_label,
        "hint": hint,
    }
    escaped = {name: html.escape(value) for name, value in values.items()}
    return Template(static_text("html/error.html")).substitute(escaped, css=static_text("css/lti_publish.css"))
