"""`make demo` as a new user meets it: the real demo process, its printout, and its local launch page,
with the demo JupyterHub (a real hub, its proxy and JupyterLab servers) beside the workbench."""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from lti_peer.platform import PlatformPeer, parse_autosubmit_form
from tests.hub import alive, cmdline, descendants, port_is_open

REPO = Path(__file__).parent.parent
AUTOSUBMIT = 'onload="document.forms[0].submit()"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Demo:
    """One `python -m demo` process (what `make demo` runs) and where it serves."""

    process: subprocess.Popen[bytes]
    var: Path
    base: str  # the workbench, with the local launch page at /demo/
    hub: str  # the demo JupyterHub's public URL, http://127.0.0.1:<port>/
    hub_ports: tuple[int, int, int]

    @property
    def printout(self) -> str:
        return (self.var / "demo.log").read_text()

    def stop(self) -> int:
        """SIGTERM, as `kill` or a service manager sends; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def start_demo(var: Path, env: dict[str, str] | None = None) -> Demo:
    port, hub_ports = free_port(), (free_port(), free_port(), free_port())
    env = {
        **os.environ,
        "LTI_PUBLISH_VAR": str(var),
        "LTI_PUBLISH_PORT": str(port),
        "LTI_PUBLISH_HUB_PORT": str(hub_ports[0]),
        "LTI_PUBLISH_HUB_PROXY_API_PORT": str(hub_ports[1]),
        "LTI_PUBLISH_HUB_INTERNAL_PORT": str(hub_ports[2]),
        **(env or {}),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with (var / "demo.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "demo"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
    demo = Demo(process, var, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{env['LTI_PUBLISH_HUB_PORT']}/", hub_ports)
    deadline = time.monotonic() + 90
    while True:  # the hub starts (or fails to) before the workbench serves
        try:
            if requests.get(demo.base + "/demo/", timeout=2).status_code == 200:
                return demo
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                demo.stop()
            raise AssertionError(demo.printout)
        time.sleep(0.3)


class _LaunchForms(HTMLParser):
    """The launch page's forms: (action, hidden fields, the buttons' (attributes, name, value))."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str], list[dict[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append((a.get("action") or "", {}, []))
        elif self.forms and tag == "input" and a.get("name"):
            self.forms[-1][1][str(a["name"])] = a.get("value") or ""
        elif self.forms and tag == "button":
            self.forms[-1][2].append(a)


def click(page: requests.Response, **data_attributes: str) -> tuple[str, dict[str, str]]:
    """What a browser POSTs when the button with these data-* attributes is clicked: (action, fields)."""
    parser = _LaunchForms()
    parser.feed(page.text)
    for action, fields, buttons in parser.forms:
        for button in buttons:
            if all(button.get(f"data-{k}") == v for k, v in data_attributes.items()):
                return urljoin(page.url, action), {**fields, str(button["name"]): str(button["value"])}
    raise AssertionError(f"no button with {data_attributes} on {page.url}")


def browse(browser: requests.Session, response: requests.Response, deadline: float) -> requests.Response:
    """Go on as a browser does: follow redirects, submit auto-submitting forms, and wait on JupyterHub's
    spawn-pending page (its JavaScript waits for the server; here the page is asked again until it
    redirects to the server). Returns the first other page."""
    while True:
        assert time.monotonic() < deadline, f"still at {response.url} ({response.status_code})"
        if response.status_code in (301, 302, 303, 307):
            location = urljoin(response.url, response.headers["Location"])
            response = browser.get(location, allow_redirects=False, timeout=60)
        elif AUTOSUBMIT in response.text:
            action, fields = parse_autosubmit_form(response.text)
            response = browser.post(action, data=fields, allow_redirects=False, timeout=60)
        elif urlsplit(response.url).path.startswith("/hub/spawn-pending/"):
            assert response.status_code == 200, response.text[:2000]
            time.sleep(0.3)
            response = browser.get(response.url, allow_redirects=False, timeout=60)
        else:
            return response


#: Where each tool's "Published content" picker is.
PICKER_PATHS = {"workbench": "/lti_publish/pick/", "jupyterhub": "/hub/lti/content/"}


def select_content(demo: Demo, instructor: requests.Session, tool: str) -> requests.Response:
    """The instructor's click on the demo page's "Select content" for ``tool``, followed as a browser
    does (the login initiation and id_token forms, the linking prompt of a first launch): its picker."""
    page = instructor.get(demo.base + "/demo/", timeout=10)
    action, fields = click(page, select=tool)
    assert fields == {"tool": tool}
    response = instructor.post(action, data=fields, allow_redirects=False, timeout=30)
    landed = browse(instructor, response, time.monotonic() + 30)
    if 'name="choice" value="new"' in landed.text:  # the demo keeps Moodle's default: a first launch asks
        landed = create_new_account(instructor, landed)
    assert landed.status_code == 200 and PICKER_PATHS[tool] in landed.url, (landed.url, landed.text[:2000])
    return landed


def pick(
    instructor: requests.Session, picker: requests.Response, action: str, **fields: str
) -> tuple[requests.Response, str, dict[str, str]]:
    """A click on the picker's Add content (``action`` "add") or Cancel: the results page, whose form posts
    itself to the demo platform's return URL (posted here as the browser does). Where that lands, and
    the answer (return URL, form)."""
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', picker.text, re.S)
    assert form, picker.text[:2000]
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form[2]))  # CSRF, _xsrf
    data = {**hidden, "action": action, **fields}
    sent = instructor.post(urljoin(picker.url, html.unescape(form[1])), data=data, timeout=30)
    assert sent.status_code == 200, sent.text[:2000]
    return_url, answer = parse_autosubmit_form(sent.text)
    assert "/demo/platform/mod/lti/contentitem_return.php?" in return_url and set(answer) == {"JWT"}
    return instructor.post(return_url, data=answer, timeout=30), return_url, answer


# -- the workbench, with a hub that cannot start -------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo with its hub's public port taken by someone else: the workbench runs without the hub."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        demo = start_demo(tmp_path_factory.mktemp("demo-var"), {"LTI_PUBLISH_HUB_PORT": str(taken)})
        try:
            yield demo
        finally:
            assert demo.stop() == 0, demo.printout


def test_demo_prints_what_to_paste_into_moodle(demo):
    for expected in (
        f"{demo.base}/demo/",
        "/ltiaccess",
        f"{demo.base}/lti_publish/lti13/login",
        f"{demo.base}/lti_publish/lti13/launch",
        f"{demo.base}/lti_publish/lti13/jwks",
        "lti-publish add-platform",
        "lti-publish issue-consumer",
        f"Content Selection URL: {demo.base}/lti_publish/",
    ):
        assert expected in demo.printout
    # The tool's registration once; each published block's Tool URLs, in the launch page's order.
    assert demo.printout.count("/lti_publish/lti13/login") == 1
    for title, content_id in (
        ("Published content: fractions", "lti-publish-published-content.lti_publish.d0.u0"),
        ("Published content: decimals", "lti-publish-published-content-2.lti_publish.d0.u0"),
    ):
        content = f"{demo.base}/lti_publish/content/{content_id}/"
        assert f"  {title}\n    LTI 1.3:  {content}\n    LTI 1.1:  {content}ltiaccess\n" in demo.printout
    assert demo.printout.index("content: fractions") < demo.printout.index("content: decimals")
    page = requests.get(demo.base + "/demo/", timeout=10).text
    assert page.index("<h2>Published content: fractions") < page.index("<h2>Published content: decimals")


def test_a_hub_that_cannot_start_leaves_the_workbench_running_and_says_why(demo):
    port = urlsplit(demo.hub).port
    why = f"port {port} (public) on 127.0.0.1 is in use"
    assert "JupyterHub: NOT started; the workbench demo runs without it. Why: " + why in demo.printout
    page = requests.get(demo.base + "/demo/", timeout=10)
    assert "The demo JupyterHub is not running: " + why in page.text
    assert 'data-tool="jupyterhub"' not in page.text
    refused = requests.post(demo.base + "/demo/launch", data={"role": "learner", "tool": "jupyterhub"}, timeout=10)
    assert refused.status_code == 400


def launch_from_the_demo_page(
    demo: Demo, browser: requests.Session, role: str, version: str
) -> tuple[str, requests.Response]:
    """A click on the local launch page's button, and the forms a browser submits: (content id, where it lands)."""
    page = browser.get(demo.base + "/demo/")
    assert page.status_code == 200 and 'data-version="1.3"' in page.text
    content_id = page.text.split('name="content_id" value="', 1)[1].split('"', 1)[0]
    response = browser.post(
        demo.base + "/demo/launch", data={"content_id": content_id, "role": role, "version": version}
    )
    for _ in range(3):  # the auto-submitting forms a browser would submit
        if AUTOSUBMIT not in response.text:
            break
        action, fields = parse_autosubmit_form(response.text)
        response = browser.post(action, data=fields)
    if 'name="choice" value="new"' in response.text:
        # The demo keeps Moodle's default modes: an instructor's first launch asks; the teacher creates a new account.
        assert role == "instructor" and "How do you want to continue?" in response.text
        response = create_new_account(browser, response)
    return content_id, response


def create_new_account(browser: requests.Session, prompt: requests.Response) -> requests.Response:
    """The linking prompt's "Create a new account" button."""
    for action, body in re.findall(r'<form method="post" action="([^"]+)">(.*?)</form>', prompt.text, re.S):
        if 'name="choice" value="new"' in body:
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body))
            return browser.post(urljoin(prompt.url, html.unescape(action)), data={**fields, "choice": "new"})
    raise AssertionError("no 'Create a new account' button")


@pytest.mark.parametrize("version", ["1.1", "1.3"])
@pytest.mark.parametrize(("role", "label"), [("learner", "(learner)"), ("instructor", "(staff)")])
def test_local_launch_page_launches_onto_the_content_signed_in(demo, version, role, label):
    with requests.Session() as browser:
        content_id, response = launch_from_the_demo_page(demo, browser, role, version)
        assert response.status_code == 200, response.text[:500]
        assert response.url.endswith(f"/lti_publish/content/{content_id}/")
        assert "Signed in as" in response.text and label in response.text
        # What the content's XBlock JavaScript needs to reach its handlers: the runtime, its
        # globals and the CSRF cookie (a learner pressing "check" was tried in Chromium).
        assert "studentId = student_id" in response.text and "js/runtime/1.js" in response.text
        assert browser.cookies.get("csrftoken")


def test_the_workbench_shows_no_content_without_a_launch_and_handlers_run_as_the_launched_user(demo):
    index = requests.get(demo.base + "/", allow_redirects=False, timeout=10)
    assert index.status_code == 302 and index.headers["Location"] == "/demo/"
    with requests.Session() as learner:
        content_id, landed = launch_from_the_demo_page(demo, learner, "learner", "1.3")
        assert landed.status_code == 200 and "Adding fractions" in landed.text
        # What the content page loads is still served: the workbench runtime's JavaScript, its catalog.
        scripts = re.findall(r"<script[^>]* src=[\"']([^\"']+)", landed.text)
        assert any("js/runtime/1.js" in src for src in scripts) and "/jsi18n/" in scripts
        for src in scripts:
            assert learner.get(urljoin(landed.url, src), timeout=10).status_code == 200, src
        scenario = content_id.split(".", 1)[0]
        for path in (
            f"/scenario/{scenario}/",
            f"/scenario/{scenario}/studio_view/",
            f"/view/{scenario}/",
            "/userlist/",
        ):
            for client in (requests, learner):  # nobody, not even a launched learner
                response = client.get(demo.base + path, allow_redirects=False, timeout=10)
                assert response.status_code == 404, path
                assert "Adding fractions" not in response.text

        def post(browser: requests.Session, usage_id: str, handler: str, data: object) -> requests.Response:
            return browser.post(
                f"{demo.base}/handler/{usage_id}/{handler}/?student=1",
                json=data,
                headers={"X-CSRFToken": browser.cookies.get("csrftoken", "")},
                timeout=10,
            )

        # The learner answers the first problem (what its JavaScript posts), and may not edit the settings.
        problem = content_id.replace(".lti_publish.d0.u0", ".problem_demo.d0.u0")
        checked = post(learner, problem, "check", {"numerator": [{"name": "input", "value": "2"}]})
        assert checked.status_code == 200 and set(checked.json()["checkResults"]) == {"numerator_checker"}
        same = {"display_name": "Published content: fractions", "max_score": 100}
        refused = post(learner, content_id, "save_settings", same)
        assert refused.status_code == 403 and "error" in refused.json()
    with requests.Session() as instructor:
        launch_from_the_demo_page(demo, instructor, "instructor", "1.1")
        assert post(instructor, content_id, "save_settings", same).json() == {"result": "success"}
    with requests.Session() as nobody:
        nobody.cookies.set("csrftoken", "b" * 32)
        assert post(nobody, content_id, "save_settings", same).status_code == 403


# -- the demo JupyterHub, for real --------------------------------------------------------------


def moodle_lines() -> str:
    """The hub config lines `make demo` prints for a Moodle platform (placeholders still in)."""
    from demo.demohub import DemoHub, DemoPlatform

    lines = DemoHub(Path("/nonexistent"), DemoPlatform("", "", "", "")).instructions()
    first = next(i for i, line in enumerate(lines) if "platforms.append(" in line)
    last = next(i for i, line in enumerate(lines) if i > first and line.strip() == "})")
    return textwrap.dedent("\n".join(lines[first : last + 1]))


@pytest.mark.slow
def test_make_demo_launches_into_jupyterlab_with_the_welcome_notebook_and_stops_clean(tmp_path):
    started = time.monotonic()
    with PlatformPeer(client_id="moodleclient123", deployment_id="5") as moodle:
        # An admin who followed the printout for a Moodle: its values in the local hub config.
        snippet = moodle_lines()
        for placeholder, value in {
            "<Platform ID>": moodle.issuer,
            "<Client ID>": moodle.client_id,
            "<Deployment ID>": moodle.deployment_id,
            "<Authentication request URL>": moodle.auth_url,
            "<Public keyset URL>": moodle.jwks_url,
            "<Access token URL>": moodle.token_url,
        }.items():
            snippet = snippet.replace(placeholder, value)
        (tmp_path / "jupyterhub").mkdir()
        (tmp_path / "jupyterhub" / "jupyterhub_config.local.py").write_text("c = get_config()  # noqa\n" + snippet)

        demo = start_demo(tmp_path)
        try:
            hub = demo.hub
            printout = demo.printout
            for expected in (
                f"JupyterHub (LTI 1.3; JupyterLab for each user): {hub}hub/",
                '"Learner · JupyterHub (LTI 1.3)"',
                f"Tool URL:            {hub}hub/lti13/oauth_callback",
                "LTI version:         LTI 1.3",
                "Public key type:     Keyset URL",
                f"Public keyset:       {hub}hub/lti13/jwks",
                f"Initiate login URL:  {hub}hub/lti13/oauth_login",
                f"Redirection URI(s):  {hub}hub/lti13/oauth_callback",
                "Custom parameters:   next=lab/tree/welcome.ipynb",
                str(tmp_path / "jupyterhub" / "jupyterhub_config.local.py"),
                *moodle_lines().splitlines(),
            ):
                assert expected in printout, expected

            landed_as = {}
            for role in ("learner", "instructor"):
                with requests.Session() as browser:
                    page = browser.get(demo.base + "/demo/", timeout=10)
                    assert f"{role.capitalize()} &middot; JupyterHub (LTI 1.3)" in page.text
                    action, fields = click(page, tool="jupyterhub", role=role)
                    assert fields == {"role": role, "tool": "jupyterhub"}
                    response = browser.post(action, data=fields, allow_redirects=False, timeout=30)
                    landed = browse(browser, response, time.monotonic() + 40)
                    # In the user's own JupyterLab, on the welcome notebook.
                    assert landed.status_code == 200, (landed.url, landed.text[:2000])
                    path = urlsplit(landed.url).path
                    assert path.startswith("/user/") and path.endswith("/lab/tree/welcome.ipynb"), landed.url
                    assert "jupyterlab" in landed.text.lower()
                    name = path.split("/")[2]
                    notebook = browser.get(f"{hub}user/{name}/api/contents/welcome.ipynb", timeout=30)
                    assert notebook.status_code == 200, notebook.text[:500]
                    assert notebook.json()["type"] == "notebook"
                    assert notebook.json()["content"]["nbformat"] == 4
                    landed_as[role] = name
            assert landed_as["learner"].startswith("ada_") and landed_as["instructor"].startswith("grace_")
            # "Select content" on the hub: its picker lists the demo hub's catalog (the welcome notebook),
            # whose signed answer the demo platform takes: one link added, in the gradebook.
            with requests.Session() as instructor:
                picker = select_content(demo, instructor, "jupyterhub")
                assert "Welcome notebook" in picker.text, picker.text[:2000]
                back, _, _ = pick(instructor, picker, "add", item="welcome", gradebook="welcome")
                assert back.url.endswith("/demo/?added=1") and "Welcome notebook" in back.text, back.text[:2000]
            homes = tmp_path / "jupyterhub" / "home"
            assert {p.name for p in homes.iterdir()} == set(landed_as.values())

            # The Moodle added with the printed lines launches too (to the same landing, before any spawn).
            moodle.register_redirect_uri(hub + "hub/lti13/oauth_callback")
            with requests.Session() as browser:
                form = moodle.login_form(
                    hub + "hub/lti13/oauth_login",
                    hub + "hub/lti13/oauth_callback",
                    claims={"custom": {"next": "lab/tree/welcome.ipynb"}},
                )
                response = browser.post(hub + "hub/lti13/oauth_login", data=form, allow_redirects=False, timeout=30)
                assert response.status_code == 302, response.text[:2000]
                status, action, fields = moodle.authorize_redirect(response.headers["Location"])
                assert status == 200 and action == hub + "hub/lti13/oauth_callback", (status, fields)
                response = browser.post(action, data=fields, allow_redirects=False, timeout=30)
                assert response.status_code == 302, response.text[:2000]
                assert response.headers["Location"] == "/hub/user-redirect/lab/tree/welcome.ipynb"

            # Stopping the demo stops the hub, its proxy and both JupyterLab servers: nothing is left.
            running = descendants(demo.process.pid)
            commands = " ".join(cmdline(pid) for pid in running)
            assert "jupyterhub-singleuser" in commands and "configurable-http-proxy" in commands
        finally:
            status = demo.stop()
        assert status == 0, demo.printout[-3000:]
        assert "JupyterHub stopped." in demo.printout
        assert not [pid for pid, starttime in running.items() if alive(pid, starttime)]
        assert not any(port_is_open(port) for port in demo.hub_ports)
    assert time.monotonic() - started < 60
