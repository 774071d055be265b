"""The session handover's decision table (``lti_core.handover``), row by row, and the prompt's start
in a frame (``lti_core.prompt.prompt_start``): plain data, a fake clock, the memory store."""

from __future__ import annotations

import threading

import pytest
from cryptography.fernet import Fernet

from lti_core import handover, pages
from lti_core.handover import (
    HANDOVER_LIFETIME,
    HandoverExpired,
    HandoverInvalid,
    HandoverOtherUser,
    HandoverStep,
    HandoverUsed,
    SessionHandover,
)
from lti_core.memory import MemoryStore
from lti_core.prompt import CookieEvidence, PromptStart, prompt_start

NOW = 1_760_000_000.0
LANDING = "https://tool.example/lti_publish/content/intro/"


class RecordingStore(MemoryStore):
    """The memory store, listing the redemptions it was asked for: a refusal asks none."""

    def __init__(self) -> None:
        super().__init__()
        self.consumed: list[str] = []

    def consume_nonce(self, scope: str, nonce: str, expires_at: float, now: float) -> bool:
        self.consumed.append(scope)
        return super().consume_nonce(scope, nonce, expires_at, now)


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
def handovers(store: MemoryStore) -> SessionHandover:
    return SessionHandover("the host's secret", store)


def test_a_framed_session_of_the_tokens_user_lands_without_using_the_token(handovers):
    token = handovers.issue("7", LANDING, NOW)
    for framed in (True, False):
        decision = handovers.decide(token, session_user="7", framed=framed, now=NOW + 1)
        assert (decision.step, decision.local_user_id, decision.landing_url) == (HandoverStep.LAND, "7", LANDING)
    # Not used up: the new window can still redeem it.
    assert handovers.decide(token, session_user="", framed=False, now=NOW + 2).step is HandoverStep.SIGN_IN


def test_a_frame_without_session_offers_the_new_window_and_uses_nothing(handovers, store):
    token = handovers.issue("7", LANDING, NOW)
    decision = handovers.decide(token, session_user="", framed=True, now=NOW + 1)
    assert decision.step is HandoverStep.OPEN_NEW_WINDOW
    assert store.consumed == []


def test_the_new_window_redeems_once(handovers, store):
    token = handovers.issue("7", LANDING, NOW)
    decision = handovers.decide(token, session_user="", framed=False, now=NOW + 5)
    assert (decision.step, decision.local_user_id, decision.landing_url) == (HandoverStep.SIGN_IN, "7", LANDING)
    assert store.consumed == [handover.NONCE_SCOPE]
    with pytest.raises(HandoverUsed) as refused:
        handovers.decide(token, session_user="", framed=False, now=NOW + 6)
    assert (refused.value.reason, refused.value.status) == ("handover_used", 403)


def test_racing_redemptions_sign_in_once(handovers):
    token = handovers.issue("7", LANDING, NOW)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def redeem() -> None:
        start.wait()
        try:
            outcomes.append(handovers.decide(token, session_user="", framed=False, now=NOW + 1).step.value)
        except HandoverUsed:
            outcomes.append("used")

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["sign_in"] + ["used"] * 7


@pytest.mark.parametrize("framed", [True, False])
def test_another_users_session_is_refused_and_nothing_is_written(handovers, store, framed):
    token = handovers.issue("7", LANDING, NOW)
    with pytest.raises(HandoverOtherUser) as refused:
        handovers.decide(token, session_user="8", framed=framed, now=NOW + 1)
    assert (refused.value.reason, refused.value.status) == ("handover_other_user", 409)
    assert store.consumed == []


def test_an_expired_token_is_refused_and_nothing_is_written(handovers, store):
    token = handovers.issue("7", LANDING, NOW)
    with pytest.raises(HandoverExpired) as refused:
        handovers.decide(token, session_user="", framed=False, now=NOW + HANDOVER_LIFETIME)
    assert (refused.value.reason, refused.value.status) == ("handover_expired", 403)
    with pytest.raises(HandoverExpired):  # even for the right session: the token is over
        handovers.decide(token, session_user="7", framed=True, now=NOW + HANDOVER_LIFETIME + 1)
    with pytest.raises(HandoverExpired):  # issued in the future: another clock
        handovers.decide(handovers.issue("7", LANDING, NOW + 600), session_user="", framed=False, now=NOW)
    assert store.consumed == []


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: "",
        lambda token: "not a token",
        lambda token: token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        # Right format, another host's key (a secret of its own): it does not open here.
        lambda token: SessionHandover("another host's secret", MemoryStore()).issue("7", LANDING, NOW),
        # Made with the key, but not a grant: a guessed payload shape.
        lambda token: (
            Fernet(handover.derive_fernet_key("the host's secret", info=handover.KEY_INFO))
            .encrypt_at_time(b'{"user": "", "landing": "/", "nonce": "x"}', int(NOW))
            .decode()
        ),
    ],
)
def test_a_forged_or_garbled_token_is_refused_and_nothing_is_written(handovers, store, forge):
    token = handovers.issue("7", LANDING, NOW)
    with pytest.raises(HandoverInvalid) as refused:
        handovers.decide(forge(token), session_user="", framed=False, now=NOW + 1)
    assert (refused.value.reason, refused.value.status) == ("handover_invalid", 403)
    assert store.consumed == []


def test_the_token_hides_who_and_where(handovers):
    token = handovers.issue("alice-7", LANDING, NOW)
    assert "alice" not in token and "lti_publish" not in token


def test_the_handover_page_offers_the_new_window():
    page = pages.handover_page("https://tool.example/continue?handover_token=T")
    assert (page.status, page.reason, page.action_label) == (200, "cookies_blocked_in_frame", "Open in a new window")
    assert page.action_url.endswith("handover_token=T")


@pytest.mark.parametrize(
    ("cookies", "framed", "start"),
    [
        (CookieEvidence.KEPT, True, PromptStart.PAGE),
        (CookieEvidence.KEPT, False, PromptStart.PAGE),
        (CookieEvidence.DROPPED, True, PromptStart.NEW_WINDOW),
        (CookieEvidence.DROPPED, False, PromptStart.NEW_WINDOW),
        (CookieEvidence.UNKNOWN, True, PromptStart.CHECK_COOKIE),
        (CookieEvidence.UNKNOWN, False, PromptStart.PAGE),
    ],
)
def test_the_prompt_starts_with_buttons_only_where_its_cookie_comes_back(cookies, framed, start):
    assert prompt_start(cookies, framed=framed) is start
