"""A real JupyterHub as a child process: the machinery the demo hub (demo/demohub.py) and the tests'
hub (tests/hub.py) share.

    class MyHub(HubChild):
        def config_text(self) -> str:  # process_config_lines(), then the authenticator and the rest
            ...

    hub = MyHub(workdir, port=8001, proxy_api_port=8002, hub_port=8003).start()  # /hub/health answers
    ...
    hub.stop()  # the hub stops its users' servers and its proxy; survivors are ended

The hub runs from this virtualenv (``jupyterhub -f <workdir>/jupyterhub_config.py``) behind the
project's configurable-http-proxy (node_modules/, pinned by package-lock.json), on ``host``, and
spawns ``jupyterhub-singleuser`` from the same virtualenv with SimpleLocalProcessSpawner (no system
users: homes are directories in the workdir; root gets --allow-root). Everything it writes (config,
log, SQLite database, cookie secret, pid files, homes, Jupyter directories) stays in the workdir.

Process cleanup: JupyterHub starts the proxy and each single-user server in a session of its own, so
signals to the hub's process group do not reach them. The hub stops them itself on SIGTERM, and
``stop`` ends any process it saw below the hub (while starting, when asked with ``track``, while
stopping; the proxy also from its pid file) that outlived it, with its process group.

Linux only (it reads /proc). Imports nothing from JupyterHub, nor pytest.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

REPO = Path(__file__).resolve().parent.parent
# The virtualenv running this code: the hub and the single-user servers come from it.
VENV_BIN = Path(sys.prefix) / "bin"
PROJECT_CHP = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
STOP_TIMEOUT = 30.0  # the hub stops its users' servers and its proxy before it exits


# --- ports -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts connections there."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def port_in_use(host: str, port: int) -> bool:
    """The port cannot be bound there (someone listens on it)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


# --- processes, from /proc -------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, starttime) of a process, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = data[data.rindex(")") + 2 :].split()
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


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def terminate_with_parent() -> None:
    """In the hub's process, before exec: SIGTERM when the thread that started it dies (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# --- the hub ---------------------------------------------------------------------------------------


class HubChild:
    """One JupyterHub (and its proxy) run from this virtualenv, its files in ``workdir``.

    Subclasses write the whole config (``config_text``, from ``process_config_lines`` and their own
    settings) and may add checks (``check``), files (``write_files``), environment (``hub_env``) and
    their own exception (``start_error``).
    """

    #: How many lines of the hub's log the errors of ``start`` (and ``log_tail``) show.
    log_tail_lines: ClassVar[int] = 30
    #: Keep what an earlier hub in the same workdir logged (else each start begins a new log).
    append_log: ClassVar[bool] = True
    #: The hub gets SIGTERM when the thread that started it dies without stopping it.
    die_with_parent: ClassVar[bool] = False
    #: What installs jupyterhub and jupyterhub-singleuser into the virtualenv, for "... is missing".
    install_hint: ClassVar[str] = "the jupyterhub extra installs it"

    def __init__(
        self,
        workdir: Path,
        *,
        port: int,
        proxy_api_port: int,
        hub_port: int,
        host: str = "127.0.0.1",
        base_url: str = "/",
    ) -> None:
        if not base_url.startswith("/"):
            base_url = "/" + base_url
        if not base_url.endswith("/"):
            base_url += "/"
        self.workdir = Path(workdir).resolve()
        self.host = host
        self.base_url = base_url
        self.port = port  # the public one, the proxy's
        self.proxy_api_port = proxy_api_port
        self.hub_port = hub_port  # the hub's own, behind the proxy
        self.url = f"http://{host}:{port}{base_url}"
        self.hub_url = self.url + "hub/"
        self.config_path = self.workdir / "jupyterhub_config.py"
        self.log_path = self.workdir / "jupyterhub.log"
        self.proxy_pid_file = self.workdir / "jupyterhub-proxy.pid"
        self.homes = self.workdir / "home"
        self.jupyter_dir = self.workdir / "jupyter"
        self.process: subprocess.Popen[bytes] | None = None
        # Every process seen below the hub, {pid: starttime}: what stop() makes sure is gone.
        self.seen: dict[int, int] = {}

    # -- files ---------------------------------------------------------------------------------

    def chp_command(self) -> str:
        """configurable-http-proxy, or "" when it is missing."""
        return str(PROJECT_CHP) if PROJECT_CHP.exists() else ""

    def jupyter_environment(self) -> dict[str, str]:
        """Jupyter's directories in the workdir, not the user's ~/.jupyter."""
        jupyter = self.jupyter_dir
        return {
            "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
            "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
            "JUPYTER_DATA_DIR": str(jupyter / "data"),
        }

    def process_config_lines(self) -> list[str]:
        """The config lines for running here: ports, proxy, files in the workdir, the spawner."""
        w = self.workdir
        spawner_environment = {
            **self.jupyter_environment(),
            "IPYTHONDIR": str(self.jupyter_dir / "ipython"),
            # The spawner passes on few variables: keep the servers' log times in the hub's zone.
            **({"TZ": os.environ["TZ"]} if "TZ" in os.environ else {}),
        }
        return [
            f"c.JupyterHub.bind_url = {self.url!r}",
            f"c.JupyterHub.hub_bind_url = {f'http://{self.host}:{self.hub_port}'!r}",
            f"c.ConfigurableHTTPProxy.api_url = {f'http://{self.host}:{self.proxy_api_port}'!r}",
            f"c.ConfigurableHTTPProxy.command = [{self.chp_command()!r}]",
            f"c.ConfigurableHTTPProxy.pid_file = {str(self.proxy_pid_file)!r}",
            f"c.JupyterHub.db_url = {'sqlite:///' + str(w / 'jupyterhub.sqlite')!r}",
            f"c.JupyterHub.cookie_secret_file = {str(w / 'jupyterhub_cookie_secret')!r}",
            f"c.JupyterHub.pid_file = {str(w / 'jupyterhub.pid')!r}",
            "c.JupyterHub.cleanup_servers = True",
            "c.JupyterHub.cleanup_proxy = True",
            'c.JupyterHub.spawner_class = "simple"',
            f"c.SimpleLocalProcessSpawner.home_dir_template = {str(self.homes / '{username}')!r}",
            f"c.Spawner.cmd = [{str(VENV_BIN / 'jupyterhub-singleuser')!r}]",
            f"c.Spawner.args = {['--allow-root'] if os.geteuid() == 0 else []!r}",
            'c.Spawner.default_url = "/lab"',
            "c.Spawner.environment = {",
            *(f"    {name!r}: {value!r}," for name, value in spawner_environment.items()),
            "}",
        ]

    def config_text(self) -> str:
        """The whole jupyterhub_config.py."""
        raise NotImplementedError

    def write_files(self) -> None:
        """What the hub needs in the workdir before it starts (the workdir exists)."""
        self.config_path.write_text(self.config_text())

    def hub_env(self) -> dict[str, str]:
        """The hub's environment: this one without another hub's, proxy's or server's settings."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTERHUB_", "JPY_", "JUPYTER_")) and k != "CONFIGPROXY_AUTH_TOKEN"
        }
        env.update(self.jupyter_environment(), PYTHONUNBUFFERED="1")
        return env

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int | None = None) -> str:
        return "\n".join(self.log().splitlines()[-(self.log_tail_lines if lines is None else lines) :])

    # -- running -------------------------------------------------------------------------------

    def start_error(self, message: str, *, timed_out: bool = False) -> Exception:
        """What ``start`` raises when the hub cannot run or does not come up."""
        return TimeoutError(message) if timed_out else RuntimeError(message)

    def check(self) -> None:
        """What must be there before starting: ``start_error`` says what is missing, and how to get it."""
        for program in (VENV_BIN / "jupyterhub", VENV_BIN / "jupyterhub-singleuser"):
            if not program.exists():
                raise self.start_error(f"{program} is missing: {self.install_hint}")
        if not self.chp_command():
            raise self.start_error(
                f"{PROJECT_CHP} is missing: `npm ci` installs it from package-lock.json "
                f"(`make {PROJECT_CHP.relative_to(REPO)}` runs it)"
            )

    def start(self, timeout: float = 60) -> Self:
        """Write the workdir, start the hub and wait until {url}hub/health answers 200 through the proxy."""
        if self.process is not None:
            raise RuntimeError("this hub was started already")
        self.check()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_files()
        env = self.hub_env()
        with self.log_path.open("ab" if self.append_log else "wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (fixed program, our own config)
                [str(VENV_BIN / "jupyterhub"), "-f", str(self.config_path)],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=terminate_with_parent if self.die_with_parent else None,
            )
        health = self.hub_url + "health"
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.track()
                if self.process.poll() is not None:
                    raise self.start_error(
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
                    raise self.start_error(
                        f"JupyterHub did not answer {health} within {timeout:g} s; "
                        f"the end of {self.log_path}:\n{self.log_tail()}",
                        timed_out=True,
                    )
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        self.track()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
