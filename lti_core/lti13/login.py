"""OIDC third-party login initiation (LTI 1.3 Core 5.1.1, 1EdTech Security Framework 5.1.1).

The platform sends iss, login_hint and target_link_uri (Moodle by form POST, others by GET); the
tool answers with a redirect to the platform's authorization endpoint carrying a fresh ``state``
and ``nonce`` that it remembers server-side. The host also sets a cookie for the state to bind it
to the browser where it can (see ``LaunchValidator``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lti_core.errors import AuthenticationFailed, Forbidden, InvalidRequest
from lti_core.i18n import N_
from lti_core.lti13.binding import origin_of
from lti_core.registration import the_one_registration, unknown_deployment, validate_active
from lti_core.store import LaunchStore
from lti_core.types import OidcState, Registration
from lti_core.urls import add_query, belongs_to_tool


@dataclass(frozen=True)
class LoginRequest:
    """The login initiation parameters, parsed and checked for presence."""

    issuer: str
    login_hint: str
    target_link_uri: str
    lti_message_hint: str = ""
    client_id: str = ""
    deployment_id: str = ""
    lti_storage_target: str = ""


@dataclass(frozen=True)
class LoginRedirect:
    """Where to send the browser, and the state the host binds to it (cookie or platform storage)."""

    url: str
    state: OidcState
    lti_storage_target: str = ""
    #: Origin of the platform's authentication endpoint: the only origin whose storage answers count.
    platform_origin: str = ""

    @property
    def uses_platform_storage(self) -> bool:
        """The host answers with the storage login page (lti.put_data), and sets no state cookie."""
        return bool(self.lti_storage_target)


#: One login in this many sweeps expired states and nonces (``OidcLogin.sweep``).
SWEEP_ONE_IN = 200

# Longest value accepted per parameter. Real platforms send short ids and URLs; Canvas's
# lti_message_hint (a signed JWT) is the longest seen, at about 1 kB. Anything larger is refused
# before it reaches the store (a 20 kB login_hint once ended in a database error).
#: The longest redirect to the platform's authentication endpoint the tool sends.
MAX_REDIRECT_LENGTH = 12 * 1024
MAX_PARAMETER_LENGTHS = {
    "iss": 1024,
    "login_hint": 4096,
    "target_link_uri": 2048,
    "lti_message_hint": 8192,
    "client_id": 255,
    "lti_deployment_id": 255,
    "lti_storage_target": 255,
}


def parse_login_request(params: Mapping[str, str]) -> LoginRequest:
    """The login parameters, each checked for presence, length and printable text."""

    def value(name: str) -> str:
        raw = params.get(name, "")
        text = raw.strip() if isinstance(raw, str) else ""
        if len(text) > MAX_PARAMETER_LENGTHS[name] or not text.isprintable():
            raise InvalidRequest(
                f"{name}_invalid", N_("The login request has a parameter that is too long or malformed.")
            )
        return text

    def required(name: str) -> str:
        text = value(name)
        if not text:
            raise InvalidRequest(f"{name}_missing", N_("The login request is missing a required parameter."))
        return text

    return LoginRequest(
        issuer=required("iss"),
        login_hint=required("login_hint"),
        target_link_uri=required("target_link_uri"),
        lti_message_hint=value("lti_message_hint"),
        client_id=value("client_id"),
        deployment_id=value("lti_deployment_id"),
        lti_storage_target=value("lti_storage_target"),
    )


class OidcLogin:
    """Answers login initiations for every registered platform."""

    def __init__(
        self,
        store: LaunchStore,
        *,
        tool_base_urls: Sequence[str],
        redirect_uri: str,
        state_ttl: float = 600.0,
        now: Callable[[], float] = time.time,
        sweep_one_in: int = SWEEP_ONE_IN,
    ) -> None:
        self._store = store
        self._sweep_one_in = sweep_one_in
        self._tool_base_urls = tuple(tool_base_urls)
        self._redirect_uri = redirect_uri
        self._state_ttl = state_ttl
        self._now = now

    def sweep(self) -> None:
        """Now and then (one login in ``sweep_one_in``, at random), drop expired states and nonces.

        They expire within minutes; sweeping at random logins keeps the tables small without a
        scheduler, and spreads the cost (``lti-publish purge`` does the same from cron).
        """
        if secrets.randbelow(self._sweep_one_in) == 0:
            self._store.purge_expired(self._now())

    def find_registration(self, request: LoginRequest) -> Registration:
        if request.client_id:
            registration = self._store.get_registration(request.issuer, request.client_id)
        else:
            # client_id is optional in login initiation; it is unambiguous when the issuer has one registration.
            registration = the_one_registration(self._store.find_registrations(request.issuer))
        if registration is None:
            raise AuthenticationFailed("unknown_platform", N_("This platform is not registered with the tool."))
        return validate_active(registration)

    def begin(self, params: Mapping[str, str]) -> LoginRedirect:
        request = parse_login_request(params)
        if not belongs_to_tool(request.target_link_uri, self._tool_base_urls):
            raise Forbidden("target_link_outside_tool", N_("The launch points to an address outside this tool."))
        registration = self.find_registration(request)
        if request.deployment_id and not registration.has_deployment(request.deployment_id):
            raise unknown_deployment(request.deployment_id)
        state = OidcState(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            issuer=registration.issuer,
            client_id=registration.client_id,
            target_link_uri=request.target_link_uri,
            expires_at=self._now() + self._state_ttl,
            login_hint=request.login_hint,
            lti_message_hint=request.lti_message_hint,
            deployment_id=request.deployment_id,
            storage_target=request.lti_storage_target,
        )
        query = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": registration.client_id,
            "redirect_uri": self._redirect_uri,
            "login_hint": request.login_hint,
            "state": state.state,
            "nonce": state.nonce,
        }
        if request.lti_message_hint:
            query["lti_message_hint"] = request.lti_message_hint
        url = add_query(registration.auth_login_url, query)
        if len(url) > MAX_REDIRECT_LENGTH:
            # Percent-encoded hints can triple in length: past this, proxies (configurable-http-proxy's
            # 16 KiB of headers) and frameworks (Django's 16,384 characters) refuse the redirect itself.
            raise InvalidRequest(
                "login_request_too_large", N_("The login request is too large to pass on to the platform.")
            )
        self._store.save_state(state)
        self.sweep()
        return LoginRedirect(
            url,
            state,
            request.lti_storage_target,
            origin_of(registration.auth_login_url),
        )
