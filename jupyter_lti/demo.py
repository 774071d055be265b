"""The demo's JupyterHub: a real hub on loopback with the LTI 1.3 authenticator, for `make demo`.

    hub = DemoHub(state_dir, DemoPlatform(issuer=..., client_id=..., authorize_url=..., jwks_endpoint=...))
    hub.start()          # HubNotStarted(reason) if it cannot; then nothing is left running
    ...
    hub.stop()           # the hub stops its users' servers and its proxy; survivors are ended

The hub runs from this virtualenv behind the project's configurable-http-proxy (node_modules/),
spawns JupyterLab with SimpleLocalProcessSpawner (no system users: homes are directories in the
state directory) and copies a welcome notebook into every new home. Everything it writes stays in
the state directory. Demo code: SimpleLocalProcessSpawner gives users no isolation from each other.

JupyterHub starts the proxy and each single-user server in a session of their own, so signals to
the hub's process group do not reach them: the hub stops them itself on SIGTERM, and ``stop`` ends
any process it saw below the hub that outlived it (Linux: read from /proc). The hub also gets
SIGTERM if the process that started it dies without stopping it.

Not imported by the hub's own code, and imports nothing from JupyterHub at module level.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.prefix) / "bin"
PROJECT_CHP = REPO / "node_modules" / ".bin" / "configurable-http-proxy"

WELCOME_NOTEBOOK = "welcome.ipynb"
#: The custom parameter a launch carries so that it opens the welcome notebook (see LtiAuthenticator).
NEXT = f"lab/tree/{WELCOME_NOTEBOOK}"
#: Extra hub settings an admin adds (a platform from Moodle, ...): read at each start when it exists.
LOCAL_CONFIG = "jupyterhub_config.local.py"
STOP_TIMEOUT = 30.0
LOG_TAIL_LINES = 30


class HubNotStarted(RuntimeError):
    """Why the demo hub is not running (a sentence for the person running the demo)."""


@dataclass(frozen=True)
class HubPorts:
    public: int = 8001  # the proxy's: the URL people and platforms use
    proxy_api: int = 8002
    hub: int = 8003  # the hub's own, behind the proxy


@dataclass(frozen=True)
class DemoPlatform:
    """The LTI 1.3 platform the demo hub trusts (the demo's local launch page)."""

    issuer: str
    client_id: str
    authorize_url: str
    jwks_endpoint: str
    token_url: str = ""
    deployment_id: str = "1"
    name: str = "Demo launch page"


@dataclass(frozen=True)
class HubLti13Urls:
    """What a platform registers for a hub served at ``base`` (e.g. ``http://127.0.0.1:8001/``)."""

    base: str

    @property
    def hub(self) -> str:
        return self.base.rstrip("/") + "/hub/"

    @property
    def login(self) -> str:
        return self.hub + "lti13/oauth_login"

    @property
    def launch(self) -> str:
        """Tool URL (target_link_uri) and redirect URI at once."""
        return self.hub + "lti13/oauth_callback"

    @property
    def jwks(self) -> str:
        return self.hub + "lti13/jwks"

    @property
    def config(self) -> str:
        return self.hub + "lti13/config"


# --- what the hub config uses ----------------------------------------------------------------------


def welcome_notebook() -> Any:
    """A small nbformat 4 notebook: where the learner landed, and what the launch passed on."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    notebook = new_notebook(
        cells=[
            new_markdown_cell(
                "# Welcome to the lti-publish demo JupyterHub\n"
                "\n"
                "You arrived here through a real **LTI 1.3 launch**: the demo's local launch page, acting as "
                "the platform, sent a signed `id_token`; the hub's `jupyter_lti.lti13.LTI13Authenticator` "
                "checked it, signed you in as a hub user and started this JupyterLab for you. The launch's "
                f"custom parameter `next={NEXT}` opened this notebook.\n"
                "\n"
                "From Moodle it works the same way: add the hub as an External tool (LTI 1.3) with what "
                "`make demo` printed."
            ),
            new_code_cell(
                "import os\n"
                "\n"
                "# What the hub passed on from the launch (c.Spawner.auth_state_hook in the demo hub's config).\n"
                'for name in ("JUPYTERHUB_USER", "LTI_NAME", "LTI_ROLE", "LTI_CONTEXT_TITLE", "LTI_PLATFORM"):\n'
                "    print(f\"{name:18} {os.environ.get(name, '')}\")"
            ),
            new_code_cell("sum(1 / n**2 for n in range(1, 10_000))  # close to pi**2 / 6"),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(notebook)
    return notebook


def copy_welcome_notebook(source: str) -> Callable[[Any], None]:
    """A ``Spawner.pre_spawn_hook``: put ``source`` in the user's home unless a copy is there already."""

    def hook(spawner: Any) -> None:
        home = Path(spawner.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        target = home / Path(source).name
        if not target.exists():
            shutil.copyfile(source, target)

    return hook


def expose_launch(spawner: Any, auth_state: dict[str, Any] | None) -> None:
    """A ``Spawner.auth_state_hook``: a few facts of the last launch as the server's environment."""
    lti = (auth_state or {}).get("lti") or {}
    person = lti.get("person") or {}
    context = lti.get("context") or {}
    spawner.environment = {
        **spawner.environment,
        "LTI_NAME": str(person.get("name") or ""),
        "LTI_ROLE": str(lti.get("role") or ""),
        "LTI_CONTEXT_TITLE": str(context.get("title") or ""),
        "LTI_PLATFORM": str(lti.get("platform") or ""),
    }


# --- processes, from /proc -------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, starttime) of a process, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def alive(pid: int, starttime: int) -> bool:
    """True while that very process (not a later one with the same pid) runs; zombies count as gone."""
    stat = _stat(pid)
    return stat is not None and stat[3] == starttime and stat[0] not in ("Z", "X")


def descendants(root: int) -> dict[int, int]:
    """Every live process below ``root``, as {pid: starttime}."""
    children: dict[int, list[int]] = {}
    starttimes: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] not in ("Z", "X"):
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


def _terminate_with_parent() -> None:
    """In the hub's process, before exec: SIGTERM when the demo process dies (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


# --- the hub ---------------------------------------------------------------------------------------


class DemoHub:
    """One JupyterHub (and its proxy) on ``host``, its state in ``state_dir``; see the module docstring."""

    def __init__(
        self, state_dir: Path, platform: DemoPlatform, *, host: str = "127.0.0.1", ports: HubPorts | None = None
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.platform = platform
        self.host = host
        self.ports = ports or HubPorts()
        self.url = f"http://{host}:{self.ports.public}/"
        self.urls = HubLti13Urls(self.url)
        self.config_path = self.state_dir / "jupyterhub_config.py"
        self.local_config_path = self.state_dir / LOCAL_CONFIG
        self.log_path = self.state_dir / "jupyterhub.log"
        self.welcome_path = self.state_dir / WELCOME_NOTEBOOK
        self.homes = self.state_dir / "home"
        self.process: subprocess.Popen[bytes] | None = None
        self.seen: dict[int, int] = {}  # every process seen below the hub: what stop() makes sure is gone

    # -- files ---------------------------------------------------------------------------------

    def chp_command(self) -> str:
        if PROJECT_CHP.exists():
            return str(PROJECT_CHP)
        return shutil.which("configurable-http-proxy") or ""

    def config_text(self) -> str:
        s = self.state_dir
        jupyter = s / "jupyter"
        p = self.platform
        lines = [
            "# Written by `make demo` (jupyter_lti/demo.py) at each start: edits here are lost.",
            f"# Your own settings (e.g. a Moodle platform) go in {self.local_config_path}.",
            "import os",
            "",
            "from jupyter_lti.demo import copy_welcome_notebook, expose_launch",
            "",
            "c = get_config()  # noqa",
            f"c.JupyterHub.bind_url = {self.url!r}",
            f"c.JupyterHub.hub_bind_url = {f'http://{self.host}:{self.ports.hub}'!r}",
            f"c.ConfigurableHTTPProxy.api_url = {f'http://{self.host}:{self.ports.proxy_api}'!r}",
            f"c.ConfigurableHTTPProxy.command = [{self.chp_command()!r}]",
            f"c.ConfigurableHTTPProxy.pid_file = {str(s / 'jupyterhub-proxy.pid')!r}",
            f"c.JupyterHub.db_url = {'sqlite:///' + str(s / 'jupyterhub.sqlite')!r}",
            f"c.JupyterHub.cookie_secret_file = {str(s / 'jupyterhub_cookie_secret')!r}",
            f"c.JupyterHub.pid_file = {str(s / 'jupyterhub.pid')!r}",
            "c.JupyterHub.cleanup_servers = True",
            "c.JupyterHub.cleanup_proxy = True",
            "",
            "# The LTI 1.3 authenticator, trusting the demo's local launch page as a platform.",
            'c.JupyterHub.authenticator_class = "lti13"',
            f"c.LTI13Authenticator.issuer = {p.issuer!r}",
            f"c.LTI13Authenticator.client_id = [{p.client_id!r}]",
            f"c.LTI13Authenticator.authorize_url = {p.authorize_url!r}",
            f"c.LTI13Authenticator.jwks_endpoint = {p.jwks_endpoint!r}",
            f"c.LTI13Authenticator.token_url = {p.token_url!r}",
            f"c.LTI13Authenticator.deployment_ids = [{p.deployment_id!r}]",
            'c.LTI13Authenticator.tool_name = "lti-publish demo JupyterHub"',
            "",
            "# JupyterLab for each user, from this virtualenv, with a home in the demo's state directory.",
            'c.JupyterHub.spawner_class = "simple"',
            f"c.SimpleLocalProcessSpawner.home_dir_template = {str(self.homes / '{username}')!r}",
            f"c.Spawner.cmd = [{str(VENV_BIN / 'jupyterhub-singleuser')!r}]",
            f"c.Spawner.args = {['--allow-root'] if os.geteuid() == 0 else []!r}",
            'c.Spawner.default_url = "/lab"',
            "c.Spawner.environment = {",
            f"    'JUPYTER_RUNTIME_DIR': {str(jupyter / 'runtime')!r},",
            f"    'JUPYTER_CONFIG_DIR': {str(jupyter / 'config')!r},",
            f"    'JUPYTER_DATA_DIR': {str(jupyter / 'data')!r},",
            f"    'IPYTHONDIR': {str(jupyter / 'ipython')!r},",
            "}",
            f"c.Spawner.pre_spawn_hook = copy_welcome_notebook({str(self.welcome_path)!r})",
            "c.Spawner.auth_state_hook = expose_launch",
            "",
            f"if os.path.exists({str(self.local_config_path)!r}):",
            f"    load_subconfig({str(self.local_config_path)!r})  # noqa: F821",
        ]
        return "\n".join(lines) + "\n"

    def crypt_key(self) -> str:
        """The key JupyterHub encrypts auth_state (the launch context) with, kept across runs."""
        path = self.state_dir / "jupyterhub_crypt_key"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def hub_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTERHUB_", "JPY_", "JUPYTER_", "DJANGO_", "LTI_PUBLISH_"))
            and k != "CONFIGPROXY_AUTH_TOKEN"
        }
        jupyter = self.state_dir / "jupyter"
        env.update(
            JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
            JUPYTER_CONFIG_DIR=str(jupyter / "config"),
            JUPYTER_DATA_DIR=str(jupyter / "data"),
            JUPYTERHUB_CRYPT_KEY=self.crypt_key(),
            PYTHONUNBUFFERED="1",
        )
        return env

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- running -------------------------------------------------------------------------------

    def check(self) -> None:
        """What must be there before starting; HubNotStarted says what is missing, and how to get it."""
        for program in ("jupyterhub", "jupyterhub-singleuser"):
            if not (VENV_BIN / program).exists():
                raise HubNotStarted(f"{VENV_BIN / program} is missing (the jupyterhub extra: `make demo` installs it)")
        if not self.chp_command():
            raise HubNotStarted(f"{PROJECT_CHP} is missing (`npm ci` installs it from package-lock.json)")
        if shutil.which("node") is None:
            raise HubNotStarted("node is not on PATH (configurable-http-proxy runs on Node.js)")
        for name, port in (("public", self.ports.public), ("proxy API", self.ports.proxy_api), ("hub", self.ports.hub)):
            if port_in_use(self.host, port):
                raise HubNotStarted(f"port {port} ({name}) on {self.host} is in use (another `make demo`?)")

    def start(self, timeout: float = 60) -> DemoHub:
        """Write the state directory, start the hub, wait until /hub/health answers through the proxy."""
        if self.process is not None:
            raise RuntimeError("this hub was started already")
        self.check()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.homes.mkdir(exist_ok=True)
        import nbformat

        nbformat.write(welcome_notebook(), str(self.welcome_path))
        self.config_path.write_text(self.config_text())
        env = self.hub_env()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (fixed program, our own config)
                [str(VENV_BIN / "jupyterhub"), "-f", str(self.config_path)],
                cwd=self.state_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_terminate_with_parent,
            )
        health = self.urls.hub + "health"
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.track()
                if self.process.poll() is not None:
                    raise HubNotStarted(
                        f"JupyterHub exited with status {self.process.returncode} while starting; "
                        f"the end of {self.log_path}:\n{self.log_tail()}"
                    )
                try:
                    with urllib.request.urlopen(health, timeout=2) as response:  # noqa: S310 (our http URL)
                        if response.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise HubNotStarted(
                        f"JupyterHub did not answer {health} within {timeout:.0f} s; "
                        f"the end of {self.log_path}:\n{self.log_tail()}"
                    )
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        self.track()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def track(self) -> dict[int, int]:
        """Note (and return) the processes now below the hub."""
        if self.process is None or self.process.poll() is not None:
            return {}
        now = descendants(self.process.pid)
        self.seen.update(now)
        return now

    def survivors(self) -> list[int]:
        return [pid for pid, starttime in self.seen.items() if alive(pid, starttime)]

    def stop(self) -> None:
        """SIGTERM the hub, which stops its users' servers and its proxy; then end whatever outlived it."""
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
                    try:
                        os.killpg(process.pid, signal.SIGKILL)  # it leads its own session and group
                    except ProcessLookupError:
                        pass
                    process.wait(10)
            else:
                process.wait()
        finally:
            self._end_survivors()

    def _end_survivors(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = self.survivors()
            if not left:
                return
            for pid in left:
                stat = _stat(pid)
                try:
                    # The proxy and the single-user servers lead groups of their own (kernels...).
                    if stat is not None and stat[2] == pid:
                        os.killpg(pid, sig)
                    else:
                        os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while self.survivors() and time.monotonic() < deadline:
                time.sleep(0.05)

    # -- what `make demo` prints ----------------------------------------------------------------

    def instructions(self) -> list[str]:
        u = self.urls
        return [
            f"JupyterHub (LTI 1.3; JupyterLab for each user): {u.hub}",
            '  Local launch page buttons: "Learner · JupyterHub (LTI 1.3)", "Instructor · JupyterHub (LTI 1.3)"',
            f"  Ports: {self.ports.public} public (proxy), {self.ports.proxy_api} proxy API, {self.ports.hub} hub.",
            f"  State, homes and log: {self.state_dir}/ (jupyterhub.log)",
            "  Moodle: Site administration > Plugins > Activity modules > External tool > Manage tools >",
            "          configure a tool manually:",
            f"    Tool URL:            {u.launch}",
            "    LTI version:         LTI 1.3",
            "    Public key type:     Keyset URL",
            f"    Public keyset:       {u.jwks}",
            f"    Initiate login URL:  {u.login}",
            f"    Redirection URI(s):  {u.launch}",
            f"    Custom parameters:   next={NEXT}",
            f"    (the same as JSON:   {u.config})",
            "  then, with what Moodle shows in the tool's configuration details, add the platform to the hub",
            f"  in {self.local_config_path} (read at each start; restart `make demo`),",
            '  or in your own hub\'s jupyterhub_config.py (with c.JupyterHub.authenticator_class = "lti13"):',
            "      c.LTI13Authenticator.platforms.append({",
            '          "issuer": "<Platform ID>",  # e.g. https://moodle.example.org',
            '          "client_id": "<Client ID>",',
            '          "deployment_ids": ["<Deployment ID>"],',
            '          "authorize_url": "<Authentication request URL>",  # .../mod/lti/auth.php',
            '          "jwks_endpoint": "<Public keyset URL>",  # .../mod/lti/certs.php',
            '          "token_url": "<Access token URL>",  # .../mod/lti/token.php',
            '          "name": "Moodle",',
            "      })",
            "",
        ]
