"""The frame-ancestors rule (lti_core.frames): only origins, host wildcards and 'self' get in."""

from __future__ import annotations

import pytest

from lti_core.frames import SELF, frame_ancestors, frame_source, platform_origins


@pytest.mark.parametrize(
    ("configured", "source"),
    [
        ("https://Moodle.Example.org/", "https://moodle.example.org"),
        ("https://*.instructure.com", "https://*.instructure.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        (" 'SELF' ", SELF),
    ],
)
def test_sources_are_normalized(configured: str, source: str) -> None:
    assert frame_source(configured) == source


@pytest.mark.parametrize(
    "configured",
    [
        "*",
        "'none'",
        "https://moodle.example.org/course",
        "moodle.example.org",
        "https://moodle.example.org; script-src *",
        "https://moodle.example.org https://evil.example",
        "javascript:alert(1)",
        "https://*",
        "'unsafe-inline'",
    ],
)
def test_anything_else_is_refused(configured: str) -> None:
    with pytest.raises(ValueError):
        frame_source(configured)


def test_platform_origins_keep_each_origin_once_in_order() -> None:
    urls = [
        "https://moodle.example.org",
        "https://moodle.example.org/mod/lti/auth.php",
        "https://canvas.instructure.com",
        "not a url",
        "https://sso.canvaslms.com/api/lti/authorize_redirect",
    ]
    assert platform_origins(urls) == [
        "https://moodle.example.org",
        "https://canvas.instructure.com",
        "https://sso.canvaslms.com",
    ]


def test_the_directive_says_none_without_sources() -> None:
    assert frame_ancestors([]) == "frame-ancestors 'none'"
    assert frame_ancestors(["https://a.example", SELF]) == "frame-ancestors https://a.example 'self'"
