"""Which URLs belong to the tool (the guard on target_link_uri), and query strings added to platform URLs."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from lti_core.urls import add_query, belongs_to_tool, safe_landing_path

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


# -- landing places: safe_landing_path --------------------------------------------------------------------

HUB = "https://hub.example.org/"
PREFIXED_HUB = "https://hub.example.org/jupyter/"

ATTACKS = [
    # Scheme-relative: the browser goes to another host.
    "//evil.example/x",
    "///evil.example/",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil",
    "\\/evil.example",
    "/\\/evil.example",
    # Slashes and backslashes hidden by percent-encoding, which a later redirect may decode.
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5c%5cevil",
    "/%5C%5Cevil",
    "/hub/%252F%252Fevil.example",
    "/hub/%25252F%25252Fevil.example",
    # Other origins, also look-alikes and userinfo.
    "https://evil.example/hub/",
    "https://hub.example.org.evil.example/hub/",
    "https://hub.example.org@evil.example/hub/",
    "https://user@hub.example.org/hub/",
    "http://hub.example.org/hub/",
    "https://hub.example.org:8443/hub/",
    "https:///evil.example/",
    "https:evil.example",
    "http:evil.example",
    "http:/evil.example",
    # Other schemes.
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox",
    # Dot segments, plain or encoded, climbing out (or just moving).
    "/hub/../../x",
    "/hub/./x",
    "%2e%2e/",
    "/%2e%2e/evil",
    "/hub/%2E%2E/%2E%2E/x",
    "..",
    # Whitespace and controls: browsers drop tab, CR and LF anywhere, and spaces at the ends.
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "\t//evil.example",
    " //evil.example",
    "//evil.example ",
    "/hub/x\r\nSet-Cookie: a=b",
    "/hub/x%0d%0aSet-Cookie:%20a=b",
    "/hub/x?a=%0d%0aSet-Cookie:a",
    "/hub/\x00x",
    "/hub/%00x",
    "/hub/\x7fx",
    # Unicode that normalises to "/" or ".", looks like them, or hides.
    "\uff0f\uff0fevil.example",
    "/\uff0fevil.example",
    "/hub/%EF%BC%8F%EF%BC%8Fevil.example",
    "/\u2215\u2215evil.example",
    "/\u2044\u2044evil.example",
    "/hub/\u2024\u2024/x",
    "/hub/\uff0e\uff0e/x",
    "/hub/\u200bx",
    "/hub/\u202ex",
    "/\u3000/evil.example",
    "/\xa0/evil.example",
    # Empty segments (some redirects read "//" anywhere as a host).
    "/hub//evil.example",
    "",
]


@pytest.mark.parametrize("wanted", ATTACKS)
def test_landing_attacks_are_refused(wanted):
    assert safe_landing_path(wanted, HUB) is None
    assert safe_landing_path(wanted, PREFIXED_HUB, relative_to="/jupyter/hub/user-redirect/") is None


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("/hub/user-redirect/lab/tree/week1/intro.ipynb", "/hub/user-redirect/lab/tree/week1/intro.ipynb"),
        ("https://hub.example.org/hub/user-redirect/lab", "/hub/user-redirect/lab"),
        ("https://HUB.example.org:443/hub/home", "/hub/home"),
        ("https://hub.example.org", "/"),
        ("/", "/"),
        ("/user/sam/lab?reset=1&path=a/b", "/user/sam/lab?reset=1&path=a/b"),
        ("/user/sam/lab#frag", "/user/sam/lab"),
        ("/user/sam/tree/100%25.ipynb", "/user/sam/tree/100%25.ipynb"),
        ("/user/sam/tree/week 1/%C3%9Cbung.ipynb", "/user/sam/tree/week%201/%C3%9Cbung.ipynb"),
        ("/user/sam/tree/week 1/\u00dcbung.ipynb", "/user/sam/tree/week%201/%C3%9Cbung.ipynb"),
        ("/user/sam/.ipynb_checkpoints/", "/user/sam/.ipynb_checkpoints/"),
        ("lab/tree/week1/intro.ipynb", "/lab/tree/week1/intro.ipynb"),
    ],
)
def test_landing_inside_is_kept(wanted, expected):
    assert safe_landing_path(wanted, HUB) == expected


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("lab/tree/week1/intro.ipynb", "/jupyter/hub/user-redirect/lab/tree/week1/intro.ipynb"),
        ("/jupyter/hub/home", "/jupyter/hub/home"),
        ("/jupyter", "/jupyter"),
        ("https://hub.example.org/jupyter/user/sam/", "/jupyter/user/sam/"),
    ],
)
def test_landing_below_a_base_path(wanted, expected):
    assert safe_landing_path(wanted, PREFIXED_HUB, relative_to="/jupyter/hub/user-redirect/") == expected


@pytest.mark.parametrize(
    "wanted",
    ["/hub/home", "/jupyterx/hub", "https://hub.example.org/hub/home", "/jupyter/../hub", "lab/../../../hub"],
)
def test_landing_outside_the_base_path_is_refused(wanted):
    assert safe_landing_path(wanted, PREFIXED_HUB, relative_to="/jupyter/hub/user-redirect/") is None


def test_a_landing_always_starts_with_exactly_one_slash():
    for wanted in ATTACKS + ["/x", "x", "https://hub.example.org/x", "?a=b"]:
        landing = safe_landing_path(wanted, HUB)
        assert landing is None or (landing.startswith("/") and not landing.startswith("//")), wanted
