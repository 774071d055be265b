"""A whole course published as LTI content, in the workbench host, over real HTTP on loopback.

The workbench has no courses: each scenario stands for one, named by its scenario id. An admin publishes
the demo scenario whole (``lti-publish courses publish``); an instructor's "Select content" from the
``lti_peer`` platform lists it as a whole course; picked with "Add to gradebook", the platform receives
the signed item and its line item; a learner launching the created link lands on the course (never with
staff rights), answers a problem in it, and the course's score (points earned out of all its graded
blocks' points, scaled to the course's maximum score) reaches exactly the created line item. An
unpublished course is refused at launch with a page and a reason; the admin page checks what it is given.
"""

from __future__ import annotations

import getpass
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command
from workbench.runtime import WorkbenchRuntime

from lti_peer import DELETE
from lti_peer.claims import INSTRUCTOR_ROLES, LEARNER_ROLES
from lti_peer.platform import PlatformPeer, parse_autosubmit_form
from lti_xblock import models as m
from lti_xblock.launch_details import launch_details
from tests.conftest import DEMO_SCENARIO, Tool, registration_of
from tests.test_cli import lti_publish
from tests.test_host_lti13 import written_rows
from tests.test_xblock_deep_linking import (
    CONTENT_ITEMS,
    assert_refused,
    decode_response,
    launch13,
    open_picker,
    select_content,
    submit,
)
from tests.test_xblock_grades import ags_claim, answer, deliver, user_pk
from tests.test_xblock_grades import book as book  # the platform's gradebook fixture

MAX_SCORE = 40.0


@pytest.fixture(scope="module")
def peer(live_server: Any) -> Iterator[PlatformPeer]:
    """One platform for the module (its gradebook keeps every test's line items apart)."""
    with PlatformPeer(redirect_uris=[f"{live_server.url}/lti_publish/lti13/launch"]) as running:
        yield running


@pytest.fixture
def platform(tool: Tool, peer: PlatformPeer) -> PlatformPeer:
    """The module's platform, registered with the tool in this test's (flushed) database."""
    from lti_xblock.views import store

    store.save_registration(registration_of(peer))
    return peer


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("lti_courses", *args, stdout=out)
    return out.getvalue()


def demo_course_id() -> str:
    """The demo scenario's id: the course a scenario stands for."""
    from workbench.scenarios import get_scenarios

    return next(name for name, scenario in get_scenarios().items() if scenario.description == DEMO_SCENARIO)


def course_problems(course_id: str) -> list[str]:
    """The course's problems, wherever they are in its tree (each has one checker worth 1 point)."""
    from workbench.scenarios import get_scenarios

    pending = [WorkbenchRuntime().get_block(get_scenarios()[course_id].usage_id)]
    found = []
    while pending:
        block = pending.pop(0)
        if block.scope_ids.block_type == "problem_demo":
            found.append(str(block.scope_ids.usage_id))
        elif block.has_children:
            pending.extend(block.runtime.get_block(child) for child in block.children)
    return found


def pick_course(browser: requests.Session, tool: Tool, platform: PlatformPeer, course_id: str) -> dict[str, Any]:
    """The instructor's "Select content": the course picked with "Add to gradebook"; the item sent."""
    page = open_picker(browser, tool, select_content(browser, tool, platform))
    row = re.search(
        rf'<tr [^>]*data-content-kind="course">\s*<td><input [^>]*value="{re.escape(course_id)}"', page.text
    )
    assert row is not None and "(Whole course)" in page.text, page.text[:3000]
    sent = submit(browser, tool, page, "add", item=[course_id], gradebook=[course_id])
    assert sent.status_code == 200 and f"out of {MAX_SCORE:g}" in sent.text, sent.text[:2000]
    (item,) = decode_response(tool, platform, parse_autosubmit_form(sent.text)[1]["JWT"])[CONTENT_ITEMS]
    return dict(item)


def test_the_admin_publishes_lists_and_unpublishes_a_course(tool):
    course_id = demo_course_id()
    assert run("list") == "No published course.\n"
    assert "max_score=40  grade_sync=on" in run("publish", course_id, "--max-score", "40")
    assert m.LtiPublishedCourse.objects.get().published_by == getpass.getuser()  # who published it
    assert "max_score=10  grade_sync=off" in run("publish", course_id, "--max-score", "10", "--no-grade-sync")
    listed = run("list")
    assert listed.startswith(f"{course_id}  {DEMO_SCENARIO!r}  max_score=10  grade_sync=off"), listed
    for args, match in [
        (("publish", "no.such.scenario"), r"No course has this id here\. \(unknown_course\)"),
        (("publish", course_id, "--max-score", "0"), r"greater than 0\. \(bad_max_score\)"),
        (("unpublish", "no.such.scenario"), r"not published\. \(course_not_published\)"),
    ]:
        with pytest.raises(CommandError, match=match):
            run(*args)
    assert m.LtiPublishedCourse.objects.count() == 1
    assert run("unpublish", course_id) == f"Unpublished: {course_id}\n"
    assert m.LtiPublishedCourse.objects.count() == 0


def test_the_console_script_says_one_line_for_an_unknown_course(tmp_path: Path):
    def cli(*args: str) -> Any:
        return lti_publish(*args, settings="tests.settings", cwd=tmp_path, LTI_PUBLISH_VAR=str(tmp_path / "var"))

    assert cli("manage", "migrate", "--run-syncdb", "-v0").returncode == 0
    helped = cli("courses", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: lti-publish courses "), helped.stdout
    refused = cli("courses", "publish", "course-v1:No+Such+Course")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == "CommandError: No course has this id here. (unknown_course)\n"


def test_the_admin_page_publishes_a_course_of_the_host_only(admin_client, tool):
    course_id = demo_course_id()
    form = {"max_score": "25", "grade_sync": "on"}
    unknown = admin_client.post("/admin/lti_xblock/ltipublishedcourse/add/", {**form, "course_id": "no.such"})
    assert unknown.status_code == 200 and "No course has this id here." in unknown.content.decode()
    zero = admin_client.post("/admin/lti_xblock/ltipublishedcourse/add/", {"course_id": course_id, "max_score": "0"})
    assert zero.status_code == 200 and "greater than 0" in zero.content.decode()
    assert m.LtiPublishedCourse.objects.count() == 0
    added = admin_client.post("/admin/lti_xblock/ltipublishedcourse/add/", {**form, "course_id": f" {course_id} "})
    assert added.status_code == 302
    row = m.LtiPublishedCourse.objects.get()
    assert (row.course_id, row.max_score, row.grade_sync, row.published_by) == (course_id, 25.0, True, "admin")
    listed = admin_client.get("/admin/lti_xblock/ltipublishedcourse/?q=lti").content.decode()
    assert DEMO_SCENARIO in listed


def test_a_learner_on_the_created_link_lands_on_the_course_and_its_grade_reaches_the_line_item(
    browser, tool, platform, book
):
    course_id = demo_course_id()
    run("publish", course_id, "--max-score", f"{MAX_SCORE:g}")
    item = pick_course(browser, tool, platform, course_id)
    assert item == {
        "type": "ltiResourceLink",
        "title": DEMO_SCENARIO,
        "url": launch_details(tool.base_url, course_id).lti13_target_link_uri,
        "custom": {"content_id": course_id},
        "lineItem": {"scoreMaximum": MAX_SCORE, "label": DEMO_SCENARIO, "resourceId": course_id},
    }
    lineitem = book.add_lineitem(DEMO_SCENARIO, MAX_SCORE, resource_link_id="dl-course")
    other = book.add_lineitem("Another column", MAX_SCORE, resource_link_id="dl-other")

    with requests.Session() as learner:
        claims = {"sub": "8", "roles": list(LEARNER_ROLES), "custom": item["custom"], "ags": ags_claim(lineitem)}
        launched = launch13(learner, tool, platform, item["url"], claims)
        assert launched.status_code == 302 and launched.headers["Location"] == f"/lti_publish/content/{course_id}/"
        page = learner.get(tool.url(launched.headers["Location"]))
        assert page.status_code == 200 and 'data-lti-role="learner"' in page.text
        assert f"<title>{DEMO_SCENARIO}</title>" in page.text and "(learner)" in page.text
        assert 'class="lti-publish-grades"' not in page.text  # no staff view of the blocks in it
        problems = course_problems(course_id)
        answer(learner, tool, problems[0], user_pk(platform.issuer, "8"), right=True)
    # A learner is never given staff rights, on the course nor on anything in it.
    assert list(m.LtiContentEnrollment.objects.values_list("content_id", "role")) == [(course_id, "learner")]
    assert m.LtiLaunchContext.objects.get().content_id == course_id

    assert deliver().delivered == 1
    kept = book.score_of(lineitem, "8")
    assert kept is not None and (kept.score_given, kept.score_maximum) == (MAX_SCORE / len(problems), MAX_SCORE)
    assert book.score_of(other, "8") is None


def test_a_course_grade_earned_before_the_graded_link_is_sent_at_its_first_launch(browser, tool, platform, book):
    course_id = demo_course_id()
    run("publish", course_id, "--max-score", f"{MAX_SCORE:g}")
    target = launch_details(tool.base_url, course_id).lti13_target_link_uri
    custom = {"content_id": course_id}
    claims = {"sub": "9", "roles": list(LEARNER_ROLES), "custom": custom, "ags": DELETE}  # no gradebook yet
    launched = launch13(browser, tool, platform, target, claims)
    browser.get(tool.url(launched.headers["Location"]))  # the course page: the problems' numbers are set
    problems = course_problems(course_id)
    for problem in problems:
        answer(browser, tool, problem, user_pk(platform.issuer, "9"), right=True)
    assert m.LtiChildScore.objects.filter(content_id=course_id).count() == len(problems)
    assert deliver().claimed == 0

    lineitem = book.add_lineitem(DEMO_SCENARIO, MAX_SCORE, resource_link_id="dl-later")
    claims = {
        "sub": "9",
        "roles": list(LEARNER_ROLES),
        "custom": custom,
        "ags": ags_claim(lineitem),
        "resource_link": {"id": "dl-later", "title": "Course (graded)"},
    }
    with requests.Session() as later:
        assert launch13(later, tool, platform, target, claims).status_code == 302
    assert deliver().delivered == 1
    kept = book.score_of(lineitem, "9")
    assert kept is not None and (kept.score_given, kept.grading_progress) == (MAX_SCORE, "FullyGraded")


def test_with_grade_sync_off_the_course_grade_stays_in_the_tool(browser, tool, platform, book):
    course_id = demo_course_id()
    run("publish", course_id, "--no-grade-sync")
    target = launch_details(tool.base_url, course_id).lti13_target_link_uri
    lineitem = book.add_lineitem(DEMO_SCENARIO, 100.0, resource_link_id="dl-off")
    custom = {"content_id": course_id}
    claims = {"sub": "10", "roles": list(LEARNER_ROLES), "custom": custom, "ags": ags_claim(lineitem)}
    browser.get(tool.url(launch13(browser, tool, platform, target, claims).headers["Location"]))
    answer(browser, tool, course_problems(course_id)[0], user_pk(platform.issuer, "10"), right=True)
    assert m.LtiChildScore.objects.filter(content_id=course_id).count() == 1  # kept, for when it is turned on
    assert deliver().claimed == 0 and book.score_of(lineitem, "10") is None


def test_an_instructor_on_the_created_link_is_staff_of_the_course_and_its_blocks(browser, tool, platform):
    course_id = demo_course_id()
    run("publish", course_id)
    target = launch_details(tool.base_url, course_id).lti13_target_link_uri
    claims = {"sub": "7", "roles": list(INSTRUCTOR_ROLES), "custom": {"content_id": course_id}}
    launched = launch13(browser, tool, platform, target, claims)
    page = browser.get(tool.url(launched.headers["Location"]))
    assert 'data-lti-role="staff"' in page.text and 'class="lti-publish-grades"' in page.text


def test_an_unpublished_course_is_refused_at_launch_and_nothing_is_written(browser, tool, platform):
    course_id = demo_course_id()
    target = launch_details(tool.base_url, course_id).lti13_target_link_uri
    before = written_rows()
    claims = {"sub": "8", "roles": list(LEARNER_ROLES), "custom": {"content_id": course_id}}
    refused = launch13(browser, tool, platform, target, claims)
    assert_refused(refused, "unknown_content", 404)
    assert "not published here" in refused.text
    assert written_rows() == before
    # Nor is it offered to instructors.
    page = open_picker(browser, tool, select_content(browser, tool, platform))
    assert f'value="{course_id}"' not in page.text and "Whole course" not in page.text
