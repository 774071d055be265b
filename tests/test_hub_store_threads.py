"""The hub's store calls leave the event loop; JupyterHub's ORM stays on it. Plain data, no hub.

The authenticator under test is the real one, on an SQLite store whose methods note the thread
they run in (and may be slowed down); the request handler is a stand-in whose ``find_user`` (what
the naming reads of JupyterHub's ORM) notes its thread too.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_lti.lti11 import LTI11Authenticator
from jupyter_lti.lti13 import LTI13Authenticator
from lti_core.errors import Forbidden
from lti_core.store import Store
from lti_core.types import Launch
from tests.test_hub_usernames import CANVAS, MOODLE, Handler, HubUser, launch

STORE_METHODS = [name for name in dir(Store) if not name.startswith("_") and callable(getattr(Store, name))]


class ThreadNotingHandler(Handler):
    def __init__(self, users: dict[str, HubUser] | None = None) -> None:
        super().__init__(users or {})
        self.find_user_threads: set[int] = set()

    def find_user(self, name: str) -> HubUser | None:
        self.find_user_threads.add(threading.get_ident())
        return super().find_user(name)


def noted_store(authenticator: Any, delay: float = 0.0) -> list[tuple[str, int]]:
    """Wrap the authenticator's store's methods: each call is noted with its thread, after ``delay``."""
    store = authenticator.store  # opened here, before the wrapping
    calls: list[tuple[str, int]] = []

    def noting(name: str, method: Any) -> Any:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, threading.get_ident()))
            time.sleep(delay)
            return method(*args, **kwargs)

        return call

    for name in STORE_METHODS:
        setattr(store, name, noting(name, getattr(store, name)))
    return calls


@pytest.fixture(params=[LTI13Authenticator, LTI11Authenticator], ids=["lti13", "lti11"])
def authenticator(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return request.param(store_url=f"sqlite:///{tmp_path / 'lti_publish.sqlite'}")


def test_store_calls_run_off_the_loop_and_hub_users_are_read_on_it(authenticator):
    calls = noted_store(authenticator)
    handler = ThreadNotingHandler()
    committed: list[int] = []

    async def sign_in() -> tuple[dict[str, Any], int]:
        commit = lambda: committed.append(threading.get_ident())  # noqa: E731
        model = await authenticator.sign_in_verified(handler, launch(), commit)
        return model, threading.get_ident()

    model, loop_thread = asyncio.run(sign_in())
    assert model["name"].startswith("sam_")
    assert {name for name, _ in calls} >= {"get_user_link", "find_user_links", "save_user_link"}
    assert loop_thread not in {thread for _, thread in calls}, calls
    assert committed and committed[0] != loop_thread
    assert handler.find_user_threads == {loop_thread}
    assert authenticator.store.get_user_link(MOODLE, "2").local_user_id == model["name"]


def test_a_refused_launch_is_not_committed_and_links_no_one(authenticator):
    authenticator.blocked_users = {"sam@example.com"}
    authenticator.username_key = "email"
    committed: list[bool] = []
    refused = launch(email="sam@example.com")

    async def sign_in() -> None:
        await authenticator.sign_in_verified(ThreadNotingHandler(), refused, lambda: committed.append(True))

    with pytest.raises(Forbidden):
        asyncio.run(sign_in())
    assert committed == []
    assert authenticator.store.get_user_link(refused.platform, refused.platform_user_id) is None


def test_new_identities_claiming_one_name_at_once_never_share_it(authenticator):
    """Two platforms' users with the same email, first launches racing, names chosen in the store's threads:
    the second one to link must see the first one's link (not the same name, free when it looked)."""
    authenticator.username_key = "email"
    noted_store(authenticator, delay=0.05)  # long enough for the two launches to interleave
    handler = ThreadNotingHandler()
    launches: list[Launch] = [launch(platform, "7", email="sam@example.com") for platform in (MOODLE, CANVAS)]

    async def both() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(*(authenticator.sign_in_verified(handler, one, lambda: None) for one in launches))
        )

    names = [model["name"] for model in asyncio.run(both())]
    assert "sam@example.com" in names and len(set(names)) == 2, names
    for one, name in zip(launches, names, strict=True):
        assert authenticator.store.get_user_link(one.platform, one.platform_user_id).local_user_id == name


def test_a_linked_identity_never_waits_for_a_new_one(authenticator):
    """The naming lock is for identities without a link: a returning user's launch goes by."""
    handler = ThreadNotingHandler()
    returning = launch(MOODLE, "8")
    name = asyncio.run(authenticator.sign_in_verified(handler, returning, lambda: None))["name"]

    async def while_locked() -> str:
        authenticator._naming_lock = asyncio.Lock()
        async with authenticator._naming_lock:  # as a new identity's launch would hold it
            model = await asyncio.wait_for(authenticator.sign_in_verified(handler, returning, lambda: None), 5)
        return str(model["name"])

    assert asyncio.run(while_locked()) == name
