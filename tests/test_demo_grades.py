"""`make demo`, as a new user tries it: a learner launches from the demo's launch page, answers the
published problems, and the demo platform's gradebook shows the score the demo's grade loop delivered,
by LTI 1.3 AGS and by LTI 1.1 Basic Outcomes. The real demo process (python -m demo), real HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import requests

from tests.test_demo import Demo, free_port, launch_from_the_demo_page, start_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    # The hub is not needed here: its port is one nobody listens on, and it is given up at once.
    demo = start_demo(tmp_path_factory.mktemp("demo-var"), {"LTI_PUBLISH_HUB_PORT": str(free_port())})
    try:
        yield demo
    finally:
        assert demo.stop() == 0, demo.printout


def answer_both_problems(demo: Demo, learner: requests.Session, content_id: str, page: str) -> None:
    """What the problems' JavaScript posts when the learner checks the right answers."""
    first = re.search(r"What is (\d+)/(\d+) \+ (\d+)/\2\?", page)
    second = re.search(r"How many eighths make (\d+) quarters\?", page)
    assert first and second, page[:2000]
    answers = [
        ("d0.u0", "numerator", str(int(first[1]) + int(first[3]))),
        ("d1.u0", "eighths", str(2 * int(second[1]))),
    ]
    for problem, name, value in answers:
        usage_id = content_id.replace(".lti_publish.d0.u0", f".problem_demo.{problem}")
        checked = learner.post(
            f"{demo.base}/handler/{usage_id}/check/?student=1",
            json={name: [{"name": "input", "value": value}]},
            headers={"X-CSRFToken": learner.cookies.get("csrftoken", "")},
            timeout=10,
        )
        assert checked.status_code == 200, checked.text[:500]


@pytest.mark.parametrize(("version", "service", "shown"), [("1.3", "AGS", "100"), ("1.1", "LTI 1.1", "1")])
def test_a_learners_score_reaches_the_demo_platforms_gradebook(demo, version, service, shown):
    with requests.Session() as learner:
        content_id, landed = launch_from_the_demo_page(demo, learner, "learner", version)
        assert landed.status_code == 200 and "Adding fractions" in landed.text
        answer_both_problems(demo, learner, content_id, landed.text)
    deadline = time.monotonic() + 30  # the demo's loop delivers every 2 s
    while True:
        page = requests.get(demo.base + "/demo/gradebook", timeout=10)
        assert page.status_code == 200
        # Per row: activity, learner, score, maximum, activity progress, grading progress, received, service.
        cells_of = (re.findall(r"<td>(.*?)</td>", row) for row in page.text.split("<tr")[1:])
        rows = [cells for cells in cells_of if len(cells) >= 8 and cells[7] == service]
        scores = [cells[2] for cells in rows]
        if shown in scores or f"{shown}.0" in scores:
            if service == "AGS":  # LTI 1.1 outcomes carry no progress
                assert all(cells[5] == "FullyGraded" for cells in rows if cells[2] in (shown, f"{shown}.0"))
            return
        assert time.monotonic() < deadline, page.text[-3000:]
        time.sleep(0.5)
