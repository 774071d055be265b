"""The shipped catalogs are compiled, consistent, and cover the refusals every host shows."""

from __future__ import annotations

import gettext
import inspect
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import lti_core.errors
from lti_core.i18n import translation

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
CATALOGS = sorted(TRANSLATIONS.glob("*/LC_MESSAGES/lti_publish.po"))
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|\{\w*\}")


def language(po: Path) -> str:
    return po.parent.parent.name


def test_there_is_a_french_catalog():
    assert "fr" in [language(po) for po in CATALOGS]


@pytest.mark.parametrize("po", CATALOGS, ids=language)
def test_compiled_catalog_matches_its_source(po):
    """`make translations` was run after the last edit of the .po (the .mo is what ships)."""
    with po.open("rb") as handle:
        source = read_po(handle)
    with (po.with_suffix(".mo")).open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for message in source:
        if message.id and message.string and "fuzzy" not in message.flags and isinstance(message.id, str):
            assert compiled.gettext(message.id) == message.string, message.id


@pytest.mark.parametrize("po", CATALOGS, ids=language)
def test_placeholders_survive_translation(po):
    with po.open("rb") as handle:
        source = read_po(handle)
    for message in source:
        if message.id and message.string and isinstance(message.id, str):
            assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(message.string)), message.id


def test_every_refusal_in_lti_core_errors_is_translated_to_french():
    french = translation(str(TRANSLATIONS), "fr")
    for _, error in inspect.getmembers(lti_core.errors, inspect.isclass):
        if issubclass(error, lti_core.errors.LtiError):
            assert french.gettext(error.message) != error.message, error.__name__
