"""`make demo`, as a new user tries it: a learner launches from the demo's launch page, answers the
published problems, and the demo platform's gradebook shows the score the demo's grade loop delivered,
by LTI 1.3 AGS and by LTI 1.1 Basic Outcomes. The real demo process (python -m demo), real HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import jwt
import pytest
import requests

from lti_peer.keys import attacker_key
from tests.test_demo import Demo, browse, click, free_port, launch_from_the_demo_page, pick, select_content, start_demo


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


# -- "Select content": the demo platform's deep linking -------------------------------------------


def test_select_content_adds_the_picked_content_to_the_demo_course_and_its_gradebook(demo):
    with requests.Session() as instructor:
        picker = select_content(demo, instructor, "workbench")
        items = re.findall(r'name="item" value="([^"]+)"', picker.text)
        decimals = next(item for item in items if item.startswith("lti-publish-published-content-2."))
        back, return_url, answer = pick(instructor, picker, "add", item=decimals, gradebook=decimals)
    assert back.status_code == 200 and back.url.endswith("/demo/?added=1"), back.text[:2000]
    assert "Items added to the demo course: 1." in back.text
    # The created link, listed with its launch buttons: the content's URL, its custom parameter, its column.
    [link_id] = re.findall(r'<section class="lti-demo__added" data-link="([^"]+)"', back.text)
    added = back.text.split(f'data-link="{link_id}"', 1)[1]
    assert "<h3>Published content: decimals</h3>" in added
    assert f"/lti_publish/content/{decimals}/" in added and f"content_id={decimals}" in added
    assert "/mod/lti/services.php/2/lineitems/" in added
    # The answer is taken once: the same JWT again is refused, and adds nothing.
    replayed = requests.post(return_url, data=answer, timeout=10)
    assert replayed.status_code == 400 and "nonce reused" in replayed.text
    assert len(re.findall(r'class="lti-demo__added"', requests.get(demo.base + "/demo/", timeout=10).text)) == 1

    with requests.Session() as learner:
        action, fields = click(back, link=link_id, role="learner")
        landed = browse(
            learner, learner.post(action, data=fields, allow_redirects=False, timeout=30), time.monotonic() + 30
        )
        assert landed.status_code == 200 and landed.url.endswith(f"/lti_publish/content/{decimals}/"), landed.url
        assert "(learner)" in landed.text and "How many hundredths make" in landed.text
        tenths = re.search(r"How many hundredths make (\d+) tenths\?", landed.text)
        assert tenths, landed.text[:2000]
        problem = decimals.replace(".lti_publish.d0.u0", ".problem_demo.d0.u0")
        checked = learner.post(
            f"{demo.base}/handler/{problem}/check/",
            json={"hundredths": [{"name": "input", "value": str(10 * int(tenths[1]))}]},
            headers={"X-CSRFToken": learner.cookies.get("csrftoken", "")},
            timeout=10,
        )
        assert checked.status_code == 200 and checked.json()["checkResults"] == {"hundredths_checker": True}
    # The demo's grade loop delivers the score to exactly the added link's column.
    give_up = time.monotonic() + 30
    while True:
        page = requests.get(demo.base + "/demo/gradebook", timeout=10).text
        rows = [re.findall(r"<td>(.*?)</td>", row) for row in page.split("<tr")[1:]]
        if any(cells[:3] == ["Published content: decimals", "Ada Lovelace (101)", "100"] for cells in rows):
            break
        assert time.monotonic() < give_up, page[-3000:]
        time.sleep(0.5)


def test_select_content_cancelled_adds_nothing_and_a_forged_answer_is_refused(demo):
    page = requests.get(demo.base + "/demo/", timeout=10).text
    links_before = page.count('class="lti-demo__added"')
    with requests.Session() as instructor:
        back, _, _ = pick(instructor, select_content(demo, instructor, "workbench"), "cancel")
    assert back.status_code == 200 and back.url.endswith("/demo/?added=0") and "Nothing was added." in back.text
    return_url = f"{demo.base}/demo/platform/mod/lti/contentitem_return.php?course=2&id=1"
    # Signed with another key than the tool's, under the kid of the tool's key.
    [tool_key] = requests.get(demo.base + "/lti_publish/lti13/jwks", timeout=10).json()["keys"]
    claims = {"iss": "demo-client", "aud": f"{demo.base}/demo/platform", "nonce": "n", "iat": int(time.time())}
    claims |= {"exp": int(time.time()) + 60, "https://purl.imsglobal.org/spec/lti-dl/claim/data": "_2_x"}
    forged = jwt.encode(claims, attacker_key(), "RS256", {"kid": tool_key["kid"]})
    for answer in ({"JWT": "garbled"}, {"JWT": forged}, {}):
        refused = requests.post(return_url, data=answer, timeout=10)
        assert refused.status_code == 400 and "Nothing was added to the demo course" in refused.text, answer
    assert requests.post(return_url.replace("id=1", "id=9"), data={"JWT": forged}, timeout=10).status_code == 404
    page = requests.get(demo.base + "/demo/", timeout=10).text
    assert page.count('class="lti-demo__added"') == links_before
