"""A real JupyterHub for the tests: the hub process from .venv behind a real configurable-http-proxy
(node_modules/, installed by `make test` through package-lock.json), on loopback ports of its own.

    with HubProcess(tmp_path, 'c.JupyterHub.authenticator_class = "dummy"').start() as hub:
        requests.get(hub.hub_url + "login")
        requests.get(hub.hub_url + "api/users", headers={"Authorization": f"token {hub.api_token}"})

The generated jupyterhub_config.py holds the harness's settings first, then the caller's text: the
caller chooses the authenticator and may amend the lists and dicts set here (`c.Spawner.args`,
`c.Spawner.environment`, `c.JupyterHub.services`, `c.JupyterHub.load_roles`) by appending to them.

Users' servers are spawned by SimpleLocalProcessSpawner (no system users needed) as the user running
the tests (also root, with --allow-root), with their home and Jupyter directories in the workdir.

Running the hub (and the process cleanup) is demo.hubprocess's, shared with the demo hub:
JupyterHub starts the proxy and each single-user server in a session of its own, so killing the hub's
process group does not reach them. The harness therefore keeps a list of every process it sees below
the hub (while starting, when asked, while stopping) and, once the hub is gone, ends any of them that
survived it. What this module adds: free ports, the harness's admin service and its token, and the
hub_process fixture.

Linux only (it reads /proc).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demo.hubprocess import HubChild, alive, cmdline, descendants, free_port, port_is_open

__all__ = [
    "HubFactory",
    "HubProcess",
    "alive",
    "cmdline",
    "descendants",
    "free_port",
    "hub_process",
    "hub_process_fixture",
    "port_is_open",
]

SERVICE_NAME = "test-harness"
LOG_TAIL_LINES = 60


def _admin_scopes() -> list[str]:
    """The scopes of JupyterHub's own admin role, for the harness's service."""
    from jupyterhub.roles import get_default_roles  # type: ignore[import-untyped]

    return next(list(role["scopes"]) for role in get_default_roles() if role["name"] == "admin")


class HubProcess(HubChild):
    """One real JupyterHub (and its proxy) on 127.0.0.1; see the module's docstring."""

    log_tail_lines = LOG_TAIL_LINES
    install_hint = "`make venv` installs the jupyterhub extra"

    def __init__(self, workdir: Path, config: str, *, base_url: str = "/", env: dict[str, str] | None = None) -> None:
        super().__init__(workdir, port=free_port(), proxy_api_port=free_port(), hub_port=free_port(), base_url=base_url)
        self.config = config
        self.env = dict(env or {})
        self.api_token = secrets.token_hex(32)

    @property
    def ports(self) -> dict[str, int]:
        return {"public": self.port, "proxy_api": self.proxy_api_port, "hub": self.hub_port}

    def harness_config(self) -> str:
        lines = [
            "# Written by tests/hub.py: the test harness's settings, then the test's own.",
            "c = get_config()  # noqa",
            *self.process_config_lines(),
            f"c.ConfigurableHTTPProxy.auth_token = {secrets.token_hex(32)!r}",
            'c.JupyterHub.log_level = "INFO"',
            f"c.JupyterHub.services = [{{'name': {SERVICE_NAME!r}, 'api_token': {self.api_token!r}}}]",
            "c.JupyterHub.load_roles = [",
            f"    {{'name': {SERVICE_NAME + '-admin'!r}, 'scopes': {_admin_scopes()!r},",
            f"     'services': [{SERVICE_NAME!r}]}},",
            "]",
        ]
        return "\n".join(lines) + "\n"

    def config_text(self) -> str:
        return self.harness_config() + "\n# The test's settings.\n" + self.config + "\n"

    def hub_env(self) -> dict[str, str]:
        return {**super().hub_env(), **self.env}


# What the hub_process fixture gives: start(config, *, base_url="/", env=None, timeout=60) -> HubProcess.
HubFactory = Callable[..., HubProcess]


@pytest.fixture(name="hub_process")
def hub_process_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubFactory]:
    """Start real hubs, each in a workdir of its own, and stop them all after the test:

        from tests.hub import HubFactory, hub_process_fixture  # noqa: F401  (registers hub_process)

        def test_launch(hub_process: HubFactory) -> None:
            hub = hub_process('c.JupyterHub.authenticator_class = "ltiauthenticator.lti13.auth.LTI13Authenticator"')

    (Importing the fixture under the name the tests take as argument makes ruff see a redefinition,
    F811: hence the fixture's function has a name of its own.)
    """
    hubs: list[HubProcess] = []

    def start(
        config: str, *, base_url: str = "/", env: dict[str, str] | None = None, timeout: float = 60
    ) -> HubProcess:
        hub = HubProcess(tmp_path_factory.mktemp("hub"), config, base_url=base_url, env=env)
        hubs.append(hub)
        return hub.start(timeout)

    yield start
    for hub in reversed(hubs):
        hub.stop()


hub_process = hub_process_fixture  # the same fixture, for `from tests.hub import hub_process`
