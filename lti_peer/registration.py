"""The platform's side of LTI Dynamic Registration 1.0, shaped like Moodle 4.x's.

Moodle's admin clicks "Register tool" with the tool's registration URL; Moodle opens that URL with
``openid_configuration`` (``/mod/lti/openid-configuration.php``) and ``registration_token``, a JWT it
signed itself (``sub``: the client id the new tool type will get, ``scope`` "reg", an hour of life).
Both the configuration GET and the registration POST (``/mod/lti/openid-registration.php``) need that
token as a Bearer token: Moodle checks it is its own, unexpired and not used yet, and answers 401
otherwise. The POST makes a pending tool type and answers with the client registration, its
``client_id`` and, in the LTI tool configuration, the ``deployment_id`` (the tool type's id). A token
for an existing tool type (Moodle's "update", scope "reg-update", ``sub`` its client id) registers
that tool again under the same client id and deployment.

    with PlatformPeer() as platform:
        url = platform.registrar.start_url(tool_registration_url)   # what Moodle opens
        ... the tool registers; then platform.client_id is the new registration's, as after Moodle's
        admin saved the tool type, and launches go through it ...

Tokens are signed and checked with pyjwt (RS256, the platform's current key). Misbehaviours for the
tests: ``issuer_override`` (a configuration naming another issuer), ``configuration_status`` and
``registration_status`` (answer with that status instead).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import jwt

if TYPE_CHECKING:
    from lti_peer.platform import PlatformPeer

CONFIGURATION_PATH = "/mod/lti/openid-configuration.php"
REGISTRATION_PATH = "/mod/lti/openid-registration.php"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
#: The service scopes Moodle lists in its configuration (AGS and NRPS).
MOODLE_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-bo/scope/basicoutcome",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "https://purl.imsglobal.org/spec/lti-ts/scope/toolsetting",
    "openid",
)
SCOPE_NEW = "reg"
SCOPE_UPDATE = "reg-update"
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _random_client_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(15))


class DynamicRegistrar:
    """Moodle's openid-configuration.php and openid-registration.php for one ``PlatformPeer``."""

    def __init__(self, peer: PlatformPeer) -> None:
        self._peer = peer
        self._lock = threading.Lock()
        self._issued: set[str] = set()  # token ids (jti) this platform issued
        self._used: set[str] = set()  # ... and those a registration used up
        self._deployments: dict[str, str] = {}  # client id -> deployment id (Moodle: tool type id)
        self._next_type_id = 10
        #: Misbehaviours: the issuer the configuration names (None: the platform's own).
        self.issuer_override: str | None = None
        #: Status the configuration GET / registration POST answer with when the token is fine.
        self.configuration_status = 200
        self.registration_status = 200
        #: Every registration body received (parsed JSON), in order; and every configuration request's
        #: Authorization header.
        self.received: list[dict[str, Any]] = []
        self.configuration_requests: list[str] = []

    # -- what the platform's admin does ---------------------------------------------------------------

    def issue_token(self, *, expires_in: float = 3600, client_id: str = "", now: float | None = None) -> str:
        """A registration token as Moodle's startltiadvregistration.php signs it. ``client_id``: the
        token of Moodle's "update" action for that existing tool type."""
        issued_at = int(time.time() if now is None else now)
        token_id = secrets.token_hex(8)
        payload = {
            "sub": client_id or _random_client_id(),
            "scope": SCOPE_UPDATE if client_id else SCOPE_NEW,
            "iat": issued_at,
            "exp": issued_at + int(expires_in),
            "jti": token_id,
        }
        with self._lock:
            self._issued.add(token_id)
        return self._peer.sign(payload)

    @property
    def configuration_url(self) -> str:
        return self._peer.issuer + CONFIGURATION_PATH

    @property
    def registration_endpoint(self) -> str:
        return self._peer.issuer + REGISTRATION_PATH

    def start_url(self, tool_registration_url: str, *, token: str | None = None, **token_options: Any) -> str:
        """Where Moodle sends the admin's browser: the tool's registration URL with the configuration
        URL and a new registration token (or ``token``; "" for none)."""
        if token is None:
            token = self.issue_token(**token_options)
        params = {"openid_configuration": self.configuration_url}
        if token:
            params["registration_token"] = token
        separator = "&" if urlsplit(tool_registration_url).query else "?"
        return tool_registration_url + separator + urlencode(params)

    def configuration(self) -> dict[str, Any]:
        """The OpenID configuration Moodle publishes."""
        peer = self._peer
        return {
            "issuer": self.issuer_override if self.issuer_override is not None else peer.issuer,
            "token_endpoint": peer.token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "jwks_uri": peer.jwks_url,
            "authorization_endpoint": peer.auth_url,
            "registration_endpoint": self.registration_endpoint,
            "scopes_supported": list(MOODLE_SCOPES),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
            PLATFORM_CONFIGURATION: {
                "product_family_code": "moodle",
                "version": "4.5",
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest"},
                    {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]},
                ],
                "variables": [
                    "basic-lti-launch-request",
                    "ContentItemSelectionRequest",
                    "ToolProxyRegistrationRequest",
                ],
            },
        }

    # -- the token ------------------------------------------------------------------------------------

    def _check_token(self, authorization: str, *, use: bool) -> tuple[dict[str, Any] | None, str]:
        """The token's claims, or None and Moodle's error; ``use`` marks it used."""
        if not authorization.startswith("Bearer "):
            return None, "missing_registration_token"
        token = authorization[len("Bearer ") :].strip()
        peer = self._peer
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = peer.private_key(kid if kid in peer.kids else None).public_key()
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=["RS256"], options={"require": ["exp", "sub"]})
        except (jwt.PyJWTError, KeyError, ValueError):
            return None, "invalid_registration_token"
        token_id = str(claims.get("jti", ""))
        with self._lock:
            if token_id not in self._issued:
                return None, "invalid_registration_token"
            if token_id in self._used:
                return None, "registration_token_used"
            if claims.get("scope") == SCOPE_NEW and claims.get("sub") in self._deployments:
                return None, "registration_token_used"  # Moodle: a tool type has that client id already
            if use:
                self._used.add(token_id)
        return claims, ""

    # -- the endpoints ----------------------------------------------------------------------------------

    def handle_configuration(self, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        authorization = headers.get("Authorization", "")
        with self._lock:
            self.configuration_requests.append(authorization)
        claims, error = self._check_token(authorization, use=False)
        if claims is None:
            return 401, {"error": error}
        if self.configuration_status != 200:
            return self.configuration_status, {"error": "unavailable"}
        return 200, self.configuration()

    def handle_registration(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        claims, error = self._check_token(headers.get("Authorization", ""), use=False)
        if claims is None:
            return 401, {"error": error}
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return 400, {"error": "invalid_request", "error_description": "not JSON"}
        problem = self._problem(document)
        if problem:
            return 400, {"error": "invalid_client_metadata", "error_description": problem}
        with self._lock:
            self.received.append(document)
        if self.registration_status != 200:
            return self.registration_status, {"error": "registration_refused"}
        claims, error = self._check_token(headers.get("Authorization", ""), use=True)  # used up now
        if claims is None:
            return 401, {"error": error}
        client_id = str(claims["sub"])
        with self._lock:
            deployment_id = self._deployments.get(client_id)
            if deployment_id is None:
                deployment_id = str(self._next_type_id)
                self._next_type_id += 1
                self._deployments[client_id] = deployment_id
        # As after Moodle's admin saved the (pending) tool type: launches now go through it.
        peer = self._peer
        peer.client_id, peer.deployment_id = client_id, deployment_id
        for uri in document["redirect_uris"]:
            if uri not in peer.redirect_uris:
                peer.register_redirect_uri(uri)
        return 200, self._response(document, client_id, deployment_id)

    @staticmethod
    def _problem(document: Any) -> str:
        """What Moodle's registration_to_config refuses, or ""."""
        if not isinstance(document, dict):
            return "not a JSON object"
        lti = document.get(TOOL_CONFIGURATION)
        checks = [
            (document.get("application_type") == "web", "application_type must be web"),
            ("id_token" in (document.get("response_types") or []), "response_types must include id_token"),
            (
                {"implicit", "client_credentials"} <= set(document.get("grant_types") or []),
                "grant_types must include implicit and client_credentials",
            ),
            (bool(document.get("initiate_login_uri")), "initiate_login_uri missing"),
            (bool(document.get("redirect_uris")), "redirect_uris missing"),
            (bool(document.get("jwks_uri")), "jwks_uri missing"),
            (document.get("token_endpoint_auth_method") == "private_key_jwt", "token_endpoint_auth_method"),
        ]
        for ok, problem in checks:
            if not ok:
                return problem
        if not isinstance(lti, dict):
            return "lti-tool-configuration missing"
        domain = str(lti.get("domain", ""))
        target = str(lti.get("target_link_uri", ""))
        if not domain or not target or urlsplit(target).netloc != domain:
            return "target_link_uri must be in the tool's domain"
        return ""

    def _response(self, document: dict[str, Any], client_id: str, deployment_id: str) -> dict[str, Any]:
        """The registration as Moodle's config_to_registration answers it."""
        lti = document[TOOL_CONFIGURATION]
        return {
            "client_id": client_id,
            "response_types": ["id_token"],
            "jwks_uri": document["jwks_uri"],
            "initiate_login_uri": document["initiate_login_uri"],
            "grant_types": ["client_credentials", "implicit"],
            "redirect_uris": list(document["redirect_uris"]),
            "application_type": "web",
            "token_endpoint_auth_method": "private_key_jwt",
            "client_name": document.get("client_name", ""),
            "scope": document.get("scope", ""),
            TOOL_CONFIGURATION: {
                "version": "1.3.0",
                "deployment_id": deployment_id,
                "target_link_uri": lti["target_link_uri"],
                "domain": lti["domain"],
                "description": lti.get("description", ""),
                "claims": list(lti.get("claims", [])),
                "messages": list(lti.get("messages", [])),
            },
        }


__all__ = ["CONFIGURATION_PATH", "REGISTRATION_PATH", "DynamicRegistrar"]
