"""The core's AGS client against the platform peer's gradebook, over real HTTP on loopback.

The tool's token comes from the peer's token endpoint (a client assertion signed by a ``ToolKeySet``
over a ``MemoryStore``, whose JWKS a tiny server here publishes for the peer to fetch); the requests
are the core's builders, sent by ``lti_xblock.http.UrllibTransport``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from lti_core import ags
from lti_core.http import HttpRequest, TransportError
from lti_core.lti13.token import AccessToken, build_client_assertion, build_token_request, parse_token_response
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.memory import MemoryStore
from lti_peer.ags import Gradebook, gradebook
from lti_peer.platform import PlatformPeer
from lti_peer.token import token_endpoint
from lti_peer.tool_jwks import serve_tool_jwks
from lti_xblock.http import UrllibTransport
from tests.conftest import registration_of

ALL_SCOPES = (ags.SCOPE_LINEITEM, ags.SCOPE_RESULT_READONLY, ags.SCOPE_SCORE)
LEARNER = "2"


@pytest.fixture(scope="module")
def tool_keys() -> Iterator[tuple[ToolKeySet, str]]:
    """The tool's keys, and the URL of their JWKS (served here, as the tool's host would)."""
    keys = ToolKeySet(MemoryStore())
    keys.ensure_key()

    with serve_tool_jwks(keys.jwks) as url:
        yield keys, url


@pytest.fixture
def peer(tool_keys: tuple[ToolKeySet, str]) -> Iterator[PlatformPeer]:
    with PlatformPeer() as platform:
        token_endpoint(platform).tool_jwks_url = tool_keys[1]
        yield platform
        gradebook(platform).answer_again()


@pytest.fixture
def book(peer: PlatformPeer) -> Gradebook:
    return gradebook(peer)


transport = UrllibTransport()


def token_for(peer: PlatformPeer, keys: ToolKeySet, scopes: tuple[str, ...] = ALL_SCOPES) -> AccessToken:
    assertion = build_client_assertion(keys, peer.client_id, peer.token_url, time.time())
    return parse_token_response(transport.send(build_token_request(registration_of(peer), scopes, assertion)))


def send(request: HttpRequest | None) -> Any:
    assert request is not None
    return transport.send(request)


def find_or_create(lineitems_url: str, token: AccessToken, resource_link_id: str, maximum: float) -> ags.LineItem:
    """What a grade job does: the line item of the link (following pages), else a new one."""
    request = ags.build_lineitems_query(lineitems_url, resource_link_id, "", token)
    while True:
        page = ags.parse_lineitems(send(request), request.url)
        if page.items:
            return page.items[0]
        if page.next_url is None:
            break
        request = ags.build_lineitems_page(page.next_url, token)
    create = ags.build_create_lineitem(
        lineitems_url, label="Chapter 1", score_maximum=maximum, token=token, resource_link_id=resource_link_id
    )
    return ags.parse_lineitem(send(create))


def test_find_or_create_post_scores_and_read_results(peer, book, tool_keys):
    keys, _ = tool_keys
    token = token_for(peer, keys)
    lineitems = book.lineitems_url()
    for n in range(12):  # more than a page of other links' line items
        book.add_lineitem(f"Other {n}", 5, resource_link_id=f"other-{n}")
    created = find_or_create(lineitems, token, "rl-1", 10)
    assert created.resource_link_id == "rl-1" and created.score_maximum == 10 and "type_id=2" in created.id
    assert find_or_create(lineitems, token, "rl-1", 10) == created  # found, not made twice

    # All the line items, page by page through the Link header.
    request = ags.build_lineitems_query(lineitems, token=token)
    seen: list[ags.LineItem] = []
    pages = 0
    while True:
        page = ags.parse_lineitems(send(request), request.url)
        seen.extend(page.items)
        pages += 1
        if page.next_url is None:
            break
        request = ags.build_lineitems_page(page.next_url, token)
    assert len(seen) == 13 and pages == 2

    # The maximum changes: PUT.
    updated = ags.parse_lineitem(send(ags.build_update_lineitem(created, token, score_maximum=20)))
    assert updated.score_maximum == 20 and updated.id == created.id

    clock = ags.ScoreClock()
    now = time.time()
    first = ags.build_score(LEARNER, 4, 10, clock.next(LEARNER, now), final=False)
    ags.parse_score_response(send(ags.build_score_request(updated.id, first, token)))
    final = ags.build_score(LEARNER, 9, 10, clock.next(LEARNER, now), comment="Well done")
    ags.parse_score_response(send(ags.build_score_request(updated.id, final, token)))
    kept = book.score_of(updated.id, LEARNER)
    assert kept is not None and kept.score_given == 9 and kept.grading_progress == "FullyGraded"

    results = ags.parse_results(send(ags.build_results_request(updated.id, token, user_id=LEARNER)))
    assert results.results == (ags.Result(LEARNER, 18.0, 20.0, "Well done", results.results[0].id, updated.id),)

    ags.parse_delete_response(send(ags.build_delete_lineitem(updated.id, token)))
    with pytest.raises(ags.AgsRefused) as gone:
        ags.parse_lineitem(send(HttpRequest("GET", updated.id, (("Authorization", f"Bearer {token.access_token}"),))))
    assert gone.value.platform_status == 404


def test_an_older_timestamp_is_ignored(peer, book, tool_keys):
    token = token_for(peer, tool_keys[0])
    item = book.add_lineitem("Quiz", 10, resource_link_id="rl-2")
    newer = ags.build_score(LEARNER, 8, 10, ags.format_timestamp(2_000_000_000))
    older = ags.build_score(LEARNER, 2, 10, ags.format_timestamp(1_999_999_999))
    ags.parse_score_response(send(ags.build_score_request(item, newer, token)))
    ags.parse_score_response(send(ags.build_score_request(item, older, token)))  # acknowledged...
    kept = book.score_of(item, LEARNER)
    assert kept is not None and kept.score_given == 8  # ...but not kept
    assert book.ignored == [(1, LEARNER, older.timestamp)]


def test_a_revoked_token_is_a_401_then_a_new_token_works(peer, book, tool_keys):
    registration = registration_of(peer)
    cache = ags.TokenCache()
    token = token_for(peer, tool_keys[0])
    cache.put(registration, ALL_SCOPES, token, time.time())
    item = book.add_lineitem("Quiz", 10)
    score = ags.build_score(LEARNER, 5, 10, ags.format_timestamp(time.time()))
    book.revoke_tokens()
    with pytest.raises(ags.AgsTokenExpired):
        ags.parse_score_response(send(ags.build_score_request(item, score, token)))
    cache.invalidate(registration, ALL_SCOPES, token)
    assert cache.get(registration, ALL_SCOPES, time.time()) is None
    fresh = token_for(peer, tool_keys[0])
    ags.parse_score_response(send(ags.build_score_request(item, score, fresh)))
    assert book.score_of(item, LEARNER) is not None


def test_the_gradebook_checks_scopes_content_type_and_fields(peer, book, tool_keys):
    item = book.add_lineitem("Quiz", 10)
    read_only = token_for(peer, tool_keys[0], (ags.SCOPE_RESULT_READONLY,))
    score = ags.build_score(LEARNER, 5, 10, ags.format_timestamp(time.time()))
    with pytest.raises(ags.AgsRefused) as refused:
        ags.parse_score_response(send(ags.build_score_request(item, score, read_only)))
    assert refused.value.platform_status == 403
    token = token_for(peer, tool_keys[0])
    request = ags.build_score_request(item, score, token)
    wrong_type = HttpRequest(
        "POST", request.url, ((*request.headers[:1], ("Content-Type", "application/json"))), request.body
    )
    with pytest.raises(ags.AgsRefused) as refused:
        ags.parse_score_response(send(wrong_type))
    assert refused.value.platform_status == 415
    for bad in ({"userId": LEARNER}, {**score.as_json(), "timestamp": "soon"}, {**score.as_json(), "scoreGiven": -1}):
        with pytest.raises(ags.AgsRefused) as refused:
            ags.parse_score_response(send(HttpRequest("POST", request.url, request.headers, json.dumps(bad).encode())))
        assert refused.value.platform_status == 400
    assert book.score_of(item, LEARNER) is None


def test_fault_knobs(peer, book, tool_keys):
    token = token_for(peer, tool_keys[0])
    item = book.add_lineitem("Quiz", 10)
    score = ags.build_score(LEARNER, 5, 10, ags.format_timestamp(time.time()))
    book.fail_next(2)
    for _ in range(2):
        with pytest.raises(ags.AgsRetryable) as failed:
            ags.parse_score_response(send(ags.build_score_request(item, score, token)))
        assert failed.value.platform_status == 500
    ags.parse_score_response(send(ags.build_score_request(item, score, token)))

    book.delay_ms = 150
    started = time.monotonic()
    ags.parse_lineitem(send(HttpRequest("GET", item, (("Authorization", f"Bearer {token.access_token}"),))))
    assert time.monotonic() - started >= 0.15
    book.delay_ms = 0

    book.hang_limit = 2.0
    book.stop_answering()
    slow = ags.build_score_request(item, score, token)
    with pytest.raises(TransportError):
        transport.send(HttpRequest(slow.method, slow.url, slow.headers, slow.body, timeout=0.3))
    book.answer_again()
    deadline = time.monotonic() + 2
    while not any(entry[2] == 0 for entry in book.log) and time.monotonic() < deadline:
        time.sleep(0.01)
    hung = urlsplit(slow.url)
    assert ("POST", f"{hung.path}?{hung.query}", 0) in book.log
    ags.parse_score_response(send(slow))  # answering again
