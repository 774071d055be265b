"""The Django host's grade delivery: `lti-publish sync` and the Celery task, against the platform peer's
AGS gradebook and LTI 1.1 outcome service on loopback (real HTTP), the outbox in the Django store.

Scores are enqueued as the block does (``enqueue_grade`` on the launch contexts the store kept), then
sent by the command or by a real Celery worker (in-memory broker); the peer must hold each learner's
score exactly once: one accepted request per score, no more.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from lti_core.grades import enqueue_grade
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.outbox import OutboxState
from lti_core.types import AgsEndpoint, BasicOutcome, Consumer, LaunchContext, LaunchServices
from lti_peer.ags import Gradebook, gradebook
from lti_peer.platform import PlatformPeer
from lti_peer.token import token_endpoint
from lti_peer.tool_jwks import serve_tool_jwks
from lti_xblock import grade_sync
from lti_xblock.store import DjangoStore
from tests.conftest import registration_of
from tests.test_cli import lti_publish

pytestmark = pytest.mark.django_db(transaction=True)

CONSUMER = Consumer("moodle-key", "moodle-secret-0123456789", "Moodle")
LEARNERS = [str(n) for n in range(20, 26)]


@pytest.fixture
def store() -> DjangoStore:
    return DjangoStore()


@pytest.fixture
def peer(store: DjangoStore) -> Iterator[PlatformPeer]:
    """The platform, registered (LTI 1.3) and a consumer (LTI 1.1) of the tool, trusting its keys."""
    keys = ToolKeySet(store)
    keys.ensure_key()
    with serve_tool_jwks(keys.jwks) as jwks_url, PlatformPeer() as platform:
        token_endpoint(platform).tool_jwks_url = jwks_url
        platform.outcomes.add_consumer(CONSUMER.key, CONSUMER.secret)
        store.save_registration(registration_of(platform))
        store.save_consumer(CONSUMER)
        yield platform


@pytest.fixture
def book(peer: PlatformPeer) -> Gradebook:
    return gradebook(peer)


def launch_contexts(store: DjangoStore, peer: PlatformPeer, book: Gradebook) -> dict[str, list[LaunchContext]]:
    """Each learner launched an AGS link and an LTI 1.1 link: their contexts, as the store kept them."""
    lineitem = book.add_lineitem("Chapter 1", 10, resource_link_id="rl-ags")
    local = {user: str(get_user_model().objects.create_user(username=f"u{user}").pk) for user in LEARNERS}
    for user in LEARNERS:
        store.save_launch_context(
            LaunchContext(
                peer.issuer,
                user,
                local[user],
                "rl-ags",
                client_id=peer.client_id,
                services=LaunchServices(ags=AgsEndpoint(lineitem_url=lineitem)),
            )
        )
        url, sourcedid = peer.outcomes.issue(user, "rl-11")
        store.save_launch_context(
            LaunchContext(
                CONSUMER.key,
                user,
                local[user],
                "rl-11",
                lti_version="1.1",
                services=LaunchServices(basic_outcome=BasicOutcome(url, sourcedid)),
            )
        )
    return {user: store.find_launch_contexts(local[user]) for user in LEARNERS}


def give(store: DjangoStore, contexts: dict[str, list[LaunchContext]], score: float) -> None:
    now = time.time()
    for found in contexts.values():
        for context in found:
            enqueue_grade(store, context, score, 10, True, now)


def assert_held_once(peer: PlatformPeer, book: Gradebook, score: float) -> None:
    """Each learner's score in both gradebooks, from exactly one accepted request each."""
    assert sorted(user for _, user in book.scores) == sorted(LEARNERS)
    assert {kept.score_given for kept in book.scores.values()} == {score}
    score_posts = [status for method, path, status in book.log if method == "POST" and "/scores" in path]
    assert score_posts == [200] * len(LEARNERS)
    assert sorted(peer.outcomes.gradebook.values()) == [pytest.approx(score / 10)] * len(LEARNERS)
    replaced = [r for r in peer.outcomes.log if r.operation == "replaceResult" and r.code_major == "success"]
    assert len(replaced) == len(peer.outcomes.log) == len(LEARNERS)


def sync(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("lti_sync", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_sync_grades_now_sends_every_due_score_once(store, peer, book):
    give(store, launch_contexts(store, peer, book), 7.0)
    out, err = sync("grades", "--now")
    total = 2 * len(LEARNERS)
    assert out == f"Delivered {total}, retrying 0, failed 0\n"
    assert err.splitlines()[-1] == f"sending grades [{'#' * 30}] {total}/{total}"
    assert_held_once(peer, book, 7.0)
    assert store.outbox_counts()[OutboxState.DELIVERED] == total
    assert sync("grades", "--now")[0] == "Delivered 0, retrying 0, failed 0\n"  # nothing due: nothing sent
    status, _ = sync("status")
    assert f"delivered  {total}" in status.splitlines() and "failed     0" in status.splitlines()


def test_refused_scores_fail_the_command_until_retried(store, peer, book):
    give(store, launch_contexts(store, peer, book), 4.0)
    book.fail_next(len(LEARNERS), status=400)  # the platform refuses the AGS scores for good
    with pytest.raises(CommandError, match=f"{len(LEARNERS)} scores failed"):
        sync("grades", "--now")
    with pytest.raises(CommandError, match="--retry-failed") as caught:
        call_command("lti_sync", "status", stdout=(listing := io.StringIO()))
    shown = listing.getvalue()
    assert f"failed     {len(LEARNERS)}" in shown.splitlines()
    assert shown.count("status=400") == len(LEARNERS) and "the gradebook failed (as asked)" in shown
    assert caught.value.args
    out, _ = sync("grades", "--retry-failed")  # the platform answers again: sent now
    assert out.splitlines() == [
        f"{len(LEARNERS)} failed or retrying scores are due again",
        "Delivered 6, retrying 0, failed 0",
    ]
    assert sync("status")[0].splitlines()[4] == "failed     0"
    assert store.outbox_counts()[OutboxState.DELIVERED] == 2 * len(LEARNERS)


def test_sync_grades_without_celery_says_how_to_send_now(store):
    assert "lti-publish sync grades --now" in sync("grades")[0]


def test_the_lti_publish_command_line(tmp_path: Path):
    def run(*args: str) -> tuple[int, str, str]:
        done = lti_publish(*args, settings="tests.settings", cwd=tmp_path, LTI_PUBLISH_VAR=str(tmp_path / "var"))
        return done.returncode, done.stdout, done.stderr

    assert "sync" in run("--help")[1]
    assert run("manage", "migrate", "--run-syncdb", "-v0")[0] == 0
    assert run("sync", "grades", "--now") == (0, "Delivered 0, retrying 0, failed 0\n", "")
    code, out, _ = run("sync", "status")
    assert code == 0 and out.startswith("pending    0\n")
    code, _, err = run("sync", "grades", "--bogus")
    assert code == 2 and err == "lti-publish sync: unrecognized arguments: --bogus (try lti-publish sync --help)\n"


# -- Celery ----------------------------------------------------------------------------------------


@pytest.fixture
def celery_worker(settings: object) -> Iterator[None]:
    """A real Celery worker in a thread, on the in-memory broker, with lti_xblock's tasks."""
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    import lti_xblock.tasks  # noqa: F401 - registers deliver_grades_task on the app below

    settings.CELERY_BROKER_URL = "memory://"  # type: ignore[attr-defined]
    app = Celery("lti-publish-tests", broker="memory://", backend="cache+memory://", set_as_current=True)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def test_a_celery_worker_delivers_what_request_delivery_asks_for(store, peer, book, celery_worker, monkeypatch):
    monkeypatch.setattr(grade_sync, "DELIVERY_DELAY", 0)
    give(store, launch_contexts(store, peer, book), 9.0)
    grade_sync.request_delivery()
    wait_until_delivered(store, 2 * len(LEARNERS))
    assert_held_once(peer, book, 9.0)
    assert store.outbox_counts()[OutboxState.DELIVERED] == 2 * len(LEARNERS)


def test_the_periodic_schedule_is_in_both_celery_setting_names():
    from types import SimpleNamespace

    from lti_xblock.settings.common import plugin_settings

    site = SimpleNamespace(
        CELERYBEAT_SCHEDULE={"other": {"task": "x", "schedule": 60}}, LTI_PUBLISH={"GRADE_SYNC_INTERVAL": 600}
    )
    plugin_settings(site)
    entry = {"task": "lti_xblock.deliver_grades", "schedule": 600.0}
    assert site.CELERYBEAT_SCHEDULE == {"other": {"task": "x", "schedule": 60}, "lti-publish-deliver-grades": entry}
    assert site.CELERY_BEAT_SCHEDULE == {"lti-publish-deliver-grades": entry}
    assert (site.LTI_PUBLISH["GRADE_SYNC_CONCURRENCY"], site.LTI_PUBLISH["ALLOW_PRIVATE_SERVICE_URLS"]) == (8, False)


def wait_until_delivered(store: DjangoStore, count: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while store.outbox_counts()[OutboxState.DELIVERED] < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_demo_loop_delivers_without_celery(store, peer, book):
    from demo import grade_loop

    stop = grade_loop.start(interval=0.1)
    try:
        give(store, launch_contexts(store, peer, book), 5.0)
        wait_until_delivered(store, 2 * len(LEARNERS))
    finally:
        stop()
    assert_held_once(peer, book, 5.0)
