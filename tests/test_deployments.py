"""A platform's new deployment, on the Django host over real HTTP: its launches are refused with a page
that names the deployment ID, an admin adds it with `lti-publish platforms deployments add` (in its own
process, as an admin does), and the same launch then succeeds, with no restart of the tool."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from django.db import connection

from lti_core.types import Deployment
from lti_peer import DELETE
from lti_peer.platform import PlatformPeer
from lti_xblock import models as m
from tests.conftest import Tool, registration_of
from tests.test_host_lti13 import assert_lands_signed_in, full_launch, written_rows

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("lti-publish")


@pytest.fixture
def peer(tool: Tool) -> Iterator[PlatformPeer]:
    """A Moodle whose tool type is deployment "7"; the tool knows the platform with deployment "2" only."""
    from lti_xblock.views import store

    with PlatformPeer(deployment_id="7", redirect_uris=[tool.details.lti13_redirect_uri]) as platform:
        store.save_registration(replace(registration_of(platform), deployments=(Deployment("2"),)))
        yield platform


def lti_publish(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script in its own process, on the live server's database."""
    database = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(connection.settings_dict["NAME"])}}
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ.update(
        DJANGO_SETTINGS_MODULE="demo.settings", PYTHONPATH=str(REPO), LTI_PUBLISH_DATABASES=json.dumps(database)
    )
    return subprocess.run([SCRIPT, *args], env=environ, capture_output=True, text=True, cwd=REPO, timeout=120)


def assert_refused_naming(response: requests.Response, deployment_id: str) -> None:
    assert response.status_code == 403, response.text[:500]
    assert "<code>unknown_deployment</code>" in response.text
    assert f"deployment ID “{deployment_id}”" in html.unescape(response.text)
    assert "Traceback" not in response.text


def test_a_new_deployment_is_refused_by_name_then_accepted_once_added(browser, tool, peer):
    assert connection.vendor == "sqlite"
    before = written_rows()
    form = peer.login_form(tool.details.lti13_login_url, tool.details.lti13_target_link_uri)
    refused = browser.post(tool.details.lti13_login_url, data=form, allow_redirects=False)
    assert_refused_naming(refused, "7")
    assert written_rows() == before and m.LtiOidcState.objects.count() == 0

    added = lti_publish("platforms", "deployments", "add", peer.issuer + "/", peer.client_id, "7")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip().endswith("deployments=2, 7")

    response = full_launch(browser, tool, peer)
    assert_lands_signed_in(browser, tool, response, "Signed in as Sam Student (learner)")
    assert m.LtiUserLink.objects.get().platform == peer.issuer

    # Removed again: refused again, still without a restart.
    removed = lti_publish("platforms", "deployments", "remove", peer.issuer, peer.client_id, "7")
    assert removed.returncode == 0, removed.stderr
    with requests.Session() as other:
        again = other.post(
            tool.details.lti13_login_url,
            data=peer.login_form(tool.details.lti13_login_url, tool.details.lti13_target_link_uri),
            allow_redirects=False,
        )
        assert_refused_naming(again, "7")


def test_the_launch_names_the_deployment_when_the_login_did_not(browser, tool, peer):
    """A login without lti_deployment_id passes; the id_token's deployment is the one refused, by name."""
    form = peer.login_form(tool.details.lti13_login_url, tool.details.lti13_target_link_uri, lti_deployment_id=DELETE)
    response = browser.post(tool.details.lti13_login_url, data=form, allow_redirects=False)
    assert response.status_code == 302, response.text[:500]
    status, action, fields = peer.authorize_redirect(response.headers["Location"])
    assert status == 200
    before = written_rows()
    assert_refused_naming(browser.post(action, data=fields, allow_redirects=False), "7")
    assert written_rows() == before

    accepted = lti_publish("platforms", "accept-new-deployments", peer.issuer, peer.client_id, "on")
    assert accepted.returncode == 0, accepted.stderr
    with requests.Session() as other:
        assert_lands_signed_in(other, tool, full_launch(other, tool, peer), "Sam Student")
