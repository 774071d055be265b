"""The demo's grade delivery: a background thread that sends the outbox's due scores every few seconds.

Open edX runs the delivery as a Celery task (lti_xblock.tasks), queued after each score and on a
schedule; the demo has no Celery, so this loop stands in for both. Demo-only: not shipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

#: Seconds between two deliveries: a learner sees the score in the demo platform's gradebook soon.
INTERVAL = 2.0

log = logging.getLogger("lti_xblock.demo.grades")


def deliver_forever(stop: threading.Event, interval: float) -> None:
    from django.db import connections

    from lti_xblock.grade_sync import deliver_grades

    while not stop.wait(interval):
        try:
            deliver_grades()
        except Exception:  # noqa: BLE001 - a failed round (the database busy) must not end the loop
            log.exception("grade delivery failed; trying again in %g s", interval)
        finally:
            connections.close_all()  # this thread's database connections: not held between rounds


def start(interval: float = INTERVAL) -> Callable[[], None]:
    """Start the loop (Django set up); call what it returns to stop it (it waits for a round under way)."""
    stop = threading.Event()
    thread = threading.Thread(target=deliver_forever, args=(stop, interval), name="demo-grades", daemon=True)
    thread.start()

    def stop_loop() -> None:
        stop.set()
        thread.join(30)

    return stop_loop
