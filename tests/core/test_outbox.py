"""The grade outbox's state table (lti_core.outbox): plain data, no store."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from lti_core import outbox
from lti_core.errors import LtiError
from lti_core.outbox import (
    TRANSITIONS,
    Backoff,
    Claim,
    Delivered,
    Enqueue,
    OutboxEntry,
    OutboxError,
    OutboxKey,
    OutboxState,
    PermanentFailure,
    RetryableFailure,
    RetryNow,
    Score,
    ServiceKind,
)

S = OutboxState
NOW = 1_760_000_000.0
KEY = OutboxKey("https://moodle.example", "2", outbox.ags_target("https://moodle.example/lineitems/5/lineitem"))
SCORE = Score(7.0, 10.0, comment="well done")


def entry(state: OutboxState = S.PENDING, **changes: Any) -> OutboxEntry:
    base = OutboxEntry.new(KEY, ServiceKind.AGS, SCORE, NOW - 100, NOW - 50)
    return replace(base, state=state, **changes)


def events(version: int = 1) -> dict[type[outbox.Event], outbox.Event]:
    return {
        Enqueue: Enqueue(ServiceKind.AGS, Score(9.0, 10.0), NOW),
        Claim: Claim("worker-1", 60.0),
        Delivered: Delivered(version),
        RetryableFailure: RetryableFailure(version, 503, "busy"),
        PermanentFailure: PermanentFailure(version, 400, "no such line item"),
        RetryNow: RetryNow(),
    }


# Entries in each state as a worker would find them: due, their lease or backoff over.
DUE = {
    S.PENDING: entry(S.PENDING),
    S.IN_FLIGHT: entry(S.IN_FLIGHT, attempts=1, claimed_by="w0", claim_expires_at=NOW - 1, next_attempt_at=NOW - 1),
    S.DELIVERED: entry(S.DELIVERED, attempts=1, delivered_at=NOW - 10),
    S.RETRYING: entry(S.RETRYING, attempts=1, next_attempt_at=NOW - 1, last_status=503),
    S.FAILED: entry(S.FAILED, attempts=1, last_status=400, last_error="no"),
}


@pytest.mark.parametrize("state", list(OutboxState))
@pytest.mark.parametrize("event_type", [Enqueue, Claim, Delivered, RetryableFailure, PermanentFailure, RetryNow])
def test_every_transition_follows_the_table(state: OutboxState, event_type: type[outbox.Event]) -> None:
    before = DUE[state]
    event = events()[event_type]
    expected = TRANSITIONS.get((state, event_type))
    if expected is None:
        with pytest.raises(OutboxError) as refused:
            outbox.transition(before, event, NOW, random.Random(1))
        assert refused.value.reason == "outbox_illegal_transition"
        assert isinstance(refused.value, LtiError)
        return
    after = outbox.transition(before, event, NOW, random.Random(1))
    assert after.state is expected
    assert after.updated_at == NOW
    assert after.key == before.key


def test_the_table_is_the_documented_one() -> None:
    assert TRANSITIONS == {
        (S.PENDING, Enqueue): S.PENDING,
        (S.PENDING, Claim): S.IN_FLIGHT,
        (S.IN_FLIGHT, Enqueue): S.PENDING,
        (S.IN_FLIGHT, Claim): S.IN_FLIGHT,
        (S.IN_FLIGHT, Delivered): S.DELIVERED,
        (S.IN_FLIGHT, RetryableFailure): S.RETRYING,
        (S.IN_FLIGHT, PermanentFailure): S.FAILED,
        (S.RETRYING, Enqueue): S.PENDING,
        (S.RETRYING, Claim): S.IN_FLIGHT,
        (S.RETRYING, RetryNow): S.PENDING,
        (S.FAILED, Enqueue): S.PENDING,
        (S.FAILED, RetryNow): S.PENDING,
        (S.DELIVERED, Enqueue): S.PENDING,
    }


def test_a_delivery_from_claim_to_delivered() -> None:
    claimed = outbox.transition(entry(), Claim("w1", 60.0), NOW, outbox.NO_DRAW)
    assert (claimed.state, claimed.attempts, claimed.claimed_by) == (S.IN_FLIGHT, 1, "w1")
    assert claimed.claim_expires_at == claimed.next_attempt_at == NOW + 60
    delivered = outbox.transition(claimed, Delivered(claimed.version, 200), NOW + 1, outbox.NO_DRAW)
    assert delivered.state is S.DELIVERED and delivered.delivered_at == NOW + 1
    assert (delivered.claimed_by, delivered.claim_expires_at, delivered.last_status) == ("", 0.0, 200)


def test_a_permanent_failure_keeps_the_platforms_answer_until_an_admin_retries() -> None:
    claimed = outbox.transition(entry(), Claim("w1", 60.0), NOW, outbox.NO_DRAW)
    answer = '{"error": "line item gone"} Authorization: Bearer abc.def-ghi ' + "x" * 2000
    failed = outbox.transition(claimed, PermanentFailure(claimed.version, 404, answer), NOW, outbox.NO_DRAW)
    assert (failed.state, failed.last_status) == (S.FAILED, 404)
    assert failed.last_error.startswith('{"error": "line item gone"}')
    assert "abc.def-ghi" not in failed.last_error and len(failed.last_error) <= outbox.EXCERPT_LENGTH
    with pytest.raises(OutboxError):
        outbox.transition(failed, Claim("w2", 60.0), NOW + 10_000, outbox.NO_DRAW)  # never due again by itself
    again = outbox.transition(failed, RetryNow(), NOW + 5, outbox.NO_DRAW)
    assert (again.state, again.next_attempt_at, again.last_status) == (S.PENDING, NOW + 5, 404)
    assert outbox.claimable(again, NOW + 5)


def test_excerpts_never_keep_tokens() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIyIn0.c2lnbmF0dXJl"
    text = f'{{"access_token": "{jwt}", "token_type": "Bearer"}} client_assertion={jwt} Basic dXNlcjpwYXNz'
    kept = outbox.excerpt(text)
    assert jwt not in kept and "dXNlcjpwYXNz" not in kept
    assert outbox.excerpt("short") == "short"
    assert len(outbox.excerpt("y" * 600, 100)) == 100


def test_a_retryable_failure_backs_off_until_due() -> None:
    claimed = outbox.transition(entry(), Claim("w1", 60.0), NOW, outbox.NO_DRAW)
    retrying = outbox.transition(claimed, RetryableFailure(claimed.version, 503, "busy"), NOW, random.Random(7))
    assert retrying.state is S.RETRYING and NOW <= retrying.next_attempt_at < NOW + 30
    assert not outbox.claimable(retrying, retrying.next_attempt_at - 0.001)
    with pytest.raises(OutboxError) as refused:
        outbox.transition(retrying, Claim("w2", 60.0), retrying.next_attempt_at - 0.001, outbox.NO_DRAW)
    assert refused.value.reason == "outbox_not_due"
    assert outbox.claimable(retrying, retrying.next_attempt_at)
    reclaimed = outbox.transition(retrying, Claim("w2", 60.0), retrying.next_attempt_at, outbox.NO_DRAW)
    assert (reclaimed.state, reclaimed.attempts, reclaimed.claimed_by) == (S.IN_FLIGHT, 2, "w2")
    # An admin need not wait for the backoff.
    assert outbox.transition(retrying, RetryNow(), NOW + 1, outbox.NO_DRAW).state is S.PENDING


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    backoff = Backoff(base=30.0, cap=3600.0)
    assert [backoff.ceiling(n) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff.ceiling(10_000) == 3600  # no overflow
    rng = random.Random(42)
    for attempts in range(1, 12):
        delays = [backoff.delay(attempts, rng) for _ in range(200)]
        assert all(0 <= d < backoff.ceiling(attempts) for d in delays)
        assert max(delays) > 0.8 * backoff.ceiling(attempts) and min(delays) < 0.2 * backoff.ceiling(attempts)
    # Seeded: the same draws every time.
    assert backoff.delay(3, random.Random(5)) == backoff.delay(3, random.Random(5))


def test_failures_past_the_cap_wait_at_most_the_cap() -> None:
    in_flight = replace(DUE[S.IN_FLIGHT], attempts=50, claim_expires_at=NOW + 60)
    retrying = outbox.transition(in_flight, RetryableFailure(in_flight.version), NOW, random.Random(3))
    assert NOW <= retrying.next_attempt_at < NOW + outbox.BACKOFF.cap


def test_an_expired_lease_is_claimable_again_and_a_live_one_is_not() -> None:
    claimed = outbox.transition(entry(), Claim("w1", 60.0), NOW, outbox.NO_DRAW)
    assert not outbox.claimable(claimed, NOW + 59)
    with pytest.raises(OutboxError) as refused:
        outbox.transition(claimed, Claim("w2", 60.0), NOW + 59, outbox.NO_DRAW)
    assert refused.value.reason == "outbox_lease_held"
    assert outbox.claimable(claimed, NOW + 60)
    taken = outbox.transition(claimed, Claim("w2", 60.0), NOW + 60, outbox.NO_DRAW)
    assert (taken.claimed_by, taken.attempts, taken.claim_expires_at) == ("w2", 2, NOW + 120)
    # The first worker, killed or merely slow, may still report the same version: the score went.
    done = outbox.transition(taken, Delivered(claimed.version), NOW + 61, outbox.NO_DRAW)
    assert done.state is S.DELIVERED


def test_latest_score_wins_and_an_older_one_is_ignored() -> None:
    first = outbox.enqueue(None, OutboxEntry.new(KEY, ServiceKind.AGS, SCORE, NOW - 100, NOW), NOW)
    assert (first.state, first.version, first.next_attempt_at) == (S.PENDING, 1, NOW)
    older = OutboxEntry.new(KEY, ServiceKind.AGS, Score(1.0, 10.0), NOW - 200, NOW + 1)
    assert outbox.enqueue(first, older, NOW + 1) is first
    with pytest.raises(OutboxError) as refused:
        outbox.transition(first, Enqueue(ServiceKind.AGS, Score(1.0, 10.0), NOW - 200), NOW + 1, outbox.NO_DRAW)
    assert refused.value.reason == "outbox_stale_score"
    same = OutboxEntry.new(KEY, ServiceKind.AGS, SCORE, NOW - 100, NOW + 2)
    assert outbox.enqueue(first, same, NOW + 2) is first  # nothing new to send
    newer = OutboxEntry.new(KEY, ServiceKind.AGS, Score(9.0, 10.0), NOW - 10, NOW + 3)
    merged = outbox.enqueue(first, newer, NOW + 3)
    assert (merged.score, merged.score_timestamp, merged.version, merged.state) == (
        Score(9.0, 10.0),
        NOW - 10,
        2,
        S.PENDING,
    )
    # The same time, another score (a regrade within the clock's resolution): replaces it.
    regraded = outbox.enqueue(merged, replace(newer, score=Score(8.0, 10.0)), NOW + 4)
    assert (regraded.score.given, regraded.version) == (8.0, 3)


@pytest.mark.parametrize("state", [S.DELIVERED, S.FAILED, S.RETRYING])
def test_a_newer_score_makes_a_settled_entry_pending_again(state: OutboxState) -> None:
    newer = OutboxEntry.new(KEY, ServiceKind.AGS, Score(10.0, 10.0), NOW, NOW)
    merged = outbox.enqueue(DUE[state], newer, NOW)
    assert (merged.state, merged.version, merged.attempts, merged.next_attempt_at) == (S.PENDING, 2, 0, NOW)


def test_a_newer_score_arriving_in_flight_is_not_marked_delivered_by_the_older_delivery() -> None:
    claimed = outbox.transition(entry(), Claim("w1", 60.0), NOW, outbox.NO_DRAW)
    newer = OutboxEntry.new(KEY, ServiceKind.AGS, Score(10.0, 10.0), NOW, NOW + 1)
    merged = outbox.enqueue(claimed, newer, NOW + 1)
    assert (merged.state, merged.version, merged.claimed_by) == (S.PENDING, claimed.version + 1, "")
    assert outbox.claimable(merged, NOW + 1)  # the newer score goes out at once, not after the lease
    for outcome in (Delivered(claimed.version), RetryableFailure(claimed.version), PermanentFailure(claimed.version)):
        with pytest.raises(OutboxError):
            outbox.transition(merged, outcome, NOW + 2, random.Random(0))
    # Claimed again, the old version's late answer is stale: only the new one settles it.
    again = outbox.transition(merged, Claim("w2", 60.0), NOW + 2, outbox.NO_DRAW)
    with pytest.raises(OutboxError) as refused:
        outbox.transition(again, Delivered(claimed.version), NOW + 3, outbox.NO_DRAW)
    assert refused.value.reason == "outbox_stale_version"
    assert outbox.transition(again, Delivered(again.version), NOW + 3, outbox.NO_DRAW).state is S.DELIVERED


def test_lti11_targets_round_trip_and_keys_digest_exactly() -> None:
    target = outbox.lti11_target("https://moodle.example/mod/lti/service.php", '{"data":{"instanceid":"5"}}\nx')
    assert outbox.split_lti11_target(target) == (
        "https://moodle.example/mod/lti/service.php",
        '{"data":{"instanceid":"5"}}\nx',
    )
    digests = {
        OutboxKey("p", "2", target).digest,
        OutboxKey("p", "2", target + " ").digest,
        OutboxKey("P", "2", target).digest,
        OutboxKey("p", "2\x00", target).digest,
        OutboxKey("p\x002", "", target).digest,
    }
    assert len(digests) == 5 and all(len(d) == 64 for d in digests)


# LTI 1.1 replaceResult has no timestamp: the platform keeps what it processes last, so a newer
# score is never sent while an older send of the same key may still land.
LTI11_KEY = OutboxKey("moodle-key", "2", outbox.lti11_target("https://moodle.example/mod/lti/service.php", "{}"))


def lti11_entry(state: OutboxState = S.PENDING, **changes: Any) -> OutboxEntry:
    base = OutboxEntry.new(LTI11_KEY, ServiceKind.LTI11_OUTCOME, Score(0.5, 1.0), NOW - 100, NOW - 50)
    return replace(base, state=state, **changes)


def test_lti11_a_newer_score_waits_for_the_older_send_in_flight() -> None:
    claimed = outbox.transition(lti11_entry(), Claim("w1", 60.0), NOW, outbox.NO_DRAW)
    newer = OutboxEntry.new(LTI11_KEY, ServiceKind.LTI11_OUTCOME, Score(0.9, 1.0), NOW, NOW + 1)
    merged = outbox.enqueue(claimed, newer, NOW + 1)
    assert (merged.state, merged.version, merged.score.given) == (S.PENDING, 2, 0.9)
    assert not outbox.claimable(merged, NOW + 59)  # the older send's lease still runs
    assert outbox.claimable(merged, NOW + 60)
    # The older send's late answer is still stale: it settles nothing.
    with pytest.raises(OutboxError):
        outbox.transition(merged, Delivered(claimed.version), NOW + 2, outbox.NO_DRAW)


def test_lti11_after_a_send_without_answer_the_key_waits_before_any_send() -> None:
    claimed = outbox.transition(lti11_entry(), Claim("w1", 60.0), NOW, outbox.NO_DRAW)
    backoff = Backoff(base=1.0, cap=1.0, unanswered=90.0)
    timed_out = outbox.transition(
        claimed, RetryableFailure(claimed.version, 0, "timed out"), NOW + 5, random.Random(0), backoff
    )
    assert timed_out.next_attempt_at == NOW + 5 + 90.0
    answered = outbox.transition(
        claimed, RetryableFailure(claimed.version, 503, "busy"), NOW + 5, random.Random(0), backoff
    )
    assert answered.next_attempt_at < NOW + 6  # a 503 is an answer: the send will not land later
    newer = OutboxEntry.new(LTI11_KEY, ServiceKind.LTI11_OUTCOME, Score(0.9, 1.0), NOW + 10, NOW + 10)
    merged = outbox.enqueue(timed_out, newer, NOW + 10)
    assert (merged.state, merged.version) == (S.PENDING, 2)
    assert not outbox.claimable(merged, NOW + 94) and outbox.claimable(merged, NOW + 95)
    assert outbox.claimable(outbox.enqueue(answered, newer, NOW + 10), NOW + 10)


def test_ags_sends_a_newer_score_at_once_whatever_the_older_send_became() -> None:
    claimed = outbox.transition(entry(), Claim("w1", 60.0), NOW, outbox.NO_DRAW)
    timed_out = outbox.transition(claimed, RetryableFailure(claimed.version, 0, "timed out"), NOW + 5, random.Random(0))
    newer = OutboxEntry.new(KEY, ServiceKind.AGS, Score(10.0, 10.0), NOW + 10, NOW + 10)
    assert outbox.claimable(outbox.enqueue(timed_out, newer, NOW + 10), NOW + 10)  # AGS scores carry timestamps
