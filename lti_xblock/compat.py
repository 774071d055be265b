"""Every call lti_xblock makes into its host platform, behind one interface.

``OpenEdxHost`` talks to edx-platform (users, enrolment, course roles, courseware URLs) and is only
importable inside the LMS; ``WorkbenchHost`` does the same on the XBlock SDK workbench for the demo
and the tests. Views never import edx-platform directly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True)
class PublishedContent:
    """A published (lti_publish) block an instructor may add to a course ("Published content")."""

    content_id: str
    title: str
    max_score: float


def published_content_of(block: Any) -> PublishedContent:
    return PublishedContent(str(block.scope_ids.usage_id), str(block.display_name), float(block.max_score))


class Host(Protocol):
    def published_contents(self, user: AbstractBaseUser) -> list[PublishedContent]:
        """What ``user`` may add to a platform's course by deep linking: the published blocks of the
        courses they teach here (the workbench: every published block of its scenarios)."""
        ...

    def content_title(self, content_id: str) -> str | None:
        """The published block's title, or None when ``content_id`` is not published content."""
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
        """Every published block of the workbench's scenarios (it has no courses nor course teams)."""
        from workbench.scenarios import get_scenarios

        found: list[PublishedContent] = []
        for scenario in get_scenarios().values():
            root = self._block(str(scenario.usage_id))
            pending = [root] if root is not None else []
            while pending:
                block = pending.pop(0)
                if block.scope_ids.block_type == PUBLISHED_BLOCK_TYPE:
                    found.append(published_content_of(block))
                elif getattr(block, "has_children", False):  # published content is never nested
                    pending.extend(block.runtime.get_block(child) for child in block.children)
        return found

    def sign_in_url(self, next_url: str) -> str:
        """Django's sign-in (``LOGIN_URL``: the demo mounts ``LoginView`` there)."""
        return f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': next_url})}"

    def content_title(self, content_id: str) -> str | None:
        block = self.published_block(content_id)
        return None if block is None else str(block.display_name)

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
        from lti_xblock.models import LtiContentEnrollment

        row = LtiContentEnrollment.objects.filter(user_id=user.pk, content_id=content_id).first()
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
        user = cast(User, request.user)  # views.content lets only signed-in users through
        block = self._block(content_id, str(user.pk))
        fragment = block.render("student_view", {})
        return render(
            request,
            "lti_xblock/content.html",
            {
                "title": block.display_name,
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
        (CourseStaffRole or CourseInstructorRole), in the LMS's (published) modulestore branch."""
        from common.djangoapps.student.models import CourseAccessRole
        from common.djangoapps.student.roles import CourseInstructorRole, CourseStaffRole
        from xmodule.modulestore.django import modulestore

        team_roles = (CourseStaffRole.ROLE, CourseInstructorRole.ROLE)
        rows = CourseAccessRole.objects.filter(user_id=user.pk, role__in=team_roles)
        course_keys = {row.course_id for row in rows if row.course_id}  # org-wide roles name no course
        store = modulestore()
        return [
            published_content_of(block)
            for course_key in sorted(course_keys, key=str)
            for block in store.get_items(course_key, qualifiers={"category": PUBLISHED_BLOCK_TYPE})
        ]

    def sign_in_url(self, next_url: str) -> str:
        """The LMS's sign-in page (the authn MFE's, when the LMS sends /login there)."""
        return f"/login?{urlencode({'next': next_url})}"

    def content_title(self, content_id: str) -> str | None:
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
        from common.djangoapps.student.models import CourseEnrollment
        from common.djangoapps.student.roles import CourseStaffRole
        from opaque_keys.edx.keys import UsageKey

        course_key = UsageKey.from_string(content_id).course_key
        CourseEnrollment.enroll(user, course_key, check_access=False)
        if role is Role.STAFF:
            CourseStaffRole(course_key).add_users(user)

    def landing_url(self, content_id: str) -> str:
        from opaque_keys.edx.keys import UsageKey

        usage_key = UsageKey.from_string(content_id)
        return reverse("jump_to", kwargs={"course_id": str(usage_key.course_key), "location": content_id})

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
