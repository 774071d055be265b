"""Scores of published content, from the workbench host to the platform's gradebook, end to end on loopback.

A learner launches from the ``lti_peer`` platform (LTI 1.3 with an AGS claim, or LTI 1.1 with an outcome
service), answers the demo scenario's fraction problems through the workbench's real handler URL, and a
``GradeWorker`` (the Django host's urllib driver) delivers what the outbox holds to the peer's AGS gradebook
or LTI 1.1 outcome service. The published block's score is the children's points scaled to its maximum
score; "require completion" holds it back until every graded child has a score; a score earned before a
link exists is sent when the learner launches from it; the course team sees each learner's sync status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from workbench.runtime import WorkbenchRuntime

from lti_core.ags import SCOPE_SCORE
from lti_core.grades import DeliverySummary, GradeWorker
from lti_core.outbox import OutboxState
from lti_peer import DELETE
from lti_peer.ags import Gradebook, gradebook
from lti_peer.lti11 import moodle_lti11_params, sign_lti11_launch
from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer
from lti_peer.token import token_endpoint
from lti_xblock import models as m
from lti_xblock.http import UrllibTransport
from lti_xblock.scores import GradedChild, Grading, score_from
from tests.conftest import Tool
from tests.test_host_lti13 import full_launch

MAX_SCORE = 10.0
LINK_TITLE = "Fractions (graded)"


@pytest.fixture
def book(tool: Tool, platform: PlatformPeer) -> Iterator[Gradebook]:
    """The platform's AGS gradebook and LTI 1.1 outcome service, both trusting the tool."""
    token_endpoint(platform).tool_jwks_url = tool.details.lti13_jwks_url
    platform.outcomes.add_consumer(tool.consumer.key, tool.consumer.secret)
    yield gradebook(platform)


@pytest.fixture
def lineitem(book: Gradebook) -> str:
    return book.add_lineitem("Fractions", MAX_SCORE, resource_link_id="1")


def content_block(tool: Tool) -> Any:
    return WorkbenchRuntime().get_block(tool.content_id)


def configure(tool: Tool, **fields: Any) -> None:
    """The published block's settings, as its author saved them."""
    block = content_block(tool)
    for name, value in {"max_score": MAX_SCORE, **fields}.items():
        setattr(block, name, value)
    block.save()


def problem_ids(tool: Tool, content_id: str = "") -> list[str]:
    """The problems of published content: ``content_id``'s, by default the tool's (the demo scenario's)."""
    block = WorkbenchRuntime().get_block(content_id) if content_id else content_block(tool)
    children = [block.runtime.get_block(child) for child in block.children]
    return [str(child.scope_ids.usage_id) for child in children if child.scope_ids.block_type == "problem_demo"]


def landing(browser: requests.Session, tool: Tool, response: requests.Response) -> str:
    """Follow the launch to the content page (it renders the problems, fixing the learner's numbers)."""
    assert response.status_code == 302, response.text
    page = browser.get(tool.url(response.headers["Location"]))
    assert page.status_code == 200
    return page.text


def launch13(browser: requests.Session, tool: Tool, platform: PlatformPeer, sub: str = "2", **claims: Any) -> str:
    return landing(browser, tool, full_launch(browser, tool, platform, sub=sub, **claims))


def ags_claim(lineitem: str) -> dict[str, Any]:
    return {"scope": [SCOPE_SCORE], "lineitem": lineitem}


def user_pk(platform: str, platform_user_id: str) -> int:
    return m.LtiUserLink.objects.get(platform=platform, platform_user_id=platform_user_id).user_id


def answer(browser: requests.Session, tool: Tool, problem_id: str, learner: int, *, right: bool) -> None:
    """Answer a problem as the workbench's JavaScript does: its ``check`` handler, with the CSRF token."""
    problem = WorkbenchRuntime(str(learner)).get_block(problem_id)
    expected = problem.calc_context({})["c"]  # the learner's own numbers (their seed)
    children = [problem.runtime.get_block(child) for child in problem.children]
    field = next(child.name for child in children if child.scope_ids.block_type == "textinput_demo")
    value = expected if right else expected + 1
    response = browser.post(
        tool.url(f"/handler/{problem_id}/check"),
        data=json.dumps({field: [{"name": "input", "value": str(value)}]}),
        headers={"X-CSRFToken": browser.cookies["csrftoken"], "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert list(response.json()["checkResults"].values()) == [right]


def deliver() -> DeliverySummary:
    from lti_xblock.views import store, tool_keys

    with GradeWorker(store, UrllibTransport(), tool_keys, allow_private=True, timeout=5) as worker:
        return worker.deliver_due()


def outbox() -> list[Any]:
    from lti_xblock.views import store

    return store.list_outbox()


def score_posts(book: Gradebook) -> int:
    return sum(1 for method, path, status in book.log if method == "POST" and "/scores" in path and status == 200)


def test_the_block_score_weighs_each_child_by_its_points():
    grading = Grading((GradedChild("a", 2.0), GradedChild("b", 3.0)), frozenset({"a", "b", "c", "html"}))

    def rows(**scores: tuple[float, float]) -> dict[str, m.LtiChildScore]:
        return {cid: m.LtiChildScore(child_id=cid, earned=e, possible=p, scored_at=0) for cid, (e, p) in scores.items()}

    assert score_from(Grading((), frozenset({"html"})), {}) is None  # nothing graded
    one = score_from(grading, rows(a=(1.0, 2.0)))
    assert one is not None and (one.earned, one.possible, one.answered, one.complete) == (1.0, 5.0, 1, False)
    assert one.out_of(MAX_SCORE) == 2.0  # b, unanswered, counts 0 out of its 3 points
    both = score_from(grading, rows(a=(1.0, 2.0), b=(4.0, 4.0)))  # b's points as it published them
    assert both is not None and both.complete and both.out_of(MAX_SCORE) == pytest.approx(MAX_SCORE * 5 / 6)
    # A descendant that publishes scores without saying it is graded counts; a block elsewhere does not.
    more = score_from(grading, rows(a=(2.0, 2.0), b=(3.0, 3.0), c=(0.0, 5.0), z=(9.0, 9.0)))
    assert more is not None and (more.graded, more.answered, more.out_of(MAX_SCORE)) == (3, 3, 5.0)


# ------------------------------------------------------------------------------------------ LTI 1.3


def test_lti13_learner_scores_reach_the_ags_gradebook_once_each(browser, tool, platform, book, lineitem):
    configure(tool, grade_sync=True)
    launch13(browser, tool, platform, ags=ags_claim(lineitem))
    learner = user_pk(platform.issuer, "2")
    first, second = problem_ids(tool)

    answer(browser, tool, first, learner, right=True)
    assert [e.state for e in outbox()] == [OutboxState.PENDING]
    assert deliver().delivered == 1
    kept = book.score_of(lineitem, "2")
    assert kept is not None and (kept.score_given, kept.score_maximum) == (5.0, MAX_SCORE)
    assert (kept.activity_progress, kept.grading_progress) == ("InProgress", "Pending")
    assert score_posts(book) == 1

    answer(browser, tool, second, learner, right=True)
    assert deliver().delivered == 1
    kept = book.score_of(lineitem, "2")
    assert kept is not None and (kept.score_given, kept.score_maximum) == (MAX_SCORE, MAX_SCORE)
    assert (kept.activity_progress, kept.grading_progress) == ("Completed", "FullyGraded")
    assert score_posts(book) == 2  # one per score

    # Nothing changed: answering right again, or launching again, sends nothing more.
    answer(browser, tool, second, learner, right=True)
    launch13(browser, tool, platform, ags=ags_claim(lineitem))
    assert deliver().claimed == 0
    assert score_posts(book) == 2
    # One latest score per graded child: the problems' checkers, which publish the grade events.
    children = [row.child_id for row in m.LtiChildScore.objects.filter(user_id=learner, content_id=tool.content_id)]
    assert len(children) == 2 and {child.split(".")[1] for child in children} == {"equality_demo"}


def test_require_completion_holds_the_score_until_every_graded_child_has_one(browser, tool, platform, book, lineitem):
    configure(tool, grade_sync=True, require_completion=True)
    launch13(browser, tool, platform, ags=ags_claim(lineitem))
    learner = user_pk(platform.issuer, "2")
    first, second = problem_ids(tool)

    answer(browser, tool, first, learner, right=True)
    assert outbox() == []
    assert deliver().claimed == 0 and score_posts(book) == 0

    answer(browser, tool, second, learner, right=False)
    assert deliver().delivered == 1
    kept = book.score_of(lineitem, "2")
    assert kept is not None and (kept.score_given, kept.grading_progress) == (5.0, "FullyGraded")
    assert score_posts(book) == 1


def test_a_score_earned_before_the_link_existed_is_sent_at_its_first_launch(browser, tool, platform, book, lineitem):
    configure(tool, grade_sync=True)
    # A first link without a gradebook (AGS not offered): the score stays in the tool.
    launch13(browser, tool, platform, ags=DELETE)
    learner = user_pk(platform.issuer, "2")
    answer(browser, tool, problem_ids(tool)[0], learner, right=True)
    assert m.LtiChildScore.objects.filter(user_id=learner).count() == 1
    assert outbox() == []

    # The course adds a graded link: the learner's first launch from it sends the score they have.
    graded_link = {"id": "rl-graded", "title": LINK_TITLE}
    with requests.Session() as later:
        launch13(later, tool, platform, ags=ags_claim(lineitem), resource_link=graded_link)
    assert deliver().delivered == 1
    kept = book.score_of(lineitem, "2")
    assert kept is not None and (kept.score_given, kept.score_maximum) == (5.0, MAX_SCORE)
    assert score_posts(book) == 1


# ------------------------------------------------------------------------------------------ LTI 1.1


def test_lti11_learner_score_reaches_the_outcome_service_once(browser, tool, platform, book):
    configure(tool, grade_sync=True)
    service_url, sourcedid = platform.outcomes.issue("2", "1")
    params = moodle_lti11_params(lis_outcome_service_url=service_url, lis_result_sourcedid=sourcedid)
    url = tool.details.lti11_tool_url
    landing(
        browser,
        tool,
        browser.post(
            url, data=sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, params), allow_redirects=False
        ),
    )
    learner = user_pk(tool.consumer.key, "2")
    first, second = problem_ids(tool)

    answer(browser, tool, first, learner, right=False)
    answer(browser, tool, second, learner, right=True)
    assert deliver().delivered == 1  # the latest score only: the first was replaced before delivery
    assert platform.outcomes.gradebook[sourcedid] == pytest.approx(0.5)
    replaced = [r for r in platform.outcomes.log if r.operation == "replaceResult" and r.code_major == "success"]
    assert len(replaced) == 1


# ------------------------------------------------------------------------------ settings and panel


def save_settings(browser: requests.Session, tool: Tool, data: dict[str, Any]) -> requests.Response:
    return browser.post(
        tool.url(f"/handler/{tool.content_id}/save_settings"),
        data=json.dumps(data),
        headers={"X-CSRFToken": browser.cookies["csrftoken"], "Content-Type": "application/json"},
    )


def test_grade_sync_off_sends_nothing_and_only_the_course_team_turns_it_on(browser, tool, platform, book, lineitem):
    configure(tool, grade_sync=False)
    launch13(browser, tool, platform, ags=ags_claim(lineitem))
    learner = user_pk(platform.issuer, "2")
    first, second = problem_ids(tool)
    answer(browser, tool, first, learner, right=True)
    answer(browser, tool, second, learner, right=True)
    assert m.LtiChildScore.objects.filter(user_id=learner).count() == 2  # kept, for when it is turned on
    assert outbox() == []
    assert deliver().claimed == 0 and score_posts(book) == 0

    refused = save_settings(browser, tool, {"grade_sync": True, "require_completion": True})
    assert refused.status_code == 403
    block = content_block(tool)
    assert (block.grade_sync, block.require_completion) == (False, False)

    with requests.Session() as instructor:
        launch13(instructor, tool, platform, sub="7", roles=INSTRUCTOR_ROLES)
        assert save_settings(instructor, tool, {"require_completion": "yes"}).json()["result"] == "error"
        saved = save_settings(instructor, tool, {"grade_sync": True, "require_completion": True})
        assert saved.status_code == 200 and saved.json() == {"result": "success"}
    block = content_block(tool)
    assert (block.grade_sync, block.require_completion) == (True, True)
    studio = block.render("studio_view", {}).body_html()
    assert 'name="require_completion"' in studio and "Require completion before grade sync" in studio

    # Turned on: the learner's next answer sends the score (every graded part answered: complete).
    answer(browser, tool, second, learner, right=False)
    assert deliver().delivered == 1
    kept = book.score_of(lineitem, "2")
    assert kept is not None and (kept.score_given, kept.grading_progress) == (5.0, "FullyGraded")
    assert score_posts(book) == 1


def test_the_course_team_sees_each_learners_sync_status(browser, tool, platform, book, lineitem):
    configure(tool, grade_sync=True)
    first_problem = problem_ids(tool)[0]
    launch13(browser, tool, platform, ags=ags_claim(lineitem))
    answer(browser, tool, first_problem, user_pk(platform.issuer, "2"), right=True)
    assert deliver().delivered == 1

    with requests.Session() as other:
        page = launch13(other, tool, platform, sub="3", ags=ags_claim(lineitem))
        assert 'class="lti-publish-grades"' not in page  # a learner sees no one's status
        answer(other, tool, first_problem, user_pk(platform.issuer, "3"), right=False)
    book.fail_next(1, status=400)  # the platform refuses learner 3's score for good
    assert deliver().failed == 1

    with requests.Session() as instructor:
        page = launch13(instructor, tool, platform, sub="7", roles=INSTRUCTOR_ROLES)
    panel = page[page.index('class="lti-publish-grades"') :]
    assert "Grade sync" in panel
    rows = panel.split("<tr data-sync-state=")[1:]
    assert len(rows) == 2  # the two learners; not the instructor
    by_state = {row.split('"')[1]: row for row in rows}
    assert set(by_state) == {"delivered", "failed"}
    assert "5 / 10" in by_state["delivered"] and "Delivered" in by_state["delivered"]
    assert "0 / 10" in by_state["failed"] and "Failed" in by_state["failed"]
    assert "<code>400" in by_state["failed"]  # the platform's answer
