"""The score of published content for a learner, and its way into the platforms' gradebooks.

Graded blocks inside published content publish a learner's score (earned out of possible points);
the host hands each to ``child_scored`` (lti_xblock.compat: edx-platform's score signal in the LMS,
the runtime's ``publish`` in the workbench). It is kept as the learner's latest score for that child
(``LtiChildScore``) in every published content it is in: its published blocks, and its course when an
admin published the course whole and the host makes course scores from blocks (the workbench). The
content's score is then

    max_score * sum(earned) / sum(possible)

over its graded descendants, a child without a score counting 0 out of its points. Open edX grades
courses itself: a published course's score there is its course grade (``course_graded``, from
edx-platform's course grade signal), kept as the course's one score, out of 1.

When the content syncs grades, that score goes into the outbox once for every link the learner opened
the content from (lti_core.grades decides where and how it is sent); a block's "require completion"
holds it back until every graded descendant has a score. A link that appears later gets the score the
learner already has (``send_current_score``, at sign-in).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from lti_core.errors import LtiError
from lti_core.grades import GradeServiceUnavailable, score_entry_for
from lti_core.i18n import N_
from lti_core.outbox import OutboxKey, OutboxState
from lti_core.types import LaunchContext, Role
from lti_xblock import compat
from lti_xblock.compat import PUBLISHED_BLOCK_TYPE
from lti_xblock.grade_sync import request_delivery
from lti_xblock.models import LtiChildScore, LtiPublishedCourse
from lti_xblock.store import DjangoStore

log = logging.getLogger(__name__)

#: What the instructors' panel says of a link's score (``SyncStatus.state``).
STATE_LABELS = {
    "not_sent": N_("Not sent"),
    "no_service": N_("No gradebook"),
    OutboxState.PENDING.value: N_("Pending"),
    OutboxState.IN_FLIGHT.value: N_("Sending"),
    OutboxState.DELIVERED.value: N_("Delivered"),
    OutboxState.RETRYING.value: N_("Retrying"),
    OutboxState.FAILED.value: N_("Failed"),
}


@dataclass(frozen=True)
class GradedChild:
    """A graded descendant of published content, and its points while it has no score."""

    usage_id: str
    points: float


@dataclass(frozen=True)
class Grading:
    """What a published block's score is made of: its graded descendants, and all its descendants'
    ids (a descendant that publishes scores counts even if it does not say it is graded)."""

    graded: tuple[GradedChild, ...]
    descendants: frozenset[str]


@dataclass(frozen=True)
class BlockScore:
    """A learner's points in a published block: ``answered`` of its ``graded`` children have a score."""

    earned: float
    possible: float
    graded: int
    answered: int

    @property
    def complete(self) -> bool:
        return self.answered == self.graded

    def out_of(self, maximum: float) -> float:
        """The score scaled to ``maximum`` (0 when there are no points to earn)."""
        if self.possible <= 0:
            return 0.0
        return min(maximum, maximum * self.earned / self.possible)


@dataclass(frozen=True)
class GradedContent:
    """Published content whose score goes to gradebooks, and how: a published block (its Studio
    settings) or a published course (its admin's). ``root``: the block whose graded descendants make
    the score; None for a course its host grades itself (its course grade, one score out of 1)."""

    content_id: str
    max_score: float
    grade_sync: bool
    require_completion: bool
    root: Any

    def grading(self) -> Grading:
        if self.root is None:
            return Grading((GradedChild(self.content_id, 1.0),), frozenset({self.content_id}))
        return grading_of(self.root)

    def score_of(self, user_id: Any) -> BlockScore | None:
        """The learner's score in it; None when it has nothing graded."""
        return score_from(self.grading(), recorded_scores(user_id, self.content_id))


def block_content(block: Any) -> GradedContent:
    """A published (lti_publish) block, as its course team set it in Studio."""
    return GradedContent(
        block.content_id(), float(block.max_score), bool(block.grade_sync), bool(block.require_completion), block
    )


def course_content(course_id: str) -> GradedContent | None:
    """A course an admin published whole; None if it is not published."""
    row = LtiPublishedCourse.objects.filter(course_id=course_id).first()
    if row is None:
        return None
    return GradedContent(course_id, row.max_score, row.grade_sync, False, compat.host().course_score_root(course_id))


@dataclass(frozen=True)
class SyncStatus:
    """One learner's link to published content, for the instructors' panel."""

    learner: str
    link: str
    score: float | None  # scaled to the block's maximum; None: no score yet
    state: str  # a key of STATE_LABELS
    last_answer: str  # the platform's last answer, when it refused or failed


# -- the block tree ----------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def points_of(block: Any) -> float:
    """What a graded block is out of before it has a score: its weight (edx-platform's weighted
    points), else its ``max_score()``, else 1 (a grade event's usual ``max_value``)."""
    weight = _number(getattr(block, "weight", None))
    if weight is not None:
        return weight
    max_score = getattr(block, "max_score", None)
    if callable(max_score):
        points = _number(max_score())
        if points is not None:
            return points
    return 1.0


def grading_of(block: Any) -> Grading:
    """The graded descendants of the published ``block`` (the host says which are: ``is_graded``);
    a graded block's own children are not looked into."""
    host = compat.host()
    graded: list[GradedChild] = []
    descendants: set[str] = set()
    pending = list(block.get_children())
    while pending:
        child = pending.pop()
        usage_id = str(child.scope_ids.usage_id)
        descendants.add(usage_id)
        if host.is_graded(child):
            graded.append(GradedChild(usage_id, points_of(child)))
        elif child.has_children:
            pending.extend(child.get_children())
    return Grading(tuple(graded), frozenset(descendants))


def published_ancestors(block: Any) -> list[Any]:
    """The published blocks ``block`` is inside of, nearest first."""
    found = []
    parent = block.get_parent()
    while parent is not None:
        if parent.scope_ids.block_type == PUBLISHED_BLOCK_TYPE:
            found.append(parent)
        parent = parent.get_parent()
    return found


# -- scores --------------------------------------------------------------------------------------------


def score_from(grading: Grading, recorded: Mapping[str, LtiChildScore]) -> BlockScore | None:
    """The block score of a learner whose child scores are ``recorded`` (by child usage id); None
    when the block has nothing graded."""
    points = {child.usage_id: child.points for child in grading.graded}
    for child_id in recorded:
        if child_id in grading.descendants:
            points.setdefault(child_id, 0.0)
    if not points:
        return None
    earned = possible = 0.0
    answered = 0
    for child_id, unanswered_points in points.items():
        row = recorded.get(child_id)
        if row is None:
            possible += unanswered_points
        else:
            earned, possible, answered = earned + row.earned, possible + row.possible, answered + 1
    return BlockScore(earned, possible, len(points), answered)


def recorded_scores(user_id: Any, content_id: str) -> dict[str, LtiChildScore]:
    return {row.child_id: row for row in LtiChildScore.objects.filter(user_id=user_id, content_id=content_id)}


def record_child_score(
    user_id: Any, content_id: str, child_id: str, earned: float, possible: float, scored_at: float
) -> bool:
    """Keep the score as the learner's latest for the child, unless a newer one is kept: whether it was."""
    key = {"user_id": user_id, "content_id": content_id, "child_id": child_id}
    values = {"earned": earned, "possible": possible, "scored_at": scored_at}
    if LtiChildScore.objects.filter(**key, scored_at__lte=scored_at).update(**values):
        return True
    try:
        with transaction.atomic():
            LtiChildScore.objects.create(**key, **values)
    except IntegrityError:  # a newer score is kept (or another came at the same moment)
        return False
    return True


def contents_scored_by(block: Any) -> list[GradedContent]:
    """The published content whose score ``block``'s scores make: its published ancestors, nearest
    first, then its published course (when the host makes course scores from blocks)."""
    contents = [block_content(published) for published in published_ancestors(block)]
    course_id = compat.host().published_course_of(block)
    course = course_content(course_id) if course_id is not None else None
    return contents if course is None else [*contents, course]


def child_scored(user: AbstractBaseUser, block: Any, earned: Any, possible: Any, scored_at: float) -> int:
    """``block`` published the learner's score: kept for every published content it is inside of,
    whose score then goes to the outbox. How many scores were enqueued."""
    earned_points, possible_points = _number(earned), _number(possible)
    if earned_points is None or possible_points is None or earned_points > possible_points:
        log.warning("grade event ignored: %r out of %r from %s", earned, possible, block.scope_ids.usage_id)
        return 0
    child_id = str(block.scope_ids.usage_id)
    enqueued = 0
    for content in contents_scored_by(block):
        if record_child_score(user.pk, content.content_id, child_id, earned_points, possible_points, scored_at):
            enqueued += sync_score(content, user)
    return enqueued


def child_score_removed(user: AbstractBaseUser, block: Any) -> int:
    """The learner's score of ``block`` was deleted (their state reset): not answered any more."""
    child_id = str(block.scope_ids.usage_id)
    enqueued = 0
    for content in contents_scored_by(block):
        deleted, _ = LtiChildScore.objects.filter(
            user_id=user.pk, content_id=content.content_id, child_id=child_id
        ).delete()
        if deleted:
            enqueued += sync_score(content, user)
    return enqueued


def course_graded(user: AbstractBaseUser, course_id: str, fraction: Any, scored_at: float) -> int:
    """The host's course grade of the learner changed (``fraction`` of the course, 0 to 1): kept as
    the published course's one score, which then goes to the outbox. How many scores were enqueued."""
    grade = _number(fraction)
    content = course_content(course_id)
    if content is None or content.root is not None:
        return 0  # not published, or its score is made from its blocks'
    if grade is None or grade > 1:
        log.warning("course grade ignored: %r in %s", fraction, course_id)
        return 0
    if not record_child_score(user.pk, course_id, course_id, grade, 1.0, scored_at):
        return 0
    return sync_score(content, user)


# -- into the outbox -----------------------------------------------------------------------------------


def outbox_key_of(context: LaunchContext) -> OutboxKey | None:
    """The outbox row a score for ``context``'s link goes to; None when the link has no gradebook.
    lti_core decides it from the link (the score given here does not change it)."""
    try:
        return score_entry_for(context, 0.0, 1.0, False, 0.0).key
    except GradeServiceUnavailable:
        return None


def sync_score(content: GradedContent, user: AbstractBaseUser, contexts: Iterable[LaunchContext] | None = None) -> int:
    """Enqueue the learner's score in the published ``content`` for each of their links to it
    (``contexts``; by default every launch context of the learner and content), when the content syncs
    grades and, if it requires completion, every graded child has a score. A link whose outbox
    already holds that score is left alone. How many scores were enqueued."""
    if not content.grade_sync:
        return 0
    score = content.score_of(user.pk)
    if score is None or score.answered == 0 or score.possible <= 0:
        return 0
    if content.require_completion and not score.complete:
        return 0
    store = DjangoStore()
    content_id = content.content_id
    if contexts is None:
        contexts = store.find_launch_contexts(str(user.pk), content_id=content_id)
    maximum = content.max_score
    given = score.out_of(maximum)
    now = time.time()
    enqueued = 0
    for context in contexts:
        try:
            entry = score_entry_for(context, given, maximum, score.complete, now)
        except GradeServiceUnavailable:
            log.debug("no gradebook for link %.80s of %.80s", context.resource_link_id, context.platform)
            continue
        except LtiError as error:
            log.warning("score of user %s in %s not enqueued: %s %s", user.pk, content_id, error.reason, error.detail)
            continue
        held = store.get_outbox_entry(entry.key)
        if held is not None and held.state is not OutboxState.FAILED and held.score == entry.score:
            continue  # already on its way, or there
        store.enqueue_score(entry.key, entry.kind, entry.score, entry.score_timestamp, now)
        enqueued += 1
    if enqueued:
        transaction.on_commit(request_delivery)
    return enqueued


def send_current_score(user: AbstractBaseUser, context: LaunchContext) -> int:
    """At a launch: the score the learner already has in the content the link opens (earned before
    this link existed), enqueued for that link."""
    if not LtiChildScore.objects.filter(user_id=user.pk, content_id=context.content_id).exists():
        return 0
    block = compat.host().published_block(context.content_id)
    content = block_content(block) if block is not None else course_content(context.content_id)
    return 0 if content is None else sync_score(content, user, [context])


# -- the instructors' panel ----------------------------------------------------------------------------


def sync_statuses(block: Any) -> list[SyncStatus]:
    """The learners launched into the published ``block``, one row per link: their score and where
    its delivery to the platform stands."""
    store = DjangoStore()
    content_id = block.content_id()
    contexts = [c for c in store.find_launch_contexts(content_id=content_id) if c.role is Role.LEARNER]
    if not contexts:
        return []
    grading = grading_of(block)
    user_ids = {c.local_user_id for c in contexts}
    users = get_user_model().objects.in_bulk([int(pk) for pk in user_ids if pk.isdigit()])
    recorded: dict[str, dict[str, LtiChildScore]] = {pk: {} for pk in user_ids}
    for row in LtiChildScore.objects.filter(content_id=content_id, user_id__in=list(users)):
        recorded[str(row.user_id)][row.child_id] = row
    maximum = float(block.max_score)
    statuses = []
    for context in contexts:
        user = users.get(int(context.local_user_id)) if context.local_user_id.isdigit() else None
        name = (user.get_full_name() or user.get_username()) if user is not None else context.platform_user_id
        score = score_from(grading, recorded.get(context.local_user_id, {}))
        key = outbox_key_of(context)
        entry = store.get_outbox_entry(key) if key is not None else None
        if key is None:
            state, last_answer = "no_service", ""
        elif entry is None:
            state, last_answer = "not_sent", ""
        else:
            state = entry.state.value
            status = f"{entry.last_status} " if entry.last_status else ""
            last_answer = f"{status}{entry.last_error}".strip()
        statuses.append(
            SyncStatus(
                learner=name,
                link=context.resource_link_title or context.platform,
                score=score.out_of(maximum) if score is not None and score.answered else None,
                state=state,
                last_answer=last_answer,
            )
        )
    return statuses
