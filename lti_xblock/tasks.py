"""Celery tasks of the Django host: grade delivery (Open edX runs Celery; the workbench and the demo do
not, and never import this module).

``deliver_grades_task`` runs one delivery round: queued by ``grade_sync.request_delivery`` a few
seconds after a score is given, and by Celery beat every ``LTI_PUBLISH["GRADE_SYNC_INTERVAL"]``
seconds (``lti_xblock.settings.common``). Two rounds at once (two workers) are safe: the outbox gives
each entry to one of them only (``claim_due``'s leases).
"""

from __future__ import annotations

from celery import shared_task

from lti_xblock.grade_sync import deliver_grades


@shared_task(name="lti_xblock.deliver_grades", ignore_result=True)
def deliver_grades_task() -> dict[str, int]:
    """One delivery round; what it did (for Celery's logs and events)."""
    summary = deliver_grades()
    return {
        "claimed": summary.claimed,
        "delivered": summary.delivered,
        "retrying": summary.retrying,
        "failed": summary.failed,
        "superseded": summary.superseded,
    }
