"""Deep linking on a real hub ("Published content"): a teacher's "Select content" from the platform peer
(LTI 1.3 LtiDeepLinkingRequest, LTI 1.1 ContentItemSelectionRequest) lands on the hub's catalog; the
picked items come back to the platform signed (checked here with pyjwt against the hub's JWKS, and
with oauthlib's server-side functions, as the platform would); learners launching the created links
land on their items. Refusals are pages with a reason, and write nothing.

One hub (`c.JupyterHub.authenticator_class = "lti"`) with a catalog of three items; no user's server
is started: the landing redirect is asserted.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import jwt as pyjwt
import pytest
import requests
from oauthlib.oauth1.rfc5849 import signature

from lti_peer import DELETE
from lti_peer.claims import CLAIM_DEEP_LINKING_SETTINGS, deep_linking_settings
from lti_peer.lti11 import INSTRUCTOR, LEARNER, moodle_lti11_params, sign_lti11_launch
from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer, parse_autosubmit_form
from tests.hub import HubProcess
from tests.test_hub_dynamic_registration import xsrf_of
from tests.test_hub_linking import links
from tests.test_hub_lti import CROSS_SITE, assert_refused, launch13, new_user_id, user_names

pytestmark = pytest.mark.slow

KEY11, SECRET11 = "dl11-key", "dl11-secret-0123456789"
CATALOG = [
    {"id": "week1", "title": "Week 1: Python", "path": "course/week1.ipynb", "max_score": 10},
    {"id": "week2", "title": "Week 2: Data", "path": "course/week2"},
    {
        "id": "labs",
        "title": "Labs",
        "path": "lab1.ipynb",
        "git": "https://github.com/example/labs",
        "branch": "main",
        "max_score": 5,
    },
]
CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
MESSAGE_TYPE = "https://purl.imsglobal.org/spec/lti/claim/message_type"
RETURN_11 = "https://moodle.example/mod/lti/contentitem_return.php?course=2&id=3&sesskey=x"


@pytest.fixture(scope="module")
def peer() -> Iterator[PlatformPeer]:
    with PlatformPeer(client_id="dl-client") as platform:
        yield platform


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, peer: PlatformPeer) -> Iterator[HubProcess]:
    platforms = [
        {
            "issuer": peer.issuer,
            "client_id": peer.client_id,
            "authorize_url": peer.auth_url,
            "jwks_endpoint": peer.jwks_url,
        }
    ]
    config = f"""
c.JupyterHub.authenticator_class = "lti"
c.LTIAuthenticator.platforms = {platforms!r}
c.LTIAuthenticator.consumers = {{{KEY11!r}: {SECRET11!r}}}
c.LTIAuthenticator.catalog = {CATALOG!r}
"""
    crypt_key = base64.b64encode(secrets.token_bytes(32)).decode()
    hub = HubProcess(tmp_path_factory.mktemp("hubdl"), config, env={"JUPYTERHUB_CRYPT_KEY": crypt_key})
    with hub.start():
        peer.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        yield hub


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def return_url(peer: PlatformPeer) -> str:
    return peer.issuer + "/mod/lti/contentitem_return.php?course=2&id=2"


def select_content(
    browser: requests.Session,
    hub: HubProcess,
    peer: PlatformPeer,
    *,
    roles: list[str] = INSTRUCTOR_ROLES,
    **settings: Any,
) -> requests.Response:
    """Moodle's "Select content": an LtiDeepLinkingRequest launch by a new platform user."""
    peer.user_id = new_user_id()
    claims = {
        "roles": roles,
        "message_type": "LtiDeepLinkingRequest",
        "resource_link": DELETE,
        CLAIM_DEEP_LINKING_SETTINGS: deep_linking_settings(return_url(peer), data="_2_abc", **settings),
    }
    return launch13(browser, hub, peer, claims=claims)


def open_picker(browser: requests.Session, hub: HubProcess, launched: requests.Response) -> requests.Response:
    assert launched.status_code == 302, launched.text[:2000]
    location = launched.headers["Location"]
    assert "/hub/lti/content/" in location, location
    page = browser.get(urljoin(hub.hub_url, location), allow_redirects=False, timeout=30)
    assert page.status_code == 200, page.text[:2000]
    return page


def submit(
    browser: requests.Session, hub: HubProcess, page: requests.Response, action: str, **fields: Any
) -> requests.Response:
    form_action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert form_action, page.text[:2000]
    data = {"_xsrf": xsrf_of(page.text), "action": action, **fields}
    return browser.post(urljoin(hub.hub_url, form_action.group(1)), data=data, allow_redirects=False, timeout=30)


def decode_response(hub: HubProcess, peer: PlatformPeer, token: str) -> dict[str, Any]:
    """The LtiDeepLinkingResponse as the platform checks it: signed by a key of the hub's JWKS, for it."""
    key_set = pyjwt.PyJWKSet.from_dict(requests.get(hub.hub_url + "lti13/jwks", timeout=30).json())
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(k for k in key_set.keys if k.key_id == kid)
    return pyjwt.decode(token, key.key, algorithms=["RS256"], audience=peer.issuer)


def written(hub: HubProcess) -> tuple[int, int]:
    return len(user_names(hub)), len(links(hub))


# -- LTI 1.3 -------------------------------------------------------------------------------------


def test_a_teacher_picks_two_items_and_learners_land_on_them(browser, hub, peer):
    page = open_picker(browser, hub, select_content(browser, hub, peer))
    assert "Published content" in page.text and page.text.count('type="checkbox" name="item"') == 3
    # "Add to gradebook" only for the items with a maximum score.
    assert re.findall(r'name="gradebook" value="([^"]+)"', page.text) == ["week1", "labs"]
    sent = submit(browser, hub, page, "add", item=["week1", "labs"], gradebook=["week1"])
    assert sent.status_code == 200, sent.text[:2000]
    assert "Week 1: Python" in sent.text and "out of 10" in sent.text and "Labs" in sent.text
    action, fields = parse_autosubmit_form(sent.text)
    assert action == return_url(peer) and list(fields) == ["JWT"]
    assert ".submit()" in sent.text  # it posts itself, in the frame or window it is in

    body = decode_response(hub, peer, fields["JWT"])
    assert body["iss"] == peer.client_id and body[MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    assert body[DL_DATA] == "_2_abc"
    launch_url = hub.hub_url + "lti13/oauth_callback"
    assert body[CONTENT_ITEMS] == [
        {
            "type": "ltiResourceLink",
            "title": "Week 1: Python",
            "url": launch_url,
            "custom": {"catalog_item": "week1"},
            "lineItem": {"scoreMaximum": 10.0, "label": "Week 1: Python", "resourceId": "week1"},
        },
        {"type": "ltiResourceLink", "title": "Labs", "url": launch_url, "custom": {"catalog_item": "labs"}},
    ]

    # A learner launches each created link, as the platform then does: custom parameters and all.
    landings = {}
    for item in body[CONTENT_ITEMS]:
        with requests.Session() as learner:
            peer.user_id = new_user_id()
            response = launch13(learner, hub, peer, target=item["url"], claims={"custom": item["custom"]})
        assert response.status_code == 302, response.text[:2000]
        landings[item["custom"]["catalog_item"]] = response.headers["Location"]
    assert landings["week1"] == "/hub/user-redirect/lab/tree/course/week1.ipynb"
    pulled = urlsplit(landings["labs"])
    assert pulled.path == "/hub/user-redirect/git-pull"
    assert dict(parse_qsl(pulled.query)) == {
        "repo": "https://github.com/example/labs",
        "branch": "main",
        "targetpath": "labs",
        "urlpath": "lab/tree/labs/lab1.ipynb",
    }


def test_a_request_is_answered_once(browser, hub, peer):
    page = open_picker(browser, hub, select_content(browser, hub, peer))
    kept = {c.name: c.value for c in browser.cookies if c.name.startswith("lti_pick_")}
    assert len(kept) == 1
    assert submit(browser, hub, page, "add", item=["week2"]).status_code == 200
    for name, value in kept.items():  # the browser keeps the request's cookie: still used up
        browser.cookies.set(name, value, path="/hub/lti/content/")
    assert_refused(submit(browser, hub, page, "add", item=["week1"]), "deep_linking_expired", 403)


def test_cancel_sends_the_error_response(browser, hub, peer):
    page = open_picker(browser, hub, select_content(browser, hub, peer))
    sent = submit(browser, hub, page, "cancel")
    assert sent.status_code == 200 and "Nothing was added" in sent.text
    action, fields = parse_autosubmit_form(sent.text)
    body = decode_response(hub, peer, fields["JWT"])
    assert action == return_url(peer) and body[CONTENT_ITEMS] == []
    assert body["https://purl.imsglobal.org/spec/lti-dl/claim/errormsg"]


def test_the_page_follows_what_the_platform_accepts(browser, hub, peer):
    page = open_picker(browser, hub, select_content(browser, hub, peer, accept_multiple=False, accept_lineitem=False))
    assert page.text.count('type="radio" name="item"') == 3 and 'name="gradebook"' not in page.text
    nothing = submit(browser, hub, page, "add")
    assert nothing.status_code == 400 and 'role="alert"' in nothing.text  # the page again, with a hint
    assert_refused(submit(browser, hub, page, "add", item=["week1", "week2"]), "deep_linking_one_item_only", 400)
    assert_refused(submit(browser, hub, page, "add", item=["week9"]), "unknown_content", 400)


def test_the_form_needs_the_hubs_xsrf(browser, hub, peer):
    page = open_picker(browser, hub, select_content(browser, hub, peer))
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action
    response = browser.post(urljoin(hub.hub_url, action.group(1)), data={"action": "add", "item": "week1"}, timeout=30)
    assert_refused(response, "form_expired", 403)


def test_a_learner_may_not_select_content_and_nothing_is_written(browser, hub, peer):
    before = written(hub)
    response = select_content(browser, hub, peer, roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"])
    assert_refused(response, "deep_linking_instructors_only", 403)
    assert written(hub) == before


@pytest.mark.parametrize(
    ("claims", "reason", "status"),
    [
        ({CLAIM_DEEP_LINKING_SETTINGS: DELETE}, "deep_linking_settings_missing", 400),
        ({"message_type": "LtiSubmissionReviewRequest"}, "unsupported_message_type", 400),
        ({"custom": {"catalog_item": "week9"}, "message_type": "LtiResourceLinkRequest"}, "catalog_item_unknown", 404),
    ],
)
def test_unusable_requests_are_refused_and_write_nothing(browser, hub, peer, claims, reason, status):
    before = written(hub)
    peer.user_id = new_user_id()
    base = {
        "roles": INSTRUCTOR_ROLES,
        "message_type": "LtiDeepLinkingRequest",
        "resource_link": DELETE,
        CLAIM_DEEP_LINKING_SETTINGS: deep_linking_settings(return_url(peer)),
    }
    if "custom" in claims:
        base.pop("resource_link")
    assert_refused(launch13(browser, hub, peer, claims={**base, **claims}), reason, status)
    assert written(hub) == before


# -- LTI 1.1 -------------------------------------------------------------------------------------


def content_item_request(hub: HubProcess, browser: requests.Session, secret: str = SECRET11) -> requests.Response:
    url = hub.hub_url + "lti/ltiaccess"
    params = moodle_lti11_params(
        roles=INSTRUCTOR,
        user_id=new_user_id(),
        lti_message_type="ContentItemSelectionRequest",
        content_item_return_url=RETURN_11,
        accept_media_types="application/vnd.ims.lti.v1.ltilink",
        accept_presentation_document_targets="frame,iframe,window",
        accept_multiple="true",
        data="_3_xyz",
    )
    form = sign_lti11_launch(url, KEY11, secret, params)
    return browser.post(url, data=form, headers=CROSS_SITE, allow_redirects=False, timeout=30)


def test_lti11_content_item_selection_comes_back_signed(browser, hub):
    page = open_picker(browser, hub, content_item_request(hub, browser))
    sent = submit(browser, hub, page, "add", item=["week1", "week2"], gradebook=["week1"])
    assert sent.status_code == 200, sent.text[:2000]
    action, fields = parse_autosubmit_form(sent.text)
    assert action == RETURN_11 and fields["lti_message_type"] == "ContentItemSelection"
    assert fields["data"] == "_3_xyz" and fields["oauth_consumer_key"] == KEY11
    # The platform's check (oauthlib's server-side functions): the signature over the whole form.
    pairs = [(k, v) for k, v in fields.items() if k != "oauth_signature"]
    collected = signature.collect_parameters(uri_query=urlsplit(RETURN_11).query, body=pairs)
    base = signature.signature_base_string(
        "POST", signature.base_string_uri(RETURN_11), signature.normalize_parameters(collected)
    )

    class Secret:
        client_secret, resource_owner_secret = SECRET11, ""

    assert signature.sign_hmac_sha1_with_client(base, Secret()) == fields["oauth_signature"]
    graph = json.loads(fields["content_items"])["@graph"]
    assert [(g["title"], g["url"], g["custom"]) for g in graph] == [
        ("Week 1: Python", hub.hub_url + "lti/ltiaccess", {"catalog_item": "week1"}),
        ("Week 2: Data", hub.hub_url + "lti/ltiaccess", {"catalog_item": "week2"}),
    ]
    assert graph[0]["lineItem"]["scoreConstraints"]["totalMaximum"] == 10 and "lineItem" not in graph[1]

    # A learner's launch of the second link (Moodle sends custom parameters as custom_<name>).
    url = hub.hub_url + "lti/ltiaccess"
    params = moodle_lti11_params(roles=LEARNER, user_id=new_user_id(), custom_catalog_item="week2")
    with requests.Session() as learner:
        response = learner.post(
            url, data=sign_lti11_launch(url, KEY11, SECRET11, params), headers=CROSS_SITE, allow_redirects=False
        )
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"] == "/hub/user-redirect/lab/tree/course/week2"


def test_lti11_bad_signature_is_refused_and_writes_nothing(browser, hub):
    before = written(hub)
    assert_refused(content_item_request(hub, browser, secret="wrong-secret"), "bad_signature", 401)
    assert written(hub) == before


# -- the catalog setting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catalog", "problem"),
    [
        ([{"id": "a", "title": "A", "path": "x"}, {"id": "a", "title": "B", "path": "y"}], "listed twice"),
        ([{"id": "a", "title": "A", "path": "/etc/passwd"}], "relative"),
        ([{"id": "a", "title": "A", "path": "course/../../x"}], "relative"),
        ([{"id": "a b", "title": "A", "path": "x"}], "id must be"),
        ([{"id": "a", "title": "", "path": "x"}], "title"),
        ([{"id": "a", "title": "A", "path": "x", "git": "file:///srv/repo"}], "git"),
        ([{"id": "a", "title": "A", "path": "x", "max_score": 0}], "max_score"),
        ([{"id": "a", "title": "A", "path": "x", "max_score": "10"}], "max_score"),
        ([{"id": "a", "title": "A", "path": "x", "pth": "typo"}], "unknown keys"),
    ],
)
def test_a_wrong_catalog_stops_the_hub_at_startup(catalog, problem):
    from traitlets import TraitError

    from jupyter_lti.lti import LTIAuthenticator

    with pytest.raises(TraitError, match=problem):
        LTIAuthenticator(catalog=catalog)


def test_the_configured_catalog_is_read_as_items():
    from jupyter_lti.lti import LTIAuthenticator

    items = LTIAuthenticator(catalog=CATALOG).catalog_items
    assert [(i.id, i.path, i.max_score) for i in items] == [
        ("week1", "course/week1.ipynb", 10.0),
        ("week2", "course/week2", None),
        ("labs", "lab1.ipynb", 5.0),
    ]
