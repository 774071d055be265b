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

Process cleanup: JupyterHub starts the proxy and each single-user server in a session of its own, so
killing the hub's process group does not reach them. The harness therefore keeps a list of every
process it sees below the hub (while starting, when asked, while stopping) and, once the hub is
gone, ends any of them that survived it.

Linux only (it reads /proc).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import pytest

REPO = Path(__file__).resolve().parent.parent
# The virtualenv running the tests (.venv): the hub and the single-user servers come from it.
VENV_BIN = Path(sys.prefix) / "bin"
CHP = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
SERVICE_NAME = "test-harness"
STOP_TIMEOUT = 30.0  # the hub stops its users' servers and its proxy before it exits
LOG_TAIL_LINES = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


# --- processes, from /proc -------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, starttime) of a process, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def alive(pid: int, starttime: int) -> bool:
    """True while that very process (not a later one with the same pid) runs; zombies count as gone."""
    stat = _stat(pid)
    return stat is not None and stat[3] == starttime and stat[0] not in ("Z", "X")


def descendants(root: int) -> dict[int, int]:
    """Every live process below `root`, as {pid: starttime}."""
    children: dict[int, list[int]] = {}
    starttimes: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None or stat[0] in ("Z", "X"):
            continue
        children.setdefault(stat[1], []).append(int(entry.name))
        starttimes[int(entry.name)] = stat[3]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = starttimes[child]
                todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# --- the hub ---------------------------------------------------------------------------------------


def _admin_scopes() -> list[str]:
    """The scopes of JupyterHub's own admin role, for the harness's service."""
    from jupyterhub.roles import get_default_roles  # type: ignore[import-untyped]

    return next(list(role["scopes"]) for role in get_default_roles() if role["name"] == "admin")


class HubProcess:
    """One real JupyterHub (and its proxy) on 127.0.0.1; see the module's docstring."""

    def __init__(self, workdir: Path, config: str, *, base_url: str = "/", env: dict[str, str] | None = None) -> None:
        if not base_url.startswith("/"):
            base_url = "/" + base_url
        if not base_url.endswith("/"):
            base_url += "/"
        self.workdir = Path(workdir).resolve()
        self.config = config
        self.base_url = base_url
        self.env = dict(env or {})
        self.port = free_port()  # the public one, the proxy's
        self.proxy_api_port = free_port()
        self.hub_port = free_port()  # the hub's own, behind the proxy
        self.url = f"http://127.0.0.1:{self.port}{base_url}"
        self.hub_url = self.url + "hub/"
        self.api_token = secrets.token_hex(32)
        self.config_path = self.workdir / "jupyterhub_config.py"
        self.log_path = self.workdir / "jupyterhub.log"
        self.proxy_pid_file = self.workdir / "jupyterhub-proxy.pid"
        self.process: subprocess.Popen[bytes] | None = None
        # Every process seen below the hub, {pid: starttime}: what stop() makes sure is gone.
        self.seen: dict[int, int] = {}

    @property
    def ports(self) -> dict[str, int]:
        return {"public": self.port, "proxy_api": self.proxy_api_port, "hub": self.hub_port}

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def harness_config(self) -> str:
        w = self.workdir
        jupyter = w / "jupyter"
        spawner_args = ["--allow-root"] if os.geteuid() == 0 else []
        lines = [
            "# Written by tests/hub.py: the test harness's settings, then the test's own.",
            "c = get_config()  # noqa",
            f"c.JupyterHub.bind_url = {self.url!r}",
            f"c.JupyterHub.hub_bind_url = {f'http://127.0.0.1:{self.hub_port}'!r}",
            f"c.ConfigurableHTTPProxy.api_url = {f'http://127.0.0.1:{self.proxy_api_port}'!r}",
            f"c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]",
            f"c.ConfigurableHTTPProxy.auth_token = {secrets.token_hex(32)!r}",
            f"c.ConfigurableHTTPProxy.pid_file = {str(self.proxy_pid_file)!r}",
            f"c.JupyterHub.db_url = {'sqlite:///' + str(w / 'jupyterhub.sqlite')!r}",
            f"c.JupyterHub.cookie_secret_file = {str(w / 'jupyterhub_cookie_secret')!r}",
            f"c.JupyterHub.pid_file = {str(w / 'jupyterhub.pid')!r}",
            "c.JupyterHub.cleanup_servers = True",
            "c.JupyterHub.cleanup_proxy = True",
            'c.JupyterHub.log_level = "INFO"',
            'c.JupyterHub.spawner_class = "simple"',
            f"c.SimpleLocalProcessSpawner.home_dir_template = {str(w / 'home' / '{username}')!r}",
            f"c.Spawner.cmd = [{str(VENV_BIN / 'jupyterhub-singleuser')!r}]",
            f"c.Spawner.args = {spawner_args!r}",
            'c.Spawner.default_url = "/lab"',
            "c.Spawner.environment = {",
            f"    'JUPYTER_RUNTIME_DIR': {str(jupyter / 'runtime')!r},",
            f"    'JUPYTER_CONFIG_DIR': {str(jupyter / 'config')!r},",
            f"    'JUPYTER_DATA_DIR': {str(jupyter / 'data')!r},",
            f"    'IPYTHONDIR': {str(jupyter / 'ipython')!r},",
            # The spawner passes on few variables: keep the servers' log times in the hub's zone.
            *([f"    'TZ': {os.environ['TZ']!r},"] if "TZ" in os.environ else []),
            "}",
            f"c.JupyterHub.services = [{{'name': {SERVICE_NAME!r}, 'api_token': {self.api_token!r}}}]",
            "c.JupyterHub.load_roles = [",
            f"    {{'name': {SERVICE_NAME + '-admin'!r}, 'scopes': {_admin_scopes()!r},",
            f"     'services': [{SERVICE_NAME!r}]}},",
            "]",
        ]
        return "\n".join(lines) + "\n"

    def hub_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTERHUB_", "JPY_", "JUPYTER_")) and k != "CONFIGPROXY_AUTH_TOKEN"
        }
        jupyter = self.workdir / "jupyter"
        env.update(
            JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
            JUPYTER_CONFIG_DIR=str(jupyter / "config"),
            JUPYTER_DATA_DIR=str(jupyter / "data"),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env)
        return env

    def start(self, timeout: float = 60) -> HubProcess:
        """Write the config, start the hub and wait until {url}hub/health answers 200 through the proxy."""
        if self.process is not None:
            raise RuntimeError("this hub was started already")
        for program in (VENV_BIN / "jupyterhub", VENV_BIN / "jupyterhub-singleuser"):
            if not program.exists():
                raise RuntimeError(f"{program} is missing: `make venv` installs the jupyterhub extra")
        if not CHP.exists():
            raise RuntimeError(
                f"{CHP} is missing: `make {CHP.relative_to(REPO)}` installs it (npm ci, package-lock.json)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.harness_config() + "\n# The test's settings.\n" + self.config + "\n")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "jupyterhub"), "-f", str(self.config_path)],
                cwd=self.workdir,
                env=self.hub_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        health = self.hub_url + "health"
        try:
            while True:
                self.track()
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"JupyterHub exited with {self.process.returncode} while starting; "
                        f"the end of {self.log_path}:\n{self.log_tail()}"
                    )
                try:
                    with urllib.request.urlopen(health, timeout=2) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"JupyterHub did not answer {health} within {timeout} s; "
                        f"the end of {self.log_path}:\n{self.log_tail()}"
                    )
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        self.track()
        return self

    def track(self) -> dict[int, int]:
        """Note (and return) the processes now below the hub, plus the proxy from its pid file."""
        if self.process is None or self.process.poll() is not None:
            return {}
        now = descendants(self.process.pid)
        try:
            proxy_pid = int(self.proxy_pid_file.read_text().strip())
        except (OSError, ValueError):
            proxy_pid = 0
        stat = _stat(proxy_pid) if proxy_pid > 0 else None
        if stat is not None and "configurable-http-proxy" in cmdline(proxy_pid):
            now.setdefault(proxy_pid, stat[3])
        self.seen.update(now)
        return now

    def survivors(self) -> list[int]:
        """The processes seen below the hub that still run."""
        return [pid for pid, starttime in self.seen.items() if alive(pid, starttime)]

    def stop(self) -> None:
        """SIGTERM the hub, which stops its users' servers and its proxy; then end whatever survived."""
        process = self.process
        if process is None:
            return
        try:
            if process.poll() is None:
                self.track()
                process.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + STOP_TIMEOUT
                while process.poll() is None and time.monotonic() < deadline:
                    self.track()
                    time.sleep(0.1)
                if process.poll() is None:
                    # The hub is a session (and process group) leader: take its group down with it.
                    try:
                        os.killpg(process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    process.wait(10)
            else:
                process.wait()
        finally:
            self._end_survivors()

    def _end_survivors(self) -> None:
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            left = self.survivors()
            if not left:
                return
            for pid in left:
                stat = _stat(pid)
                try:
                    # The proxy and the single-user servers lead their own groups (kernels...).
                    if stat is not None and stat[2] == pid:
                        os.killpg(pid, sig)
                    else:
                        os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while self.survivors() and time.monotonic() < deadline:
                time.sleep(0.05)

    def __enter__(self) -> HubProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


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
