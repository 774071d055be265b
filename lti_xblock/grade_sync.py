"""Grade delivery for the Django host: the outbox's due scores sent to their platforms.

``deliver_grades`` runs one delivery round (the Celery task, the ``lti-publish sync grades`` command
and the demo's loop call it); ``request_delivery`` asks for one soon, after a score was enqueued.
Every LTI rule is lti_core.grades'; this module only wires its ``GradeWorker`` to the Django store,
the pooled HTTP driver and the ``LTI_PUBLISH`` settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from lti_core.grades import DeliverySummary, GradeWorker
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.outbox import OutboxState
from lti_core.store import OutboxStore

log = logging.getLogger(__name__)

#: Entries claimed per round trip to the database.
BATCH = 100
#: Seconds ``request_delivery`` lets pass before the task runs: scores enqueued together (a course's
#: grading run) go out in one delivery, not one task each.
DELIVERY_DELAY = 5
DEFAULT_INTERVAL = 1800
DEFAULT_CONCURRENCY = 8

#: ``progress(done so far, entries to deliver in all)``, after every batch.
Progress = Callable[[DeliverySummary, int], None]


def publish_setting(name: str, default: object) -> object:
    """``settings.LTI_PUBLISH[name]``, or ``default``."""
    from django.conf import settings

    return getattr(settings, "LTI_PUBLISH", {}).get(name, default)


def due_count(store: OutboxStore, now: float) -> int:
    """Entries a delivery round would claim now: pending, and retrying past their backoff."""
    pending = store.outbox_counts().get(OutboxState.PENDING, 0)
    return pending + sum(1 for entry in store.list_outbox(OutboxState.RETRYING) if entry.next_attempt_at <= now)


def deliver_grades(
    progress: Progress | None = None, *, batch: int = BATCH, clock: Callable[[], float] = time.time
) -> DeliverySummary:
    """Deliver every due outbox entry, ``batch`` at a time, until none is due; what happened.

    A retryable failure waits for its backoff (it is not due again in this round), so the round ends.
    """
    from lti_xblock.http import PooledTransport
    from lti_xblock.store import DjangoStore

    store = DjangoStore()
    done = DeliverySummary()
    total = due_count(store, clock())
    transport = PooledTransport()
    worker = GradeWorker(
        store,
        transport,
        ToolKeySet(store, clock=clock),
        concurrency=int(str(publish_setting("GRADE_SYNC_CONCURRENCY", DEFAULT_CONCURRENCY))),
        allow_private=bool(publish_setting("ALLOW_PRIVATE_SERVICE_URLS", False)),
        clock=clock,
    )
    try:
        while True:
            summary = worker.deliver_due(limit=batch)
            if not summary.claimed:
                break
            done += summary
            # Scores enqueued meanwhile join this round: the total grows with them.
            total = max(total, done.claimed + store.outbox_counts().get(OutboxState.PENDING, 0))
            if progress is not None:
                progress(done, total)
    finally:
        worker.close()
        transport.close()
    if done.claimed:
        log.info(
            "grade delivery: %d delivered, %d retrying, %d failed, %d superseded",
            done.delivered,
            done.retrying,
            done.failed,
            done.superseded,
        )
    return done


def celery_configured() -> bool:
    """Whether Celery is installed and the Django settings name a broker to send tasks to."""
    from django.conf import settings

    try:
        import celery  # noqa: F401 - only whether it is there
    except ImportError:
        return False
    return bool(getattr(settings, "CELERY_BROKER_URL", None) or getattr(settings, "BROKER_URL", None))


def request_delivery() -> None:
    """Ask for a delivery round soon (a Celery task, when Celery is set up); else nothing: the
    periodic schedule (or the demo's loop) delivers. Never raises: the score is safe in the outbox."""
    if not celery_configured():
        return
    from lti_xblock.tasks import deliver_grades_task

    try:
        deliver_grades_task.apply_async(countdown=DELIVERY_DELAY)
    except Exception:  # noqa: BLE001 - a broker down must not fail the learner's request; the schedule delivers
        log.warning("could not queue a grade delivery; the periodic delivery will send it", exc_info=True)
