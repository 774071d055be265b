"""Property-based fuzzing (Hypothesis) of every LTI endpoint of the JupyterHub host, over real HTTP, through
JupyterHub's proxy: the LTI 1.3 hub and the LTI 1.1 hub of tests/test_hub_lti.py (module-scoped here too).

The properties are those of tests/test_fuzz_xblock_endpoints.py, whose strategies this file shares: no 5xx
and no traceback, every refusal a 4xx page with its ``<code>reason</code>``, nothing written for a refused
request (hub users, counted through the REST API, and every table of the LTI store, the SQLite file in the
hub's workdir), nothing reflected unescaped.

Endpoints: POST and GET ``/hub/lti13/oauth_login``, POST and GET ``/hub/lti13/oauth_callback``, POST (and GET)
``/hub/lti/ltiaccess`` and ``/hub/lti/launch``, GET ``/hub/lti13/jwks``, ``/hub/lti13/config``,
``/hub/lti11/config`` and GET (and POST) ``/hub/lti/login``.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from lti_peer.platform import PlatformPeer
from tests.hub import HubProcess
from tests.test_fuzz_xblock_endpoints import (
    DEEP_ARRAY,
    DEEP_OBJECT,
    FORM,
    HUGE_NUMBER,
    LOGIN_FIELDS,
    MAX_BODY,
    XSS,
    HandMadeToken,
    LaunchRequest,
    LoginRequest,
    Lti11Request,
    Op,
    Sentinel,
    SignedToken,
    StartedLogin,
    check_answer,
    describe,
    encode_form,
    fuzz_settings,
    launch_fields,
    launch_requests,
    login_pairs,
    login_requests,
    lti11_body,
    lti11_requests,
    make_token,
    query_pairs,
    reject_if,
    send_form,
    sendable_headers,
    signed_lti11_requests,
    storage_page_auth_url,
    weighted,
)
from tests.test_hub_lti import (  # noqa: F401  (hub11, hub13, platforms: module-scoped fixtures, by name)
    CONSUMER_KEY,
    CONSUMER_SECRET,
    CROSS_SITE,
    api,
    hub11,
    hub13,
    platforms,
)

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Hubs:
    lti13: HubProcess
    lti11: HubProcess
    platform: PlatformPeer  # registered with lti13 (the drop-in config's issuer)


@pytest.fixture(scope="module")
def hubs(request: pytest.FixtureRequest) -> Hubs:
    """The two hubs of tests/test_hub_lti.py (started once for this module; ~4 s each)."""
    return Hubs(
        request.getfixturevalue("hub13"),
        request.getfixturevalue("hub11"),
        request.getfixturevalue("platforms")["moodle"],
    )


# -- what a hub has written ----------------------------------------------------------------------------


def hub_rows(hub: HubProcess) -> dict[str, int]:
    """The hub's users (REST API) and the rows of every table of its LTI store (read-only, beside the hub)."""
    users, page = 0, 200
    while True:  # the REST API answers in pages (at most 200 users each)
        count = len(api(hub, f"users?limit={page}&offset={users}"))
        users += count
        if count < page:
            break
    rows = {"users": users}
    uri = f"file:{hub.workdir / 'lti_publish.sqlite'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=30) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if table.startswith("lti_publish_"):
                rows[table] = db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]  # noqa: S608
    db.close()
    assert {"lti_publish_nonces", "lti_publish_login_states", "lti_publish_user_links"} <= rows.keys(), rows
    return rows


def changed(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    return {
        k: (before.get(k, 0), after.get(k, 0)) for k in before.keys() | after.keys() if before.get(k) != after.get(k)
    }


def assert_lands_in_the_hub(hub: HubProcess, response: requests.Response) -> None:
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location, describe(response)
    assert urlsplit(urljoin(hub.url, location)).netloc == urlsplit(hub.url).netloc, describe(response)


#: configurable-http-proxy (node) answers 431 to requests with more than 16 KiB of request line and headers,
#: before the hub sees them: longer GET login initiations are sent as POSTs here (as MAX_GET_URL does for the
#: XBlock host).
MAX_GET_URL = 12_000


# -- LTI 1.3: /hub/lti13/oauth_login -------------------------------------------------------------------


def hub_resolver(hub: HubProcess) -> Callable[[str], str]:
    """The xblock strategies' targets, on the hub: its callback URL for the published content, its origin for TOOL."""
    origin = hub.url.rstrip("/")

    def resolve(target: str) -> str:
        target = target.replace("TOOL/lti_publish/content/CONTENT/", hub.hub_url + "lti13/oauth_callback")
        return target.replace("TOOL", origin).replace("CONTENT", "x")

    return resolve


def hub_login_values(hubs: Hubs) -> dict[str, str]:
    platform = hubs.platform
    return {
        "iss": platform.issuer,
        "login_hint": platform.user_id,
        "target_link_uri": hubs.lti13.hub_url + "lti13/oauth_callback",
        "lti_message_hint": '{"cmid":"3","launchid":"fuzz"}',
        "client_id": platform.client_id,
        "lti_deployment_id": platform.deployment_id,
    }


def check_hub_login(hubs: Hubs, request: LoginRequest) -> str | None:
    """Sends the login initiation and checks its answer; returns the reason code of a refusal."""
    hub = hubs.lti13
    pairs = login_pairs(request, hub_login_values(hubs), hub_resolver(hub))
    before = hub_rows(hub)
    with requests.Session() as browser:
        response = send_form(browser, request.method, hub.hub_url + "lti13/oauth_login", pairs, CROSS_SITE, MAX_GET_URL)
    reason = check_answer(response, ok=(200, 302))
    written = changed(before, hub_rows(hub))
    if reason is not None:
        assert not written, (reason, written)
        return reason
    states = before["lti_publish_login_states"]
    assert written == {"lti_publish_login_states": (states, states + 1)}, written
    location = response.headers["Location"] if response.status_code == 302 else storage_page_auth_url(response.text)
    assert location.startswith(hubs.platform.auth_url + "?"), describe(response)
    return None


VALID_LOGIN = dict.fromkeys(LOGIN_FIELDS[:6], Sentinel.VALID)


@fuzz_settings(60)
@given(request=login_requests())
@example(request=LoginRequest("POST", {**VALID_LOGIN, "login_hint": "h" * 20_000}))
@example(request=LoginRequest("GET", {**VALID_LOGIN, "login_hint": "h" * 20_000}))
@example(request=LoginRequest("POST", {**VALID_LOGIN, "lti_message_hint": "é" * 2500}))
@example(request=LoginRequest("GET", VALID_LOGIN, ((b"\xff", "x"),)))
@example(request=LoginRequest("POST", {**VALID_LOGIN, "lti_storage_target": XSS}))
def test_hub_lti13_login_never_fails_and_refusals_write_nothing(hubs, request):
    check_hub_login(hubs, request)


# -- LTI 1.3: /hub/lti13/oauth_callback ----------------------------------------------------------------


def start_hub_login(browser: requests.Session, hubs: Hubs, request: LoginRequest | None) -> tuple[str, str]:
    """(state, nonce) of the login initiation, ("", "") when there was none or it was refused."""
    if request is None:
        return "", ""
    hub = hubs.lti13
    pairs = login_pairs(request, hub_login_values(hubs), hub_resolver(hub))
    response = send_form(browser, request.method, hub.hub_url + "lti13/oauth_login", pairs, CROSS_SITE, MAX_GET_URL)
    if check_answer(response, ok=(200, 302)) is not None:
        return "", ""
    location = response.headers["Location"] if response.status_code == 302 else storage_page_auth_url(response.text)
    query = parse_qs(urlsplit(location).query)
    return query["state"][0], query["nonce"][0]


def check_hub_launch(hubs: Hubs, request: LaunchRequest, method: str = "POST") -> str | None:
    """Sends the launch (after its login, if any) and checks the answer; returns the reason code of a refusal."""
    hub = hubs.lti13
    resolve = hub_resolver(hub)
    with requests.Session() as browser:
        state, nonce = start_hub_login(browser, hubs, request.login)
        if not request.keep_cookie:
            browser.cookies.clear()
        token = make_token(request.token, hubs.platform, nonce, resolve)
        pairs, headers = launch_fields(request, StartedLogin(state, nonce), token, hub.url.rstrip("/"))
        headers = {**CROSS_SITE, **headers} if sendable_headers(headers) else CROSS_SITE
        body = encode_form(pairs)
        reject_if(len(body) > MAX_BODY)
        before = hub_rows(hub)
        url = hub.hub_url + "lti13/oauth_callback"
        if method == "GET":
            response = browser.get(url, headers=headers, allow_redirects=False, timeout=60)
        else:
            response = browser.post(url, data=body, headers={**FORM, **headers}, allow_redirects=False, timeout=60)
    reason = check_answer(response, ok=(200, 302))
    written = changed(before, hub_rows(hub))
    if reason is not None or response.status_code == 200:
        assert not written, (reason, written)
        if response.status_code == 200:
            assert 'name="lti_repost"' in response.text, describe(response)
        return reason
    assert_lands_in_the_hub(hub, response)
    assert written.keys() <= {
        "users",
        "lti_publish_nonces",
        "lti_publish_user_links",
        "lti_publish_login_states",
        "lti_publish_launch_contexts",
    }
    return None


@fuzz_settings(80)
@given(request=launch_requests, method=weighted((12, st.just("POST")), (1, st.just("GET"))))
@example(request=LaunchRequest(token=HandMadeToken(DEEP_ARRAY, "{}", b"x")), method="POST")
@example(request=LaunchRequest(token=HandMadeToken(DEEP_OBJECT, "{}", b"x")), method="POST")
@example(
    request=LaunchRequest(token=HandMadeToken('{"alg":"RS256","kid":"KID","crit":["exp"]}', "{}", b"")), method="POST"
)
@example(
    request=LaunchRequest(token=HandMadeToken('{"alg":"RS256","alg":"none","kid":"KID"}', "{}", b"")), method="POST"
)
@example(
    request=LaunchRequest(token=HandMadeToken('{"alg":"RS256","kid":"KID","n":' + HUGE_NUMBER + "}", "{}", b"")),
    method="POST",
)
@example(request=LaunchRequest(token=SignedToken(raw_payload=DEEP_ARRAY)), method="POST")
@example(request=LaunchRequest(token=SignedToken(raw_payload='{"sub":"a","sub":"b"}')), method="POST")
@example(request=LaunchRequest(token=SignedToken(overrides={"given_name": "\x00", "sub": "a\x00b"})), method="POST")
@example(request=LaunchRequest(token=SignedToken(overrides={"given_name": XSS, "name": "x" * 70_000})), method="POST")
@example(request=LaunchRequest(token=SignedToken(overrides={"custom": {"next": "\r\nx"}})), method="POST")
@example(request=LaunchRequest(token=SignedToken(overrides={"custom": {"next": "//evil.example/"}})), method="POST")
@example(request=LaunchRequest(token=SignedToken(target="TOOL/hub/lti13/oauth_callback?next=%0d%0aX:1")), method="POST")
@example(request=LaunchRequest(token=SignedToken(), keep_cookie=False), method="POST")
@example(
    request=LaunchRequest(token=SignedToken(), keep_cookie=False, repost="1", fetch_site="same-origin"), method="POST"
)
@example(request=LaunchRequest(token="a.b.c", junk=(("x", b"\xff"), (b"\xff", "x"))), method="POST")
@example(request=LaunchRequest(), method="GET")
def test_hub_lti13_callback_never_fails_and_refusals_write_nothing(hubs, request, method):
    check_hub_launch(hubs, request, method)


# -- LTI 1.1: /hub/lti/ltiaccess and /hub/lti/launch ---------------------------------------------------


def check_hub_lti11(
    hubs: Hubs,
    request: Lti11Request,
    path: str,
    method: str = "POST",
    *,
    correctly_signed: bool = False,
) -> str | None:
    """Sends the LTI 1.1 launch and checks the answer; returns the reason code of a refusal."""
    hub = hubs.lti11
    url = hub.hub_url + path
    body = lti11_body(request, url, CONSUMER_KEY, CONSUMER_SECRET)
    reject_if(len(body) > MAX_BODY)
    before = hub_rows(hub)
    with requests.Session() as browser:
        if method == "GET":
            response = browser.get(url, headers=CROSS_SITE, allow_redirects=False, timeout=60)
        else:
            headers = {**CROSS_SITE, "Content-Type": request.content_type}
            response = browser.post(url, data=body, headers=headers, allow_redirects=False, timeout=60)
    reason = check_answer(response, ok=(302,))
    written = changed(before, hub_rows(hub))
    if reason is not None:
        assert not written, (reason, written)
        # What oauthlib's client signed, the hub verifies, whatever the parameters are (non-ASCII names too).
        assert not (correctly_signed and reason == "bad_signature"), describe(response)
        return reason
    assert_lands_in_the_hub(hub, response)
    assert written.keys() <= {"users", "lti_publish_nonces", "lti_publish_user_links", "lti_publish_launch_contexts"}, (
        written
    )
    return None


LTI11_PATHS = st.sampled_from(["lti/ltiaccess", "lti/launch"])
#: Content types tornado may read differently from Django (it ignores the charset, skips bad multipart).
hub_lti11_requests = st.builds(
    lambda request, content_type: dataclasses.replace(request, content_type=content_type),
    lti11_requests,
    weighted(
        (8, st.just(FORM["Content-Type"])),
        (
            1,
            st.sampled_from(
                [
                    "application/x-www-form-urlencoded; charset=latin-1",
                    "application/x-www-form-urlencoded; charset=utf-16",
                    "multipart/form-data",
                    "multipart/form-data; boundary=x",
                    "text/plain",
                ]
            ),
        ),
    ),
)


@fuzz_settings(80)
@given(request=hub_lti11_requests, path=LTI11_PATHS, method=weighted((15, st.just("POST")), (1, st.just("GET"))))
@example(request=Lti11Request(timestamp="1796_161307"), path="lti/ltiaccess", method="POST")
@example(request=Lti11Request(timestamp="١٧٩٦١٦١٣٠٧"), path="lti/ltiaccess", method="POST")
@example(request=Lti11Request(edits=((Op.SET, "oauth_signature", "ñ" * 27 + "="),)), path="lti/launch", method="POST")
@example(request=Lti11Request(edits=((Op.ADD, "oauth_nonce", "again"),)), path="lti/ltiaccess", method="POST")
@example(request=Lti11Request(edits=((Op.SET, "user_id", b"\xff\xfe"),)), path="lti/ltiaccess", method="POST")
@example(request=Lti11Request(edits=((Op.ADD, b"\xff", "x"),)), path="lti/ltiaccess", method="POST")
@example(
    request=Lti11Request(raw_body=b"&".join(b"p%d=1" % i for i in range(1001))), path="lti/ltiaccess", method="POST"
)
@example(request=Lti11Request(content_type="multipart/form-data; boundary=x"), path="lti/ltiaccess", method="POST")
@example(request=Lti11Request(), path="lti/launch", method="GET")
def test_hub_lti11_launch_never_fails_and_refusals_write_nothing(hubs, request, path, method):
    check_hub_lti11(hubs, request, path, method)


@fuzz_settings(30)
@given(request=signed_lti11_requests, path=LTI11_PATHS)
@example(request=Lti11Request(params=(("lis_person_name_given", "\x00"),)), path="lti/ltiaccess")
@example(
    request=Lti11Request(params=(("lis_person_name_full", XSS), ("lis_person_name_given", XSS))), path="lti/ltiaccess"
)
@example(request=Lti11Request(params=(("custom_next", "\r\nX-Injected: 1"),)), path="lti/ltiaccess")
@example(request=Lti11Request(params=(("custom_next", "//evil.example/"),)), path="lti/launch")
def test_correctly_signed_hub_lti11_launches_with_fuzzed_parameters(hubs, request, path):
    check_hub_lti11(hubs, request, path, correctly_signed=True)


# -- /hub/lti13/jwks, /hub/lti13/config, /hub/lti11/config, /hub/lti/login -----------------------------

STATIC = [
    ("lti13", "lti13/jwks", "GET"),
    ("lti13", "lti13/config", "GET"),
    ("lti11", "lti11/config", "GET"),
    ("lti13", "lti/login", "GET"),
    ("lti11", "lti/login", "GET"),
    ("lti13", "lti/login", "POST"),
]


@fuzz_settings(40)
@given(endpoint=st.sampled_from(STATIC), query=query_pairs, accept_language=st.sampled_from(["", "fr", "*", "é;q=x"]))
def test_hub_configuration_pages_never_fail(hubs, endpoint, query, accept_language):
    version, path, method = endpoint
    hub = hubs.lti13 if version == "lti13" else hubs.lti11
    url = hub.hub_url + path + ("?" + encode_form(query).decode("ascii") if query else "")
    headers = {"Accept-Language": accept_language} if accept_language.isascii() else {}
    before = hub_rows(hub)
    with requests.Session() as browser:
        response = browser.request(method, url, headers=headers, allow_redirects=False, timeout=60)
    reason = check_answer(response, ok=(200,))
    written = changed(before, hub_rows(hub))
    if path == "lti13/jwks" and written:  # the first request makes the tool's key
        assert written == {"lti_publish_tool_keys": (0, 1)}, written
    else:
        assert not written, written
    if path == "lti/login":
        assert reason == "not_signed_in", describe(response)
    elif path == "lti11/config":
        assert response.status_code == 200 and "<blti:launch_url>" in response.text, describe(response)
    else:
        document: Any = json.loads(response.text)
        assert response.status_code == 200 and ("keys" in document or "oidc_initiation_url" in document)


# -- logins too long to pass on, arguments that are not UTF-8, bodies tornado will not parse, non-ASCII names --


@settings(fuzz_settings(1), phases=[Phase.explicit])
@given(request=login_requests())
# 4097 "é" pass lti_core's 8192-character limit and percent-encode to a 25 kB Location header, more than
# configurable-http-proxy reads (16 KiB of headers): the hub refuses the login before saving its state.
@example(request=LoginRequest("POST", {**VALID_LOGIN, "lti_message_hint": "é" * 4097}))
@example(request=LoginRequest("GET", {**VALID_LOGIN, "lti_message_hint": "&" * 8192}))
@example(request=LoginRequest("POST", {**VALID_LOGIN, "login_hint": "💥" * 1400}))
def test_hub_login_whose_redirect_would_be_too_long_is_refused_and_writes_nothing(hubs, request):
    assert check_hub_login(hubs, request) == "login_request_too_large"


@settings(fuzz_settings(1), phases=[Phase.explicit])
@given(request=launch_requests)
@example(request=LaunchRequest(token="a.b.c", state=b"\xff"))
@example(request=LaunchRequest(token=b"\xff", state="s"))
@example(request=LaunchRequest(token=SignedToken(), repost=b"\xc3"))
@example(request=LaunchRequest(token="a.b.c", state="\ud800"))
def test_hub_callback_with_a_non_utf8_field_gets_request_malformed(hubs, request):
    """tornado will not decode the field: the LTI error page with request_malformed, nothing written."""
    assert check_hub_launch(hubs, request) == "request_malformed"


@settings(fuzz_settings(1), phases=[Phase.explicit])
@given(request=login_requests())
@example(request=LoginRequest("POST", VALID_LOGIN, (("iss", b"\xff"),)))
@example(request=LoginRequest("GET", VALID_LOGIN, (("unrelated", b"\xff"),)))
@example(request=LoginRequest("POST", {**VALID_LOGIN, "lti_message_hint": "\ud800"}))
def test_hub_login_with_a_non_utf8_argument_gets_request_malformed(hubs, request):
    """tornado will not decode the argument: the LTI error page with request_malformed, nothing written."""
    assert check_hub_login(hubs, request) == "request_malformed"


@settings(fuzz_settings(1), phases=[Phase.explicit])
@given(request=hub_lti11_requests, path=LTI11_PATHS)
@example(request=Lti11Request(content_type="multipart/form-data"), path="lti/ltiaccess")
@example(request=Lti11Request(content_type="multipart/form-data"), path="lti/launch")
@example(request=Lti11Request(raw_body=b"&".join(b"p%d=1" % i for i in range(1001))), path="lti/ltiaccess")
def test_hub_lti11_launch_whose_body_tornado_will_not_parse_gets_request_malformed(hubs, request, path):
    """A multipart body without a boundary, more than 1000 fields: the LTI error page with request_malformed,
    nothing written."""
    assert check_hub_lti11(hubs, request, path) == "request_malformed"


@settings(fuzz_settings(1), phases=[Phase.explicit])
@given(request=signed_lti11_requests, path=LTI11_PATHS)
# Moodle sends custom parameters under the names the teacher typed (custom_<name>), accents included; tornado
# reads form field names as latin-1, the hub reads them as the UTF-8 the platform signed.
@example(request=Lti11Request(params=(("custom_café", "1"),)), path="lti/ltiaccess")
@example(request=Lti11Request(params=(("é", "x"),)), path="lti/launch")
def test_hub_accepts_a_correctly_signed_launch_with_a_non_ascii_parameter_name(hubs, request, path):
    """Signed in (302 into the hub), not refused with bad_signature."""
    assert check_hub_lti11(hubs, request, path, correctly_signed=True) is None
