"""The grade outbox in Django's admin (the demo mounts it at /admin/): read-only pages listing where each
score stands, counts per state, and "Retry now", which goes through the store's ``retry_now`` (the
outbox's state table decides what may be sent again)."""

from __future__ import annotations

import random
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from lti_core.outbox import OutboxKey, OutboxState, Score, ServiceKind, ags_target, lti11_target
from lti_xblock import models as m
from lti_xblock.store import DjangoStore

pytestmark = pytest.mark.django_db

ISSUER = "https://moodle.example"
LINEITEM = f"{ISSUER}/mod/lti/services.php/2/lineitems/7/lineitem?type_id=2"
URL = "/admin/lti_xblock/ltigradeoutbox/"


def key(user: str) -> OutboxKey:
    return OutboxKey(ISSUER, user, ags_target(LINEITEM, "abc"))


@pytest.fixture
def outbox() -> DjangoStore:
    """Entries being sent (an AGS and an LTI 1.1 one), delivered, retrying (a 503), failed (a 400)."""
    store = DjangoStore()
    now = time.time()
    for user in ("sending-1", "delivered-2", "retrying-3", "failed-4"):
        store.enqueue_score(key(user), ServiceKind.AGS, Score(7, 10), now, now)
    store.enqueue_score(
        OutboxKey("moodle-key", "lti11-5", lti11_target(f"{ISSUER}/mod/lti/service.php", "sourcedid-5")),
        ServiceKind.LTI11_OUTCOME,
        Score(0.5, 1.0),
        now,
        now,
    )
    claimed = {entry.key.platform_user_id: entry for entry in store.claim_due(now, 10, "w", 60)}
    store.complete(key("delivered-2"), claimed["delivered-2"].version, now)
    answers = {"retrying-3": (True, 503, "busy: try later"), "failed-4": (False, 400, "invalid_score: the score " * 9)}
    for user, (retryable, status, error) in answers.items():
        store.fail(key(user), 1, now, retryable=retryable, status=status, error=error, rng=random.Random(1))
    return store


def test_the_list_shows_each_score_and_the_counts_per_state(admin_client, outbox):
    page = admin_client.get(URL).content.decode()
    for label in ("pending (0)", "being sent (2)", "delivered (1)", "retrying (1)", "failed (1)"):
        assert label in page
    assert "failed-4 @ https://moodle.example" in page and "7 / 10" in page and "0.5 / 1" in page
    assert "https://moodle.example/mod/lti/services.php/2/lineitems/7/lineitem?type_id=2" in page
    assert "sourcedid-5" not in page  # the LTI 1.1 target's sourcedid: only its service URL is listed
    assert "invalid_score: the score" in page and "invalid_score: the score " * 9 not in page  # an excerpt
    failed = admin_client.get(URL, {"state": "failed"}).content.decode()
    assert "failed-4" in failed and "retrying-3" not in failed
    searched = admin_client.get(URL, {"q": "retrying-3"}).content.decode()
    assert "retrying-3" in searched and "failed-4" not in searched


def test_entries_are_read_only(admin_client, outbox):
    row = m.LtiGradeOutbox.objects.get(platform_user_id="failed-4")
    page = admin_client.get(f"{URL}{row.pk}/change/")
    assert page.status_code == 200 and "the score" in page.content.decode()
    assert admin_client.get(f"{URL}add/").status_code == 403
    assert admin_client.post(f"{URL}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"{URL}{row.pk}/change/", {"state": "pending"}).status_code == 403
    assert m.LtiGradeOutbox.objects.get(pk=row.pk).state == "failed"


def retry(client, *users: str):
    selected = [str(m.LtiGradeOutbox.objects.get(platform_user_id=user).pk) for user in users]
    return client.post(URL, {"action": "retry_now", "_selected_action": selected}, follow=True)


def test_retry_now_sends_failed_and_retrying_scores_again(admin_client, outbox):
    page = retry(admin_client, "failed-4", "retrying-3", "delivered-2").content.decode()
    assert "2 scores will be sent again now." in page
    assert "1 scores were not failed or retrying: left as they are." in page
    states = {user: outbox.get_outbox_entry(key(user)).state for user in ("failed-4", "retrying-3", "delivered-2")}
    assert states == {"failed-4": OutboxState.PENDING, "retrying-3": OutboxState.PENDING, "delivered-2": "delivered"}
    assert outbox.get_outbox_entry(key("failed-4")).last_status == 400  # the platform's last answer is kept


def test_retry_now_needs_the_change_permission(client, outbox):
    viewer = get_user_model().objects.create_user(username="viewer", password="pw-0123456789", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_ltigradeoutbox"))
    client.force_login(viewer)
    page = client.get(URL).content.decode()
    assert "failed-4" in page and "retry_now" not in page
    retry(client, "failed-4")
    assert outbox.get_outbox_entry(key("failed-4")).state is OutboxState.FAILED
