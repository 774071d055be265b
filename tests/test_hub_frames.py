"""The hub in a learning platform's frame: its Content-Security-Policy names the registered platform
(and nothing else), and over HTTPS every cookie of the hub and of the user's server is
``SameSite=None; Secure; Partitioned``; over plain HTTP the cookies stay as JupyterHub makes them.

The real hub of tests/hub.py, configured as in tests/test_hub_lti.py; for HTTPS its proxy serves TLS
itself (``JupyterHub.ssl_cert``) with a certificate the test makes, and ``JupyterHub.public_url`` says
so. Requests plays the browser: it keeps cookies, but does not enforce SameSite or partitions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from traitlets import TraitError
from traitlets.config import Config

from jupyter_lti import frames
from lti_peer.platform import PlatformPeer
from tests.browser.tls import make_certificate
from tests.hub import HubProcess
from tests.test_hub_lti import CROSS_SITE, LTIAUTHENTICATOR_13_CONFIG, crypt_key, launch13, new_user_id

REPORT_URI = "/hub/security/csp-report"
FRAMED = ("SameSite=None", "Secure", "Partitioned")


class TlsHub(HubProcess):
    """The harness's hub with its proxy serving HTTPS on the public port (a self-signed certificate)."""

    def __init__(self, workdir: Path, config: str, *, cert: Path, key: Path, env: dict[str, str]) -> None:
        super().__init__(workdir, config, env=env)
        self.public_url = f"https://{self.host}:{self.port}{self.base_url}"
        self.cert, self.key = cert, key

    def config_text(self) -> str:
        return (
            super().config_text()
            + "\n# HTTPS, served by the proxy.\n"
            + f"c.JupyterHub.ssl_cert = {str(self.cert)!r}\n"
            + f"c.JupyterHub.ssl_key = {str(self.key)!r}\n"
            + f"c.JupyterHub.public_url = {self.public_url!r}\n"
        )

    def start(self, timeout: float = 60) -> TlsHub:
        # The harness waits for {hub_url}health over plain http: ask the hub itself, then the proxy.
        self.hub_url = f"http://{self.host}:{self.hub_port}{self.base_url}hub/"
        super().start(timeout)
        self.url, self.hub_url = self.public_url, self.public_url + "hub/"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.hub_url + "health", verify=str(self.cert), timeout=5).ok:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the proxy never answered over HTTPS; the end of the hub's log:\n{self.log_tail()}")
            time.sleep(0.1)


def hub13_config(platform: PlatformPeer) -> str:
    return LTIAUTHENTICATOR_13_CONFIG.format(
        authenticator_class="jupyter_lti.lti13.LTI13Authenticator",
        issuer=platform.issuer,
        client_id=platform.client_id,
    )


@pytest.fixture(scope="module")
def platform() -> Iterator[PlatformPeer]:
    with PlatformPeer(client_id="framing-client") as peer:
        yield peer


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_hub(
    tmp_path_factory: pytest.TempPathFactory, platform: PlatformPeer, certificate: tuple[Path, Path]
) -> Iterator[TlsHub]:
    cert, key = certificate
    hub = TlsHub(
        tmp_path_factory.mktemp("hub-https"),
        hub13_config(platform),
        cert=cert,
        key=key,
        env={"JUPYTERHUB_CRYPT_KEY": crypt_key()},
    )
    with hub.start():
        platform.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        yield hub


@pytest.fixture(scope="module")
def http_hub(tmp_path_factory: pytest.TempPathFactory, platform: PlatformPeer) -> Iterator[HubProcess]:
    hub = HubProcess(
        tmp_path_factory.mktemp("hub-http"), hub13_config(platform), env={"JUPYTERHUB_CRYPT_KEY": crypt_key()}
    )
    with hub.start():
        platform.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        yield hub


def set_cookies(response: requests.Response) -> list[str]:
    return list(response.raw.headers.getlist("Set-Cookie"))


def cookie_names(headers: list[str]) -> set[str]:
    return {header.split("=", 1)[0] for header in headers}


def attributes(set_cookie: str) -> list[str]:
    """The attributes of a Set-Cookie value as written, without their values (``SameSite=None`` kept)."""
    parts = [part.strip() for part in set_cookie.split(";")[1:]]
    return [part if part.lower().startswith("samesite") else part.split("=", 1)[0] for part in parts]


def frame_ancestors(response: requests.Response) -> list[str]:
    """The sources of the response's CSP frame-ancestors directive."""
    policy = response.headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in policy.split(";") if d.strip()}
    assert "frame-ancestors" in directives, (response.url, policy)
    return directives["frame-ancestors"].split()[1:]


def follow(browser: requests.Session, hub: HubProcess, location: str) -> tuple[requests.Response, list[str]]:
    """GET ``location`` and its redirects as the browser would; (last answer, every Set-Cookie on the way)."""
    seen: list[str] = []
    for _ in range(20):
        response = browser.get(urljoin(hub.url, location), allow_redirects=False, timeout=60)
        seen += set_cookies(response)
        if response.status_code not in (301, 302, 303, 307):
            return response, seen
        location = response.headers["Location"]
    raise AssertionError(f"too many redirects, last to {location}")


def wait_for_server(browser: requests.Session, hub: HubProcess, name: str) -> None:
    deadline = time.monotonic() + 90
    while not browser.get(hub.hub_url + f"api/users/{name}", timeout=30).json()["servers"].get("", {}).get("ready"):
        assert time.monotonic() < deadline, "the user's server never became ready"
        time.sleep(0.3)


# -- over HTTPS ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_over_https_the_platform_frames_the_hub_and_every_cookie_is_framed(https_hub, platform, certificate):
    with requests.Session() as browser:
        # The test's certificate (not REQUESTS_CA_BUNDLE, which would win over a session's verify).
        browser.trust_env, browser.verify = False, str(certificate[0])
        platform.user_id = new_user_id()
        # The login initiation: its answer sets the state cookie (lti_core's, already partitioned).
        login_url = https_hub.hub_url + "lti13/oauth_login"
        form = platform.login_form(login_url, https_hub.hub_url + "lti13/oauth_callback")
        login = browser.post(login_url, data=form, headers=CROSS_SITE, allow_redirects=False, timeout=30)
        assert login.status_code == 302, login.text[:2000]
        assert frame_ancestors(login) == [platform.issuer]
        status, action, fields = platform.authorize_redirect(login.headers["Location"])
        assert status == 200
        launched = browser.post(action, data=fields, headers=CROSS_SITE, allow_redirects=False, timeout=60)
        assert launched.status_code == 302, launched.text[:2000]
        assert frame_ancestors(launched) == [platform.issuer]
        hub_cookies = set_cookies(login) + set_cookies(launched)
        assert {"jupyterhub-hub-login", "jupyterhub-session-id", "_xsrf"} <= cookie_names(hub_cookies)

        # A hub page, as JupyterHub serves it, and the LTI pages: the same policy.
        home = browser.get(https_hub.hub_url + "home", timeout=30)
        assert home.status_code == 200 and frame_ancestors(home) == [platform.issuer]
        assert home.headers["Content-Security-Policy"] == f"frame-ancestors {platform.issuer}; report-uri {REPORT_URI}"
        hub_cookies += set_cookies(home)
        for path in ("lti/login", "lti13/config", "lti13/jwks"):
            assert frame_ancestors(browser.get(https_hub.hub_url + path, timeout=30)) == [platform.issuer], path

        # The user's server: started framable, its cookies (login, OAuth state, _xsrf) framed too.
        landed, server_cookies = follow(browser, https_hub, launched.headers["Location"])
        pending = re.match(r"/hub/spawn-pending/([^/?]+)", urlsplit(landed.url).path)
        name = pending.group(1) if pending else urlsplit(landed.url).path.split("/")[2]
        wait_for_server(browser, https_hub, name)
        lab, more = follow(browser, https_hub, f"/user/{name}/lab")
        server_cookies += more
        assert lab.status_code == 200 and urlsplit(lab.url).path == f"/user/{name}/lab", lab.url
        assert frame_ancestors(lab) == [platform.issuer]
        assert lab.headers["Content-Security-Policy"] == f"frame-ancestors {platform.issuer}"
        assert {f"jupyterhub-user-{name}", f"jupyterhub-user-{name}-oauth-state", "_xsrf"} <= cookie_names(
            server_cookies
        )

    for header in hub_cookies + server_cookies:
        assert all(attribute in attributes(header) for attribute in FRAMED), header


# -- over plain HTTP -------------------------------------------------------------------------------


@pytest.mark.slow
def test_over_http_the_platform_frames_the_hub_and_cookies_are_as_jupyterhub_makes_them(http_hub, platform):
    with requests.Session() as browser:
        platform.user_id = new_user_id()
        launched = launch13(browser, http_hub, platform)
        assert launched.status_code == 302, launched.text[:2000]
        home = browser.get(http_hub.hub_url + "home", timeout=30)
        # A launch posted by a browser without the state cookie: the hub's browser check page (or a refusal).
        platform.user_id = new_user_id()
        login_url = http_hub.hub_url + "lti13/oauth_login"
        form = platform.login_form(login_url, http_hub.hub_url + "lti13/oauth_callback")
        login = browser.post(login_url, data=form, headers=CROSS_SITE, allow_redirects=False, timeout=30)
        _, action, fields = platform.authorize_redirect(login.headers["Location"])
        with requests.Session() as other:
            check = other.post(action, data=fields, headers=CROSS_SITE, allow_redirects=False, timeout=30)
        assert check.status_code < 500 and ("id_token" in check.text or "<code>" in check.text), check.text[:2000]
    assert frame_ancestors(launched) == frame_ancestors(home) == frame_ancestors(check) == [platform.issuer]
    hub_cookies = [c for c in set_cookies(launched) + set_cookies(home) if not c.startswith("lti1p3_state_")]
    assert {"jupyterhub-hub-login", "jupyterhub-session-id", "_xsrf"} <= cookie_names(hub_cookies)
    for header in hub_cookies:
        names = [attribute.split("=")[0].lower() for attribute in attributes(header)]
        assert not {"samesite", "secure", "partitioned"} & set(names), header


# -- the parts, without a hub ----------------------------------------------------------------------


def lti13(**traits: Any) -> Any:
    from jupyter_lti.lti13 import LTI13Authenticator

    return LTI13Authenticator(store_url="sqlite://", **traits)


def test_frame_ancestors_default_to_the_configured_platforms_origins():
    authenticator = lti13(
        issuer="https://moodle.example",
        client_id={"abc"},
        authorize_url="https://moodle.example/mod/lti/auth.php",
        jwks_endpoint="https://moodle.example/mod/lti/certs.php",
        platforms=[
            {
                "issuer": "https://canvas.instructure.com",
                "client_id": "1",
                "authorize_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
                "jwks_endpoint": "https://sso.canvaslms.com/api/lti/security/jwks",
            }
        ],
    )
    assert authenticator.frame_sources() == [
        "https://moodle.example",
        "https://canvas.instructure.com",
        "https://sso.canvaslms.com",
    ]
    authenticator.frame_ancestors = ["https://School.Instructure.com/", "'self'"]
    assert authenticator.frame_sources() == ["https://school.instructure.com", "'self'"]
    authenticator.frame_ancestors = []
    assert authenticator.frame_sources() == []


def test_lti11_frames_only_what_is_listed():
    from jupyter_lti.lti11 import LTI11Authenticator

    assert LTI11Authenticator(store_url="sqlite://", consumers={"k": "s"}).frame_sources() == []
    listed = LTI11Authenticator(store_url="sqlite://", frame_ancestors=["https://moodle.example"])
    assert listed.frame_sources() == ["https://moodle.example"]


@pytest.mark.parametrize(
    "source", ["*", "'none'", "https://moodle.example/course", "https://a.example; script-src *", "data:", "moodle"]
)
def test_frame_ancestors_take_origins_only(source):
    with pytest.raises(TraitError):
        lti13(frame_ancestors=[source])


class FakeHub:
    """What frame_hub reads of JupyterHub's app, as it is when get_handlers is called."""

    def __init__(self, public_url: str = "", tornado_settings: dict[str, Any] | None = None) -> None:
        self.public_url = public_url
        self.bind_url = "http://:8000"
        self.ssl_cert = ""
        self.tornado_settings = tornado_settings if tornado_settings is not None else {}
        self.hub = type("Hub", (), {"base_url": "/prefix/hub/"})()


@pytest.mark.parametrize(
    ("framed_cookies", "public_url", "framed"),
    [
        ("auto", "https://hub.example/", True),
        ("auto", "http://hub.example/", False),
        ("auto", "", False),
        ("on", "", True),
        ("off", "https://hub.example/", False),
    ],
)
def test_the_hub_settings_get_the_frame_policy_and_framed_cookies_over_https(framed_cookies, public_url, framed):
    authenticator = lti13(frame_ancestors=["https://moodle.example"], framed_cookies=framed_cookies)
    app = FakeHub(public_url, {"xsrf_cookie_kwargs": {"path": "/prefix/hub/"}})
    authenticator.frame_hub(app)
    settings = app.tornado_settings
    assert settings["headers"]["Content-Security-Policy"] == (
        "frame-ancestors https://moodle.example; report-uri /prefix/hub/security/csp-report"
    )
    if framed:
        assert settings["cookie_options"] == {"samesite": "None", "secure": True}
        assert settings["xsrf_cookie_kwargs"] == {"samesite": "None", "secure": True, "path": "/prefix/hub/"}
        assert settings["transforms"] == [frames.PartitionedCookies]
    else:
        assert "cookie_options" not in settings and "transforms" not in settings
        assert settings["xsrf_cookie_kwargs"] == {"path": "/prefix/hub/"}


def test_what_the_admin_set_in_tornado_settings_wins(caplog):
    authenticator = lti13(frame_ancestors=["https://moodle.example"], framed_cookies="on")
    mine = "frame-ancestors https://lms.example"
    app = FakeHub(
        tornado_settings={
            "headers": {"content-security-policy": mine},
            "cookie_options": {"samesite": "Lax"},
            "compress_response": True,
        }
    )
    authenticator.frame_hub(app)
    settings = app.tornado_settings
    assert settings["headers"] == {"content-security-policy": mine}
    assert settings["cookie_options"] == {"samesite": "Lax", "secure": True}
    from tornado.web import GZipContentEncoding

    assert settings["transforms"] == [GZipContentEncoding, frames.PartitionedCookies]


def test_no_platform_leaves_the_hub_unframable():
    authenticator = lti13()
    app = FakeHub("https://hub.example/")
    authenticator.frame_hub(app)
    assert app.tornado_settings == {}


def test_user_servers_get_their_frame_policy_once_and_keep_the_admins_args():
    class Spawner:
        args = ["--allow-root"]
        cookie_options: dict[str, Any] = {}
        server = type("Server", (), {"base_url": "/user/sam/"})()

    class User:
        name = "sam"

    authenticator = lti13(frame_ancestors=["https://moodle.example"], framed_cookies="on")
    authenticator.frame_hub(FakeHub())
    spawner = Spawner()
    authenticator.pre_spawn_start(User(), spawner)
    first = list(spawner.args)
    authenticator.pre_spawn_start(User(), spawner)  # the next start of the same server
    assert spawner.args == first and first[-1] == "--allow-root" and len(first) == 3
    assert spawner.cookie_options == {"samesite": "None", "secure": True}
    # What jupyter-server makes of them.
    from jupyter_server.serverapp import ServerApp

    server = ServerApp()
    with pytest.warns(DeprecationWarning):
        server.parse_command_line(spawner.args)
    config: Config = server.config.ServerApp
    assert config.tornado_settings == {
        "headers": {"Content-Security-Policy": "frame-ancestors https://moodle.example"},
        "xsrf_cookie_kwargs": {"samesite": "None", "secure": True, "path": "/user/sam/"},
    }
    assert config.jpserver_extensions == {"jupyter_lti.frames": True}

    # An admin's own tornado_settings is left alone (a second one would replace it or stop the server).
    spawner.args = ["--ServerApp.tornado_settings={'max_body_size': 1}"]
    spawner._lti_frame_args = ()
    authenticator.pre_spawn_start(User(), spawner)
    assert spawner.args == [
        "--ServerApp.jpserver_extensions=jupyter_lti.frames=True",
        "--ServerApp.tornado_settings={'max_body_size': 1}",
    ]
