"""tests/hub.py for real: a JupyterHub behind configurable-http-proxy, a login through its form, the
user's JupyterLab spawned and reached through the proxy, and nothing left running after stop()."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.hub import HubProcess, alive, cmdline, descendants, port_is_open

DUMMY = """
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "pw"
"""
USER = "alice"
SPAWN_TIMEOUT = 40.0


def login_form_xsrf(session: requests.Session, hub: HubProcess) -> str:
    """GET the login page: its form carries the _xsrf token that the cookie it sets must match."""
    page = session.get(hub.hub_url + "login", timeout=10)
    assert page.status_code == 200, page.text
    match = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
    assert match, "no _xsrf field in the login form"
    assert "_xsrf" in session.cookies, "the login page set no _xsrf cookie"
    return match.group(1)


@pytest.mark.slow
def test_real_hub_logs_in_spawns_and_stops_clean(tmp_path: Path) -> None:
    started = time.monotonic()
    hub = HubProcess(tmp_path, DUMMY).start()
    with hub:
        start_seconds = time.monotonic() - started
        assert hub.url.startswith("http://127.0.0.1:") and hub.hub_url == hub.url + "hub/"
        assert all(port_is_open(port) for port in hub.ports.values()), hub.ports

        session = requests.Session()
        # Without the form's _xsrf (JupyterHub >= 4.1 checks it on the login POST), no login.
        refused = session.post(hub.hub_url + "login", data={"username": USER, "password": "pw"}, timeout=10)
        assert refused.status_code == 403, refused.status_code
        wrong = session.post(
            hub.hub_url + "login",
            data={"username": USER, "password": "nope", "_xsrf": login_form_xsrf(session, hub)},
            timeout=10,
        )
        assert wrong.status_code == 403 and "jupyterhub-session-id" not in wrong.cookies

        spawn_started = time.monotonic()
        session.post(
            hub.hub_url + "login",
            data={"username": USER, "password": "pw", "_xsrf": login_form_xsrf(session, hub)},
            timeout=30,
        )
        # Until the server is up, /user/alice/lab lands on the hub's spawn-pending page; then the proxy
        # routes it to the server, which sends the browser through the hub's OAuth and back.
        lab = hub.url + f"user/{USER}/lab"
        while True:
            page = session.get(lab, timeout=30)
            if page.status_code == 200 and urlsplit(page.url).path == urlsplit(lab).path:
                break
            assert time.monotonic() - spawn_started < SPAWN_TIMEOUT, (
                f"no JupyterLab at {lab} after {SPAWN_TIMEOUT} s (last: {page.status_code} {page.url})\n"
                + hub.log_tail()
            )
            time.sleep(0.5)
        spawn_seconds = time.monotonic() - spawn_started
        assert "JupyterLab" in page.text
        status = session.get(hub.url + f"user/{USER}/api/status", timeout=10)
        assert status.status_code == 200 and "started" in status.json(), status.text

        api = {"Authorization": f"token {hub.api_token}"}
        user = requests.get(hub.hub_url + f"api/users/{USER}", headers=api, timeout=10)
        assert user.status_code == 200, user.text
        server = user.json()["servers"][""]
        assert server["ready"] is True and server["url"] == f"{urlsplit(hub.url).path}user/{USER}/", server
        routes = requests.get(hub.hub_url + "api/proxy", headers=api, timeout=10).json()
        server_port = urlsplit(routes[f"/user/{USER}/"]["target"]).port
        assert server_port and port_is_open(server_port), routes

        hub.track()
        children = descendants(hub.process.pid)  # type: ignore[union-attr]
        commands = [cmdline(pid) for pid in children]
        assert any("configurable-http-proxy" in c for c in commands), commands
        assert any("jupyterhub-singleuser" in c for c in commands), commands
        # The server's home and Jupyter directories are the workdir's, not the tester's ~/.jupyter.
        assert (tmp_path / "home" / USER).is_dir()
        assert list((tmp_path / "jupyter" / "runtime").glob("jpserver-*")), "no server runtime file in the workdir"

    # Out of the `with`: stopped.
    assert hub.process is not None and hub.process.returncode is not None
    closed = {name: port for name, port in {**hub.ports, "server": server_port}.items() if port_is_open(port)}
    assert not closed, f"still listening: {closed}"
    assert not [pid for pid, starttime in children.items() if alive(pid, starttime)]
    assert hub.survivors() == []
    print(f"hub start {start_seconds:.1f} s, first spawn {spawn_seconds:.1f} s")
