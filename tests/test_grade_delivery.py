"""Grade delivery end to end: lti_core.grades' worker, the outbox in a ``MemoryStore``, the Django
host's driver (``lti_xblock.http.UrllibTransport``) and the platform peer's AGS gradebook and LTI 1.1
outcome service on loopback, with the peer's faults: 500s, answers slower than the request timeout,
no answers at all for a while, and a worker that dies holding claims.

After recovery, every learner's final score is in the peer's gradebook exactly once (one kept score
per learner and line item) and no older score overwrote it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lti_core.grades import AsyncGradeWorker, GradeWorker, enqueue_grade
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.memory import MemoryStore
from lti_core.outbox import OutboxState
from lti_core.types import AgsEndpoint, BasicOutcome, Consumer, LaunchContext, LaunchServices
from lti_peer.ags import Gradebook, gradebook
from lti_peer.platform import PlatformPeer
from lti_peer.token import token_endpoint
from lti_peer.tool_jwks import serve_tool_jwks
from lti_xblock.http import UrllibTransport
from tests.conftest import registration_of

CONSUMER = Consumer("moodle-key", "moodle-secret-0123456789")
LEARNERS = [str(n) for n in range(10, 18)]


class SmallBackoff:
    """The backoff's draw: a fixed small fraction (30 s * 0.002 = 60 ms for the first retry)."""

    def random(self) -> float:
        return 0.002


@pytest.fixture(scope="module")
def tool_keys() -> Iterator[tuple[ToolKeySet, str]]:
    keys = ToolKeySet(MemoryStore())
    keys.ensure_key()

    with serve_tool_jwks(keys.jwks) as url:
        yield keys, url


@pytest.fixture
def peer(tool_keys: tuple[ToolKeySet, str]) -> Iterator[PlatformPeer]:
    with PlatformPeer() as platform:
        token_endpoint(platform).tool_jwks_url = tool_keys[1]
        platform.outcomes.add_consumer(CONSUMER.key, CONSUMER.secret)
        yield platform
        gradebook(platform).answer_again()


@pytest.fixture
def book(peer: PlatformPeer) -> Gradebook:
    return gradebook(peer)


@pytest.fixture
def store(peer: PlatformPeer) -> MemoryStore:
    store = MemoryStore()
    store.save_registration(registration_of(peer))
    store.save_consumer(CONSUMER)
    return store


class Course:
    """One AGS line item and one LTI 1.1 link, with the learners' launch contexts for each."""

    def __init__(self, peer: PlatformPeer, book: Gradebook) -> None:
        self.lineitem = book.add_lineitem("Chapter 1", 10, resource_link_id="rl-ags")
        self.ags = {
            user: LaunchContext(
                peer.issuer,
                user,
                f"u{user}",
                "rl-ags",
                client_id=peer.client_id,
                services=LaunchServices(ags=AgsEndpoint(lineitem_url=self.lineitem)),
            )
            for user in LEARNERS
        }
        self.sourcedids: dict[str, str] = {}
        self.lti11: dict[str, LaunchContext] = {}
        for user in LEARNERS:
            url, sourcedid = peer.outcomes.issue(user, "rl-11")
            self.sourcedids[user] = sourcedid
            self.lti11[user] = LaunchContext(
                CONSUMER.key,
                user,
                f"u{user}",
                "rl-11",
                lti_version="1.1",
                services=LaunchServices(basic_outcome=BasicOutcome(url, sourcedid)),
            )

    def give(self, store: MemoryStore, scores: dict[str, float], *, ags: bool = True, lti11: bool = True) -> None:
        """Each learner's score, in both links (a later call: later scores)."""
        for user, score in scores.items():
            now = time.time()
            if ags:
                enqueue_grade(store, self.ags[user], score, 10, True, now)
            if lti11:
                enqueue_grade(store, self.lti11[user], score, 10, True, now)


class Clock:
    """The workers' clock: the real time, plus a skew a test adds to pass the outbox's waits."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


def worker_for(store: MemoryStore, tool_keys: tuple[ToolKeySet, str], **options: Any) -> GradeWorker:
    settings: dict[str, Any] = {
        "allow_private": True,
        "rng": SmallBackoff(),
        "lease": 2.0,
        "timeout": 0.5,
        "concurrency": 8,
        "clock": Clock(),
        **options,
    }
    return GradeWorker(store, UrllibTransport(), tool_keys[0], **settings)


def drain(worker: GradeWorker, store: MemoryStore, seconds: float) -> None:
    """Deliver until every entry is delivered (or ``seconds`` pass). An LTI 1.1 send that got no
    answer (a timeout on a loaded machine) makes its key wait ``Backoff.unanswered``: the clock
    skips such waits, the test does not sleep through them."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker.deliver_due(limit=64)
        counts = store.outbox_counts()
        if counts[OutboxState.DELIVERED] == sum(counts.values()):
            return
        waiting = [e.next_attempt_at for e in store.list_outbox() if e.state is not OutboxState.DELIVERED]
        if isinstance(worker.clock, Clock) and min(waiting) > worker.clock() + 1:
            worker.clock.skew += min(waiting) - worker.clock()
        time.sleep(0.02)
    raise AssertionError(f"not all delivered: {store.outbox_counts()}")


def assert_final(peer: PlatformPeer, book: Gradebook, course: Course, finals: dict[str, float]) -> None:
    kept = {user: score for (item, user), score in book.scores.items()}
    assert len(book.scores) == len(finals)  # exactly one kept score per learner
    for user, final in finals.items():
        assert kept[user].score_given == final and kept[user].score_maximum == 10, user
        assert peer.outcomes.gradebook[course.sourcedids[user]] == pytest.approx(final / 10), user
    # Every score the gradebook ignored was an older or equal timestamp than the one it kept.
    for _item, user, stamp in book.ignored:
        assert stamp <= kept[user].timestamp


def test_scores_of_several_learners_reach_both_gradebooks(peer, book, store, tool_keys):
    course = Course(peer, book)
    course.give(store, dict.fromkeys(LEARNERS, 3.0))
    course.give(store, {user: float(n % 10) for n, user in enumerate(LEARNERS)})
    finals = {user: float(n % 10) for n, user in enumerate(LEARNERS)}
    with worker_for(store, tool_keys) as worker:
        drain(worker, store, 5)
    assert_final(peer, book, course, finals)
    assert token_endpoint(peer).log.count("ok") == 1  # one token for all the scores


def test_500s_then_recovery(peer, book, store, tool_keys):
    course = Course(peer, book)
    finals = dict.fromkeys(LEARNERS, 7.0)
    course.give(store, finals)
    book.fail_next(20)
    peer.outcomes.fail_next = 12
    with worker_for(store, tool_keys) as worker:
        first = worker.deliver_due(limit=64)
        assert first.retrying > 0
        assert any(e.last_status == 500 for e in store.list_outbox(OutboxState.RETRYING))
        drain(worker, store, 5)
    assert_final(peer, book, course, finals)


def test_answers_slower_than_the_timeout_and_newer_scores_meanwhile(peer, book, store, tool_keys):
    course = Course(peer, book)
    course.give(store, dict.fromkeys(LEARNERS, 2.0))
    book.delay_ms = 700  # past the worker's 0.5 s timeout: the peer keeps the score, the worker retries
    peer.outcomes.delay_ms = 700
    clock = Clock()
    with worker_for(store, tool_keys, clock=clock) as worker:
        summary = worker.deliver_due(limit=64)
        assert summary.retrying == summary.claimed > 0
        finals = dict.fromkeys(LEARNERS, 9.0)
        course.give(store, finals)  # newer scores while the old ones still land
        book.delay_ms = peer.outcomes.delay_ms = 0
        time.sleep(0.1)  # past the first backoff
        again = worker.deliver_due(limit=64)
        # AGS scores carry timestamps: the newer ones go at once, the gradebook ignores the older
        # ones when they land. LTI 1.1 replaceResult has none: the consumer keeps what it processes
        # last, so the newer LTI 1.1 scores wait until the older sends cannot land any more.
        assert again.delivered == len(LEARNERS)
        waiting = store.list_outbox(OutboxState.PENDING)
        assert {e.kind.value for e in waiting} == {"lti11_outcome"} and len(waiting) == len(LEARNERS)
        time.sleep(0.8)  # the slow first sends land (the old scores, for now)
        drain(worker, store, 5)  # skips the outbox's wait after the unanswered sends
    time.sleep(0.3)
    assert_final(peer, book, course, finals)


def test_no_answers_for_a_while(peer, book, store, tool_keys):
    course = Course(peer, book)
    finals = dict.fromkeys(LEARNERS, 5.0)
    course.give(store, finals)
    book.hang_limit = 1.0
    book.stop_answering()
    threading.Timer(0.8, book.answer_again).start()
    with worker_for(store, tool_keys) as worker:
        summary = worker.deliver_due(limit=64)
        assert summary.retrying >= len(LEARNERS)  # the AGS ones timed out
        drain(worker, store, 6)
    assert_final(peer, book, course, finals)


def test_a_worker_killed_mid_batch(peer, book, store, tool_keys):
    course = Course(peer, book)
    finals = dict.fromkeys(LEARNERS, 6.0)
    course.give(store, finals)
    dead = store.claim_due(time.time(), 10, "killed-worker", 0.3)  # claimed, then the process died
    assert len(dead) == 10
    with worker_for(store, tool_keys, worker_id="survivor") as worker:
        first = worker.deliver_due(limit=64)
        assert first.claimed == 2 * len(LEARNERS) - 10  # the dead worker's claims are still held
        time.sleep(0.35)  # the lease runs out
        drain(worker, store, 5)
    assert all(e.claimed_by == "" and e.attempts >= 1 for e in store.list_outbox())
    assert_final(peer, book, course, finals)


def test_the_async_worker(peer, book, store, tool_keys):
    """The hub's worker: the same deliveries over an AsyncTransport (here urllib in a thread)."""
    import asyncio

    from lti_core.http import HttpRequest, HttpResponse

    class ThreadedUrllib:
        def __init__(self) -> None:
            self.sync = UrllibTransport()

        async def send(self, request: HttpRequest) -> HttpResponse:
            return await asyncio.to_thread(self.sync.send, request)

    course = Course(peer, book)
    finals = dict.fromkeys(LEARNERS, 4.0)
    course.give(store, finals)
    book.fail_next(3)
    worker = AsyncGradeWorker(
        store, ThreadedUrllib(), tool_keys[0], allow_private=True, rng=SmallBackoff(), lease=2.0, timeout=0.5
    )

    async def run() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            await worker.deliver_due(limit=64)
            counts = store.outbox_counts()
            if counts[OutboxState.DELIVERED] == sum(counts.values()):
                return
            await asyncio.sleep(0.02)

    asyncio.run(run())
    assert_final(peer, book, course, finals)


def test_a_link_without_a_line_item_gets_exactly_one_found_or_made_in_the_container(peer, book, store, tool_keys):
    """Canvas and Moodle (a link without a grade) send the container and the lineitem scope only: the
    first scores of the link make its line item (one, however many learners score at once), later
    scores go to it, and a new maximum updates it."""
    from lti_core import ags

    container = book.lineitems_url()
    scopes = (ags.SCOPE_LINEITEM, ags.SCOPE_SCORE, ags.SCOPE_RESULT_READONLY)
    contexts = {
        user: LaunchContext(
            peer.issuer,
            user,
            f"u{user}",
            "rl-new",
            client_id=peer.client_id,
            services=LaunchServices(ags=AgsEndpoint(lineitems_url=container, scopes=scopes)),
            content_id="block-v1:Org+C+R+type@lti_publish+block@quiz",
            resource_link_title="Quiz  1",
        )
        for user in LEARNERS
    }
    book.add_lineitem("Another link's column", 10, resource_link_id="rl-other")
    for context in contexts.values():
        enqueue_grade(store, context, 6.0, 10.0, True, time.time())
    with worker_for(store, tool_keys) as worker:
        drain(worker, store, 5)
        made = [item for item in book.items.values() if item.resource_link_id == "rl-new"]
        assert len(made) == 1, made  # one line item for the link, though 8 learners scored at once
        item = made[0]
        assert (item.label, item.score_maximum, item.resource_id) == ("Quiz 1", 10.0, contexts["10"].content_id)
        kept = {user: score for (number, user), score in book.scores.items() if number == item.number}
        assert {user: s.score_given for user, s in kept.items()} == dict.fromkeys(LEARNERS, 6.0)
        creates = [entry for entry in book.log if entry[0] == "POST" and entry[1].split("?")[0].endswith("/lineitems")]
        assert len(creates) == 1
        # The content's maximum changes: the line item follows, and stays the only one.
        for context in contexts.values():
            enqueue_grade(store, context, 15.0, 20.0, True, time.time())
        drain(worker, store, 5)
    made = [entry for entry in book.items.values() if entry.resource_link_id == "rl-new"]
    assert len(made) == 1 and made[0].score_maximum == 20.0
    assert all(book.scores[(made[0].number, user)].score_given == 15.0 for user in LEARNERS)
    assert any(entry[0] == "PUT" for entry in book.log)


def test_a_worker_finds_the_line_item_another_worker_made():
    """A second worker (another process) has an empty cache: it finds the link's line item by
    resource link id in the container, never makes a second one (plain plan, no network)."""
    from lti_core import ags
    from lti_core.grades import TokenWanted, deliver_plan
    from lti_core.http import HttpResponse
    from lti_core.lti13.token import AccessToken
    from lti_core.outbox import OutboxState
    from lti_core.types import Registration

    issuer = "https://canvas.example"
    registration = Registration(issuer, "cid", issuer + "/auth", issuer + "/token", issuer + "/jwks")
    memory = MemoryStore()
    memory.save_registration(registration)
    container = issuer + "/api/lti/courses/1/line_items"
    context = LaunchContext(
        issuer,
        "u1",
        "local-1",
        "rl-9",
        client_id="cid",
        services=LaunchServices(ags=AgsEndpoint(lineitems_url=container, scopes=(ags.SCOPE_LINEITEM, ags.SCOPE_SCORE))),
    )
    entry = enqueue_grade(memory, context, 1.0, 2.0, True, time.time())
    [claimed] = memory.claim_due(time.time(), 1, "w", 60)
    assert claimed.state is OutboxState.IN_FLIGHT
    plan = deliver_plan(claimed, memory, allow_private=False, now=time.time(), lineitems={})
    wanted = next(plan)
    assert isinstance(wanted, TokenWanted) and set(wanted.scopes) == {ags.SCOPE_LINEITEM, ags.SCOPE_SCORE}
    query = plan.send(AccessToken("t", time.time() + 3600))
    assert query.method == "GET" and "resource_link_id=rl-9" in query.url
    existing = [{"id": container + "/7", "label": "Quiz", "scoreMaximum": 2, "resourceLinkId": "rl-9"}]
    listed = HttpResponse(200, (("Content-Type", ags.MEDIA_LINEITEM_CONTAINER),), json.dumps(existing).encode())
    score_post = plan.send(listed)
    assert score_post.method == "POST" and score_post.url.startswith(container + "/7/scores")
    try:
        plan.send(HttpResponse(200))
    except StopIteration as done:
        assert done.value.delivered
    assert entry.kind.value == "ags_lineitems"
