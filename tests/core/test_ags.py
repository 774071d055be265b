"""The AGS 2.0 client in plain data: every builder's exact request, every parser's refusals, pagination,
the token cache and the score timestamps."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import pytest

from lti_core import ags
from lti_core.ags import (
    AgsRefused,
    AgsResponseMalformed,
    AgsRetryable,
    AgsTokenExpired,
    LineItem,
    Score,
    ScoreClock,
    TokenCache,
)
from lti_core.errors import InvalidRequest, LtiError
from lti_core.http import USER_AGENT, HttpRequest, HttpResponse
from lti_core.lti13.token import AccessToken
from lti_core.types import Registration

M = "https://m.example/mod/lti/services.php/2"
LINEITEMS = f"{M}/lineitems?type_id=2"
LINEITEM = f"{M}/lineitems/5/lineitem?type_id=2"
TOKEN = AccessToken("tok-123", 2_000_000_000.0, scopes=(ags.SCOPE_SCORE,))
STAMP = "2025-10-09T08:53:20.123+00:00"
REG = Registration(
    "https://m.example", "client-1", "https://m.example/auth", "https://m.example/token", "https://m.example/jwks"
)


def body(request: HttpRequest) -> object:
    return json.loads(request.body)


def answer(
    status: int, document: object = None, headers: tuple[tuple[str, str], ...] = (), raw: bytes | None = None
) -> HttpResponse:
    data = raw if raw is not None else (b"" if document is None else json.dumps(document).encode())
    return HttpResponse(status, headers, data)


# -- URLs ------------------------------------------------------------------------------------------


def test_scores_and_results_urls_go_in_the_path_and_keep_the_query():
    assert ags.scores_url(LINEITEM) == f"{M}/lineitems/5/lineitem/scores?type_id=2"
    assert ags.results_url(LINEITEM) == f"{M}/lineitems/5/lineitem/results?type_id=2"
    assert ags.scores_url("https://c.example/api/lti/courses/1/line_items/7/") == (
        "https://c.example/api/lti/courses/1/line_items/7/scores"
    )
    assert ags.scores_url("https://c.example/items/7#frag") == "https://c.example/items/7/scores"


@pytest.mark.parametrize("url", ["", "ftp://m.example/x", "javascript:alert(1)", "https://", "/relative/lineitem"])
def test_a_non_http_url_is_refused(url):
    with pytest.raises(InvalidRequest) as refused:
        ags.scores_url(url)
    assert refused.value.reason == "ags_url_invalid"


# -- scores ----------------------------------------------------------------------------------------


def test_build_score_final_and_in_progress():
    final = ags.build_score("sub-7", 8.5, 10, STAMP, comment="Well done")
    assert final == Score("sub-7", 8.5, 10, "Completed", "FullyGraded", STAMP, "Well done")
    pending = ags.build_score("sub-7", 3, 10, STAMP, final=False)
    assert (pending.activity_progress, pending.grading_progress) == ("InProgress", "Pending")


@pytest.mark.parametrize(
    ("given", "maximum", "reason"),
    [
        (1, 0, "score_maximum_invalid"),
        (1, -5, "score_maximum_invalid"),
        (1, float("inf"), "score_maximum_invalid"),
        (1, float("nan"), "score_maximum_invalid"),
        (1, True, "score_maximum_invalid"),
        (float("nan"), 10, "score_given_invalid"),
        (float("inf"), 10, "score_given_invalid"),
        (-1, 10, "score_given_invalid"),
        ("7", 10, "score_given_invalid"),
        (5, None, "score_maximum_invalid"),
    ],
)
def test_build_score_refuses_bad_numbers(given, maximum, reason):
    with pytest.raises(InvalidRequest) as refused:
        ags.build_score("sub-7", given, maximum, STAMP)
    assert refused.value.reason == reason


@pytest.mark.parametrize("stamp", ["", "yesterday", "2025-10-09T08:53:20.123", "2025-10-09"])
def test_build_score_refuses_a_timestamp_without_timezone(stamp):
    with pytest.raises(InvalidRequest) as refused:
        ags.build_score("sub-7", 1, 2, stamp)
    assert refused.value.reason == "score_timestamp_invalid"


def test_build_score_refuses_no_user():
    with pytest.raises(InvalidRequest) as refused:
        ags.build_score("", 1, 2, STAMP)
    assert refused.value.reason == "score_user_missing"


def test_a_score_over_the_maximum_is_extra_credit_and_a_progress_score_needs_no_numbers():
    assert ags.build_score("u", 12, 10, STAMP).score_given == 12
    assert ags.build_score("u", None, None, STAMP, final=False).as_json() == {
        "userId": "u",
        "activityProgress": "InProgress",
        "gradingProgress": "Pending",
        "timestamp": STAMP,
    }


def test_build_score_request_exactly():
    score = ags.build_score("sub-7", 8.5, 10, STAMP, comment="Well done")
    request = ags.build_score_request(LINEITEM, score, TOKEN)
    assert request == HttpRequest(
        "POST",
        f"{M}/lineitems/5/lineitem/scores?type_id=2",
        (
            ("Authorization", "Bearer tok-123"),
            ("Content-Type", "application/vnd.ims.lis.v1.score+json"),
            ("User-Agent", USER_AGENT),
        ),
        b'{"userId":"sub-7","scoreGiven":8.5,"scoreMaximum":10,"activityProgress":"Completed",'
        b'"gradingProgress":"FullyGraded","timestamp":"2025-10-09T08:53:20.123+00:00","comment":"Well done"}',
    )
    assert ags.build_score_request(LINEITEM, score, "raw-token").header("Authorization") == "Bearer raw-token"


@pytest.mark.parametrize("token", ["", "a\r\nX-Evil: 1", "two words"])
def test_an_unusable_token_is_refused(token):
    with pytest.raises(InvalidRequest) as refused:
        ags.build_score_request(LINEITEM, ags.build_score("u", 1, 2, STAMP), token)
    assert refused.value.reason == "ags_token_invalid"


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_parse_score_response_accepts(status):
    assert ags.parse_score_response(answer(status)) is None


def test_parse_score_response_401_is_token_expired():
    with pytest.raises(AgsTokenExpired) as refused:
        ags.parse_score_response(answer(401, {"error": "expired"}))
    assert refused.value.reason == "ags_token_expired" and refused.value.retryable


@pytest.mark.parametrize("status", [400, 403, 404, 409, 415, 422, 302, 203])
def test_parse_score_response_other_statuses_are_permanent(status):
    long_body = ("Refusing score\x00 with\n an earlier timestamp " * 20).encode()
    with pytest.raises(AgsRefused) as refused:
        ags.parse_score_response(answer(status, raw=long_body))
    error = refused.value
    assert error.reason == "ags_refused" and not error.retryable and error.platform_status == status
    assert error.excerpt.startswith("Refusing score with an earlier timestamp") and len(error.excerpt) <= 200
    assert "\n" not in error.excerpt and "\x00" not in error.excerpt and f"status {status}" in error.detail


@pytest.mark.parametrize("status", [429, 500, 502, 503, 599])
def test_parse_score_response_busy_or_failing_is_retryable(status):
    with pytest.raises(AgsRetryable) as refused:
        ags.parse_score_response(answer(status, raw=b"\xff\xfe busy", headers=(("Retry-After", "30"),)))
    assert refused.value.reason == "ags_unavailable" and refused.value.retryable
    assert refused.value.retry_after == 30.0 and refused.value.platform_status == status
    assert isinstance(refused.value, LtiError) and refused.value.status == 502


def test_retry_after_as_a_date_is_not_a_number():
    with pytest.raises(AgsRetryable) as refused:
        ags.parse_score_response(answer(503, headers=(("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),)))
    assert refused.value.retry_after is None


# -- timestamps ------------------------------------------------------------------------------------


def test_format_timestamp_has_milliseconds_and_timezone():
    assert ags.format_timestamp(1_760_000_000.1234) == "2025-10-09T08:53:20.123+00:00"
    assert ags.format_timestamp(1_760_000_000) == "2025-10-09T08:53:20.000+00:00"


def test_score_clock_is_strictly_increasing_per_user():
    clock = ScoreClock()
    stamps = [clock.next("u1", 1_760_000_000.0) for _ in range(5)]
    assert stamps[0] == "2025-10-09T08:53:20.000+00:00" and stamps[-1] == "2025-10-09T08:53:20.004+00:00"
    parsed = [datetime.fromisoformat(s) for s in stamps]
    assert all(a < b for a, b in zip(parsed, parsed[1:], strict=False))
    # Another user starts from the clock; the clock going backwards cannot go back on a user.
    assert clock.next("u2", 1_760_000_000.0) == "2025-10-09T08:53:20.000+00:00"
    assert clock.next("u1", 1_759_999_000.0) == "2025-10-09T08:53:20.005+00:00"
    assert clock.next("u1", 1_760_000_001.0) == "2025-10-09T08:53:21.000+00:00"
    # Milliseconds that floats cannot hold exactly still come out one apart.
    assert [clock.next("u3", 2_000.001) for _ in range(3)] == [
        "1970-01-01T00:33:20.001+00:00",
        "1970-01-01T00:33:20.002+00:00",
        "1970-01-01T00:33:20.003+00:00",
    ]


def test_score_clock_from_many_threads_never_repeats():
    clock = ScoreClock()
    seen: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [clock.next("u", 1_760_000_000.0) for _ in range(200)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 800


def test_score_clock_forgets_old_keys_beyond_its_limit(monkeypatch):
    monkeypatch.setattr(ScoreClock, "MAX_KEYS", 3)
    clock = ScoreClock()
    for user in "abcd":
        clock.next(user, 1_000.0)
    clock.next("e", 2_000.0)
    assert clock.next("e", 2_000.0) == "1970-01-01T00:33:20.001+00:00"
    assert len(clock._last) <= 4


# -- line items ------------------------------------------------------------------------------------


def test_build_lineitems_query_adds_to_the_query():
    request = ags.build_lineitems_query(LINEITEMS, "rl-9", "grade", TOKEN)
    assert request == HttpRequest(
        "GET",
        f"{M}/lineitems?type_id=2&resource_link_id=rl-9&tag=grade",
        (
            ("Authorization", "Bearer tok-123"),
            ("Accept", "application/vnd.ims.lis.v2.lineitemcontainer+json"),
            ("User-Agent", USER_AGENT),
        ),
    )
    assert ags.build_lineitems_query(LINEITEMS, token=TOKEN).url == LINEITEMS
    limited = ags.build_lineitems_query(f"{M}/lineitems?type_id=2&tag=old", "", "new tag", TOKEN, limit=5)
    assert limited.url == f"{M}/lineitems?type_id=2&tag=new+tag&limit=5"


def test_build_create_lineitem_exactly():
    request = ags.build_create_lineitem(
        LINEITEMS, label="Chapter 1", score_maximum=100, token=TOKEN, resource_id="ch1", resource_link_id="rl-9"
    )
    assert request == HttpRequest(
        "POST",
        LINEITEMS,
        (
            ("Authorization", "Bearer tok-123"),
            ("Accept", "application/vnd.ims.lis.v2.lineitem+json"),
            ("Content-Type", "application/vnd.ims.lis.v2.lineitem+json"),
            ("User-Agent", USER_AGENT),
        ),
        b'{"scoreMaximum":100,"label":"Chapter 1","resourceId":"ch1","resourceLinkId":"rl-9"}',
    )


@pytest.mark.parametrize(
    ("label", "maximum", "reason"),
    [("", 10, "lineitem_label_missing"), ("  ", 10, "lineitem_label_missing"), ("x", 0, "score_maximum_invalid")],
)
def test_build_create_lineitem_refusals(label, maximum, reason):
    with pytest.raises(InvalidRequest) as refused:
        ags.build_create_lineitem(LINEITEMS, label=label, score_maximum=maximum, token=TOKEN)
    assert refused.value.reason == reason


def test_build_update_lineitem_only_when_something_changes():
    item = LineItem(LINEITEM, 10.0, "Chapter 1", "ch1", "rl-9", "grade")
    assert ags.build_update_lineitem(item, TOKEN) is None
    assert ags.build_update_lineitem(item, TOKEN, score_maximum=10) is None
    request = ags.build_update_lineitem(item, TOKEN, score_maximum=20)
    assert request is not None and request.method == "PUT" and request.url == LINEITEM
    assert request.header("Content-Type") == "application/vnd.ims.lis.v2.lineitem+json"
    assert body(request) == {
        "id": LINEITEM,
        "scoreMaximum": 20,
        "label": "Chapter 1",
        "resourceId": "ch1",
        "resourceLinkId": "rl-9",
        "tag": "grade",
    }
    relabelled = ags.build_update_lineitem(item, TOKEN, label="Chapter one")
    assert relabelled is not None and body(relabelled)["label"] == "Chapter one"  # type: ignore[index]


def test_build_delete_lineitem_and_its_answers():
    request = ags.build_delete_lineitem(LINEITEM, TOKEN)
    assert request == HttpRequest("DELETE", LINEITEM, (("Authorization", "Bearer tok-123"), ("User-Agent", USER_AGENT)))
    for status in (200, 204, 404):
        assert ags.parse_delete_response(answer(status)) is None
    with pytest.raises(AgsRefused):
        ags.parse_delete_response(answer(403))


ITEM_JSON = {
    "id": LINEITEM,
    "scoreMaximum": 10,
    "label": "Chapter 1",
    "resourceId": "ch1",
    "resourceLinkId": "rl-9",
    "tag": "grade",
}


def test_parse_lineitem():
    assert ags.parse_lineitem(answer(201, ITEM_JSON)) == LineItem(LINEITEM, 10.0, "Chapter 1", "ch1", "rl-9", "grade")
    assert ags.parse_lineitem(answer(200, {"id": LINEITEM, "scoreMaximum": 1.5, "resourceLinkId": 42})) == LineItem(
        LINEITEM, 1.5, "", "", "42", ""
    )


@pytest.mark.parametrize(
    "document",
    [
        [],
        "item",
        {"scoreMaximum": 10},
        {"id": "not-a-url", "scoreMaximum": 10},
        {"id": LINEITEM},
        {"id": LINEITEM, "scoreMaximum": 0},
        {"id": LINEITEM, "scoreMaximum": "10"},
        {"id": LINEITEM, "scoreMaximum": True},
        {"id": LINEITEM, "scoreMaximum": 10**400},
        {"id": LINEITEM, "scoreMaximum": 10, "label": ["x"]},
        {"id": LINEITEM, "scoreMaximum": 10, "tag": {"a": 1}},
        {"id": LINEITEM, "scoreMaximum": 10, "resourceId": False},
    ],
)
def test_parse_lineitem_refuses_malformed(document):
    with pytest.raises(AgsResponseMalformed) as refused:
        ags.parse_lineitem(answer(200, document))
    assert refused.value.reason == "ags_response_malformed"


@pytest.mark.parametrize("raw", [b"", b"not json", b"\xff\xfe", b"[" * 100_000])
def test_parse_lineitems_refuses_non_json(raw):
    with pytest.raises(AgsResponseMalformed):
        ags.parse_lineitems(answer(200, raw=raw))


def test_parse_lineitems_refuses_statuses_by_kind():
    with pytest.raises(AgsTokenExpired):
        ags.parse_lineitems(answer(401))
    with pytest.raises(AgsRetryable):
        ags.parse_lineitems(answer(503))
    with pytest.raises(AgsRefused):
        ags.parse_lineitems(answer(404))
    with pytest.raises(AgsRefused):
        ags.parse_lineitems(answer(201, []))  # a container GET answers 200


def test_parse_lineitems_with_pagination():
    second = f"{M}/lineitems?type_id=2&limit=1&from=1"
    response = answer(
        200,
        [ITEM_JSON],
        headers=(("Link", f'<{M}/lineitems?type_id=2>; rel="first", <{second}>; rel="next"'),),
    )
    page = ags.parse_lineitems(response, LINEITEMS)
    assert page.items == (LineItem(LINEITEM, 10.0, "Chapter 1", "ch1", "rl-9", "grade"),)
    assert page.next_url == second
    follow = ags.build_lineitems_page(page.next_url, TOKEN)
    assert follow.method == "GET" and follow.url == second
    assert follow.header("Accept") == "application/vnd.ims.lis.v2.lineitemcontainer+json"
    # The last page has no next link; a link header may also come split, unquoted, relative.
    assert ags.parse_lineitems(answer(200, [])).next_url is None
    split = answer(200, [], headers=(("Link", '<a>; rel="prev"'), ("link", "</mod/lti/x?from=2>;rel=next")))
    assert ags.parse_lineitems(split, LINEITEMS).next_url == "https://m.example/mod/lti/x?from=2"
    several = answer(200, [], headers=(("Link", '<https://m.example/n>; rel="last next"'),))
    assert ags.parse_lineitems(several, LINEITEMS).next_url == "https://m.example/n"


@pytest.mark.parametrize(
    "link",
    [
        '<https://evil.example/steal>; rel="next"',
        '<javascript:alert(1)>; rel="next"',
        '<ftp://m.example/x>; rel="next"',
    ],
)
def test_a_next_link_elsewhere_is_refused_the_token_never_goes_there(link):
    with pytest.raises(AgsResponseMalformed):
        ags.parse_lineitems(answer(200, [], headers=(("Link", link),)), LINEITEMS)


# -- results ---------------------------------------------------------------------------------------


def test_build_results_request_exactly():
    request = ags.build_results_request(LINEITEM, TOKEN, user_id="sub-7")
    assert request == HttpRequest(
        "GET",
        f"{M}/lineitems/5/lineitem/results?type_id=2&user_id=sub-7",
        (
            ("Authorization", "Bearer tok-123"),
            ("Accept", "application/vnd.ims.lis.v2.resultcontainer+json"),
            ("User-Agent", USER_AGENT),
        ),
    )
    assert ags.build_results_request(LINEITEM, TOKEN, limit=0).url.endswith("results?type_id=2&limit=1")


def test_parse_results():
    page = ags.parse_results(
        answer(
            200,
            [
                {"id": "r1", "scoreOf": LINEITEM, "userId": "sub-7", "resultScore": 8.5, "resultMaximum": 10},
                {"userId": "sub-8", "comment": "Pending"},
                {"userId": 9, "resultScore": 0},
            ],
        )
    )
    assert page.results == (
        ags.Result("sub-7", 8.5, 10.0, "", "r1", LINEITEM),
        ags.Result("sub-8", None, 1.0, "Pending"),
        ags.Result("9", 0.0, 1.0),
    )
    assert page.next_url is None


@pytest.mark.parametrize(
    "document",
    [
        {"userId": "u"},
        [{"resultScore": 1}],
        [{"userId": ""}],
        [{"userId": "u", "resultScore": "1"}],
        [{"userId": "u", "resultMaximum": 0}],
        [{"userId": "u", "resultMaximum": -1}],
        [None],
    ],
)
def test_parse_results_refuses_malformed(document):
    with pytest.raises(AgsResponseMalformed):
        ags.parse_results(answer(200, document))


# -- the token cache -------------------------------------------------------------------------------


def test_token_cache_keeps_a_token_until_shortly_before_it_expires():
    cache = TokenCache(margin=60)
    token = AccessToken("t1", 1_000.0 + 3600)
    scopes = (ags.SCOPE_SCORE, ags.SCOPE_LINEITEM)
    assert cache.get(REG, scopes, 1_000.0) is None
    cache.put(REG, scopes, token, 1_000.0)
    assert cache.get(REG, reversed(scopes), 1_000.0) is token  # the scope set, in any order
    assert cache.get(REG, [*scopes, ags.SCOPE_SCORE], 4_539.0) is token
    assert cache.get(REG, (ags.SCOPE_SCORE,), 1_000.0) is None  # another scope set
    other = Registration("https://m.example", "client-2", "", "", "")
    assert cache.get(other, scopes, 1_000.0) is None  # another client of the same platform
    assert cache.get(REG, scopes, 4_540.0) is None  # within the margin: a new one is needed
    assert len(cache) == 0


def test_token_cache_invalidate_after_a_401():
    cache = TokenCache()
    old, new = AccessToken("old", 10_000.0), AccessToken("new", 10_000.0)
    cache.put(REG, ["s"], old, 0.0)
    cache.invalidate(REG, ["s"])
    assert cache.get(REG, ["s"], 0.0) is None
    # A worker that saw the old token fail does not throw away the new one another worker fetched.
    cache.put(REG, ["s"], new, 0.0)
    cache.invalidate(REG, ["s"], old)
    assert cache.get(REG, ["s"], 0.0) is new
    cache.invalidate(REG, ["s"], new)
    assert cache.get(REG, ["s"], 0.0) is None
    cache.invalidate(REG, ["nothing"])  # nothing cached: nothing to do


def test_token_cache_put_forgets_expired_tokens():
    cache = TokenCache(margin=0)
    cache.put(REG, ["a"], AccessToken("a", 100.0), 0.0)
    cache.put(REG, ["b"], AccessToken("b", 1_000.0), 200.0)
    assert len(cache) == 1


def test_access_token_repr_hides_the_token():
    assert "tok-123" not in repr(TOKEN)
