"""Shared fixtures: the tool served for real on loopback (pytest-django's live server running the
workbench host), a Moodle-like LTI 1.3 platform peer, and a browser-like HTTP session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from lti_core.types import Consumer, Deployment, Registration
from lti_peer.platform import PlatformPeer
from lti_xblock.launch_details import LaunchDetails, launch_details

DEMO_SCENARIO = "lti-publish: published content"


@dataclass
class Tool:
    base_url: str
    content_id: str
    details: LaunchDetails
    consumer: Consumer

    def url(self, path: str) -> str:
        return self.base_url + path


def published_content_id() -> str:
    """(Re)load this project's workbench scenarios so the blocks' fields are in the (flushed) test
    database. Only ours: every sample block's scenarios (loaded once per process, as the workbench
    lists them) would make each test half a second longer."""
    from workbench.runtime import WORKBENCH_KVS
    from workbench.scenarios import SCENARIOS, add_class_scenarios, get_scenarios

    from lti_xblock.block import LtiPublishBlock
    from lti_xblock.compat import PUBLISHED_BLOCK_TYPE

    get_scenarios()
    for name in [name for name in SCENARIOS if name.startswith(PUBLISHED_BLOCK_TYPE + ".")]:
        del SCENARIOS[name]
    # Children are appended when a scenario loads: ours go first (the other scenarios' are gone with
    # the flushed database anyway, and no test opens them).
    WORKBENCH_KVS.prep_for_scenario_loading()
    add_class_scenarios(PUBLISHED_BLOCK_TYPE, LtiPublishBlock, fail_silently=False)
    for scenario in get_scenarios().values():
        if scenario.description == DEMO_SCENARIO:
            return str(scenario.usage_id)
    raise AssertionError(f"the {DEMO_SCENARIO!r} workbench scenario is missing")


@pytest.fixture
def tool(live_server: object, transactional_db: None, settings: object) -> Tool:
    base = str(live_server.url)  # type: ignore[attr-defined]
    settings.LTI_PUBLISH = {"HOST": "workbench", "TOOL_BASE_URLS": [base]}  # type: ignore[attr-defined]
    from lti_xblock.views import store

    consumer = Consumer("moodle-key", "moodle-secret-0123456789", "Moodle")
    store.save_consumer(consumer)
    content_id = published_content_id()
    return Tool(base, content_id, launch_details(base, content_id), consumer)


def registration_of(peer: PlatformPeer) -> Registration:
    """How the tool registers the platform peer (what Moodle's "View configuration details" shows)."""
    return Registration(
        issuer=peer.issuer,
        client_id=peer.client_id,
        auth_login_url=peer.auth_url,
        auth_token_url=peer.token_url,
        key_set_url=peer.jwks_url,
        deployments=(Deployment(peer.deployment_id),),
    )


@pytest.fixture
def platform(tool: Tool) -> Iterator[PlatformPeer]:
    """A Moodle-like platform, registered with the tool (deployment "2"), serving its JWKS."""
    from lti_xblock.views import store

    with PlatformPeer(redirect_uris=[tool.details.lti13_redirect_uri]) as peer:
        store.save_registration(registration_of(peer))
        yield peer


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def login(browser: requests.Session, tool: Tool, platform: PlatformPeer, **login_overrides: str) -> dict[str, str]:
    """Moodle's login-initiation POST; returns the query the tool redirected to the platform with."""
    form = platform.login_form(tool.details.lti13_login_url, tool.details.lti13_target_link_uri, **login_overrides)
    response = browser.post(tool.details.lti13_login_url, data=form, allow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(platform.auth_url)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL and MariaDB tests fail (not skip) in CI when no server was started: CI must test all
    stores."""
    if os.environ.get("CI") == "true":
        return
    servers = {"postgres": ("LTI_TEST_POSTGRES_DSN", "PostgreSQL"), "mysql": ("LTI_TEST_MYSQL_DSN", "MariaDB")}
    for marker, (variable, server) in servers.items():
        if os.environ.get(variable):
            continue
        skip = pytest.mark.skip(reason=f"no {server} server (run through `make test`)")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
