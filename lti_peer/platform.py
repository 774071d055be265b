"""A real LTI 1.3 platform on loopback, shaped like Moodle 4.x (mod/lti/auth.php, certs.php).

    with PlatformPeer(redirect_uris=["http://testserver/lti_publish/lti13/launch"]) as platform:
        login = platform.login_form(tool_login_url, target_link_uri)   # what Moodle POSTs to the tool
        ... tool answers with a redirect to platform.auth_url?...
        status, action, fields = platform.authorize_redirect(location)  # the OIDC auth response
        ... POST fields (id_token, state) to action, as the browser would ...

Tokens are signed with pyjwt (RS256, `lti_peer.tokens`) using RSA keys made with `cryptography` from
the process-wide pool (`lti_peer.keys`); their claims are `lti_peer.claims`'. Attack tokens (alg
none, HS256 with the public key, foreign keys, missing kid) are built by hand, as an attacker would.
"""

from __future__ import annotations

import html
import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qsl, urlsplit
from urllib.request import urlopen

from cryptography.hazmat.primitives.asymmetric import rsa

from lti_peer import DELETE, apply_overrides, tokens
from lti_peer.ags import gradebook, is_gradebook_path
from lti_peer.claims import (
    CLAIM_ALIASES,
    CLAIM_DEPLOYMENT_ID,
    CLAIM_MESSAGE_TYPE,
    CLAIM_ROLES,
    CLAIM_TARGET_LINK_URI,
    CLAIM_VERSION,
    INSTRUCTOR_ROLES,
    MoodleUser,
    launch_claims,
    login_initiation_params,
)
from lti_peer.deep_linking import RETURN_PATH, CreatedLink, DeepLinkingReturn
from lti_peer.forms import autosubmit_form, parse_autosubmit_form
from lti_peer.keys import attacker_key, new_kid, pool_key, public_jwk, public_pem
from lti_peer.outcomes import OUTCOME_SERVICE_PATH, OutcomeService
from lti_peer.registration import CONFIGURATION_PATH, REGISTRATION_PATH, DynamicRegistrar
from lti_peer.token import token_endpoint
from lti_peer.tokens import b64url

#: How often the servers look at their stop flag: serve_forever's default (0.5 s) made every stop, so
#: every test that starts a peer, half a second longer.
POLL_SECONDS = 0.02


class _Server(ThreadingHTTPServer):
    """A platform's server: a listen backlog for many tools' connections at once (a grade worker
    opens dozens; the default of 5 resets some of them)."""

    request_queue_size = 128


@dataclass
class _PendingLaunch:
    """What the platform remembers between the login initiation it sent and the tool's auth request."""

    login_hint: str
    target_link_uri: str
    claims: dict[str, Any]


_UNSET: Any = object()
_CLIENT_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_LEARNER = MoodleUser()  # the tests' student, Sam


class PlatformPeer:
    """A Moodle-like LTI 1.3 platform serving /jwks, /auth and /token on 127.0.0.1."""

    def __init__(
        self,
        *,
        client_id: str | None = None,
        deployment_id: str = "2",
        redirect_uris: Iterable[str] = (),
        user_id: str = "2",
        jwks_cache_control: str | None = None,
        jwks_delay: float = 0.0,
        browser_tls: ssl.SSLContext | None = None,
    ) -> None:
        # Moodle makes client ids of 15 random letters and digits.
        self.client_id = client_id or "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(15))
        self.deployment_id = deployment_id
        self.redirect_uris: list[str] = list(redirect_uris)
        self.user_id = user_id
        #: Value of the Cache-Control header on /jwks (None: no header, like Moodle's certs.php).
        self.jwks_cache_control = jwks_cache_control
        #: Seconds /jwks sleeps before answering (slow platforms, timeouts).
        self.jwks_delay = jwks_delay
        #: HTTP status /jwks answers with (anything but 200 sends an error body).
        self.jwks_status = 200
        #: Every /auth request's parameters, in order.
        self.auth_requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._jwks_fetches = 0
        self._next_pool_index = 0
        self._keys: dict[str, rsa.RSAPrivateKey] = {}  # kid -> key, published in /jwks
        self._signing_kid = ""
        self._pending: dict[str, _PendingLaunch] = {}
        self._launch_counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: With a TLS context, a second server on its own port serves what a browser sees (the course
        #: page framing the tool, /auth, the platform-storage frame) over HTTPS; /jwks and /token stay
        #: on the first one, which the tool's server reaches without trusting the test certificate.
        self._browser_tls = browser_tls
        self._browser_server: ThreadingHTTPServer | None = None
        #: Course pages: launch id -> (tool login URL, login parameters, platform storage offered).
        self._course_launches: dict[str, tuple[str, dict[str, str], bool]] = {}
        #: What the platform-storage frame was asked: {"subject", "origin", "key", "found"} each.
        self.storage_log: list[dict[str, Any]] = []
        self.rotate_key(keep_old=False)
        #: LTI Dynamic Registration, Moodle's way (``lti_peer.registration``).
        self.registrar = DynamicRegistrar(self)
        #: LTI 1.1 Basic Outcomes, Moodle's mod/lti/service.php (``lti_peer.outcomes``).
        self.outcomes = OutcomeService(self)
        #: LTI Deep Linking's return, Moodle's mod/lti/contentitem_return.php (``lti_peer.deep_linking``).
        self.deep_linking = DeepLinkingReturn(self)

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> PlatformPeer:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.peer = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(POLL_SECONDS,), name="PlatformPeer", daemon=True
        )
        self._thread.start()
        if self._browser_tls is not None:
            front = _Server(("127.0.0.1", 0), _Handler)
            front.daemon_threads = True
            front.peer = self  # type: ignore[attr-defined]
            front.socket = self._browser_tls.wrap_socket(front.socket, server_side=True)
            self._browser_server = front
            threading.Thread(
                target=front.serve_forever, args=(POLL_SECONDS,), name="PlatformPeer-browser", daemon=True
            ).start()
        return self

    def stop(self) -> None:
        front, self._browser_server = self._browser_server, None
        if front is not None:
            front.shutdown()
            front.server_close()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> PlatformPeer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("PlatformPeer is not started")
        return int(self._server.server_address[1])

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def browser_origin(self) -> str:
        """Where the browser meets the platform: the HTTPS front when there is one."""
        if self._browser_server is not None:
            return f"https://127.0.0.1:{self._browser_server.server_address[1]}"
        return self.issuer

    @property
    def auth_url(self) -> str:
        return self.browser_origin + "/auth"

    def course_url(
        self,
        tool_login_url: str,
        target_link_uri: str,
        *,
        storage: bool,
        framed: bool = True,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A course page whose activity launches the tool, framed (Moodle's "Embed", Canvas) or in
        the window itself. With ``storage`` the platform offers LTI platform storage, as Canvas and
        Brightspace do: a ``post_message_forwarding`` frame and ``lti_storage_target`` in the login."""
        params = self.login_form(tool_login_url, target_link_uri, claims=claims)
        if storage:
            params["lti_storage_target"] = STORAGE_FRAME_NAME
        launch_id = secrets.token_urlsafe(8)
        self._course_launches[launch_id] = (tool_login_url, params, storage)
        return f"{self.browser_origin}/{'course' if framed else 'launch'}?launch={launch_id}"

    def lti11_course_url(self, tool_url: str, form: Mapping[str, str], *, framed: bool = True) -> str:
        """A course page whose LTI 1.1 activity posts the signed ``form`` (``lti_peer.lti11``) to
        ``tool_url``, framed (Moodle's "Embed", its default for LTI 1.1 tools) or in the window itself."""
        launch_id = secrets.token_urlsafe(8)
        self._course_launches[launch_id] = (tool_url, dict(form), False)
        return f"{self.browser_origin}/{'course' if framed else 'launch'}?launch={launch_id}"

    def attacker_page_url(self, action: str, fields: Mapping[str, str]) -> str:
        """A page on the platform's site (cross-site for the tool) that auto-posts ``fields``: what an
        attacker sends a victim to."""
        launch_id = secrets.token_urlsafe(8)
        self._course_launches[launch_id] = (action, dict(fields), False)
        return f"{self.browser_origin}/launch?launch={launch_id}"

    def _course_page(self, query: Mapping[str, str]) -> tuple[int, str]:
        launch = self._course_launches.get(query.get("launch", ""))
        if launch is None:
            return 404, "no such launch"
        storage_frame = (
            f'<iframe name="{STORAGE_FRAME_NAME}" src="/storage" title="storage" hidden></iframe>' if launch[2] else ""
        )
        page = (
            "<!DOCTYPE html><html><head><title>Course</title></head><body><h1>Course</h1>"
            f"{storage_frame}"
            f'<iframe id="tool" name="tool" src="/launch?launch={html.escape(query["launch"])}" '
            'width="1000" height="700" title="Tool" allow="clipboard-write"></iframe></body></html>'
        )
        return 200, page

    def _launch_page(self, query: Mapping[str, str]) -> tuple[int, str]:
        launch = self._course_launches.get(query.get("launch", ""))
        if launch is None:
            return 404, "no such launch"
        return 200, autosubmit_form(launch[0], launch[1])

    @property
    def token_url(self) -> str:
        return self.issuer + "/token"

    @property
    def jwks_url(self) -> str:
        return self.issuer + "/jwks"

    @property
    def jwks_fetches(self) -> int:
        with self._lock:
            return self._jwks_fetches

    def register_redirect_uri(self, uri: str) -> None:
        self.redirect_uris.append(uri)

    @property
    def deep_links(self) -> list[CreatedLink]:
        """The resource links made from the tools' deep-linking answers, in order."""
        return self.deep_linking.links

    # -- keys ----------------------------------------------------------------------------------------

    def _new_kid_and_key(self) -> tuple[str, rsa.RSAPrivateKey]:
        with self._lock:
            index = self._next_pool_index
            self._next_pool_index += 1
        return new_kid(), pool_key(index)

    def add_key(self) -> str:
        """Publish one more key (not used for signing yet); returns its kid."""
        kid, key = self._new_kid_and_key()
        with self._lock:
            self._keys[kid] = key
        return kid

    def rotate_key(self, *, keep_old: bool = True) -> str:
        """Sign with a new key from now on, like Brightspace's hourly rotation; returns the new kid.

        ``keep_old`` keeps the previous keys in /jwks (a platform mid-rotation); False drops them.
        """
        kid, key = self._new_kid_and_key()
        with self._lock:
            if not keep_old:
                self._keys.clear()
            self._keys[kid] = key
            self._signing_kid = kid
        return kid

    def remove_key(self, kid: str) -> None:
        """Stop publishing ``kid`` (it can still sign, through ``id_token(kid=..., key=...)``)."""
        with self._lock:
            self._keys.pop(kid)

    def use_key(self, kid: str) -> None:
        """Sign with the published key ``kid`` from now on."""
        with self._lock:
            if kid not in self._keys:
                raise KeyError(kid)
            self._signing_kid = kid

    @property
    def signing_kid(self) -> str:
        return self._signing_kid

    @property
    def kids(self) -> list[str]:
        with self._lock:
            return list(self._keys)

    def private_key(self, kid: str | None = None) -> rsa.RSAPrivateKey:
        with self._lock:
            return self._keys[kid or self._signing_kid]

    def jwks(self) -> dict[str, Any]:
        """The key set /jwks serves."""
        with self._lock:
            return {"keys": [public_jwk(key, kid) for kid, key in self._keys.items()]}

    # -- messages ------------------------------------------------------------------------------------

    def claims(self, nonce: str, *, target_link_uri: str = "", now: float | None = None) -> dict[str, Any]:
        """The claims of a Moodle-shaped LtiResourceLinkRequest for the learner ``user_id``."""
        return launch_claims(
            issuer=self.issuer,
            client_id=self.client_id,
            deployment_id=self.deployment_id,
            nonce=nonce,
            iat=int(time.time() if now is None else now),
            target_link_uri=target_link_uri or "http://127.0.0.1:8000/lti_publish/content/demo/",
            user=replace(_LEARNER, id=self.user_id),
        )

    def id_token(
        self,
        nonce: str,
        *,
        claims: Mapping[str, Any] | None = None,
        kid: Any = _UNSET,
        alg: str = "RS256",
        key: rsa.RSAPrivateKey | None = None,
        secret: str | bytes | None = None,
        headers: Mapping[str, Any] | None = None,
        now: float | None = None,
        **overrides: Any,
    ) -> str:
        """A signed LtiResourceLinkRequest id_token.

        ``overrides`` set claims by name (``sub=``, ``exp=``; short names for LTI claims: ``roles=``,
        ``deployment_id=``, ``message_type=``...; see CLAIM_ALIASES); ``claims`` does the same with full
        claim URIs. The value ``DELETE`` removes a claim.

        Header tweaks: ``kid=None`` omits the kid, ``kid="x"`` sets any kid; ``alg="none"`` makes an
        unsigned token; ``alg="HS256"`` signs with ``secret`` (default: this platform's public key PEM,
        the classic key-confusion attack); ``key=`` signs with another private key; ``headers`` adds
        header fields.
        """
        target = overrides.pop("target_link_uri", "")
        body = self.claims(nonce, target_link_uri=target if isinstance(target, str) else "", now=now)
        if not isinstance(target, str):  # DELETE, or a wrongly typed value
            body = apply_overrides(body, {CLAIM_TARGET_LINK_URI: target})
        body = apply_overrides(body, {CLAIM_ALIASES.get(k, k): v for k, v in overrides.items()})
        body = apply_overrides(body, dict(claims or {}))
        return self.sign(body, kid=kid, alg=alg, key=key, secret=secret, headers=headers)

    def sign(
        self,
        payload: Mapping[str, Any],
        *,
        kid: Any = _UNSET,
        alg: str = "RS256",
        key: rsa.RSAPrivateKey | None = None,
        secret: str | bytes | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign any payload as this platform would (or as an attacker would, see `id_token`)."""
        signing_key = key if key is not None else self.private_key()
        if alg.upper().startswith("HS") and secret is None:
            secret = public_pem(self.private_key())  # the key confusion: this platform's public key
        return tokens.sign(
            payload,
            signing_key,
            kid=self.signing_kid if kid is _UNSET else kid,
            alg=alg,
            secret=secret,
            headers=headers,
        )

    def login_form(
        self, tool_login_url: str, target_link_uri: str, *, claims: Mapping[str, Any] | None = None, **overrides: Any
    ) -> dict[str, str]:
        """The login-initiation parameters Moodle POSTs to ``tool_login_url`` (that URL is not contacted).

        The platform remembers the launch: when the tool then sends the browser to /auth with the
        ``lti_message_hint`` and ``login_hint`` given here, /auth answers with an id_token for
        ``target_link_uri``, with ``claims`` (as in `id_token`: short or full names, DELETE) applied.
        ``overrides`` change or DELETE the login parameters themselves.
        """
        del tool_login_url  # the caller POSTs the form; kept for symmetry with how Moodle is set up
        with self._lock:
            self._launch_counter += 1
            launch_id = f"ltilaunch{self._launch_counter}_{secrets.randbelow(10**9)}"
        message_hint = json.dumps({"cmid": "3", "launchid": launch_id}, separators=(",", ":"))
        self._pending[message_hint] = _PendingLaunch(
            login_hint=self.user_id,
            target_link_uri=target_link_uri,
            claims={CLAIM_ALIASES.get(k, k): v for k, v in (claims or {}).items()},
        )
        params = login_initiation_params(
            issuer=self.issuer,
            target_link_uri=target_link_uri,
            login_hint=self.user_id,
            message_hint=message_hint,
            client_id=self.client_id,
            deployment_id=self.deployment_id,
        )
        return {k: str(v) for k, v in apply_overrides(params, overrides).items()}

    def authorize_redirect(self, location: str, *, method: str = "GET") -> tuple[int, str, dict[str, str]]:
        """Follow the tool's redirect to /auth over HTTP, as the browser would.

        Returns ``(status, action, fields)``: the auto-submitting form's target and fields (``id_token``
        and ``state``, or ``error``/``error_description`` and ``state``), or ``(status, "", {})``
        when the platform refused with an error page.
        """
        parts = urlsplit(location)
        if parts.netloc != urlsplit(self.issuer).netloc or parts.path != "/auth":
            raise ValueError(f"not a redirect to this platform's auth endpoint: {location}")
        url = self.auth_url
        data = None
        if method.upper() == "GET":
            url = location
        else:
            data = parts.query.encode("ascii")
        try:
            with urlopen(url, data=data, timeout=30) as response:  # noqa: S310 - our own loopback server
                status, page = response.status, response.read()
        except HTTPError as error:
            return error.code, "", {}
        action, fields = parse_autosubmit_form(page)
        return status, action, fields

    # -- /auth ---------------------------------------------------------------------------------------

    def _authorize(self, params: dict[str, str]) -> tuple[int, str]:
        """Moodle's mod/lti/auth.php: (status, page)."""
        with self._lock:
            self.auth_requests.append(dict(params))
        scope = params.get("scope", "")
        response_type = params.get("response_type", "")
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        login_hint = params.get("login_hint", "")
        nonce = params.get("nonce", "")
        state = params.get("state", "")
        error = description = ""
        ok = all((scope, response_type, client_id, redirect_uri, login_hint, nonce))
        if not ok:
            error = "invalid_request"
        if ok and "openid" not in scope.split():
            ok, error = False, "invalid_scope"
        if ok and response_type != "id_token":
            ok, error = False, "unsupported_response_type"
        if ok and client_id != self.client_id:
            ok, error = False, "unauthorized_client"
        pending = self._pending.get(params.get("lti_message_hint", ""))
        if ok and pending is None:
            ok, error, description = False, "invalid_request", "Unknown lti_message_hint"
        if ok and pending is not None and login_hint != pending.login_hint:
            ok, error = False, "access_denied"
        # Without a registered redirect URI the platform cannot trust where to post: an error page.
        if redirect_uri not in self.redirect_uris:
            return 400, "<!DOCTYPE html><title>Error</title><p>invalidrequest: redirect_uri is not registered</p>"
        if ok and params.get("response_mode") != "form_post":
            ok, error = False, "invalid_request"
            description = "Invalid response_mode" if "response_mode" in params else "Missing response_mode"
        if ok and params.get("prompt", "") not in ("", "none"):
            ok, error, description = False, "invalid_request", "Invalid prompt"
        fields: dict[str, str] = {}
        if ok and pending is not None:
            token_overrides = dict(pending.claims)
            fields["id_token"] = self.id_token(nonce, target_link_uri=pending.target_link_uri, claims=token_overrides)
        else:
            fields["error"] = error
            if description:
                fields["error_description"] = description
        if state:
            fields["state"] = state
        return 200, autosubmit_form(redirect_uri, fields)


STORAGE_FRAME_NAME = "post_message_forwarding"
# The platform's side of LTI platform storage (1EdTech "Platform Storage"): values kept per tool
# origin, answered only to the window that asked, at its own origin; each request is reported to
# the peer so tests can tell storage was really used.
STORAGE_FRAME_PAGE = """<!DOCTYPE html><html><head><title>storage</title></head><body><script>
var store = {};
window.addEventListener("message", function (event) {
  var m = event.data;
  if (!m || typeof m !== "object" || (m.subject !== "lti.put_data" && m.subject !== "lti.get_data")) return;
  var bucket = store[event.origin] = store[event.origin] || {};
  var reply = {subject: m.subject + ".response", message_id: m.message_id, key: m.key};
  if (m.subject === "lti.put_data") { bucket[m.key] = m.value; reply.value = m.value; }
  else if (Object.prototype.hasOwnProperty.call(bucket, m.key)) { reply.value = bucket[m.key]; }
  else { reply.error = {code: "bad_request", message: "no value for this key"}; }
  var log = JSON.stringify({subject: m.subject, origin: event.origin, key: m.key, found: !reply.error});
  fetch("/storage_log", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
                         body: encodeURIComponent(log)}).finally(function () {
    event.source.postMessage(reply, event.origin);
  });
});
</script></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    server_version = "PlatformPeer/1.0"
    protocol_version = "HTTP/1.1"

    @property
    def peer(self) -> PlatformPeer:
        return self.server.peer  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests read the peer's counters, not its log

    def _send(
        self,
        status: int,
        body: str | bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _form_params(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        return dict(parse_qsl(raw, keep_blank_values=True))

    def _gradebook(self, method: str) -> bool:
        """An AGS request (``lti_peer.ags``): answered (or left unanswered) here, True; else False."""
        if not is_gradebook_path(urlsplit(self.path).path):
            return False
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = gradebook(self.peer).handle(method, self.path, self.headers, body)
        if answer is None:
            self.close_connection = True  # stopped answering: drop the connection without a response
        else:
            status, content_type, data, headers = answer
            self._send(status, data, content_type, headers)
        return True

    def do_PUT(self) -> None:  # noqa: N802 - stdlib naming
        if not self._gradebook("PUT"):
            self._send(404, "not found", "text/plain")

    def do_DELETE(self) -> None:  # noqa: N802 - stdlib naming
        if not self._gradebook("DELETE"):
            self._send(404, "not found", "text/plain")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self._gradebook("GET"):
            return
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path == "/jwks":
            self._jwks()
        elif parts.path in ("/course", "/launch"):
            page_for = self.peer._course_page if parts.path == "/course" else self.peer._launch_page
            status, page = page_for(query)
            self._send(status, page, "text/html; charset=utf-8")
        elif parts.path == "/storage":
            self._send(200, STORAGE_FRAME_PAGE, "text/html; charset=utf-8")
        elif parts.path == "/auth":
            status, page = self.peer._authorize(dict(parse_qsl(parts.query, keep_blank_values=True)))
            self._send(status, page, "text/html; charset=utf-8")
        elif parts.path == "/token":
            self._token()
        elif parts.path == CONFIGURATION_PATH:
            self._json(*self.peer.registrar.handle_configuration(self.headers))
        else:
            self._send(404, "not found", "text/plain")

    def _json(self, status: int, document: Mapping[str, Any]) -> None:
        self._send(status, json.dumps(document), "application/json; charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if self._gradebook("POST"):
            return
        parts = urlsplit(self.path)
        if parts.path == REGISTRATION_PATH:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            self._json(*self.peer.registrar.handle_registration(self.headers, body))
            return
        if parts.path == OUTCOME_SERVICE_PATH:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            self._send(*self.peer.outcomes.handle(self.path, dict(self.headers.items()), raw))
            return
        params = self._form_params()
        if parts.path == RETURN_PATH:
            self._send(*self.peer.deep_linking.handle(self.path, params), "text/html; charset=utf-8")
        elif parts.path == "/auth":
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            status, page = self.peer._authorize({**query, **params})
            self._send(status, page, "text/html; charset=utf-8")
        elif parts.path == "/storage_log":
            with self.peer._lock:
                self.peer.storage_log.append(json.loads(next(iter(params), "{}")))
            self._send(204, b"", "text/plain")
        elif parts.path == "/token":
            self._token(params)
        else:
            self._send(404, "not found", "text/plain")

    def _jwks(self) -> None:
        peer = self.peer
        with peer._lock:
            peer._jwks_fetches += 1
        if peer.jwks_delay:
            time.sleep(peer.jwks_delay)
        if peer.jwks_status != 200:
            self._send(peer.jwks_status, json.dumps({"error": "unavailable"}), "application/json")
            return
        headers = {"Cache-Control": peer.jwks_cache_control} if peer.jwks_cache_control else {}
        self._send(200, json.dumps(peer.jwks()), "application/json; charset=utf-8", headers)

    def _token(self, params: Mapping[str, str] | None = None) -> None:
        status, document = token_endpoint(self.peer).handle("GET" if params is None else "POST", params or {})
        self._send(status, json.dumps(document), "application/json", {"Cache-Control": "no-store"})


# What the tests import from here: the peer, and the names of its claims, roles, keys and forms.
__all__ = [
    "CLAIM_ALIASES",
    "CLAIM_DEPLOYMENT_ID",
    "CLAIM_MESSAGE_TYPE",
    "CLAIM_ROLES",
    "CLAIM_TARGET_LINK_URI",
    "CLAIM_VERSION",
    "DELETE",
    "INSTRUCTOR_ROLES",
    "PlatformPeer",
    "attacker_key",
    "autosubmit_form",
    "b64url",
    "parse_autosubmit_form",
]
