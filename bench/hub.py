"""LTI 1.3 launches through a real JupyterHub: jupyter_lti's authenticator against jupyterhub-ltiauthenticator's.

Run from the repository root::

    PYTHONPATH=. .venv/bin/python bench/hub.py [--launches 300] [--rounds 5] [--jwks-latency 0] [--json]

Two real hubs (tests/hub.py: the hub process behind configurable-http-proxy, SQLite) run side by side,
configured with the same jupyterhub-ltiauthenticator 1.6 config lines; only ``authenticator_class``
differs. One Moodle-like platform (lti_peer/platform.py, real RSA keys) launches into both.

What is timed: only the platform's form POST of the id_token to ``/hub/lti13/oauth_callback``, the
launch handler (validation, JupyterHub's login_user, its database and login cookie, the redirect),
answered with a 302 that is not followed. Everything before it (the login initiation at the hub, the
platform's /auth and its pyjwt signing) is done for the whole batch first, untimed, each launch with
a cookie jar, state and nonce of its own. The batch is then fired by a few client threads, each on a
keep-alive connection opened beforehand, so that the hub (one process, one event loop) is the
bottleneck. Every launch signs in one of a fixed pool of platform users who all launched during the
warm-up: the steady state of a course, where users exist already.

Reported per implementation, best of the interleaved rounds: launches per wall-clock second, and the
hub process's CPU time per launch (utime + stime from /proc, all its threads), which still means
something when other processes share the machine. Every timed answer must be a 302 into the hub that
sets JupyterHub's login cookie, or the row is refused; a forged signature must be refused by both.

The platform's key set is served by a child process (its CPU is not the hub's, as a real platform's
is not), on loopback: ltiauthenticator fetches it at every launch, jupyter_lti caches it. With
``--jwks-latency MS`` it answers that much later, like a platform across the internet.

The launches go straight to the hub's own port with the public Host header (what the proxy forwards),
so the proxy's CPU does not compete with the hub on a small machine; ``--via-proxy`` sends them
through configurable-http-proxy instead. Keep in mind when reading the ratio: most of the hub's CPU
time per launch is JupyterHub's own login_user (user lookup, default roles, login cookie, request
handling), the same in both hubs, so on loopback the ratio stays far below the validation-only one
of bench/launch.py. The blocking per-launch JWKS fetch shows once the platform is not on loopback.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

if __package__ in (None, ""):  # run as a script: make `tests` and `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from bench import machine  # noqa: E402
from lti_peer.platform import PlatformPeer  # noqa: E402
from tests.hub import HubProcess  # noqa: E402

OURS = "jupyter_lti LTI13Authenticator"
THEIRS = "ltiauthenticator LTI13Authenticator"
AUTHENTICATOR_CLASS = {
    OURS: "jupyter_lti.lti13.LTI13Authenticator",
    THEIRS: "ltiauthenticator.lti13.auth.LTI13Authenticator",
}
#: jupyterhub-ltiauthenticator 1.6's LTI 1.3 config as its docs write it; the same lines for both hubs.
CONFIG = """
c.JupyterHub.authenticator_class = "{authenticator_class}"
c.LTI13Authenticator.issuer = "{issuer}"
c.LTI13Authenticator.client_id = ["{client_id}"]
c.LTI13Authenticator.authorize_url = "{issuer}/auth"
c.LTI13Authenticator.jwks_endpoint = "{jwks_endpoint}"
c.LTI13Authenticator.jwks_algorithms = ["RS256"]
c.LTI13Authenticator.uri_scheme = "auto"
c.LTI13Authenticator.tool_name = "Notebooks"
c.LTI13Authenticator.tool_description = "Course notebooks"
# JupyterHub 5+ signs nobody in without an allow rule (jupyter_lti's default is allow_all already).
c.Authenticator.allow_all = True
"""
# What a browser sends with the platform's auto-submitted form.
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
LOGIN_COOKIE = "jupyterhub-hub-login="
CALLBACK = "hub/lti13/oauth_callback"
LOGIN = "hub/lti13/oauth_login"
LANDING = "hub/home"  # the link's target_link_uri: both land there
PREPARE_THREADS = 4

_T0 = time.perf_counter()


def progress(message: str) -> None:
    """Progress on stderr, so that stdout is only the report."""
    print(f"[{time.perf_counter() - _T0:5.1f}s] {message}", file=sys.stderr, flush=True)


# -- the platform's key set, in a child process ------------------------------------------------------

# The child's whole program: no import of this module (nor of multiprocessing's re-import of __main__).
_JWKS_SERVER = r"""
import sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

delay = float(sys.argv[1])
body = sys.stdin.buffer.read()
fetches = [0]
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one connection per fetch, as urllib and tornado's client make them

    def do_GET(self):
        if self.path == "/fetches":  # the benchmark's own question, not a platform endpoint
            data = str(fetches[0]).encode()
        else:
            with lock:
                fetches[0] += 1
            if delay:
                time.sleep(delay)  # the network: every fetch waits, concurrent ones in parallel
            data = body
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever(poll_interval=0.2)
"""


class JwksProcess:
    """``body`` at http://127.0.0.1:<port>/jwks, answered ``delay`` seconds late, from a child process."""

    def __init__(self, body: bytes, delay: float) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _JWKS_SERVER, repr(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a ^C in the terminal is this process's to handle: it closes the server
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(body)
        self._process.stdin.close()
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise RuntimeError("the JWKS server did not start")
        self.origin = f"http://127.0.0.1:{int(line)}"
        self.url = self.origin + "/jwks"

    @property
    def fetches(self) -> int:
        with urllib.request.urlopen(self.origin + "/fetches", timeout=10) as response:  # noqa: S310 - loopback
            return int(response.read())

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


# -- a hub and its launches --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all threads, from /proc/<pid>/stat."""
    data = Path(f"/proc/{pid}/stat").read_text()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Prepared:
    """One launch up to the id_token POST: its body and the cookies the login initiation set."""

    body: bytes
    cookie: str
    user: int


@dataclass
class Answer:
    status: int
    location: str
    signed_in: bool
    body: bytes


@dataclass
class Target:
    """One hub under test, as the benchmark reaches it."""

    name: str
    hub: HubProcess
    peer: PlatformPeer
    via_proxy: bool
    users: int

    @property
    def public_host(self) -> str:
        return urlsplit(self.hub.url).netloc

    @property
    def base(self) -> str:
        """Where requests go: the proxy (the public URL), or the hub's own port with the public Host."""
        return self.hub.url if self.via_proxy else f"http://127.0.0.1:{self.hub.hub_port}/"

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.base)
        return parts.hostname or "127.0.0.1", int(parts.port or 80)

    @property
    def pid(self) -> int:
        assert self.hub.process is not None
        return self.hub.process.pid

    def prepare(self, user: int) -> Prepared:
        """Login initiation at the hub and the platform's /auth (the browser's first two hops), untimed."""
        sub = f"bench-{user:04d}"
        claims = {
            "sub": sub,
            "email": f"learner{user:04d}@example.com",
            "given_name": f"Learner{user:04d}",
            "name": f"Learner{user:04d} Student",
        }
        with requests.Session() as browser:
            form = self.peer.login_form(self.hub.url + LOGIN, self.hub.url + LANDING, claims=claims)
            response = browser.post(
                self.base + LOGIN,
                data=form,
                headers={**CROSS_SITE, "Host": self.public_host},
                allow_redirects=False,
                timeout=60,
            )
            if response.status_code != 302:
                raise RuntimeError(
                    f"{self.name}: login initiation answered {response.status_code}: {response.text[:500]}"
                )
            status, action, fields = self.peer.authorize_redirect(response.headers["Location"])
            if status != 200 or action != self.hub.url + CALLBACK or "id_token" not in fields:
                raise RuntimeError(f"{self.name}: the platform's /auth answered {status} {action} {sorted(fields)}")
            cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
        return Prepared(urlencode(fields).encode("ascii"), cookie, user)

    def prepare_batch(self, users: Sequence[int]) -> list[Prepared]:
        with ThreadPoolExecutor(PREPARE_THREADS) as pool:
            return list(pool.map(self.prepare, users))

    def connect(self) -> http.client.HTTPConnection:
        host, port = self.host_port
        connection = http.client.HTTPConnection(host, port, timeout=60)
        connection.connect()
        return connection

    def post(self, connection: http.client.HTTPConnection, launch: Prepared) -> Answer:
        """The platform's form POST of the id_token, as the browser sends it; the redirect is not followed."""
        headers = {
            "Host": self.public_host,
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": launch.cookie,
            "Origin": self.peer.issuer,
            **CROSS_SITE,
        }
        connection.request("POST", "/" + CALLBACK, body=launch.body, headers=headers)
        response = connection.getresponse()
        body = response.read()
        cookies = response.msg.get_all("Set-Cookie") or []
        return Answer(
            response.status,
            response.getheader("Location", ""),
            any(c.startswith(LOGIN_COOKIE) for c in cookies),
            body,
        )

    def accepted(self, answer: Answer) -> bool:
        """A 302 into the hub (not to a login page) that signs the user in."""
        if answer.status != 302 or not answer.signed_in:
            return False
        location = urlsplit(answer.location)
        if location.netloc not in ("", self.public_host):
            return False
        return location.path.startswith("/hub/") and "login" not in location.path

    def fire(self, launches: Sequence[Prepared], clients: int) -> tuple[float, float, float, list[str]]:
        """POST every launch from ``clients`` threads on keep-alive connections.

        Returns (wall seconds, hub CPU seconds, this process's CPU seconds, failures).
        """
        connections = [self.connect() for _ in range(clients)]
        shares = [launches[i::clients] for i in range(clients)]
        failures: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(clients + 1)

        def client(connection: http.client.HTTPConnection, share: Sequence[Prepared]) -> None:
            start.wait()
            for launch in share:
                try:
                    answer = self.post(connection, launch)
                except (OSError, http.client.HTTPException) as error:
                    with lock:
                        failures.append(f"{type(error).__name__}: {error}")
                    connection.close()
                    connection = self.connect()
                    continue
                if not self.accepted(answer):
                    with lock:
                        failures.append(f"{answer.status} {answer.location!r} {answer.body[:300]!r}")

        threads = [
            threading.Thread(target=client, args=(c, s), daemon=True) for c, s in zip(connections, shares, strict=True)
        ]
        for thread in threads:
            thread.start()
        hub_cpu0, client_cpu0 = cpu_seconds(self.pid), time.process_time()
        start.wait()
        t0 = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - t0
        hub_cpu, client_cpu = cpu_seconds(self.pid) - hub_cpu0, time.process_time() - client_cpu0
        for connection in connections:
            connection.close()
        return wall, hub_cpu, client_cpu, failures

    def check_refuses_forgery(self) -> int:
        """A launch whose signature is changed in one character is refused (and signs nobody in)."""
        launch = self.prepare(0)
        fields = dict(pair.split("=", 1) for pair in launch.body.decode("ascii").split("&"))
        head, body, signature = fields["id_token"].split(".")
        i = len(signature) // 2
        forged_signature = signature[:i] + ("A" if signature[i] != "A" else "B") + signature[i + 1 :]
        fields["id_token"] = f"{head}.{body}.{forged_signature}"
        forged = Prepared("&".join(f"{k}={v}" for k, v in fields.items()).encode("ascii"), launch.cookie, 0)
        connection = self.connect()
        try:
            answer = self.post(connection, forged)
        finally:
            connection.close()
        if not 400 <= answer.status < 500 or answer.signed_in:
            raise AssertionError(f"{self.name} did not refuse a forged id_token: {answer.status} {answer.location!r}")
        return answer.status


# -- the run -----------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    rounds: list[dict[str, float]]
    forged_status: int
    hub_users: int
    ratio_wall: float | None = None
    ratio_cpu: float | None = None

    @property
    def wall_rate(self) -> float:
        """Launches per wall-clock second, best round."""
        return max(r["count"] / r["wall_seconds"] for r in self.rounds)

    @property
    def cpu_ms(self) -> float:
        """Hub CPU milliseconds per launch, best round."""
        return min(1000 * r["hub_cpu_seconds"] / r["count"] for r in self.rounds)

    @property
    def cpu_rate(self) -> float:
        return 1000 / self.cpu_ms if self.cpu_ms else 0.0

    @property
    def hub_busy(self) -> float:
        """Share of the wall time the hub process was on a CPU, over all rounds."""
        return sum(r["hub_cpu_seconds"] for r in self.rounds) / sum(r["wall_seconds"] for r in self.rounds)

    @property
    def fetches_per_launch(self) -> float:
        return sum(r["jwks_fetches"] for r in self.rounds) / sum(r["count"] for r in self.rounds)

    def as_dict(self) -> dict[str, Any]:
        wall_rates = [r["count"] / r["wall_seconds"] for r in self.rounds]
        return {
            "name": self.name,
            "launches_per_wall_second": round(self.wall_rate, 1),
            "launches_per_wall_second_median_round": round(statistics.median(wall_rates), 1),
            "hub_cpu_ms_per_launch": round(self.cpu_ms, 3),
            "launches_per_hub_cpu_second": round(self.cpu_rate, 1),
            "hub_cpu_busy": round(self.hub_busy, 3),
            "ratio_wall": round(self.ratio_wall, 3) if self.ratio_wall is not None else None,
            "ratio_cpu": round(self.ratio_cpu, 3) if self.ratio_cpu is not None else None,
            "forged_id_token_status": self.forged_status,
            "hub_users_after_run": self.hub_users,
            "jwks_fetches_per_timed_launch": round(self.fetches_per_launch, 3),
            "rounds": self.rounds,
        }


def start_hub(name: str, workdir: Path, peer: PlatformPeer, jwks_url: str, via_proxy: bool, users: int) -> Target:
    config = CONFIG.format(
        authenticator_class=AUTHENTICATOR_CLASS[name],
        issuer=peer.issuer,
        client_id=peer.client_id,
        jwks_endpoint=jwks_url,
    )
    hub = HubProcess(workdir, config)
    progress(f"starting the {name} hub in {workdir}")
    hub.start(timeout=120)
    peer.register_redirect_uri(hub.url + CALLBACK)
    return Target(name, hub, peer, via_proxy, users)


def warm_up(target: Target, args: argparse.Namespace) -> None:
    """Every pool user launches once (the hub creates them), then a batch through the timed path."""
    progress(f"{target.name}: {target.users} users' first launches, then {args.warmup} warm-up launches")
    first = target.prepare_batch(range(1, target.users + 1))
    wall, _, _, failures = target.fire(first, args.clients)
    if failures:
        raise RuntimeError(f"{target.name}: {len(failures)} first launches failed, e.g. {failures[0]}")
    launches = target.prepare_batch([1 + i % target.users for i in range(args.warmup)])
    wall, hub_cpu, _, failures = target.fire(launches, args.clients)
    if failures:
        raise RuntimeError(f"{target.name}: {len(failures)} warm-up launches failed, e.g. {failures[0]}")
    rate, cpu_ms = len(launches) / wall, 1000 * hub_cpu / len(launches)
    progress(f"{target.name}: warm-up {rate:,.0f} launches/s, {cpu_ms:.1f} ms hub CPU each")


def hub_user_count(hub: HubProcess) -> int:
    """How many users the hub has, from its REST API."""
    response = requests.get(
        hub.hub_url + "api/users",
        headers={"Authorization": f"token {hub.api_token}", "Accept": "application/jupyterhub-pagination+json"},
        params={"limit": 1},
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["_pagination"]["total"])


def run(args: argparse.Namespace, stack: ExitStack, info: dict[str, Any]) -> list[Row]:
    peer = PlatformPeer(client_id="bench-client")
    stack.enter_context(peer)
    delay = args.jwks_latency / 1000
    if args.jwks_server == "process":
        server = JwksProcess(json.dumps(peer.jwks()).encode(), delay)
        stack.callback(server.close)
        jwks_url = server.url

        def jwks_fetches() -> int:
            return server.fetches
    else:
        peer.jwks_delay = delay
        jwks_url = peer.jwks_url

        def jwks_fetches() -> int:
            return peer.jwks_fetches

    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lti-bench-hub-")))
    targets: list[Target] = []
    try:
        for name in (OURS, THEIRS):
            target = start_hub(name, workdir / name.split()[0], peer, jwks_url, args.via_proxy, args.users)
            stack.callback(target.hub.stop)
            targets.append(target)
        forged: dict[str, int] = {}
        for target in targets:
            forged[target.name] = target.check_refuses_forgery()
            warm_up(target, args)

        results: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets}
        next_user = 0
        for r in range(args.rounds):
            order = targets if r % 2 == 0 else targets[::-1]  # ours first, then theirs first, ...
            for target in order:
                users = [1 + (next_user + i) % args.users for i in range(args.launches)]
                next_user += args.launches
                t = time.perf_counter()
                launches = target.prepare_batch(users)
                prepared_in = time.perf_counter() - t
                fetches = jwks_fetches()
                wall, hub_cpu, client_cpu, failures = target.fire(launches, args.clients)
                fetches = jwks_fetches() - fetches
                if failures:
                    raise RuntimeError(
                        f"{target.name}, round {r + 1}: {len(failures)} of {len(launches)} launches were not "
                        f"signed in, e.g. {failures[0]}"
                    )
                results[target.name].append(
                    {
                        "count": len(launches),
                        "wall_seconds": round(wall, 4),
                        "hub_cpu_seconds": round(hub_cpu, 3),
                        "client_cpu_seconds": round(client_cpu, 3),
                        "jwks_fetches": fetches,
                        "prepare_seconds": round(prepared_in, 2),
                    }
                )
                progress(
                    f"round {r + 1}/{args.rounds}: {target.name}: {len(launches) / wall:,.0f} launches/s, "
                    f"{1000 * hub_cpu / len(launches):.1f} ms hub CPU each (batch prepared in {prepared_in:.1f} s)"
                )
        rows = []
        for target in targets:
            users = hub_user_count(target.hub)
            if users != args.users:
                raise RuntimeError(f"{target.name}: the hub has {users} users, not the {args.users} who launched")
            rows.append(Row(target.name, results[target.name], forged[target.name], users))
        return rows
    except Exception:
        for target in targets:
            tail = target.hub.log_tail(30)
            if tail:
                print(f"--- the end of the {target.name} hub's log ---\n{tail}", file=sys.stderr)
        raise


def _versions() -> dict[str, str]:
    return machine.versions(
        "jupyterhub", "jupyterhub-ltiauthenticator", "tornado", "SQLAlchemy", "PyJWT", "cryptography"
    )


def report(rows: list[Row], info: dict[str, Any]) -> str:
    base = next(r for r in rows if r.name == THEIRS)
    for r in rows:
        r.ratio_wall = r.wall_rate / base.wall_rate if base.wall_rate else None
        r.ratio_cpu = base.cpu_ms / r.cpu_ms if r.cpu_ms else None
    versions = info["versions"]
    latency = info["jwks_latency_ms"]
    where = "through configurable-http-proxy" if info["via_proxy"] else "straight to the hub's port"
    lines = [
        "LTI 1.3 launches through a real JupyterHub: the id_token POST to /hub/lti13/oauth_callback, answered 302",
        f"Python {versions['python']} on {info['cpu']} ({info['cores']} cores); "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "python"),
        f"{info['rounds']} interleaved rounds of {info['launches']} launches per hub, {info['clients']} client threads "
        f"on keep-alive connections, {where}; {info['users']} platform users, all existing hub users "
        f"(after {info['users']} first launches and {info['warmup']} warm-up launches per hub)",
        f"platform key set: {info['jwks_server_label']}, "
        + (f"answering {latency:g} ms late (--jwks-latency)" if latency else "answering at once (loopback)")
        + "; fetches per timed launch: "
        + ", ".join(f"{r.name.split()[0]} {r.fetches_per_launch:.2f}" for r in rows),
        "launches/s: per wall-clock second, best round; hub CPU: the hub process's utime+stime (all its threads) per",
        "launch, best round; hub busy: hub CPU / wall time over all rounds (100% = its one event loop saturated)",
        "",
    ]
    width = max(len(r.name) for r in rows) + 2
    lines.append(
        f"{'implementation':<{width}}{'launches/s':>11}  {'vs ltiauth':>10}  {'hub CPU ms':>10}  "
        f"{'launches/CPU-s':>14}  {'vs ltiauth':>10}  {'hub busy':>8}"
    )
    for r in rows:
        wall = f"{r.ratio_wall:.2f}x" if r.ratio_wall is not None else "-"
        cpu = f"{r.ratio_cpu:.2f}x" if r.ratio_cpu is not None else "-"
        lines.append(
            f"{r.name:<{width}}{r.wall_rate:>11,.0f}  {wall:>10}  {r.cpu_ms:>10.2f}  "
            f"{r.cpu_rate:>14,.0f}  {cpu:>10}  {100 * r.hub_busy:>7.0f}%"
        )
    lines.append("")
    lines.append(
        "checked: every timed launch was a 302 into the hub that set its login cookie; a forged signature was refused "
        + ", ".join(f"with {r.forged_status} by {r.name.split()[0]}" for r in rows)
        + "; each hub has "
        + " and ".join(str(r.hub_users) for r in rows)
        + " users after the run"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--launches", type=int, default=300, help="launches per hub per round (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per hub (default 5)")
    parser.add_argument("--users", type=int, default=50, help="platform users launching (default 50)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed launches per hub after the users' first")
    parser.add_argument("--clients", type=int, default=4, help="client threads, one connection each (default 4)")
    parser.add_argument(
        "--jwks-latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="the platform's key set answers this many milliseconds late (default 0: loopback)",
    )
    parser.add_argument(
        "--jwks-server",
        choices=("process", "peer"),
        default="process",
        help="serve the key set from a child process (default) or from the platform peer's thread in this process",
    )
    parser.add_argument(
        "--via-proxy",
        action="store_true",
        help="send the launches through configurable-http-proxy (default: to the hub's own port, same Host header)",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON, on the last line")
    args = parser.parse_args(argv)
    if args.launches < 1 or args.rounds < 1 or args.users < 1 or args.clients < 1 or args.jwks_latency < 0:
        parser.error("--launches, --rounds, --users and --clients must be positive, --jwks-latency not negative")

    info: dict[str, Any] = {
        "versions": _versions(),
        "cpu": machine.cpu_model(),
        "cores": os.cpu_count(),
        "launches": args.launches,
        "rounds": args.rounds,
        "users": args.users,
        "warmup": args.warmup,
        "clients": args.clients,
        "via_proxy": args.via_proxy,
        "jwks_latency_ms": args.jwks_latency,
        "jwks_server": args.jwks_server,
        "jwks_server_label": "a child process on 127.0.0.1"
        if args.jwks_server == "process"
        else "the platform peer's /jwks (a thread of the benchmark process)",
    }

    # ^C and SIGTERM unwind through the ExitStack, which stops the hubs (and their proxies).
    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with ExitStack() as stack:
            rows = run(args, stack, info)
            progress("stopping the hubs")
    except KeyboardInterrupt:
        progress("interrupted: the hubs are stopped")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    info["total_seconds"] = round(time.perf_counter() - _T0, 1)
    progress("done")
    print(report(rows, info))
    if args.json:
        print()
        doc = {"info": info, "results": [r.as_dict() for r in rows]}
        print(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))  # one line, the last: `tail -n1 | jq`
    return 0


if __name__ == "__main__":
    sys.exit(main())
