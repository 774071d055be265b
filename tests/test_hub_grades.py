"""Grade passback on the JupyterHub host, for real: a hub (both LTI versions) and the platform peer's
gradebook (AGS) and outcome service (LTI 1.1) on loopback.

A learner launches; a grader submits the learner's score to /hub/api/lti/scores over HTTP, with a
JupyterHub token that has only the custom scope ``custom:lti-publish:scores`` (a service's, granted
by a role in the hub's config); the hub's delivery loop sends it, and the peer's gradebook holds it,
once. Refusals are JSON with a reason code and write nothing. The admins' outbox page lists what
failed with the platform's answer, and "Retry now" delivers it. ``jupyter-lti-score`` submits too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_lti.http import TornadoTransport
from jupyter_lti.scores import GradeSync, ScoreSubmission, enqueue_scores
from lti_core.grades import AsyncGradeWorker
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.memory import MemoryStore
from lti_core.types import AgsEndpoint, LaunchContext, LaunchServices
from lti_peer import DELETE
from lti_peer.ags import Gradebook, gradebook
from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer
from lti_peer.token import token_endpoint
from lti_peer.tool_jwks import serve_tool_jwks
from tests.conftest import registration_of
from tests.hub import HubProcess
from tests.test_hub_lti import launch11, launch13

pytestmark = pytest.mark.slow

SCOPE = "custom:lti-publish:scores"
CONSUMER_KEY, CONSUMER_SECRET = "moodle-key", "moodle-secret-0123456789"
GRADER_TOKEN = secrets.token_hex(32)
#: A teaching assistant's service: the scope for the hub users of the group "section-a" only.
TA_TOKEN = secrets.token_hex(32)
SCORE_SCOPE_URL = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


@pytest.fixture(scope="module")
def peer() -> Iterator[PlatformPeer]:
    with PlatformPeer(client_id="grades-client") as platform:
        platform.outcomes.add_consumer(CONSUMER_KEY, CONSUMER_SECRET)
        yield platform
        gradebook(platform).answer_again()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, peer: PlatformPeer) -> Iterator[HubProcess]:
    config = f"""
c.JupyterHub.authenticator_class = "lti"
c.LTIAuthenticator.issuer = "{peer.issuer}"
c.LTIAuthenticator.client_id = ["{peer.client_id}"]
c.LTIAuthenticator.authorize_url = "{peer.auth_url}"
c.LTIAuthenticator.jwks_endpoint = "{peer.jwks_url}"
c.LTIAuthenticator.token_url = "{peer.token_url}"
c.LTIAuthenticator.consumers = {{"{CONSUMER_KEY}": "{CONSUMER_SECRET}"}}
c.LTIAuthenticator.admin_instructors = True
c.LTIAuthenticator.allow_private_service_urls = True  # the peer is on loopback, over http
# The scope is the authenticator's own: a role grants it, no c.JupyterHub.custom_scopes needed.
c.JupyterHub.services.append({{"name": "grader", "api_token": "{GRADER_TOKEN}"}})
c.JupyterHub.load_roles.append({{"name": "lti-graders", "scopes": ["{SCOPE}"], "services": ["grader"]}})
c.JupyterHub.services.append({{"name": "ta", "api_token": "{TA_TOKEN}"}})
c.JupyterHub.load_roles.append({{"name": "section-a-ta", "scopes": ["{SCOPE}!group=section-a"], "services": ["ta"]}})
"""
    crypt_key = base64.b64encode(secrets.token_bytes(32)).decode()
    hub = HubProcess(tmp_path_factory.mktemp("hubgrades"), config, env={"JUPYTERHUB_CRYPT_KEY": crypt_key})
    with hub.start():
        peer.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        token_endpoint(peer).tool_jwks_url = hub.hub_url + "lti13/jwks"
        yield hub


@pytest.fixture
def book(peer: PlatformPeer) -> Gradebook:
    return gradebook(peer)


def query(hub: HubProcess, sql: str, *params: Any) -> list[sqlite3.Row]:
    """Rows of the hub's LTI store (the SQLite file beside its database), read beside the hub."""
    with contextlib.closing(sqlite3.connect(f"file:{hub.workdir / 'lti_publish.sqlite'}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchall()


def outbox_rows(hub: HubProcess) -> list[sqlite3.Row]:
    return query(hub, "SELECT * FROM lti_publish_grade_outbox")


def hub_user(hub: HubProcess, platform: str, platform_user_id: str) -> str:
    (row,) = query(
        hub,
        "SELECT DISTINCT local_user_id FROM lti_publish_launch_contexts WHERE platform = ? AND platform_user_id = ?",
        platform,
        platform_user_id,
    )
    return str(row["local_user_id"])


def new_user_id() -> str:
    return str(secrets.randbelow(10**9) + 1000)


def launch_with_ags(hub: HubProcess, peer: PlatformPeer, book: Gradebook, link_id: str, title: str) -> tuple[str, str]:
    """A learner's LTI 1.3 launch into a link whose line item is in the gradebook: (hub user, line item)."""
    lineitem = book.add_lineitem(title, 10, resource_link_id=link_id)
    peer.user_id = new_user_id()
    claims = {
        "resource_link": {"id": link_id, "title": title},
        "ags": {"scope": [SCORE_SCOPE_URL], "lineitem": lineitem},
    }
    with requests.Session() as browser:
        assert launch13(browser, hub, peer, claims=claims).status_code == 302
    return hub_user(hub, peer.issuer, peer.user_id), lineitem


def submit(hub: HubProcess, scores: Any, token: str = GRADER_TOKEN) -> requests.Response:
    return requests.post(
        hub.hub_url + "api/lti/scores", json=scores, headers={"Authorization": f"token {token}"}, timeout=30
    )


def wait_for(found: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds} s")


def score_posts(book: Gradebook, lineitem: str) -> list[tuple[str, str, int]]:
    path = lineitem.split("?")[0].split("127.0.0.1", 1)[1].split("/", 1)[1]
    return [entry for entry in book.log if entry[0] == "POST" and f"/{path}/scores" in entry[1]]


def assert_refused(response: requests.Response, status: int, reason: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    document: dict[str, Any] = response.json()
    assert document["reason"] == reason and document["message"], document
    return document


def test_an_ags_score_reaches_the_gradebook_exactly_once(hub, peer, book):
    name, lineitem = launch_with_ags(hub, peer, book, "rl-week1", "Week 1")
    answer = submit(hub, {"user": name, "assignment": "rl-week1", "score": 7, "max_score": 10})
    assert answer.status_code == 202, answer.text
    ((accepted,),) = [item["deliveries"] for item in answer.json()["scores"]]
    assert (accepted["service"], accepted["state"], accepted["resource_link_id"]) == ("ags", "pending", "rl-week1")

    kept = wait_for(lambda: book.score_of(lineitem, peer.user_id), "the score in the gradebook")
    assert (kept.score_given, kept.score_maximum) == (7, 10)
    assert (kept.activity_progress, kept.grading_progress) == ("Completed", "FullyGraded")
    wait_for(lambda: outbox_rows(hub) and all(r["state"] == "delivered" for r in outbox_rows(hub)), "delivered")
    time.sleep(0.3)  # a second delivery, if there were one, would be on its way by now
    assert len(score_posts(book, lineitem)) == 1


def test_the_assignment_is_the_link_title_or_the_target_and_a_newer_score_wins(hub, peer, book):
    name, lineitem = launch_with_ags(hub, peer, book, "rl-week2", "Week 2")
    first = submit(hub, {"user": name, "assignment": "Week 2", "score": 3, "max_score": 10, "final": False})
    assert first.status_code == 202, first.text
    wait_for(lambda: book.score_of(lineitem, peer.user_id), "the first score")
    assert book.score_of(lineitem, peer.user_id).activity_progress == "InProgress"
    target = hub.hub_url + "lti13/oauth_callback"  # the launch's target_link_uri, its content on the hub
    second = submit(hub, [{"user": name, "assignment": target, "score": 9, "max_score": 10}])
    assert second.status_code == 202, second.text
    wait_for(lambda: book.score_of(lineitem, peer.user_id).score_given == 9, "the newer score")
    assert len(score_posts(book, lineitem)) == 2


def test_an_lti11_score_reaches_the_outcome_service(hub, peer):
    user_id = new_user_id()
    url, sourcedid = peer.outcomes.issue(user_id, "rl-11")
    with requests.Session() as session:
        launched = launch11(
            session,
            hub,
            user_id=user_id,
            resource_link_id="rl-11",
            resource_link_title="Notebook 11",
            lis_outcome_service_url=url,
            lis_result_sourcedid=sourcedid,
        )
    assert launched.status_code == 302, launched.text[:2000]
    name = hub_user(hub, CONSUMER_KEY, user_id)
    answer = submit(hub, {"user": name, "assignment": "Notebook 11", "score": 4, "max_score": 5})
    assert answer.status_code == 202, answer.text
    assert answer.json()["scores"][0]["deliveries"][0]["service"] == "lti11_outcome"
    assert wait_for(lambda: peer.outcomes.gradebook.get(sourcedid), "the outcome") == pytest.approx(0.8)
    time.sleep(0.3)
    assert [(r.operation, r.code_major) for r in peer.outcomes.log if r.sourcedid == sourcedid] == [
        ("replaceResult", "success")
    ]


def test_refusals_are_json_with_a_reason_and_write_nothing(hub, peer, book):
    name, _ = launch_with_ags(hub, peer, book, "rl-refusals", "Refusals")
    before = [dict(row) for row in outbox_rows(hub)]
    good = {"user": name, "assignment": "rl-refusals", "score": 1, "max_score": 2}

    assert_refused(submit(hub, good, token=hub.api_token), 403, "scope_missing")  # an admin's token, no scope
    assert_refused(submit(hub, good, token="not-a-token"), 403, "scope_missing")
    assert_refused(submit(hub, {**good, "user": "nobody-launched"}), 404, "user_unknown")
    assert_refused(submit(hub, {**good, "assignment": "Week 99"}), 404, "assignment_unknown")
    assert_refused(submit(hub, {**good, "score": 3}), 400, "score_out_of_range")
    assert_refused(submit(hub, {**good, "max_score": 0}), 400, "score_out_of_range")
    assert_refused(submit(hub, {**good, "score": "7"}), 400, "score_request_invalid")
    assert_refused(submit(hub, {**good, "final": "yes"}), 400, "score_request_invalid")
    assert_refused(submit(hub, []), 400, "score_request_invalid")
    grader = {"Authorization": f"token {GRADER_TOKEN}"}
    refused = requests.post(hub.hub_url + "api/lti/scores", data=b"{", headers=grader, timeout=30)
    assert_refused(refused, 400, "score_request_invalid")
    for body in (b"[" * 100_000, b'{"user": "\\ud800"}', b'{"score": 1' + b"0" * 400 + b"}", b"\xff"):
        weird = requests.post(hub.hub_url + "api/lti/scores", data=body, headers=grader, timeout=30)
        assert_refused(weird, 400, "score_request_invalid")
    assert_refused(submit(hub, {**good, "user": name + "\x00"}), 400, "score_request_invalid")
    assert_refused(submit(hub, {**good, "score": 10**400}), 400, "score_request_invalid")
    assert_refused(requests.get(hub.hub_url + "api/lti/scores", headers=grader, timeout=30), 405, "method_not_allowed")
    batch = assert_refused(submit(hub, [good, {**good, "assignment": "Week 99"}]), 404, "assignment_unknown")
    assert batch["index"] == 1  # and the first one, good, was not enqueued either

    peer.user_id = new_user_id()
    with requests.Session() as browser:
        claims = {"resource_link": {"id": "rl-no-ags", "title": "No grades"}, "ags": DELETE}
        assert launch13(browser, hub, peer, claims=claims).status_code == 302
    ungraded = hub_user(hub, peer.issuer, peer.user_id)
    assert_refused(submit(hub, {**good, "user": ungraded, "assignment": "rl-no-ags"}), 409, "grade_service_unavailable")
    assert [dict(row) for row in outbox_rows(hub)] == before


def admin_session(hub: HubProcess, peer: PlatformPeer) -> requests.Session:
    """A hub admin's browser: an instructor of the platform (admin_instructors)."""
    session = requests.Session()
    peer.user_id = new_user_id()
    assert launch13(session, hub, peer, claims={"roles": INSTRUCTOR_ROLES}).status_code == 302
    return session


def test_the_admins_see_a_failed_score_with_the_platforms_answer_and_retry_it(hub, peer, book):
    name, lineitem = launch_with_ags(hub, peer, book, "rl-retry", "Retry")
    learner = peer.user_id
    book.fail_next(1, status=400)
    assert submit(hub, {"user": name, "assignment": "rl-retry", "score": 5, "max_score": 10}).status_code == 202
    wait_for(lambda: [r for r in outbox_rows(hub) if r["state"] == "failed"], "the failure")
    assert book.score_of(lineitem, learner) is None

    page_url = hub.hub_url + "lti/grades"
    assert requests.get(page_url, allow_redirects=False, timeout=30).status_code in (302, 403)  # not signed in
    with requests.Session() as learner_browser:
        peer.user_id = new_user_id()
        assert launch13(learner_browser, hub, peer).status_code == 302
        assert learner_browser.get(page_url, timeout=30).status_code == 403
    with admin_session(hub, peer) as admin:
        assert 'href="/hub/lti/grades"' in admin.get(hub.hub_url + "lti13/registrations", timeout=30).text
        page = admin.get(page_url, timeout=30).text
        assert '<li data-state="failed">' in page and "the gradebook failed (as asked)" in page
        row = re.search(r'<tr data-entry="[0-9a-f]+">(?:(?!</tr>).)*data-state="failed".*?</tr>', page, re.S)
        assert row is not None and f"<code>{name}</code>" in row.group(0) and "400" in row.group(0)
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', row.group(0)))
        assert set(fields) == {"_xsrf", "entry", "action"} and fields["action"] == "retry_now"
        form = fields
        refused = admin.post(page_url, data={"entry": fields["entry"], "action": "retry_now"}, allow_redirects=False)
        assert refused.status_code == 403  # the hub's XSRF check holds
        retried = admin.post(page_url, data=form, allow_redirects=False, timeout=30)
        assert retried.status_code == 302, retried.text[:2000]
        kept = wait_for(lambda: book.score_of(lineitem, learner), "the retried score")
        assert kept.score_given == 5
        again = admin.post(page_url, data=form, allow_redirects=False, timeout=30)  # delivered: nothing to retry
        assert again.status_code == 404 and "outbox_entry_unknown" in again.text


def test_the_cli_submits_a_score_and_a_csv(hub, peer, book, tmp_path: Path):
    name, lineitem = launch_with_ags(hub, peer, book, "rl-cli", "CLI")
    learner = peer.user_id
    env = {**os.environ, "GRADER_TOKEN": GRADER_TOKEN}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "jupyter_lti.score_cli", "--hub-url", hub.url, "--token-env", "GRADER_TOKEN"]
        return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    done = cli(name, "rl-cli", "6", "--max-score", "10")
    assert done.returncode == 0, done.stderr
    assert f"{name}\trl-cli\tags pending" in done.stdout
    wait_for(lambda: book.score_of(lineitem, learner), "the CLI's score")

    grades = tmp_path / "grades.csv"
    grades.write_text(f"user,assignment,score,max_score\n{name},CLI,8,10\n{name},Week 99,1,10\n")
    refused = cli("--csv", str(grades))
    assert refused.returncode == 1 and "assignment_unknown" in refused.stderr and "CSV line 3" in refused.stderr
    assert book.score_of(lineitem, learner).score_given == 6  # the batch was refused whole
    skipping = cli("--csv", str(grades), "--skip-unmatched")  # nbgrader's export lists every student
    assert skipping.returncode == 1 and "skipped" in skipping.stderr and "CSV line 3" in skipping.stderr
    wait_for(lambda: book.score_of(lineitem, learner).score_given == 8, "the CSV's score")
    grades.write_text(f"student_id,assignment,score,max_score,final\n{name},CLI,9,10,true\n")
    assert cli("--csv", str(grades), "--user-column", "student_id").returncode == 0
    wait_for(lambda: book.score_of(lineitem, learner).score_given == 9, "the next CSV's score")

    env["GRADER_TOKEN"] = ""
    assert cli(name, "rl-cli", "6").returncode == 2  # no token
    env["GRADER_TOKEN"] = hub.api_token
    assert cli(name, "rl-cli", "6").returncode == 1  # a token without the scope


def test_a_scope_filtered_to_a_group_submits_for_its_members_only(hub, peer, book):
    member, lineitem = launch_with_ags(hub, peer, book, "rl-ta", "TA")
    learner = peer.user_id
    outsider, _ = launch_with_ags(hub, peer, book, "rl-ta", "TA")
    admin = {"Authorization": f"token {hub.api_token}"}
    group_url = hub.hub_url + "api/groups/section-a"
    assert requests.post(group_url, json={"users": [member]}, headers=admin, timeout=30).status_code == 201

    score = {"assignment": "rl-ta", "score": 2, "max_score": 4}
    denied = assert_refused(submit(hub, [{**score, "user": outsider}], token=TA_TOKEN), 403, "scope_excludes_user")
    assert denied["index"] == 0
    assert submit(hub, {**score, "user": member}, token=TA_TOKEN).status_code == 202
    assert wait_for(lambda: book.score_of(lineitem, learner), "the TA's score").score_given == 2


class SmallBackoff:
    """The backoff's draw: a small fraction (30 s * 0.002 = 60 ms for the first retry)."""

    def random(self) -> float:
        return 0.002


def test_the_hubs_loop_sends_a_failed_score_again_when_its_backoff_ends_not_an_interval_later():
    """GradeSync in-process, on the hub's transport: the platform answers 500, the loop retries the
    score once the outbox's backoff has run (about a second), long before the next interval."""
    store = MemoryStore()
    keys = ToolKeySet(store)
    keys.ensure_key()
    with serve_tool_jwks(keys.jwks) as jwks_url, PlatformPeer() as platform:
        token_endpoint(platform).tool_jwks_url = jwks_url
        store.save_registration(registration_of(platform))
        book = gradebook(platform)
        lineitem = book.add_lineitem("Loop", 10)
        ags = LaunchServices(ags=AgsEndpoint(lineitem_url=lineitem))
        store.save_launch_context(
            LaunchContext(platform.issuer, "42", "sam", "rl-loop", client_id=platform.client_id, services=ags)
        )
        book.fail_next(1)

        async def run() -> float:
            worker = AsyncGradeWorker(store, TornadoTransport(), keys, allow_private=True, rng=SmallBackoff())
            sync = GradeSync(worker, interval=3600)
            enqueue_scores(store, [ScoreSubmission("sam", "rl-loop", 7, 10)], time.time())
            started = time.monotonic()
            assert sync.start()  # a first pass at once: the 500
            while book.score_of(lineitem, "42") is None:
                await asyncio.sleep(0.02)
            await sync.stop()
            return time.monotonic() - started

        elapsed = asyncio.run(asyncio.wait_for(run(), 15))
    assert elapsed < 5
    assert [status for _, _, status in score_posts(book, lineitem)] == [500, 200]
