"""Deep linking on a real hub, into the learner's real server: a created link opens its notebook there.

The hub admin's catalog has a notebook of the users' image (the files every home starts with: here a
``Spawner.pre_spawn_hook`` copies them, as an image would hold them) and a git repository to pull with
nbgitpuller (a repository made in tmp, served by ``git http-backend`` on loopback: smart HTTP, as a
forge serves it, so nbgitpuller's shallow clone works). A teacher picks both through the hub's picker,
the platform peer makes the links from the signed answer, and one learner launches each link with a
real HTTP session: through the hub's spawn of their JupyterLab server to the notebook's lab URL, and,
for the repository, through nbgitpuller's git-pull page (whose script this test plays: the pull's event
stream, then the page it sends the browser to). The server's contents API shows what is in the home.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlencode, urljoin, urlsplit

import nbformat
import pytest
import requests

from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer, parse_autosubmit_form
from lti_peer.token import token_endpoint
from tests.hub import HubProcess, free_port
from tests.test_hub_deep_linking import open_picker, submit
from tests.test_hub_lti import api, launch13, new_user_id

pytestmark = pytest.mark.slow

IMAGE_NOTEBOOK = "course/intro.ipynb"  # in the users' image, so in every learner's home
REPO_NOTEBOOK = "lab1.ipynb"  # in the git repository, pulled into the folder named by the item's id
SERVER_TIMEOUT = 60  # JupyterLab's start, then nbgitpuller's clone


# -- a git repository on loopback -------------------------------------------------------------------


def git(*args: str, cwd: Path) -> None:
    # Without the machine's git configuration (signing, hooks, templates): the test's own repository.
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def write_notebook(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)]), path)


class GitHttpBackend(BaseHTTPRequestHandler):
    """Git's smart HTTP, as forges serve it: each request handed to ``git http-backend`` (a CGI program)."""

    project_root: ClassVar[Path]

    def do_GET(self) -> None:
        self.run_backend()

    def do_POST(self) -> None:
        self.run_backend()

    def run_backend(self) -> None:
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "REMOTE_ADDR": self.client_address[0],
        }
        backend = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=True)
        head, _, payload = backend.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def repo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The http URL of a repository with one notebook on its branch ``main``."""
    root = tmp_path_factory.mktemp("git")
    work = root / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    write_notebook(work / REPO_NOTEBOOK, "# Lab 1, from the course's repository")
    git("add", REPO_NOTEBOOK, cwd=work)
    git("-c", "user.name=Teacher", "-c", "user.email=teacher@example.org", "commit", "-qm", "Lab 1", cwd=work)
    git("clone", "-q", "--bare", str(work), str(root / "labs.git"), cwd=root)
    handler = type("Backend", (GitHttpBackend,), {"project_root": root})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/labs.git"
    server.shutdown()
    server.server_close()
    thread.join()


# -- the hub ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def peer() -> Iterator[PlatformPeer]:
    with PlatformPeer(client_id="dl-servers-client") as platform:
        yield platform


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, peer: PlatformPeer, repo_url: str) -> Iterator[HubProcess]:
    image = tmp_path_factory.mktemp("image")
    write_notebook(image / IMAGE_NOTEBOOK, "# Introduction, from the users' image")
    catalog = [
        {"id": "intro", "title": "Introduction", "path": IMAGE_NOTEBOOK},
        {"id": "labs", "title": "Labs", "path": REPO_NOTEBOOK, "git": repo_url, "branch": "main", "max_score": 5},
    ]
    platforms = [
        {
            "issuer": peer.issuer,
            "client_id": peer.client_id,
            "authorize_url": peer.auth_url,
            "jwks_endpoint": peer.jwks_url,
        }
    ]
    config = f"""
import shutil

def install_image(spawner):
    # What the users' image would hold: its files are in every home.
    shutil.copytree({str(image)!r}, spawner.home_dir, dirs_exist_ok=True)

c.Spawner.pre_spawn_hook = install_image
c.JupyterHub.authenticator_class = "lti"
c.LTIAuthenticator.platforms = {platforms!r}
c.LTIAuthenticator.catalog = {catalog!r}
"""
    crypt_key = base64.b64encode(secrets.token_bytes(32)).decode()
    hub = HubProcess(tmp_path_factory.mktemp("hubdlservers"), config, env={"JUPYTERHUB_CRYPT_KEY": crypt_key})
    with hub.start():  # stopping the hub stops the learner's server
        peer.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        token_endpoint(peer).tool_jwks_url = hub.hub_url + "lti13/jwks"  # where the peer checks the answer
        yield hub


# -- a browser without JavaScript -----------------------------------------------------------------


def browse(browser: requests.Session, url: str) -> requests.Response:
    """GET ``url`` and follow the redirects as a browser does; the hub's spawn-pending page (which
    waits with JavaScript) is asked again until it sends the browser on to the ready server."""
    deadline = time.monotonic() + SERVER_TIMEOUT
    while True:
        response = browser.get(url, allow_redirects=False, timeout=SERVER_TIMEOUT)
        if response.is_redirect:
            url = urljoin(url, response.headers["Location"])
        elif response.status_code == 200 and urlsplit(url).path.startswith("/hub/spawn-pending/"):
            assert time.monotonic() < deadline, "the learner's server never became ready"
            time.sleep(0.2)
        else:
            return response


def page_data(page: str) -> dict[str, str]:
    """The ``data-*`` attributes of nbgitpuller's page body (URL-encoded there), which its script reads."""
    return {name: unquote(value) for name, value in re.findall(r'\bdata-([a-z-]+)="([^"]*)"', page)}


def pull_as_the_page_does(browser: requests.Session, git_pull: requests.Response) -> requests.Response:
    """What nbgitpuller's git-pull page does in a browser: read the pull's event stream until it has
    finished, then go where the page says."""
    data = page_data(git_pull.text)
    base = urljoin(git_pull.url, data["base-url"])
    query = {"_xsrf": data["xsrf"], "repo": data["repo"], "targetpath": data["targetpath"], "branch": data["branch"]}
    stream = browser.get(base + "git-pull/api?" + urlencode(query), timeout=SERVER_TIMEOUT)
    events = [json.loads(line[len("data: ") :]) for line in stream.text.splitlines() if line.startswith("data: ")]
    assert events and events[-1]["phase"] == "finished", events
    return browse(browser, base + data["path"])


def contents(browser: requests.Session, server: str, path: str) -> requests.Response:
    """The learner's server's contents API, with the learner's own cookies (the lab's requests)."""
    xsrf = browser.cookies.get("_xsrf", path=urlsplit(server).path) or ""
    return browser.get(server + "api/contents/" + path, headers={"X-XSRFToken": xsrf}, timeout=30)


# -- the test ---------------------------------------------------------------------------------------


def test_created_links_open_their_notebooks_in_the_learners_server(
    hub: HubProcess, peer: PlatformPeer, repo_url: str
) -> None:
    # The teacher's "Select content": both items, through the hub's picker; the peer makes the links.
    peer.user_id = new_user_id()
    with requests.Session() as teacher:
        claims = {"roles": INSTRUCTOR_ROLES, **peer.deep_linking.request_claims()}
        page = open_picker(teacher, hub, launch13(teacher, hub, peer, claims=claims))
        sent = submit(teacher, hub, page, "add", item=["intro", "labs"])
        assert sent.status_code == 200, sent.text[:2000]
        action, fields = parse_autosubmit_form(sent.text)
        created = teacher.post(action, data=fields, timeout=30)  # the form submits itself
        assert created.status_code == 200, created.text
    intro, labs = peer.deep_links
    assert [dict(intro.custom), dict(labs.custom)] == [{"catalog_item": "intro"}, {"catalog_item": "labs"}]

    peer.user_id = new_user_id()
    with requests.Session() as learner:
        # The notebook of the image: the launch spawns the learner's server and opens it there.
        launched = launch13(learner, hub, peer, target=intro.url, claims=peer.deep_linking.launch_claims(intro))
        assert launched.status_code == 302, launched.text[:2000]
        opened = browse(learner, urljoin(hub.url, launched.headers["Location"]))
        (name,) = [user["name"] for user in api(hub, "users") if user["servers"]]
        server = f"{hub.url}user/{name}/"
        assert opened.status_code == 200 and opened.url == server + "lab/tree/" + IMAGE_NOTEBOOK, opened.url
        assert "jupyter-config-data" in opened.text  # JupyterLab's page
        notebook = contents(learner, server, IMAGE_NOTEBOOK)
        assert notebook.status_code == 200 and notebook.json()["type"] == "notebook"
        assert notebook.json()["content"]["cells"][0]["source"] == "# Introduction, from the users' image"
        assert contents(learner, server, "labs").status_code == 404  # not pulled yet

        # The repository's notebook: nbgitpuller pulls the repository into the home, then opens it.
        launched = launch13(learner, hub, peer, target=labs.url, claims=peer.deep_linking.launch_claims(labs))
        assert launched.status_code == 302, launched.text[:2000]
        git_pull = browse(learner, urljoin(hub.url, launched.headers["Location"]))
        assert git_pull.status_code == 200 and urlsplit(git_pull.url).path == f"/user/{name}/git-pull", git_pull.url
        assert page_data(git_pull.text)["repo"] == repo_url
        opened = pull_as_the_page_does(learner, git_pull)
        assert opened.status_code == 200 and opened.url == server + "lab/tree/labs/" + REPO_NOTEBOOK, opened.url
        listed = contents(learner, server, "labs")
        assert listed.status_code == 200, listed.text
        assert REPO_NOTEBOOK in [entry["name"] for entry in listed.json()["content"]]
        pulled = contents(learner, server, "labs/" + REPO_NOTEBOOK).json()
        assert pulled["content"]["cells"][0]["source"] == "# Lab 1, from the course's repository"
