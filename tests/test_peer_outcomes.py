"""LTI 1.1 Basic Outcomes over real HTTP: lti_core's requests, sent by the Django host's driver
(``lti_xblock.http.UrllibTransport``), to the platform peer's Moodle-shaped mod/lti/service.php.

The peer verifies the OAuth signature and body hash with oauthlib's server side and reads the POX
with its own parser, so these tests catch a misreading of the spec that the tool would share with
itself. Like Moodle, the peer answers every refusal with a ``failure`` POX and HTTP 200.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pytest

from lti_core.http import HttpRequest
from lti_core.lti11.outcomes import (
    OutcomeError,
    OutcomeResult,
    build_delete_result,
    build_read_result,
    build_replace_result,
    parse_outcome_response,
)
from lti_core.types import BasicOutcome, Consumer
from lti_peer.outcomes import OUTCOME_SERVICE_PATH
from lti_peer.platform import PlatformPeer
from lti_xblock.http import UrllibTransport

CONSUMER = Consumer("moodle-key", "moodle-secret-0123456789")
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def platform():
    with PlatformPeer() as peer:
        peer.outcomes.add_consumer(CONSUMER.key, CONSUMER.secret)
        yield peer


@pytest.fixture
def outcome(platform: PlatformPeer) -> BasicOutcome:
    platform.outcomes.fail_next = platform.outcomes.delay_ms = 0
    url, sourcedid = platform.outcomes.issue("2", str(next(_ids)))
    assert url == platform.issuer + OUTCOME_SERVICE_PATH
    return BasicOutcome(url, sourcedid)


def send(request: HttpRequest) -> OutcomeResult:
    return parse_outcome_response(UrllibTransport().send(request))


def message_id() -> str:
    return f"msg-{next(_ids)}"


def test_replace_read_back_and_delete(platform: PlatformPeer, outcome: BasicOutcome):
    # Nothing yet: readResult succeeds without a score, as Moodle's does.
    assert send(build_read_result(outcome, CONSUMER, message_id(), time.time())).score is None

    result = send(build_replace_result(outcome, CONSUMER, 0.92, message_id(), time.time()))
    assert result == OutcomeResult(True, "success", "Grade replace response")
    assert platform.outcomes.gradebook[outcome.sourcedid] == 0.92

    assert send(build_read_result(outcome, CONSUMER, message_id(), time.time())) == OutcomeResult(
        True, "success", "Result read", 0.92
    )
    send(build_replace_result(outcome, CONSUMER, 1, message_id(), time.time()))
    assert send(build_read_result(outcome, CONSUMER, message_id(), time.time())).score == 1.0

    assert send(build_delete_result(outcome, CONSUMER, message_id(), time.time())).success
    assert outcome.sourcedid not in platform.outcomes.gradebook
    assert send(build_read_result(outcome, CONSUMER, message_id(), time.time())).score is None
    assert [entry.operation for entry in platform.outcomes.log[-7:]] == [
        "readResult",
        "replaceResult",
        "readResult",
        "replaceResult",
        "readResult",
        "deleteResult",
        "readResult",
    ]


def test_an_unknown_sourcedid_is_a_failure(platform: PlatformPeer, outcome: BasicOutcome):
    forged = replace(outcome, sourcedid=outcome.sourcedid.replace('"userid":"2"', '"userid":"3"'))
    with pytest.raises(OutcomeError) as info:
        send(build_replace_result(forged, CONSUMER, 1.0, message_id(), time.time()))
    assert (info.value.reason, info.value.http_status, info.value.retryable) == ("outcome_failure", 200, False)
    assert info.value.description == "SourcedId hash not valid"
    assert forged.sourcedid not in platform.outcomes.gradebook


@pytest.mark.parametrize(
    "consumer",
    [Consumer(CONSUMER.key, "wrong-secret"), Consumer("unknown-key", CONSUMER.secret)],
    ids=["wrong-secret", "unknown-key"],
)
def test_a_wrong_secret_is_refused(platform: PlatformPeer, outcome: BasicOutcome, consumer: Consumer):
    with pytest.raises(OutcomeError) as info:
        send(build_replace_result(outcome, consumer, 0.5, message_id(), time.time()))
    assert (info.value.reason, info.value.http_status) == ("outcome_failure", 200)
    assert info.value.description.startswith("Message signature not valid")
    assert outcome.sourcedid not in platform.outcomes.gradebook


def test_a_body_changed_after_signing_fails_the_body_hash(platform: PlatformPeer, outcome: BasicOutcome):
    signed = build_replace_result(outcome, CONSUMER, 0.25, message_id(), time.time())
    tampered = replace(signed, body=signed.body.replace(b">0.25<", b">1.0<"))
    with pytest.raises(OutcomeError) as info:
        send(tampered)
    assert info.value.description == "OAuth oauth_body_hash mismatch"
    assert outcome.sourcedid not in platform.outcomes.gradebook


def test_a_stale_timestamp_is_refused(outcome: BasicOutcome):
    with pytest.raises(OutcomeError) as info:
        send(build_replace_result(outcome, CONSUMER, 0.5, message_id(), time.time() - 3600))
    assert info.value.reason == "outcome_failure"


def test_a_500_is_retryable_and_the_retry_succeeds(platform: PlatformPeer, outcome: BasicOutcome):
    platform.outcomes.fail_next = 1
    request = build_replace_result(outcome, CONSUMER, 0.75, message_id(), time.time())
    with pytest.raises(OutcomeError) as info:
        send(request)
    assert (info.value.reason, info.value.http_status, info.value.retryable) == (
        "outcome_service_unavailable",
        500,
        True,
    )
    assert outcome.sourcedid not in platform.outcomes.gradebook

    assert send(build_replace_result(outcome, CONSUMER, 0.75, message_id(), time.time())).success
    assert platform.outcomes.gradebook[outcome.sourcedid] == 0.75


def test_a_slow_service_still_answers_within_the_timeout(platform: PlatformPeer, outcome: BasicOutcome):
    platform.outcomes.delay_ms = 200
    started = time.monotonic()
    assert send(build_read_result(outcome, CONSUMER, message_id(), time.time())).success
    assert time.monotonic() - started >= 0.2
