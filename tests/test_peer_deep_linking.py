"""The platform peer's deep-linking return (Moodle's mod/lti/contentitem_return.php), over real HTTP on
loopback: answers built by the core's builders (signed with a ``ToolKeySet`` whose JWKS a tiny server
publishes, as the tool's host would; LTI 1.1 selections signed with the consumer's secret) are
checked by the peer with pyjwt and oauthlib, and turn into resource links and gradebook line items.
A forged, replayed, misdirected or unrequested answer is refused with a reason and makes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import jwt as pyjwt
import pytest
import requests

from lti_core.deep_linking import ContentItem, LineItem, build_deep_linking_response, parse_deep_linking_settings
from lti_core.lti11.content_item import build_content_item_selection
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.memory import MemoryStore
from lti_core.types import Consumer, DeepLinkingSettings, Launch, Role
from lti_peer.ags import SCOPE_SCORE, StoredLineItem, gradebook
from lti_peer.claims import CLAIM_AGS, CLAIM_CUSTOM, CLAIM_DEEP_LINKING_SETTINGS, CLAIM_RESOURCE_LINK
from lti_peer.deep_linking import CreatedLink
from lti_peer.keys import attacker_key
from lti_peer.platform import PlatformPeer
from lti_peer.token import token_endpoint
from lti_peer.tool_jwks import serve_tool_jwks

KEY11, SECRET11 = "dl-peer-key", "dl-peer-secret-0123456789"
TOOL_URL = "https://tool.example/lti/launch"
PICKED = [
    ContentItem(
        "Week 1: Python",
        TOOL_URL,
        custom={"catalog_item": "week1"},
        line_item=LineItem(10.0, "Week 1: Python", resource_id="week1", tag="notebook"),
    ),
    ContentItem("Labs", TOOL_URL, custom={"catalog_item": "labs"}),
]


@pytest.fixture(scope="module")
def tool_keys() -> Iterator[tuple[ToolKeySet, str]]:
    keys = ToolKeySet(MemoryStore())
    keys.ensure_key()
    with serve_tool_jwks(keys.jwks) as url:
        yield keys, url


@pytest.fixture(scope="module")
def peer(tool_keys: tuple[ToolKeySet, str]) -> Iterator[PlatformPeer]:
    with PlatformPeer(client_id="dl-peer-client") as platform:
        token_endpoint(platform).tool_jwks_url = tool_keys[1]
        platform.outcomes.add_consumer(KEY11, SECRET11)
        yield platform


def teacher_request(peer: PlatformPeer, *, data: str | None = None) -> Launch:
    """The tool's reading of the peer's "Select content" request (an instructor's LtiDeepLinkingRequest)."""
    claims = peer.deep_linking.request_claims(data=data)
    return Launch(
        lti_version="1.3.0",
        platform=peer.issuer,
        platform_user_id="3",
        roles=(),
        role=Role.STAFF,
        resource_link_id="",
        deployment_id=peer.deployment_id,
        client_id=peer.client_id,
        message_type="LtiDeepLinkingRequest",
        deep_linking=parse_deep_linking_settings(claims[CLAIM_DEEP_LINKING_SETTINGS]),
    )


def answer(peer: PlatformPeer, launch: Launch, keys: ToolKeySet, items: list[ContentItem] = PICKED) -> str:
    back = build_deep_linking_response(launch, items, keys, time.time())
    assert back.url == peer.deep_linking.return_url
    return dict(back.fields)["JWT"]


def post(url: str, form: dict[str, str]) -> requests.Response:
    return requests.post(url, data=form, timeout=30)


def made(peer: PlatformPeer) -> tuple[int, int]:
    """How many resource links and line items the peer has (one peer serves the module's tests)."""
    return len(peer.deep_links), len(gradebook(peer).items)


def made_since(peer: PlatformPeer, before: tuple[int, int]) -> tuple[list[CreatedLink], list[StoredLineItem]]:
    items = sorted(gradebook(peer).items.values(), key=lambda item: item.number)
    return peer.deep_links[before[0] :], items[before[1] :]


def assert_refused(response: requests.Response, reason: str) -> None:
    assert response.status_code == 400, response.text
    assert f"<code>{reason}" in response.text, response.text


def test_a_signed_response_makes_the_links_and_the_line_item(peer, tool_keys):
    keys, _ = tool_keys
    before = made(peer)
    page = post(peer.deep_linking.return_url, {"JWT": answer(peer, teacher_request(peer), keys)})
    assert page.status_code == 200, page.text
    assert "Week 1: Python" in page.text and "Labs" in page.text
    (week1, labs), (item,) = made_since(peer, before)
    assert (week1.title, week1.url, dict(week1.custom)) == ("Week 1: Python", TOOL_URL, {"catalog_item": "week1"})
    assert (labs.title, dict(labs.custom), labs.lineitem) == ("Labs", {"catalog_item": "labs"}, "")
    assert gradebook(peer).item_url(item) == week1.lineitem
    assert (item.label, item.score_maximum, item.resource_link_id) == ("Week 1: Python", 10.0, week1.id)
    assert (item.resource_id, item.tag) == ("week1", "notebook")

    # A learner's launch of each: its resource link, custom parameters, and the line item to score.
    graded = peer.deep_linking.launch_claims(week1)
    assert graded[CLAIM_RESOURCE_LINK]["id"] == week1.id and graded[CLAIM_CUSTOM] == {"catalog_item": "week1"}
    assert graded[CLAIM_AGS]["lineitem"] == week1.lineitem and SCOPE_SCORE in graded[CLAIM_AGS]["scope"]
    assert "lineitem" not in peer.deep_linking.launch_claims(labs)[CLAIM_AGS]


def forged(token: str) -> str:
    """The same claims and kid, signed with an attacker's key."""
    claims = pyjwt.decode(token, options={"verify_signature": False})
    kid = pyjwt.get_unverified_header(token)["kid"]
    return pyjwt.encode(claims, attacker_key(), algorithm="RS256", headers={"kid": kid})


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("forged", "JWT not valid: InvalidSignatureError"),
        ("audience", "JWT not valid: InvalidAudienceError"),
        ("data", "data does not match a request"),
        ("issuer", "JWT not valid: InvalidIssuerError"),
        ("deployment", "unknown deployment id"),
    ],
)
def test_an_answer_the_platform_cannot_trust_is_refused_and_makes_nothing(peer, tool_keys, tamper, reason):
    keys, _ = tool_keys
    before = made(peer)
    launch = teacher_request(peer)
    if tamper == "audience":
        launch = replace(launch, platform="https://other-moodle.example")
    elif tamper == "data":
        launch = replace(launch, deep_linking=replace(launch.deep_linking, data="_2_never_sent"))
    elif tamper == "issuer":
        launch = replace(launch, client_id="another-tool")
    elif tamper == "deployment":
        launch = replace(launch, deployment_id="99")
    token = answer(peer, launch, keys)
    assert_refused(post(peer.deep_linking.return_url, {"JWT": forged(token) if tamper == "forged" else token}), reason)
    assert made(peer) == before


def test_a_replayed_answer_or_a_second_answer_to_one_request_is_refused(peer, tool_keys):
    keys, _ = tool_keys
    before, logged = made(peer), len(peer.deep_linking.log)
    launch = teacher_request(peer)
    token = answer(peer, launch, keys)
    assert post(peer.deep_linking.return_url, {"JWT": token}).status_code == 200
    assert_refused(post(peer.deep_linking.return_url, {"JWT": token}), "nonce reused")
    # A fresh answer (a new nonce) to the request already answered: its data is used up.
    assert_refused(post(peer.deep_linking.return_url, {"JWT": answer(peer, launch, keys)}), "data does not match")
    assert made(peer) == (before[0] + 2, before[1] + 1)
    assert peer.deep_linking.log[logged:] == ["ok", "nonce reused", "data does not match a request"]


# -- LTI 1.1 -------------------------------------------------------------------------------------


def selection(peer: PlatformPeer, *, secret: str = SECRET11) -> dict[str, str]:
    """A ContentItemSelection the tool signs for the peer's ContentItemSelectionRequest."""
    settings = DeepLinkingSettings(return_url=peer.deep_linking.return_url, data=peer.deep_linking.expect())
    launch = Launch(
        lti_version="1.1",
        platform=KEY11,
        platform_user_id="3",
        roles=(),
        role=Role.STAFF,
        resource_link_id="",
        message_type="ContentItemSelectionRequest",
        deep_linking=settings,
    )
    return dict(build_content_item_selection(launch, PICKED, Consumer(KEY11, secret), time.time()).fields)


def test_an_lti11_selection_makes_the_links_and_the_line_item(peer):
    before = made(peer)
    page = post(peer.deep_linking.return_url, selection(peer))
    assert page.status_code == 200, page.text
    (week1, labs), (item,) = made_since(peer, before)
    assert (week1.lti_version, dict(week1.custom), dict(labs.custom)) == (
        "1.1",
        {"catalog_item": "week1"},
        {"catalog_item": "labs"},
    )
    assert (item.label, item.score_maximum, item.resource_link_id, item.resource_id) == (
        "Week 1: Python",
        10.0,
        week1.id,
        "week1",
    )
    assert gradebook(peer).item_url(item) == week1.lineitem and labs.lineitem == ""


def tampered_items(form: dict[str, Any]) -> dict[str, Any]:
    graph = json.loads(form["content_items"])
    graph["@graph"][1]["url"] = "https://evil.example/"
    return {**form, "content_items": json.dumps(graph)}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (tampered_items, "signature not valid"),
        (lambda form: {**form, "oauth_consumer_key": "unknown"}, "unknown consumer key"),
        (lambda form: {**form, "oauth_timestamp": str(int(time.time()) - 3600)}, "expired timestamp"),
    ],
)
def test_a_tampered_lti11_selection_is_refused_and_makes_nothing(peer, change, reason):
    before = made(peer)
    assert_refused(post(peer.deep_linking.return_url, change(selection(peer))), reason)
    assert made(peer) == before


def test_an_lti11_selection_signed_with_another_secret_or_replayed_is_refused(peer):
    before = made(peer)
    assert_refused(post(peer.deep_linking.return_url, selection(peer, secret="not-the-secret")), "signature not valid")
    form = selection(peer)
    assert post(peer.deep_linking.return_url, form).status_code == 200
    assert_refused(post(peer.deep_linking.return_url, form), "nonce reused")
    assert made(peer) == (before[0] + 2, before[1] + 1)
