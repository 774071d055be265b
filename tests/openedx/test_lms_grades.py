"""Grade passback inside a real Open edX LMS: edx-platform's score signal reaches the published block.

A problem inside published content is scored (``PROBLEM_WEIGHTED_SCORE_CHANGED``, as the LMS sends it when
a learner submits); the plugin's receiver (connected by its ``signals_config``) records the child's score,
and the block's score (the weighted sum over its graded problems, found through the modulestore) goes into
the outbox for the learner's link. Nothing of edx-platform is mocked (MongoDB is mongomock, conftest.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from lms.djangoapps.grades.signals.signals import PROBLEM_WEIGHTED_SCORE_CHANGED
from xmodule.modulestore.tests.django_utils import SharedModuleStoreTestCase
from xmodule.modulestore.tests.factories import BlockFactory, CourseFactory

from lti_core.types import BasicOutcome, Consumer, LaunchContext, LaunchServices
from lti_xblock import scores
from lti_xblock.compat import OpenEdxHost
from lti_xblock.models import LtiChildScore
from lti_xblock.store import DjangoStore

OUTCOME_URL = "https://moodle.example/mod/lti/service.php"


class TestScoreSignal(SharedModuleStoreTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.course = CourseFactory.create(org="LtiPublish", course="G101", run="2025")
        chapter = BlockFactory.create(parent=cls.course, category="chapter")
        sequential = BlockFactory.create(parent=chapter, category="sequential")
        unit = BlockFactory.create(parent=sequential, category="vertical")
        cls.block = BlockFactory.create(parent=unit, category="lti_publish", grade_sync=True, max_score=10.0)
        inner = BlockFactory.create(parent=cls.block, category="vertical")
        cls.first = BlockFactory.create(parent=inner, category="problem", weight=2.0)
        cls.second = BlockFactory.create(parent=cls.block, category="problem", weight=2.0)
        BlockFactory.create(parent=cls.block, category="html", data="<p>Not graded</p>")

    def scored(self, user, problem, earned: float) -> None:
        PROBLEM_WEIGHTED_SCORE_CHANGED.send(
            sender=None,
            weighted_earned=earned,
            weighted_possible=2.0,
            user_id=user.id,
            anonymous_user_id="anonymous",
            course_id=str(self.course.id),
            usage_id=str(problem.location),
            only_if_higher=False,
            modified=datetime.now(UTC),
            score_db_table="csm",
        )

    def test_a_problems_score_reaches_the_outbox_as_the_blocks_weighted_score(self):
        receivers = [ref() for _, ref in PROBLEM_WEIGHTED_SCORE_CHANGED.receivers]
        assert any(getattr(r, "__name__", "") == "openedx_score_changed" for r in receivers)
        user = get_user_model().objects.create_user("sam")
        store = DjangoStore()
        store.save_consumer(Consumer("moodle-key", "secret-0123456789"))
        content_id = str(self.block.location)
        store.save_launch_context(
            LaunchContext(
                "moodle-key",
                "2",
                str(user.pk),
                "rl-1",
                lti_version="1.1",
                services=LaunchServices(basic_outcome=BasicOutcome(OUTCOME_URL, "sourcedid-2")),
                content_id=content_id,
            )
        )
        published = OpenEdxHost().published_block(content_id)
        grading = scores.grading_of(published)
        assert sorted(c.usage_id for c in grading.graded) == sorted(
            [str(self.first.location), str(self.second.location)]
        )
        assert all(child.points == 2.0 for child in grading.graded)

        self.scored(user, self.first, 2.0)  # the nested problem counts
        assert list(LtiChildScore.objects.values_list("child_id", "earned", "possible")) == [
            (str(self.first.location), 2.0, 2.0)
        ]
        [entry] = store.list_outbox()
        assert (entry.score.given, entry.score.grading_progress) == (0.5, "Pending")  # 2 of 4 points, not final

        self.scored(user, self.second, 1.0)
        [entry] = store.list_outbox()
        assert (entry.score.given, entry.score.grading_progress) == (0.75, "FullyGraded")
        [status] = scores.sync_statuses(published)
        assert (status.score, status.state) == (7.5, "pending")
