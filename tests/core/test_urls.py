"""Which URLs belong to the tool (the guard on target_link_uri), and query strings added to platform URLs."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from lti_core.urls import add_query, belongs_to_tool

BASE = "https://tool.example/lti_publish"


@pytest.mark.parametrize(
    "uri",
    [
        BASE,
        BASE + "/",
        BASE + "/content/block-v1:edX+Demo+2024+type@html+block@intro/",
        BASE + "/content/intro/?lang=fr#top",
        "https://tool.example:443/lti_publish/content/intro/",
        "https://TOOL.Example/lti_publish/content/intro/",
        "HTTPS://tool.example/lti_publish/content/intro/",
        BASE + "/content/a%2Fb/",
    ],
)
def test_inside_the_tool(uri):
    assert belongs_to_tool(uri, [BASE])


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example/lti_publish/content/intro/",
        "https://tool.example.evil.example/lti_publish/",
        "https://eviltool.example/lti_publish/",
        # Userinfo: the host is after the @.
        "https://tool.example@evil.example/lti_publish/",
        "https://tool.example:443@evil.example/lti_publish/",
        "https://user:pass@tool.example/lti_publish/",
        # Scheme and port changes.
        "http://tool.example/lti_publish/content/intro/",
        "https://tool.example:8443/lti_publish/content/intro/",
        "ftp://tool.example/lti_publish/",
        "javascript:alert(1)//tool.example/lti_publish/",
        "data:text/html,https://tool.example/lti_publish/",
        # Path prefix tricks.
        "https://tool.example/lti_publishX",
        "https://tool.example/lti_publish-admin/",
        "https://tool.example/lti_publish.evil/",
        "https://tool.example/",
        "https://tool.example",
        "https://tool.example/other/lti_publish/",
        "https://tool.example/LTI_PUBLISH/content/",
        # Backslashes, which browsers read as slashes.
        "https://tool.example\\@evil.example/lti_publish/",
        "https://evil.example\\.tool.example/lti_publish/",
        "https://tool.example/lti_publish\\..\\admin",
        "https:\\\\evil.example/lti_publish/",
        # Control characters (header injection, URL smuggling).
        "https://tool.example/lti_publish/\r\nSet-Cookie: a=b",
        "https://tool.example/lti_publish/\n",
        "https://tool.example/lti_publish/\tx",
        # Not absolute, or not a URL at all.
        "//tool.example/lti_publish/",
        "/lti_publish/content/intro/",
        "lti_publish/content/intro/",
        "",
        # Ports that are not ports.
        "https://tool.example:99999/lti_publish/",
        "https://tool.example:abc/lti_publish/",
    ],
)
def test_outside_the_tool(uri):
    assert not belongs_to_tool(uri, [BASE])


@pytest.mark.parametrize(
    "uri",
    [
        "https://tool.example/lti_publish/../admin/",
        "https://tool.example/lti_publish/content/../../admin/",
        "https://tool.example/lti_publish/%2e%2e/admin/",
    ],
)
def test_dot_segments_cannot_climb_out_of_the_tool(uri):
    """A browser resolves ``..`` (and ``%2e%2e``) before requesting: these URLs are not below the base path."""
    assert not belongs_to_tool(uri, [BASE])


def test_userinfo_trick_on_an_http_base():
    assert not belongs_to_tool("http://tool@evil/lti_publish/", ["http://tool/lti_publish"])
    assert belongs_to_tool("http://tool/lti_publish/x", ["http://tool/lti_publish"])


def test_several_base_urls():
    bases = ["https://tool.example/lti_publish", "https://lms.example:8000/"]
    assert belongs_to_tool("https://lms.example:8000/anything", bases)
    assert belongs_to_tool("https://tool.example/lti_publish/x", bases)
    assert not belongs_to_tool("https://lms.example/anything", bases)
    assert not belongs_to_tool("https://tool.example/x", bases)
    assert not belongs_to_tool("https://tool.example/lti_publish/x", [])


def test_base_with_trailing_slash_or_at_the_root():
    assert belongs_to_tool("https://tool.example/lti_publish/x", [BASE + "/"])
    assert not belongs_to_tool("https://tool.example/lti_publishX", [BASE + "/"])
    assert belongs_to_tool("https://tool.example/anything", ["https://tool.example"])
    assert belongs_to_tool("https://tool.example", ["https://tool.example/"])


def test_a_malformed_base_matches_nothing():
    assert not belongs_to_tool("https://tool.example/x", ["tool.example"])
    assert not belongs_to_tool("https://tool.example/x", ["https://u@tool.example/"])


def test_add_query_without_a_query():
    url = add_query("https://moodle.example/mod/lti/auth.php", {"state": "a b", "nonce": "x&y=z"})
    assert url == "https://moodle.example/mod/lti/auth.php?state=a+b&nonce=x%26y%3Dz"


def test_add_query_keeps_the_existing_query_and_fragment():
    url = add_query("https://lms.example/auth?tenant=42&x=a%20b#frag", {"state": "s"})
    parts = urlsplit(url)
    assert parts.path == "/auth"
    assert parse_qsl(parts.query) == [("tenant", "42"), ("x", "a b"), ("state", "s")]
    assert parts.fragment == "frag"
    assert url == "https://lms.example/auth?tenant=42&x=a%20b&state=s#frag"
