"""lti_core.grades on plain data: the target a score goes to, the outbound URL guard, and the worker's
decisions against a scripted ``Transport`` (no sockets): token reuse and refresh, retryable and
permanent failures in the store's states, a newer score enqueued during delivery."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qsl

import pytest

from lti_core import ags, outbox
from lti_core.grades import (
    SCORE_SCOPES,
    GradeServiceUnavailable,
    GradeWorker,
    ServiceUrlRefused,
    enqueue_grade,
    score_entry_for,
    validate_service_url,
)
from lti_core.http import HttpRequest, HttpResponse, TransportError
from lti_core.lti11.outcomes import ScoreOutOfRange
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.memory import MemoryStore
from lti_core.outbox import OutboxState, ServiceKind
from lti_core.types import AgsEndpoint, BasicOutcome, Consumer, LaunchContext, LaunchServices, Registration

ISSUER = "https://moodle.example"
LINEITEM = "https://moodle.example/mod/lti/services.php/2/lineitems/5/lineitem?type_id=2"
OUTCOME_URL = "https://moodle.example/mod/lti/service.php"
REGISTRATION = Registration(
    ISSUER,
    "client-1",
    "https://moodle.example/mod/lti/auth.php",
    "https://moodle.example/mod/lti/token.php",
    "https://moodle.example/mod/lti/certs.php",
)
CONSUMER = Consumer("moodle-key", "moodle-secret")
NOW = 1_750_000_000.0


class Never:
    def random(self) -> float:
        return 0.0


def context13(**services: object) -> LaunchContext:
    return LaunchContext(
        ISSUER,
        "2",
        "u2",
        "rl-1",
        client_id="client-1",
        services=LaunchServices(**services),  # type: ignore[arg-type]
    )


def context11(**services: object) -> LaunchContext:
    return LaunchContext(
        "moodle-key",
        "2",
        "u2",
        "rl-1",
        lti_version="1.1",
        services=LaunchServices(**services),  # type: ignore[arg-type]
    )


# -- targets ---------------------------------------------------------------------------------------


def test_ags_target_when_the_launch_offered_a_line_item():
    entry = score_entry_for(
        context13(ags=AgsEndpoint(lineitem_url=LINEITEM, scopes=(ags.SCOPE_SCORE,))), 7, 10, True, NOW
    )
    assert entry.kind is ServiceKind.AGS
    assert outbox.split_ags_target(entry.key.target) == (LINEITEM, "client-1")
    assert (entry.key.platform, entry.key.platform_user_id, entry.score_timestamp) == (ISSUER, "2", NOW)
    assert (entry.score.given, entry.score.maximum, entry.score.activity_progress) == (7, 10, "Completed")
    pending = score_entry_for(context13(ags=AgsEndpoint(lineitem_url=LINEITEM)), 1, 10, False, NOW)
    assert (pending.score.activity_progress, pending.score.grading_progress) == ("InProgress", "Pending")


def test_lti11_target_with_the_score_normalised():
    outcome = BasicOutcome(OUTCOME_URL, '{"data":"x"}')
    entry = score_entry_for(context11(basic_outcome=outcome), 3, 4, True, NOW)
    assert entry.kind is ServiceKind.LTI11_OUTCOME
    assert outbox.split_lti11_target(entry.key.target) == (OUTCOME_URL, '{"data":"x"}')
    assert (entry.score.given, entry.score.maximum) == (0.75, 1.0)
    # An LTI 1.3 launch without a line item but with an outcome (never sent by Moodle): the outcome.
    both = context13(ags=AgsEndpoint(lineitems_url="https://moodle.example/x"), basic_outcome=outcome)
    assert score_entry_for(both, 1, 2, True, NOW).kind is ServiceKind.LTI11_OUTCOME


def test_no_grade_service_and_scores_out_of_range_are_refused():
    for context in (
        context13(),
        context13(ags=AgsEndpoint(lineitems_url="https://moodle.example/lineitems")),  # no line item
        context13(ags=AgsEndpoint(lineitem_url=LINEITEM, scopes=(ags.SCOPE_RESULT_READONLY,))),  # no score scope
        context11(ags=AgsEndpoint(lineitem_url=LINEITEM)),  # LTI 1.1: no registration to get a token from
    ):
        with pytest.raises(GradeServiceUnavailable) as refused:
            score_entry_for(context, 1, 2, True, NOW)
        assert refused.value.reason == "grade_service_unavailable"
    for given, maximum in ((-1, 10), (11, 10), (1, 0), (float("nan"), 1)):
        with pytest.raises(ScoreOutOfRange):
            score_entry_for(context13(ags=AgsEndpoint(lineitem_url=LINEITEM)), given, maximum, True, NOW)


# -- the URL guard ---------------------------------------------------------------------------------


def test_the_url_guard():
    assert validate_service_url(LINEITEM, REGISTRATION, False) == LINEITEM
    assert validate_service_url("https://grades.moodle.example/x", REGISTRATION, False)  # a subdomain
    refusals = {
        "https://evil.example/mod/lti/services.php": "service_url_other_host",
        "https://moodle.example.evil.example/x": "service_url_other_host",
        "https://notmoodle.example/x": "service_url_other_host",
        "http://moodle.example/x": "service_url_not_https",
        "ftp://moodle.example/x": "service_url_refused",
        "https://user:pw@moodle.example/x": "service_url_refused",
        "https://10.0.0.5/x": "service_url_private_address",
        "https://127.0.0.1/x": "service_url_private_address",
        "https://169.254.169.254/latest/meta-data": "service_url_private_address",
        "https://[::1]/x": "service_url_private_address",
        "https://[::ffff:10.0.0.1]/x": "service_url_private_address",
    }
    for url, reason in refusals.items():
        with pytest.raises(ServiceUrlRefused) as refused:
            validate_service_url(url, REGISTRATION, False)
        assert refused.value.reason == reason, url
    # Loopback platforms (the demo, the tests): allowed with allow_private, still only their own host.
    local = ("http://127.0.0.1:8000",)
    assert validate_service_url("http://127.0.0.1:9000/x", local, True)
    with pytest.raises(ServiceUrlRefused):
        validate_service_url("http://127.0.0.2/x", local, True)
    with pytest.raises(ServiceUrlRefused):
        validate_service_url("http://127.0.0.1/x", local, False)


# -- the worker against a scripted platform --------------------------------------------------------


class Platform:
    """A scripted Transport: the token endpoint and the score endpoint answer from queues (200 when empty)."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.token_answers: list[HttpResponse | Exception] = []
        self.score_answers: list[HttpResponse | Exception] = []
        self.issued = 0
        self.on_score: Callable[[], None] | None = None

    def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        queue = self.token_answers if request.url == REGISTRATION.auth_token_url else self.score_answers
        if queue:
            answer = queue.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        if queue is self.token_answers:
            self.issued += 1
            document = {"access_token": f"token-{self.issued}", "token_type": "Bearer", "expires_in": 3600}
            return HttpResponse(200, (("Content-Type", "application/json"),), json.dumps(document).encode())
        if self.on_score is not None:
            self.on_score()
        return HttpResponse(200)

    def scores(self) -> list[HttpRequest]:
        return [r for r in self.requests if r.url != REGISTRATION.auth_token_url]

    def tokens(self) -> list[HttpRequest]:
        return [r for r in self.requests if r.url == REGISTRATION.auth_token_url]


@pytest.fixture(scope="module")
def tool_keys() -> ToolKeySet:
    keys = ToolKeySet(MemoryStore())
    keys.ensure_key()
    return keys


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.save_registration(REGISTRATION)
    store.save_consumer(CONSUMER)
    return store


def make_worker(store: MemoryStore, platform: Platform, keys: ToolKeySet, **options: object) -> GradeWorker:
    return GradeWorker(store, platform, keys, clock=lambda: NOW, rng=Never(), concurrency=1, **options)  # type: ignore[arg-type]


def enqueue_ags(store: MemoryStore, user: str, given: float, at: float = NOW) -> outbox.OutboxEntry:
    context = LaunchContext(
        ISSUER,
        user,
        f"u{user}",
        "rl-1",
        client_id="client-1",
        services=LaunchServices(ags=AgsEndpoint(lineitem_url=LINEITEM)),
    )
    return enqueue_grade(store, context, given, 10, True, at)


def test_scores_are_posted_with_one_token_reused(store, tool_keys):
    platform = Platform()
    worker = make_worker(store, platform, tool_keys)
    for user in ("1", "2", "3"):
        enqueue_ags(store, user, 5)
    summary = worker.deliver_due(limit=10)
    assert (summary.claimed, summary.delivered, summary.retrying, summary.failed) == (3, 3, 0, 0)
    assert len(platform.tokens()) == 1
    token_form = dict(parse_qsl(platform.tokens()[0].body.decode()))
    assert token_form["scope"] == " ".join(SCORE_SCOPES) and token_form["grant_type"] == "client_credentials"
    posted = platform.scores()
    assert [r.url for r in posted] == [ags.scores_url(LINEITEM)] * 3
    assert {r.header("Authorization") for r in posted} == {"Bearer token-1"}
    body = json.loads(posted[0].body)
    assert body["scoreGiven"] == 5 and body["timestamp"] == ags.format_timestamp(NOW)
    assert store.outbox_counts()[OutboxState.DELIVERED] == 3


def test_a_401_gets_a_new_token_and_one_more_try(store, tool_keys):
    platform = Platform()
    worker = make_worker(store, platform, tool_keys)
    enqueue_ags(store, "1", 5)
    platform.score_answers = [HttpResponse(401, body=b"expired")]
    assert worker.deliver_due().delivered == 1
    assert len(platform.tokens()) == 2
    assert [r.header("Authorization") for r in platform.scores()] == ["Bearer token-1", "Bearer token-2"]
    # Twice 401: retried later, not forever now.
    enqueue_ags(store, "2", 5)
    platform.score_answers = [HttpResponse(401), HttpResponse(401)]
    summary = worker.deliver_due()
    assert summary.retrying == 1
    entry = store.list_outbox(OutboxState.RETRYING)[0]
    assert entry.last_status == 401 and "ags_token_expired" in entry.last_error


def test_retryable_and_permanent_failures_reach_their_states(store, tool_keys):
    platform = Platform()
    worker = make_worker(store, platform, tool_keys)
    busy, refused, gone, unreachable = (enqueue_ags(store, user, 5) for user in "1234")
    platform.score_answers = [
        HttpResponse(503, body=b"maintenance"),
        HttpResponse(400, body=b'{"reason":"bad score","access_token":"eyJabc.def.ghi"}'),
        HttpResponse(302, (("Location", "https://evil.example/"),)),
        TransportError(detail="timed out"),
    ]
    summary = worker.deliver_due(limit=10)
    assert (summary.retrying, summary.failed, summary.delivered) == (2, 2, 0)
    states = {e.key.platform_user_id: e for e in store.list_outbox()}
    assert states["1"].state is OutboxState.RETRYING and states["1"].last_status == 503
    assert "maintenance" in states["1"].last_error
    assert states["2"].state is OutboxState.FAILED and states["2"].last_status == 400
    assert "bad score" in states["2"].last_error and "eyJ" not in states["2"].last_error  # no token kept
    assert states["3"].state is OutboxState.FAILED and states["3"].last_status == 302  # redirects not followed
    assert states["4"].state is OutboxState.RETRYING and states["4"].last_status == 0
    assert not any("evil" in r.url for r in platform.requests)
    # The retrying ones are due again (the test's backoff is 0): delivered now.
    assert worker.deliver_due(limit=10).delivered == 2
    assert {unreachable.key, busy.key} == {e.key for e in store.list_outbox(OutboxState.DELIVERED)}
    del refused, gone


def test_token_endpoint_failures(store, tool_keys):
    platform = Platform()
    worker = make_worker(store, platform, tool_keys)
    enqueue_ags(store, "1", 5)
    platform.token_answers = [HttpResponse(503)]
    assert worker.deliver_due().retrying == 1
    enqueue_ags(store, "2", 5)
    platform.token_answers = [HttpResponse(401, body=b'{"error":"invalid_client"}')]
    assert worker.deliver_due(now=NOW + 10_000).failed >= 1
    failed = store.list_outbox(OutboxState.FAILED)
    assert failed and "token_request_refused" in failed[0].last_error and "invalid_client" in failed[0].last_error


def test_unknown_registration_other_host_and_lti11(store, tool_keys):
    platform = Platform()
    worker = make_worker(store, platform, tool_keys)
    other = LaunchContext(
        ISSUER,
        "9",
        "u9",
        "rl",
        client_id="client-1",
        services=LaunchServices(ags=AgsEndpoint(lineitem_url="https://evil.example/li")),
    )
    enqueue_grade(store, other, 1, 2, True, NOW)
    unknown = LaunchContext(
        "https://unknown.example",
        "8",
        "u8",
        "rl",
        client_id="c",
        services=LaunchServices(ags=AgsEndpoint(lineitem_url=LINEITEM)),
    )
    enqueue_grade(store, unknown, 1, 2, True, NOW)
    outcome = LaunchContext(
        "moodle-key",
        "7",
        "u7",
        "rl",
        lti_version="1.1",
        services=LaunchServices(basic_outcome=BasicOutcome(OUTCOME_URL, "sid-7")),
    )
    enqueue_grade(store, outcome, 1, 4, True, NOW)
    pox = (
        b'<?xml version="1.0"?><imsx_POXEnvelopeResponse xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">'
        b"<imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_statusInfo><imsx_codeMajor>success</imsx_codeMajor>"
        b"</imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody/></imsx_POXEnvelopeResponse>"
    )
    platform.score_answers = [HttpResponse(200, body=pox)]
    summary = worker.deliver_due(limit=10)
    assert (summary.delivered, summary.failed) == (1, 2)
    errors = {e.key.platform_user_id: e.last_error for e in store.list_outbox(OutboxState.FAILED)}
    assert errors["9"].startswith("service_url_other_host") and errors["8"].startswith("registration_unknown")
    (sent,) = platform.scores()
    assert sent.url == OUTCOME_URL and sent.header(
        "Authorization",
    ).startswith("OAuth ")  # type: ignore[union-attr]
    assert b"<textString>0.25</textString>" in sent.body and b"sid-7" in sent.body


def test_a_newer_score_enqueued_during_delivery_stays_pending(store, tool_keys):
    platform = Platform()
    worker = make_worker(store, platform, tool_keys)
    enqueue_ags(store, "1", 5)
    platform.on_score = lambda: (enqueue_ags(store, "1", 9, NOW + 1), setattr(platform, "on_score", None))  # type: ignore[func-returns-value]
    summary = worker.deliver_due()
    assert (summary.delivered, summary.superseded) == (0, 1)
    (entry,) = store.list_outbox()
    assert entry.state is OutboxState.PENDING and entry.version == 2 and entry.score.given == 9
    assert worker.deliver_due(now=NOW + 2).delivered == 1
    assert json.loads(platform.scores()[-1].body)["scoreGiven"] == 9


def test_concurrent_deliveries_ask_one_token(store, tool_keys):
    platform = Platform()
    worker = GradeWorker(store, platform, tool_keys, clock=lambda: NOW, rng=Never(), concurrency=8)
    with worker:
        for user in range(40):
            enqueue_ags(store, str(user), 5)
        assert worker.deliver_due(limit=40).delivered == 40
    assert len(platform.tokens()) == 1
