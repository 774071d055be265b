"""The auto-submitting form a platform answers with (Moodle's auth.php), and a parser reading one."""

from __future__ import annotations

import html
from collections.abc import Mapping
from html.parser import HTMLParser


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        attributes = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = attributes.get("action", "")
            self._in_form = True
        elif tag == "input" and self._in_form and attributes.get("name"):
            self.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


def parse_autosubmit_form(page: str | bytes) -> tuple[str, dict[str, str]]:
    """``(action, fields)`` of the first form in ``page``; ValueError if it has none."""
    if isinstance(page, bytes):
        page = page.decode("utf-8")
    parser = _FormParser()
    parser.feed(page)
    parser.close()
    if parser.action is None:
        raise ValueError("no <form> in the page")
    return parser.action, parser.fields


def autosubmit_form(action: str, fields: Mapping[str, str]) -> str:
    """The page Moodle answers with: a form POSTing ``fields`` to ``action``, submitted by script."""
    inputs = "\n".join(
        f'  <input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>' for k, v in fields.items()
    )
    return (
        "<!DOCTYPE html>\n<html><head><title>Redirecting</title></head><body>\n"
        f'<form action="{html.escape(action)}" name="ltiAuthForm" id="ltiAuthForm" method="post" '
        'enctype="application/x-www-form-urlencoded">\n'
        f"{inputs}\n"
        '<script type="text/javascript">\n//<![CDATA[\ndocument.ltiAuthForm.submit();\n//]]>\n</script>\n'
        "</form>\n</body></html>\n"
    )


__all__ = ["autosubmit_form", "parse_autosubmit_form"]
