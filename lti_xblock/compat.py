"""Every call lti_xblock makes into its host platform, behind one interface.

``OpenEdxHost`` talks to edx-platform (users, enrolment, course roles, courseware URLs, course grades)
and is only importable inside the LMS; ``WorkbenchHost`` does the same on the XBlock SDK workbench for
the demo and the tests. Views never import edx-platform directly.

Published content is a published (lti_publish) block, named by its usage id, or a whole course an admin
published (``LtiPublishedCourse``), named by its course id: Open edX's course key, the workbench's
scenario id (the workbench has no courses: each scenario stands for one).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, Protocol, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, User  # User: both hosts' AUTH_USER_MODEL
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse

from lti_core.i18n import N_
from lti_core.types import Launch, Role
from lti_xblock.i18n import gettext

log = logging.getLogger(__name__)

ROLE_LABELS = {Role.LEARNER: N_("learner"), Role.STAFF: N_("staff")}
PUBLISHED_BLOCK_TYPE = "lti_publish"

# What the runtimes' "user" services say about the current user (XBlockUser.opt_attrs). edx-platform's
# names are those of common/djangoapps/xblock_django/constants.py, read as xblock-lti-consumer reads them.
OPENEDX_IS_AUTHENTICATED = "edx-platform.is_authenticated"
OPENEDX_USER_IS_STAFF = "edx-platform.user_is_staff"
WORKBENCH_USER_ID = "xblock-workbench.user_id"


def openedx_may_author(user: Any, studio_permissions: Any, course_key: Any) -> bool:
    """Whether Open edX's current user is on the course team that may change the block's settings.

    Studio runs the editor's handlers (``component_handler``) with a "user" service that knows
    nothing of course roles, next to ``studio_user_permissions``: there, write access to the course
    (``has_studio_write_access``) decides. The LMS has no such service; its "user" service says
    ``user_is_staff``, i.e. ``has_access(user, "staff", block)``: course staff and instructors
    (and global staff), never a learner.
    """
    if user is None or not user.opt_attrs.get(OPENEDX_IS_AUTHENTICATED):
        return False
    if studio_permissions is not None:
        return course_key is not None and bool(studio_permissions.can_write(course_key))
    return bool(user.opt_attrs.get(OPENEDX_USER_IS_STAFF))


class ContentKind(StrEnum):
    """What published content is: one published block, or a whole course."""

    BLOCK = "block"
    COURSE = "course"


@dataclass(frozen=True)
class PublishedContent:
    """Content an instructor may add to a platform's course ("Published content")."""

    content_id: str
    title: str
    max_score: float
    kind: ContentKind = ContentKind.BLOCK


def published_content_of(block: Any) -> PublishedContent:
    return PublishedContent(str(block.scope_ids.usage_id), str(block.display_name), float(block.max_score))


def published_course_ids(course_ids: Iterable[Any] | None = None) -> dict[str, float]:
    """The courses an admin published (of ``course_ids``, when given), with their maximum scores."""
    from lti_xblock.models import LtiPublishedCourse

    rows = LtiPublishedCourse.objects.order_by("course_id")
    if course_ids is not None:
        rows = rows.filter(course_id__in=[str(course_id) for course_id in course_ids])
    return dict(rows.values_list("course_id", "max_score"))


#: What refuses publishing a course this host does not have.
UNKNOWN_COURSE = N_("No course has this id here.")
#: What refuses a course's maximum score that is not a number above 0.
BAD_MAX_SCORE = N_("The maximum score must be a number greater than 0.")


def course_to_publish(course_id: str, max_score: float) -> str:
    """``course_id`` (stripped) when the host has that course and ``max_score`` is a number above 0;
    refused (``unknown_course``, ``bad_max_score``) otherwise."""
    from lti_core.errors import InvalidRequest, NotFound

    if not (math.isfinite(max_score) and max_score > 0):
        raise InvalidRequest("bad_max_score", BAD_MAX_SCORE)
    course_id = course_id.strip()
    if not course_id or host().course_title(course_id) is None:
        raise NotFound("unknown_course", UNKNOWN_COURSE)
    return course_id


def is_published_course(content_id: str) -> bool:
    from lti_xblock.models import LtiPublishedCourse

    return LtiPublishedCourse.objects.filter(course_id=content_id).exists()


class Host(Protocol):
    def published_contents(self, user: AbstractBaseUser) -> list[PublishedContent]:
        """What ``user`` may add to a platform's course by deep linking: the published blocks of the
        courses they teach here, and those courses when an admin published them whole (the workbench:
        every published block of its scenarios, and every published scenario)."""
        ...

    def content_title(self, content_id: str) -> str | None:
        """The published content's title, or None when ``content_id`` is not published content."""
        ...

    def course_title(self, course_id: str) -> str | None:
        """The title of the course ``course_id`` names here, published or not; None if there is none."""
        ...

    def course_score_root(self, course_id: str) -> Any:
        """The block whose graded descendants make the course's score (the workbench: its scenario's
        root); None when the host grades its courses itself (Open edX's course grade, which
        ``openedx_course_grade_changed`` records as the course's one score)."""
        ...

    def published_course_of(self, block: Any) -> str | None:
        """The published course whose score ``block``'s scores make, if any (never in Open edX: there
        the course grade comes whole from edx-platform)."""
        ...

    def create_user(self, username: str, launch: Launch) -> User: ...

    def enroll(self, user: AbstractBaseUser, content_id: str, role: Role) -> None:
        """Give ``user`` access to the content's course with ``role``'s rights (never more)."""
        ...

    def landing_url(self, content_id: str) -> str: ...

    def published_block(self, content_id: str, with_children: bool = True) -> Any:
        """The published (lti_publish) block ``content_id`` names (with its children loaded, unless
        ``with_children`` is False: a launch reads its settings only); None if none."""
        ...

    def sign_in_url(self, next_url: str) -> str:
        """The host's own sign-in page, coming back to ``next_url`` (a path on this site) after it."""
        ...

    def is_graded(self, block: Any) -> bool:
        """Whether ``block`` counts in its published content's score (it publishes scores)."""
        ...

    def user_may_author(self, content_id: str, users: Any, studio_permissions: Any, course_key: Any) -> bool:
        """Whether the runtime's current user may change the content's settings (its course team)."""
        ...


def _new_user(username: str, launch: Launch) -> User:
    user_model = get_user_model()
    user = user_model(
        username=username,
        email=launch.email,
        first_name=launch.given_name[:150],
        last_name=launch.family_name[:150],
    )
    # LTI users sign in through their platform only.
    user.set_unusable_password()
    user.save()
    return user


class WorkbenchHost:
    """The XBlock SDK workbench: scenarios hold the content, LtiContentEnrollment the rights."""

    def _block(self, content_id: str, user_id: str | None = None) -> Any:
        from workbench.runtime import WorkbenchRuntime
        from xblock.exceptions import NoSuchUsage

        try:
            return WorkbenchRuntime(user_id).get_block(content_id)
        except (NoSuchUsage, KeyError, ValueError):
            return None

    def published_block(self, content_id: str, with_children: bool = True) -> Any:
        block = self._block(content_id)
        return block if block is not None and block.scope_ids.block_type == PUBLISHED_BLOCK_TYPE else None

    def published_contents(self, user: AbstractBaseUser) -> list[PublishedContent]:
        """Every published block of the workbench's scenarios, then every published scenario (it has
        no course teams)."""
        scenarios = self._scenarios()
        found: list[PublishedContent] = []
        for scenario in scenarios.values():
            root = self._block(str(scenario.usage_id))
            pending = [root] if root is not None else []
            while pending:
                block = pending.pop(0)
                if block.scope_ids.block_type == PUBLISHED_BLOCK_TYPE:
                    found.append(published_content_of(block))
                elif getattr(block, "has_children", False):  # published content is never nested
                    pending.extend(block.runtime.get_block(child) for child in block.children)
        for course_id, max_score in published_course_ids(scenarios).items():
            title = str(scenarios[course_id].description)
            found.append(PublishedContent(course_id, title, float(max_score), ContentKind.COURSE))
        return found

    @staticmethod
    def _scenarios() -> dict[str, Any]:
        """The workbench's scenarios by id: each stands for a course."""
        from workbench.scenarios import get_scenarios

        return dict(get_scenarios())

    def course_title(self, course_id: str) -> str | None:
        scenario = self._scenarios().get(course_id)
        return None if scenario is None else str(scenario.description)

    def course_score_root(self, course_id: str) -> Any:
        scenario = self._scenarios().get(course_id)
        return None if scenario is None else self._block(str(scenario.usage_id))

    def _course_of(self, block: Any) -> str | None:
        """The scenario ``block`` is in."""
        while block.parent:
            block = block.runtime.get_block(block.parent)
        root_id = str(block.scope_ids.usage_id)
        return next((name for name, s in self._scenarios().items() if str(s.usage_id) == root_id), None)

    def published_course_of(self, block: Any) -> str | None:
        course_id = self._course_of(block)
        return course_id if course_id is not None and is_published_course(course_id) else None

    def sign_in_url(self, next_url: str) -> str:
        """Django's sign-in (``LOGIN_URL``: the demo mounts ``LoginView`` there)."""
        return f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': next_url})}"

    def content_title(self, content_id: str) -> str | None:
        block = self.published_block(content_id)
        if block is not None:
            return str(block.display_name)
        return self.course_title(content_id) if is_published_course(content_id) else None

    def is_graded(self, block: Any) -> bool:
        """``has_score`` (XBlock's convention), or one of the SDK's sample checkers: they publish a
        grade event at every check but were written before blocks declared it."""
        from sample_xblocks.basic.problem import CheckerBlock

        return bool(getattr(block, "has_score", False)) or isinstance(block, CheckerBlock)

    def create_user(self, username: str, launch: Launch) -> User:
        return _new_user(username, launch)

    def enroll(self, user: AbstractBaseUser, content_id: str, role: Role) -> None:
        from lti_xblock.models import LtiContentEnrollment

        # Rights follow the latest launch: an instructor who launches as a learner sees the learner view.
        LtiContentEnrollment.objects.update_or_create(user=user, content_id=content_id, defaults={"role": role.value})

    def enrolled_role(self, user: AbstractBaseUser, content_id: str) -> Role | None:
        """The rights of the user's latest launch into the content, else into the course it is in
        (a published course's learners answer its published blocks too)."""
        from lti_xblock.models import LtiContentEnrollment

        row = LtiContentEnrollment.objects.filter(user_id=user.pk, content_id=content_id).first()
        if row is not None:
            return Role(row.role)
        block = self._block(content_id)
        course_id = self._course_of(block) if block is not None else None
        if course_id is None:
            return None
        row = LtiContentEnrollment.objects.filter(user_id=user.pk, content_id=course_id).first()
        return Role(row.role) if row else None

    def landing_url(self, content_id: str) -> str:
        return reverse("lti_xblock:content", args=[content_id])

    def user_may_author(self, content_id: str, users: Any, studio_permissions: Any, course_key: Any) -> bool:
        """A user whose latest launch into this content was as staff (an instructor on the platform).

        The workbench's "user" service names the user its runtime was made for; demo.urls
        makes that the signed-in user's id on every handler request (the workbench's own handler view
        would take it from the ``?student=`` query string, which anyone can write).
        """
        from django.core.exceptions import ValidationError

        user = users.get_current_user() if users is not None else None
        user_id = user.opt_attrs.get(WORKBENCH_USER_ID) if user is not None else None
        if user_id is None:
            return False
        try:
            account = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        except (ValueError, TypeError, ValidationError):  # not a user id: "student_1", an anonymous visitor
            return False
        return account is not None and self.enrolled_role(account, content_id) is Role.STAFF

    def render_content(self, request: HttpRequest, content_id: str, role: Role) -> HttpResponse:
        """The content's student view (a course's: its scenario's root, as the workbench shows a scenario)."""
        user = cast(User, request.user)  # views.content lets only signed-in users through
        scenario = self._scenarios().get(content_id)
        block = self._block(content_id if scenario is None else str(scenario.usage_id), str(user.pk))
        fragment = block.render("student_view", {})
        return render(
            request,
            "lti_xblock/content.html",
            {
                "title": block.display_name if scenario is None else scenario.description,
                "role": role.value,
                "body": fragment.body_html(),
                "head_html": fragment.head_html(),
                "foot_html": fragment.foot_html(),
                "student_id": str(user.pk),
                "signed_in_as": gettext(N_("Signed in as %(name)s (%(role)s)"))
                % {
                    "name": user.get_full_name() or user.get_username(),
                    "role": gettext(ROLE_LABELS[role]),
                },
            },
        )


class OpenEdxHost:
    """edx-platform: modulestore content, CourseEnrollment, CourseStaffRole, jump_to URLs."""

    def block_at(self, usage_id: str, depth: int | None = 0) -> Any:
        """The modulestore's block ``usage_id`` names (``depth`` levels of children loaded with it)."""
        from opaque_keys import InvalidKeyError
        from opaque_keys.edx.keys import UsageKey
        from xmodule.modulestore.django import modulestore
        from xmodule.modulestore.exceptions import ItemNotFoundError

        try:
            return modulestore().get_item(UsageKey.from_string(usage_id), depth=depth)
        except (InvalidKeyError, ItemNotFoundError):
            return None

    def published_block(self, content_id: str, with_children: bool = True) -> Any:
        block = self.block_at(content_id, depth=None if with_children else 0)
        return block if block is not None and block.scope_ids.block_type == PUBLISHED_BLOCK_TYPE else None

    def published_contents(self, user: AbstractBaseUser) -> list[PublishedContent]:
        """The published lti_publish blocks of the courses ``user`` is on the course team of
        (CourseStaffRole or CourseInstructorRole), in the LMS's (published) modulestore branch; then
        those courses an admin published whole."""
        from common.djangoapps.student.models import CourseAccessRole
        from common.djangoapps.student.roles import CourseInstructorRole, CourseStaffRole
        from xmodule.modulestore.django import modulestore

        team_roles = (CourseStaffRole.ROLE, CourseInstructorRole.ROLE)
        rows = CourseAccessRole.objects.filter(user_id=user.pk, role__in=team_roles)
        course_keys = sorted({row.course_id for row in rows if row.course_id}, key=str)  # org-wide roles: none
        store = modulestore()
        found = [
            published_content_of(block)
            for course_key in course_keys
            for block in store.get_items(course_key, qualifiers={"category": PUBLISHED_BLOCK_TYPE})
        ]
        for course_id, max_score in published_course_ids(course_keys).items():
            title = self.course_title(course_id)
            if title is not None:
                found.append(PublishedContent(course_id, title, float(max_score), ContentKind.COURSE))
        return found

    @staticmethod
    def course_key_of(content_id: str) -> Any:
        """The course key ``content_id`` is (a course), or is in (a usage id); None if neither."""
        from opaque_keys import InvalidKeyError
        from opaque_keys.edx.keys import CourseKey, UsageKey

        for key_type in (CourseKey, UsageKey):
            try:
                key = key_type.from_string(content_id)
            except InvalidKeyError:
                continue
            return key if key_type is CourseKey else key.course_key
        return None

    @staticmethod
    def is_course_id(content_id: str) -> bool:
        from opaque_keys import InvalidKeyError
        from opaque_keys.edx.keys import CourseKey

        try:
            CourseKey.from_string(content_id)
        except InvalidKeyError:
            return False
        return True

    def course_title(self, course_id: str) -> str | None:
        from xmodule.modulestore.django import modulestore

        if not self.is_course_id(course_id):
            return None
        course = modulestore().get_course(self.course_key_of(course_id), depth=0)
        return None if course is None else str(course.display_name_with_default)

    def course_score_root(self, course_id: str) -> Any:
        return None  # edx-platform's course grade: COURSE_GRADE_CHANGED

    def published_course_of(self, block: Any) -> str | None:
        return None  # edx-platform's course grade: COURSE_GRADE_CHANGED

    def sign_in_url(self, next_url: str) -> str:
        """The LMS's sign-in page (the authn MFE's, when the LMS sends /login there)."""
        return f"/login?{urlencode({'next': next_url})}"

    def content_title(self, content_id: str) -> str | None:
        if self.is_course_id(content_id):
            return self.course_title(content_id) if is_published_course(content_id) else None
        block = self.block_at(content_id)  # without its children: a launch needs the title only
        if block is None or block.scope_ids.block_type != PUBLISHED_BLOCK_TYPE:
            return None
        return str(block.display_name)

    def is_graded(self, block: Any) -> bool:
        return bool(getattr(block, "has_score", False))

    def create_user(self, username: str, launch: Launch) -> User:
        from common.djangoapps.student.models import UserProfile

        user = _new_user(username, launch)
        UserProfile.objects.create(user=user, name=launch.name or username)
        return user

    def enroll(self, user: AbstractBaseUser, content_id: str, role: Role) -> None:
        """Enrolled in the course the content is (or is in); course staff for an instructor's launch."""
        from common.djangoapps.student.models import CourseEnrollment
        from common.djangoapps.student.roles import CourseStaffRole

        course_key = self.course_key_of(content_id)
        CourseEnrollment.enroll(user, course_key, check_access=False)
        if role is Role.STAFF:
            CourseStaffRole(course_key).add_users(user)

    def landing_url(self, content_id: str) -> str:
        """A block's courseware (jump_to), or a course's home (the learning MFE's)."""
        course_key = self.course_key_of(content_id)
        if self.is_course_id(content_id):
            from openedx.features.course_experience import course_home_url

            return str(course_home_url(course_key))
        return reverse("jump_to", kwargs={"course_id": str(course_key), "location": content_id})

    def user_may_author(self, content_id: str, users: Any, studio_permissions: Any, course_key: Any) -> bool:
        user = users.get_current_user() if users is not None else None
        return openedx_may_author(user, studio_permissions, course_key)


# -- grade events ------------------------------------------------------------------------------------


def _user(user_id: Any) -> User | None:
    from django.core.exceptions import ValidationError

    try:
        return get_user_model().objects.filter(pk=user_id).first()
    except (ValueError, TypeError, ValidationError):  # not a user id: "student_1", an anonymous visitor
        return None


def openedx_score_changed(sender: Any, **kwargs: Any) -> None:
    """edx-platform's ``PROBLEM_WEIGHTED_SCORE_CHANGED`` receiver (lms.djangoapps.grades.signals.signals;
    connected by the plugin's ``signals_config``, in the LMS only): a learner's weighted score of a
    block changed; the published content it is inside of gets it (lti_xblock.scores)."""
    from lti_xblock import scores

    user_id, usage_id = kwargs.get("user_id"), kwargs.get("usage_id")
    earned, possible = kwargs.get("weighted_earned"), kwargs.get("weighted_possible")
    if user_id is None or not usage_id:
        return
    modified = kwargs.get("modified")
    scored_at = modified.timestamp() if isinstance(modified, datetime) else time.time()
    try:
        user, block = _user(user_id), OpenEdxHost().block_at(str(usage_id))
        if user is None or block is None:
            return
        if kwargs.get("score_deleted"):
            scores.child_score_removed(user, block)
        elif earned is not None and possible is not None:
            scores.child_scored(user, block, earned, possible, scored_at)
    except Exception:  # noqa: BLE001 - the learner's answer is saved by then; failing it here would not help
        log.exception("score of user %s for %s not recorded for published content", user_id, usage_id)


def openedx_course_grade_changed(sender: Any, **kwargs: Any) -> None:
    """edx-platform's ``COURSE_GRADE_CHANGED`` receiver (openedx.core.djangoapps.signals.signals, sent
    with ``user``, ``course_grade``, ``course_key`` and ``deadline`` by the CourseGradeFactory; connected
    by the plugin's ``signals_config``, in the LMS only): a learner's course grade changed; when an admin
    published the course whole, its ``percent`` is the course's score (lti_xblock.scores)."""
    from lti_xblock import scores

    user, course_grade, course_key = kwargs.get("user"), kwargs.get("course_grade"), kwargs.get("course_key")
    if user is None or course_grade is None or course_key is None:
        return
    try:
        if is_published_course(str(course_key)):
            scores.course_graded(user, str(course_key), getattr(course_grade, "percent", None), time.time())
    except Exception:  # noqa: BLE001 - the LMS's grade is saved by then; failing it here would not help
        log.exception("course grade of user %s in %s not recorded for a published course", user.pk, course_key)


def workbench_grade_published(runtime: Any, block: Any, event_data: Any) -> None:
    """A block published a grade event (``{"value": .., "max_value": ..}``) in a workbench runtime
    made for the signed-in user (demo.urls' handler view): the published content it is inside of
    gets it (lti_xblock.scores)."""
    from lti_xblock import scores

    user = _user(runtime.user_id)
    if user is None or not isinstance(event_data, dict):
        return
    try:
        scores.child_scored(user, block, event_data.get("value"), event_data.get("max_value"), time.time())
    except Exception:  # noqa: BLE001 - the learner's answer is saved by then; failing it here would not help
        log.exception("score of user %s for %s not recorded", user.pk, block.scope_ids.usage_id)


def install_workbench_grade_hook() -> None:
    """Make the workbench runtime's ``publish`` (which only logs events) pass grade events to
    ``workbench_grade_published``. The workbench has no event hook of its own, and its runtime is
    made by views that are not ours (the SDK's, the demo's), so the hook is on the class; once."""
    from workbench.runtime import WorkbenchRuntime

    logged = WorkbenchRuntime.publish
    if getattr(logged, "lti_publish_grades", False):
        return

    def publish(runtime: WorkbenchRuntime, block: Any, event_type: str, event_data: Any) -> None:
        logged(runtime, block, event_type, event_data)
        if event_type == "grade":
            workbench_grade_published(runtime, block, event_data)

    publish.lti_publish_grades = True  # type: ignore[attr-defined]
    WorkbenchRuntime.publish = publish


@cache
def host() -> Host:
    name = getattr(settings, "LTI_PUBLISH", {}).get("HOST", "openedx")
    return WorkbenchHost() if name == "workbench" else OpenEdxHost()
