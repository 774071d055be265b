"""Grade passback on the hub: graders submit scores by API, the hub delivers them through the outbox.

A grader (nbgrader's export, a course script, ``jupyter-lti-score``) POSTs scores to
``/hub/api/lti/scores`` with a JupyterHub API token that has the scope ``custom:lti-publish:scores``
(``SCORE_SCOPE``; the authenticator defines it, the hub's config grants it through a role)::

    {"user": "sam", "assignment": "Week 1", "score": 7, "max_score": 10, "final": true}

or a list of such objects (up to ``MAX_BATCH``). Each is a hub user and an assignment, which names
the launch contexts kept at the user's launches (``matching_contexts``): the resource link id if
some context has it, else the resource link's title, else the content the launch opened (the
launch's target_link_uri). Each context matched gets the score, in the outbox
(``lti_core.grades.enqueue_grade``); the answer is 202 with the outbox entries as they now stand. A
batch is all or nothing: the first refusal (with the item's ``index``) and nothing enqueued.

Refusals are JSON with a reason code: 400 ``score_request_invalid`` / ``score_out_of_range``, 403
``scope_missing`` / ``scope_excludes_user``, 404 ``user_unknown`` / ``assignment_unknown``, 409
``grade_service_unavailable`` (the platform offered no grade service for any matched link).

``GradeSync`` is the hub's delivery loop: an ``AsyncGradeWorker`` over ``TornadoTransport``, run
every ``grade_sync_interval`` seconds, soon after each accepted score (``wake``), and when the
earliest retry (the outbox's backoff) is due.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from jupyterhub import scopes as hub_scopes
from jupyterhub.apihandlers.base import APIHandler

from lti_core.errors import LtiError, method_not_allowed
from lti_core.grades import (
    AsyncGradeWorker,
    DeliverySummary,
    GradeServiceUnavailable,
    check_score,
    enqueue_grade,
    score_entry_for,
)
from lti_core.i18n import N_, preferred_language, translation
from lti_core.outbox import OutboxEntry, OutboxState
from lti_core.store import LaunchContextStore, OutboxStore
from lti_core.types import LaunchContext
from lti_publish_assets import TRANSLATIONS_DIR

log = logging.getLogger(__name__)

#: The JupyterHub scope a token needs to submit scores (a JupyterHub custom scope, so a role can
#: grant it alone: a grader's token then reaches nothing else of the hub).
SCORE_SCOPE = "custom:lti-publish:scores"
SCORE_SCOPE_DEFINITION = {"description": "Submit learners' scores, sent to their LTI platforms' gradebooks."}
#: Scores per request at most.
MAX_BATCH = 1000
#: Characters of a user name or an assignment at most.
MAX_NAME = 1024


def define_score_scope(app: Any) -> None:
    """Make ``SCORE_SCOPE`` a scope the hub knows, before it loads its roles, so that a role in
    ``c.JupyterHub.load_roles`` can grant it without ``c.JupyterHub.custom_scopes``. A definition
    of the hub's config (another description) is left as it is."""
    configured = getattr(app, "custom_scopes", None)
    if SCORE_SCOPE in hub_scopes.scope_definitions or (isinstance(configured, dict) and SCORE_SCOPE in configured):
        return
    hub_scopes.define_custom_scopes({SCORE_SCOPE: SCORE_SCOPE_DEFINITION})


# -- refusals --------------------------------------------------------------------------------------


class ScoreRequestInvalid(LtiError):
    status = 400
    reason = "score_request_invalid"
    message = N_(
        'Send a JSON object (or a list of them) with "user", "assignment", "score", and optionally '
        '"max_score" (default 1) and "final" (default true).'
    )


class HubRefused(LtiError):
    """What JupyterHub or tornado refused before the endpoint read the request."""

    reason = "request_refused"
    message = N_("The hub refused this request.")


#: ``HubRefused``'s reason code per status.
HUB_REFUSALS = {400: "request_malformed", 403: "forbidden", 413: "request_too_large"}


class ScopeMissing(LtiError):
    status = 403
    reason = "scope_missing"
    message = N_("This token cannot submit scores: it needs the scope %(scope)s.")


class ScopeExcludesUser(LtiError):
    status = 403
    reason = "scope_excludes_user"
    message = N_("This token cannot submit scores for this user.")


class UserUnknown(LtiError):
    status = 404
    reason = "user_unknown"
    message = N_("No launch from a course is known for this user.")


class AssignmentUnknown(LtiError):
    status = 404
    reason = "assignment_unknown"
    message = N_(
        "None of this user's launches matches the assignment: give the link's ID, its title, or the address it opened."
    )


# -- what a grader sends ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreSubmission:
    """One score a grader submits: a hub user's, for an assignment."""

    user: str
    assignment: str
    score: float
    max_score: float = 1.0
    final: bool = True


def _text(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    # Printable only: no NUL (which PostgreSQL refuses), no lone surrogate (which UTF-8 cannot encode).
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or not value.isprintable():
        raise ScoreRequestInvalid(detail=f"{name} must be a non-empty string of printable characters")
    return value.strip()


def _number(item: Mapping[str, Any], name: str, default: float | None = None) -> float:
    value = item.get(name, default)
    try:
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer of 400 digits
        number = math.nan
    if not math.isfinite(number):
        raise ScoreRequestInvalid(detail=f"{name} must be a number")
    return number


def parse_submission(item: object) -> ScoreSubmission:
    """One item of the request body, its types checked (its numbers' range is the core's to check)."""
    if not isinstance(item, dict):
        raise ScoreRequestInvalid(detail="each score must be a JSON object")
    final = item.get("final", True)
    if not isinstance(final, bool):
        raise ScoreRequestInvalid(detail="final must be true or false")
    return ScoreSubmission(
        user=_text(item, "user"),
        assignment=_text(item, "assignment"),
        score=_number(item, "score"),
        max_score=_number(item, "max_score", 1.0),
        final=final,
    )


def parse_submissions(body: bytes) -> list[ScoreSubmission]:
    """The request body: one submission, or a list of 1 to ``MAX_BATCH``."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ScoreRequestInvalid(detail="the body is not JSON") from None
    items = document if isinstance(document, list) else [document]
    if not items or len(items) > MAX_BATCH:
        raise ScoreRequestInvalid(detail=f"send 1 to {MAX_BATCH} scores")
    submissions = []
    for index, item in enumerate(items):
        try:
            submissions.append(parse_submission(item))
        except LtiError as error:
            raise _at(error, index) from None
    return submissions


def _at(error: LtiError, index: int) -> LtiError:
    """``error``, saying which item of the request it refuses."""
    error.arguments.setdefault("index", str(index))
    return error


# -- which launches an assignment names ------------------------------------------------------------

#: What an assignment is compared with, in this order: the first that some launch context has wins.
ASSIGNMENT_FIELDS: tuple[Callable[[LaunchContext], str], ...] = (
    lambda context: context.resource_link_id,
    lambda context: context.resource_link_title,
    lambda context: context.content_id,
)


def matching_contexts(contexts: Iterable[LaunchContext], assignment: str) -> list[LaunchContext]:
    """The launch contexts ``assignment`` names: those whose resource link id is ``assignment``;
    if none, those whose resource link title is; if none, those whose content (the launch's
    target_link_uri) is. Exact comparisons. Several contexts match when the learner reached the
    assignment through several links (two courses, two platforms): each gets the score."""
    contexts = list(contexts)
    for field in ASSIGNMENT_FIELDS:
        found = [context for context in contexts if field(context) == assignment]
        if found:
            return found
    return []


@dataclass(frozen=True)
class PlannedScore:
    """A submission and the launch contexts its score goes to (each offers a grade service)."""

    submission: ScoreSubmission
    contexts: tuple[LaunchContext, ...]


class ScoreStore(LaunchContextStore, OutboxStore, Protocol):
    """What the score API reads and writes."""


def plan_scores(store: LaunchContextStore, submissions: list[ScoreSubmission], now: float) -> list[PlannedScore]:
    """Where each submission's score goes, or the first refusal: nothing is written here."""
    plans = []
    for index, submission in enumerate(submissions):
        try:
            plans.append(_plan(store, submission, now))
        except LtiError as error:
            raise _at(error, index) from None
    return plans


def _plan(store: LaunchContextStore, submission: ScoreSubmission, now: float) -> PlannedScore:
    check_score(submission.score, submission.max_score)
    launched = store.find_launch_contexts(submission.user)
    if not launched:
        raise UserUnknown(detail=f"no launch context for {submission.user[:80]!r}")
    matched = matching_contexts(launched, submission.assignment)
    if not matched:
        raise AssignmentUnknown(detail=f"{submission.assignment[:80]!r} of {submission.user[:80]!r}")
    graded: list[LaunchContext] = []
    for context in matched:
        try:
            score_entry_for(context, submission.score, submission.max_score, submission.final, now)
        except GradeServiceUnavailable:
            continue  # another link of the same assignment may offer one
        graded.append(context)
    if not graded:
        raise GradeServiceUnavailable(detail=f"{submission.assignment[:80]!r} of {submission.user[:80]!r}")
    return PlannedScore(submission, tuple(graded))


def enqueue_scores(store: ScoreStore, submissions: list[ScoreSubmission], now: float) -> list[dict[str, Any]]:
    """Plan every submission (``plan_scores``), then enqueue each: what the API answers."""
    accepted = []
    for plan in plan_scores(store, submissions, now):
        submission = plan.submission
        entries = [
            (context, enqueue_grade(store, context, submission.score, submission.max_score, submission.final, now))
            for context in plan.contexts
        ]
        accepted.append(
            {
                "user": submission.user,
                "assignment": submission.assignment,
                "deliveries": [delivery_json(context, entry) for context, entry in entries],
            }
        )
    return accepted


def delivery_json(context: LaunchContext, entry: OutboxEntry) -> dict[str, Any]:
    """An outbox entry as the API shows it: no service URL, no sourcedid."""
    return {
        "id": entry.key.digest[:16],
        "platform": context.platform,
        "resource_link_id": context.resource_link_id,
        "service": entry.kind.value,
        "state": entry.state.value,
        "version": entry.version,
    }


# -- the endpoint ----------------------------------------------------------------------------------


class ScoresAPIHandler(APIHandler):  # type: ignore[misc]
    """POST /hub/api/lti/scores: see the module's docstring."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """What JupyterHub or tornado refuse before ``post`` (another method, the hub's XSRF check
        for a browser's cookie, a body tornado cannot read) is JSON with a reason code too."""
        if status_code == 405:
            self.refuse(method_not_allowed())
        elif 400 <= status_code < 500:
            error = kwargs.get("exc_info", (None, None, None))[1]
            refusal = HubRefused(HUB_REFUSALS.get(status_code), detail=str(getattr(error, "log_message", ""))[:80])
            refusal.status = status_code
            self.refuse(refusal)
        else:
            super().write_error(status_code, **kwargs)

    def refuse(self, error: LtiError) -> None:
        """The JSON refusal: status, reason code, message in the caller's language (and the item)."""
        self.log.info("LTI score refused: %s %s", error.reason, error.detail)
        language = preferred_language(self.request.headers.get("Accept-Language", ""))
        gettext = translation(str(TRANSLATIONS_DIR), language).gettext
        document: dict[str, Any] = {"status": error.status, "reason": error.reason, "message": error.text(gettext)}
        if "index" in error.arguments:
            document["index"] = int(error.arguments["index"])
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))

    def check_scope_filter(self, submissions: list[ScoreSubmission]) -> None:
        """The caller's scope, when it has a filter, covers every score's user."""
        if self.parsed_scopes[SCORE_SCOPE] is hub_scopes.Scope.ALL:
            return
        allowed = self.get_scope_filter(SCORE_SCOPE)  # e.g. custom:lti-publish:scores!group=course-a
        for index, name in enumerate(submission.user for submission in submissions):
            user = self.find_user(name)  # JupyterHub's ORM: on the loop
            if user is None or not allowed(user.orm_user, kind="user"):
                raise _at(ScopeExcludesUser(detail=f"{name[:80]!r}"), index)

    async def post(self) -> None:
        authenticator = self.authenticator
        try:
            # JupyterHub's scopes of the caller: a token's, else (a browser's cookie) its user's roles'.
            if SCORE_SCOPE not in self.parsed_scopes:  # before reading anything of the body
                detail = "" if self.current_user else "no credentials"
                raise ScopeMissing(arguments={"scope": SCORE_SCOPE}, detail=detail)
            submissions = parse_submissions(self.request.body)
            self.check_scope_filter(submissions)
            accepted = await authenticator.off_loop(enqueue_scores, authenticator.store, submissions, time.time())
        except LtiError as error:
            self.refuse(error)
            return
        who = getattr(self.current_user, "name", "?")
        self.log.info("LTI scores: %d accepted from %s", len(accepted), who)
        authenticator.grade_sync.wake()
        self.set_status(202)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"scores": accepted}))


# -- delivery --------------------------------------------------------------------------------------


class GradeSync:
    """The hub's delivery loop over ``worker``: a pass every ``interval`` seconds, soon after
    ``wake``, and when the earliest entry that waits (a retry's backoff, an expired lease) is due.

    A pass delivers due entries ``batch`` at a time until none is left. One asyncio task per hub
    (``start``, on the hub's loop); a pass that fails (the store down) is logged, and the next one
    comes at the next interval.
    """

    def __init__(
        self, worker: AsyncGradeWorker, interval: float, *, batch: int = 100, logger: logging.Logger = log
    ) -> None:
        self.worker = worker
        self.log = logger
        self.interval = max(1.0, interval)
        self.batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> bool:
        """Start the loop on the running event loop (False when there is none yet, or it runs)."""
        if self._task is not None and not self._task.done():
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._task = loop.create_task(self._run(), name="lti-grade-sync")
        self.log.info("LTI grade sync: every %.0f s, and soon after each score", self.interval)
        return True

    def wake(self) -> None:
        """Deliver soon (a score was accepted, an admin asked to retry)."""
        self.start()
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def deliver_due(self) -> DeliverySummary:
        """One pass: claim and deliver due entries until there are none."""
        total = DeliverySummary()
        while True:
            done = await self.worker.deliver_due(limit=self.batch)
            total += done
            if done.claimed < self.batch:
                return total

    async def _run(self) -> None:
        wait = 0.0  # a first pass at once: what was left when the hub stopped
        while True:
            if wait > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                except TimeoutError:
                    pass
            self._wake.clear()
            try:
                summary = await self.deliver_due()
                if summary.claimed:
                    self.log.info(
                        "LTI grade sync: %d sent, %d delivered, %d retrying, %d failed, %d superseded",
                        summary.claimed,
                        summary.delivered,
                        summary.retrying,
                        summary.failed,
                        summary.superseded,
                    )
                wait = await self._next_wait()
            except Exception:  # noqa: BLE001 - the loop outlives a failing pass (a database down)
                self.log.exception("LTI grade sync failed; next attempt in %.0f s", self.interval)
                wait = self.interval

    async def _next_wait(self) -> float:
        """Seconds until the next pass: the interval, or less when a waiting entry is due sooner."""
        store, now = self.worker.store, self.worker.clock()
        waiting = []
        for state in (OutboxState.RETRYING, OutboxState.IN_FLIGHT):
            waiting += await asyncio.to_thread(store.list_outbox, state)
        due = min((entry.next_attempt_at for entry in waiting), default=now + self.interval)
        return min(self.interval, max(1.0, due - now))


__all__ = [
    "MAX_BATCH",
    "SCORE_SCOPE",
    "AssignmentUnknown",
    "GradeSync",
    "ScopeExcludesUser",
    "ScopeMissing",
    "ScoreRequestInvalid",
    "ScoreSubmission",
    "ScoresAPIHandler",
    "UserUnknown",
    "define_score_scope",
    "enqueue_scores",
    "matching_contexts",
    "parse_submissions",
    "plan_scores",
]
