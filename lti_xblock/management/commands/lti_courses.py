"""Whole courses published as LTI content: publish one (its course team may then add it to a platform's
course, where its score is the course grade), list them, unpublish one."""

from __future__ import annotations

import getpass
from argparse import ArgumentParser
from datetime import UTC
from typing import Any

from lti_core.errors import NotFound
from lti_core.i18n import N_
from lti_xblock import compat
from lti_xblock.management.commands._admin import AdminCommand
from lti_xblock.models import LtiPublishedCourse

NOT_PUBLISHED = N_("This course is not published.")


def who() -> str:
    """The system account running the command (the admin pages keep the admin's username)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor the password database
        return ""


def describe(row: LtiPublishedCourse) -> str:
    title = compat.host().course_title(row.course_id) or "?"
    when = row.published_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    grade_sync = "on" if row.grade_sync else "off"
    by = f" by {row.published_by}" if row.published_by else ""
    return f"{row.course_id}  {title!r}  max_score={row.max_score:g}  grade_sync={grade_sync}  published {when}{by}"


class Command(AdminCommand):
    help = (
        "Whole courses published as LTI content: publish COURSE_ID (an Open edX course key; in the workbench, a "
        "scenario id), list them, unpublish COURSE_ID. A published course's team may add it to a platform's "
        "course by deep linking; its score there is the course grade, out of --max-score."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{list,publish,unpublish}")
        actions.add_parser("list", help="every published course")
        publish = actions.add_parser("publish", help="publish a course whole (again: change its settings)")
        publish.add_argument("course_id", help="The course's id, e.g. course-v1:Org+Course+Run")
        publish.add_argument(
            "--max-score", type=float, default=100.0, help="what its score is out of (default: %(default)g)"
        )
        publish.add_argument(
            "--no-grade-sync", dest="grade_sync", action="store_false", help="do not send its scores to gradebooks"
        )
        unpublish = actions.add_parser("unpublish", help="stop publishing a course (its created links are refused)")
        unpublish.add_argument("course_id", help="The course's id, as `list` shows it")

    def run(self, **options: Any) -> None:
        if options["action"] == "list":
            rows = list(LtiPublishedCourse.objects.order_by("course_id"))
            if not rows:
                self.say("No published course.")
            for row in rows:
                self.say(describe(row))
            return
        if options["action"] == "unpublish":
            deleted, _ = LtiPublishedCourse.objects.filter(course_id=options["course_id"].strip()).delete()
            if not deleted:
                raise NotFound("course_not_published", NOT_PUBLISHED)
            self.say(f"Unpublished: {options['course_id'].strip()}")
            return
        course_id = compat.course_to_publish(options["course_id"], options["max_score"])
        settings = {"max_score": options["max_score"], "grade_sync": options["grade_sync"]}
        row, created = LtiPublishedCourse.objects.get_or_create(
            course_id=course_id, defaults={**settings, "published_by": who()}
        )
        if not created:  # published again: new settings, same publication
            for name, value in settings.items():
                setattr(row, name, value)
            row.save(update_fields=list(settings))
        self.say(f"Published: {describe(row)}")
