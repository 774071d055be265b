"""`make demo` as a new user meets it: the real demo process, its printout, and its local launch page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.peers.platform import parse_autosubmit_form


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    port = free_port()
    var = tmp_path_factory.mktemp("demo-var")
    env = {**os.environ, "LTI_PUBLISH_VAR": str(var), "LTI_PUBLISH_PORT": str(port)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (var / "demo.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "lti_xblock.demo"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parent.parent,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/demo/", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (var / "demo.log").read_text()
            time.sleep(0.3)
        yield base, (var / "demo.log").read_text()
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_demo_prints_what_to_paste_into_moodle(demo):
    base, printout = demo
    for expected in (
        f"{base}/demo/",
        "/ltiaccess",
        f"{base}/lti_publish/lti13/login",
        f"{base}/lti_publish/lti13/launch",
        f"{base}/lti_publish/lti13/jwks",
        "lti-publish add-platform",
        "lti-publish issue-consumer",
    ):
        assert expected in printout


@pytest.mark.parametrize("version", ["1.1", "1.3"])
@pytest.mark.parametrize(("role", "label"), [("learner", "(learner)"), ("instructor", "(staff)")])
def test_local_launch_page_launches_onto_the_content_signed_in(demo, version, role, label):
    base, _ = demo
    with requests.Session() as browser:
        page = browser.get(base + "/demo/")
        assert page.status_code == 200 and 'data-version="1.3"' in page.text
        content_id = page.text.split('name="content_id" value="', 1)[1].split('"', 1)[0]
        response = browser.post(
            base + "/demo/launch", data={"content_id": content_id, "role": role, "version": version}
        )
        for _ in range(3):  # the auto-submitting forms a browser would submit
            if 'onload="document.forms[0].submit()"' not in response.text:
                break
            action, fields = parse_autosubmit_form(response.text)
            response = browser.post(action, data=fields)
        assert response.status_code == 200, response.text[:500]
        assert response.url.endswith(f"/lti_publish/content/{content_id}/")
        assert "Signed in as" in response.text and label in response.text
        # What the content's XBlock JavaScript needs to reach its handlers: the runtime, its
        # globals and the CSRF cookie (a learner pressing "check" was tried in Chromium).
        assert "studentId = student_id" in response.text and "js/runtime/1.js" in response.text
        assert browser.cookies.get("csrftoken")
