"""Grade delivery by hand: send the outbox's due scores now (`sync grades --now`), or see where the
scores stand (`sync status`). Exit 1 when scores failed: the platform refused them for good."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import CommandError, OutputWrapper

from lti_core.grades import DeliverySummary
from lti_core.outbox import OutboxEntry, OutboxState, excerpt, split_ags_target
from lti_xblock.grade_sync import celery_configured, deliver_grades, request_delivery
from lti_xblock.management.commands._admin import AdminCommand
from lti_xblock.store import DjangoStore

BAR = 30


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if epoch else "-"


class ProgressLine:
    """``done/total`` and a bar on stderr: redrawn in place on a terminal, a line per batch otherwise."""

    def __init__(self, stream: OutputWrapper) -> None:
        self.stream = stream
        self.in_place = stream.isatty()
        self.drawn = False

    def __call__(self, done: DeliverySummary, total: int) -> None:
        filled = BAR * done.claimed // total if total else BAR
        line = f"sending grades [{'#' * filled}{'.' * (BAR - filled)}] {done.claimed}/{total}"
        self.stream.write(f"\r{line}" if self.in_place else line, ending="" if self.in_place else "\n")
        self.stream.flush()
        self.drawn = True

    def end(self) -> None:
        if self.in_place and self.drawn:
            self.stream.write("")


class Command(AdminCommand):
    help = (
        "Grade delivery: `grades --now` sends every due score now (with --retry-failed, failed and "
        "retrying ones too); `status` counts the scores per state and lists those not delivered."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{grades,status}")
        grades = actions.add_parser("grades", help="send the due scores to their platforms")
        grades.add_argument("--now", action="store_true", help="send them from this process, now")
        grades.add_argument(
            "--retry-failed", action="store_true", help="send failed and retrying scores again too (implies --now)"
        )
        actions.add_parser("status", help="scores per state; the failed and retrying ones with the platform's answer")

    def run(self, **options: Any) -> None:
        if options["action"] == "status":
            self.status()
        elif options["now"] or options["retry_failed"]:
            self.deliver_now(retry_failed=options["retry_failed"])
        elif celery_configured():
            request_delivery()
            self.say("A grade delivery is queued (Celery); `lti-publish sync status` shows how it went.")
        else:
            self.say("Celery is not set up here: `lti-publish sync grades --now` sends the scores from this process.")

    def deliver_now(self, *, retry_failed: bool) -> None:
        store = DjangoStore()
        if retry_failed:
            now = time.time()
            again = [*store.list_outbox(OutboxState.FAILED), *store.list_outbox(OutboxState.RETRYING)]
            retried = sum(store.retry_now(entry.key, now) for entry in again)
            self.say(f"{retried} failed or retrying scores are due again")
        progress = ProgressLine(self.stderr)
        try:
            summary = deliver_grades(progress)
        finally:
            progress.end()
        self.say(
            f"Delivered {summary.delivered}, retrying {summary.retrying}, failed {summary.failed}"
            + (f", replaced by newer scores meanwhile {summary.superseded}" if summary.superseded else "")
        )
        if summary.failed:
            raise CommandError(
                f"{summary.failed} scores failed; `lti-publish sync status` shows the platforms' answers"
            )

    def status(self) -> None:
        store = DjangoStore()
        counts = store.outbox_counts()
        for state in OutboxState:
            self.say(f"{state.value:<10} {counts.get(state, 0)}")
        for state in (OutboxState.FAILED, OutboxState.RETRYING):
            entries = store.list_outbox(state)
            if entries:
                self.say(f"\n{state.value}:")
                for entry in entries:
                    self.say(self.describe(entry))
        if counts.get(OutboxState.FAILED, 0):
            raise CommandError(
                f"{counts[OutboxState.FAILED]} scores failed; once the cause is fixed: "
                "lti-publish sync grades --retry-failed"
            )

    @staticmethod
    def describe(entry: OutboxEntry) -> str:
        url = split_ags_target(entry.key.target)[0]  # the service URL of either kind of target
        retry = f"  next attempt {when(entry.next_attempt_at)}" if entry.state is OutboxState.RETRYING else ""
        return (
            f"  {entry.key.platform}  user={entry.key.platform_user_id}  {entry.kind.value}  {excerpt(url, 80)}\n"
            f"    attempts={entry.attempts}  status={entry.last_status}{retry}  answer: {entry.last_error or '-'}"
        )
