"""A launch the hub's own lists refuse (allowed_users, blocked_users) writes nothing: no user link,
no launch context, no consumed nonce, no hub user. JupyterHub asks those lists after ``authenticate`` returns; the
authenticators ask them first, before the launch is committed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import requests

from lti_peer.platform import PlatformPeer
from tests.hub import HubFactory, hub_process_fixture  # noqa: F401  (registers hub_process)
from tests.test_hub_lti import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    LTIAUTHENTICATOR_11_CONFIG,
    LTIAUTHENTICATOR_13_CONFIG,
    OTHER_KEY,
    OTHER_SECRET,
    assert_refused,
    launch11,
    launch13,
    user_names,
)


def lti_rows(workdir: Path) -> dict[str, int]:
    """Rows of the LTI store's tables that a committed launch writes (the store sits beside the hub's database)."""
    with sqlite3.connect(workdir / "lti_publish.sqlite") as db:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM lti_publish_{table}").fetchone()[0]  # noqa: S608 - fixed names
            for table in ("nonces", "user_links", "launch_contexts")
        }


@pytest.mark.parametrize(
    "lists", ['c.Authenticator.allowed_users = {"someone-else"}', 'c.Authenticator.blocked_users = {"sam_blocked"}']
)
def test_lti13_launch_refused_by_the_hubs_lists_writes_no_link_and_no_nonce(hub_process, lists):
    with PlatformPeer(client_id="moodle-client") as moodle:
        config = LTIAUTHENTICATOR_13_CONFIG.format(
            authenticator_class="lti13", issuer=moodle.issuer, client_id=moodle.client_id
        )
        config += lists + '\nc.LTI13Authenticator.username_key = "custom_hub_name"\n'
        hub = hub_process(config)
        moodle.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        before, users = lti_rows(hub.workdir), user_names(hub)
        with requests.Session() as browser:
            response = launch13(browser, hub, moodle, claims={"custom": {"hub_name": "sam_blocked"}})
        assert_refused(response, "user_not_allowed", 403)
        assert lti_rows(hub.workdir) == before
        assert user_names(hub) == users
        # Allowed (or not blocked) names still get in, and then the launch is written.
        with requests.Session() as browser:
            response = launch13(browser, hub, moodle, claims={"custom": {"hub_name": "someone-else"}})
        assert response.status_code == 302, response.text[:500]
        after = lti_rows(hub.workdir)
        assert after["nonces"] == before["nonces"] + 1 and after["user_links"] == before["user_links"] + 1
        assert after["launch_contexts"] == before["launch_contexts"] + 1


def test_lti11_launch_refused_by_allowed_users_writes_no_link_and_no_nonce(hub_process):
    config = LTIAUTHENTICATOR_11_CONFIG.format(
        authenticator_class="lti11",
        key=CONSUMER_KEY,
        secret=CONSUMER_SECRET,
        other_key=OTHER_KEY,
        other_secret=OTHER_SECRET,
        username_key="",
    )
    hub = hub_process(config + '\nc.Authenticator.allowed_users = {"someone-else"}\n')
    before, users = lti_rows(hub.workdir), user_names(hub)
    with requests.Session() as browser:
        assert_refused(launch11(browser, hub), "user_not_allowed", 403)
    assert lti_rows(hub.workdir) == before
    assert user_names(hub) == users
