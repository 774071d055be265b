"""Deep linking end to end on a real hub, as far as the gradebook: a teacher's "Select content" from the
platform peer, two items picked with one in the gradebook; the browser posts the hub's signed answer to
the peer's return endpoint (Moodle's contentitem_return.php), which checks it (pyjwt, the hub's JWKS)
and makes the resource links and the line item; learners launch each created link from the peer and
land on its notebook; a grader's score for the graded one reaches exactly its line item.

One hub (the catalog of ``tests.test_hub_deep_linking``, a grader service with the score scope); no
user's server is started: the landing redirect is asserted.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest
import requests

from lti_peer.ags import Gradebook, gradebook
from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer, parse_autosubmit_form
from lti_peer.token import token_endpoint
from tests.hub import HubProcess
from tests.test_hub_deep_linking import CATALOG, open_picker, submit
from tests.test_hub_grades import hub_user, outbox_rows, wait_for
from tests.test_hub_lti import launch13, new_user_id

pytestmark = pytest.mark.slow

SCOPE = "custom:lti-publish:scores"
GRADER_TOKEN = secrets.token_hex(32)


@pytest.fixture(scope="module")
def peer() -> Iterator[PlatformPeer]:
    with PlatformPeer(client_id="dl-scores-client") as platform:
        yield platform


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, peer: PlatformPeer) -> Iterator[HubProcess]:
    platforms = [
        {
            "issuer": peer.issuer,
            "client_id": peer.client_id,
            "authorize_url": peer.auth_url,
            "jwks_endpoint": peer.jwks_url,
            "token_url": peer.token_url,
        }
    ]
    config = f"""
c.JupyterHub.authenticator_class = "lti"
c.LTIAuthenticator.platforms = {platforms!r}
c.LTIAuthenticator.catalog = {CATALOG!r}
c.LTIAuthenticator.allow_private_service_urls = True  # the peer is on loopback, over http
c.JupyterHub.services.append({{"name": "grader", "api_token": "{GRADER_TOKEN}"}})
c.JupyterHub.load_roles.append({{"name": "lti-graders", "scopes": ["{SCOPE}"], "services": ["grader"]}})
"""
    crypt_key = base64.b64encode(secrets.token_bytes(32)).decode()
    hub = HubProcess(tmp_path_factory.mktemp("hubdlscores"), config, env={"JUPYTERHUB_CRYPT_KEY": crypt_key})
    with hub.start():
        peer.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        token_endpoint(peer).tool_jwks_url = hub.hub_url + "lti13/jwks"
        yield hub


@pytest.fixture
def book(peer: PlatformPeer) -> Gradebook:
    return gradebook(peer)


def test_picked_items_become_links_whose_score_reaches_the_created_line_item(hub, peer, book):
    # The course's gradebook has a column already (the one the peer's default launch claim names).
    existing = book.add_lineitem("Attendance", 100)
    # The teacher's "Select content", through the hub's picker: week 1 in the gradebook, week 2 not.
    peer.user_id = new_user_id()
    with requests.Session() as teacher:
        claims = {"roles": INSTRUCTOR_ROLES, **peer.deep_linking.request_claims()}
        page = open_picker(teacher, hub, launch13(teacher, hub, peer, claims=claims))
        sent = submit(teacher, hub, page, "add", item=["week1", "week2"], gradebook=["week1"])
        assert sent.status_code == 200, sent.text[:2000]
        action, fields = parse_autosubmit_form(sent.text)
        assert action == peer.deep_linking.return_url
        created = teacher.post(action, data=fields, allow_redirects=False, timeout=30)  # the form submits itself
    assert created.status_code == 200, created.text
    assert peer.deep_linking.log == ["ok"]

    week1, week2 = peer.deep_links
    assert (week1.title, dict(week1.custom)) == ("Week 1: Python", {"catalog_item": "week1"})
    assert (week2.title, dict(week2.custom), week2.lineitem) == ("Week 2: Data", {"catalog_item": "week2"}, "")
    (item,) = [item for item in book.items.values() if book.item_url(item) != existing]
    assert book.item_url(item) == week1.lineitem
    assert (item.label, item.score_maximum, item.resource_link_id, item.resource_id) == (
        "Week 1: Python",
        10.0,
        week1.id,
        "week1",
    )

    # A learner launches each created link from the course and lands on its notebook.
    learners: dict[str, str] = {}
    for link, landing in (
        (week1, "/hub/user-redirect/lab/tree/course/week1.ipynb"),
        (week2, "/hub/user-redirect/lab/tree/course/week2"),
    ):
        peer.user_id = learners[link.id] = new_user_id()
        with requests.Session() as learner:
            response = launch13(learner, hub, peer, target=link.url, claims=peer.deep_linking.launch_claims(link))
        assert response.status_code == 302, response.text[:2000]
        assert response.headers["Location"] == landing

    # A grader's score for the graded link goes to the line item the platform made for it, and only there.
    name = hub_user(hub, peer.issuer, learners[week1.id])
    answer = requests.post(
        hub.hub_url + "api/lti/scores",
        json={"user": name, "assignment": week1.id, "score": 7, "max_score": 10},
        headers={"Authorization": f"token {GRADER_TOKEN}"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    kept = wait_for(lambda: book.score_of(week1.lineitem, learners[week1.id]), "the score in the created line item")
    assert (kept.score_given, kept.score_maximum, kept.grading_progress) == (7, 10, "FullyGraded")
    wait_for(lambda: outbox_rows(hub) and all(r["state"] == "delivered" for r in outbox_rows(hub)), "delivered")
    assert list(book.scores) == [(item.number, learners[week1.id])]  # nothing in the other column
