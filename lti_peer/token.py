"""The platform's OAuth 2 token endpoint, Moodle's mod/lti/token.php: a tool trades a client assertion
(RFC 7523, signed with one of the TOOL's keys) for a bearer token to the platform's services.

The assertion is verified with pyjwt (never the tool's joserfc) against the tool's JWKS, fetched over
HTTP from the tool and cached as Moodle caches it: kept until its Cache-Control max-age runs out (on the
endpoint's own ``clock``, which tests move), and fetched again at once for a kid it does not know.
Audience, expiry, issued-at, issuer = subject = the tool's client id, and single use of each ``jti``
are checked; every refusal is an RFC 6749 error document.

    endpoint = token_endpoint(peer)          # the one of this peer
    endpoint.tool_jwks_url = tool_jwks_url   # where the tool publishes its keys
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.request import Request, urlopen

import jwt

if TYPE_CHECKING:
    from lti_peer import PlatformSite

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Seconds of clock skew allowed on exp and iat.
LEEWAY = 60
#: How long a token the endpoint issues lasts.
TOKEN_LIFETIME = 3600
REQUIRED_CLAIMS = ["iss", "sub", "aud", "iat", "exp", "jti"]
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)", re.IGNORECASE)

Answer = tuple[int, dict[str, Any]]


@dataclass
class IssuedToken:
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float


@dataclass
class ToolKeyCache:
    """The tool's JWKS as the platform keeps it: fetched, kept for max-age, refetched for a new kid."""

    clock: Callable[[], float] = time.time
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    expires_at: float = 0.0
    fetches: int = 0

    def fetch(self, url: str) -> None:
        request = Request(url, headers={"Accept": "application/json"})  # noqa: S310 - the tool on loopback
        with urlopen(request, timeout=10) as response:  # noqa: S310
            document = json.loads(response.read())
            cache_control = response.headers.get("Cache-Control", "")
        self.fetches += 1
        found = _MAX_AGE.search(cache_control)
        self.expires_at = self.clock() + (int(found.group(1)) if found else 0)
        self.keys = {
            str(jwk["kid"]): jwt.PyJWK.from_dict(jwk) for jwk in document.get("keys", []) if isinstance(jwk, dict)
        }

    def key(self, url: str, kid: str) -> jwt.PyJWK | None:
        if self.clock() >= self.expires_at or kid not in self.keys:
            self.fetch(url)
        return self.keys.get(kid)


class TokenEndpoint:
    """/token of one platform: client id and audience from the peer, the tool's keys from ``tool_jwks_url``."""

    def __init__(self, client_id: str, token_url: str, tool_jwks_url: str = "") -> None:
        self.client_id = client_id
        self.token_url = token_url
        self.tool_jwks_url = tool_jwks_url
        self.clock: Callable[[], float] = time.time
        self.tool_keys = ToolKeyCache(clock=lambda: self.clock())
        self.issued: dict[str, IssuedToken] = {}
        #: Every request's outcome, in order: "ok" or the error code.
        self.log: list[str] = []
        self._seen_jti: dict[str, float] = {}
        self._lock = threading.Lock()

    def handle(self, method: str, params: Mapping[str, str]) -> Answer:
        with self._lock:
            status, document = self._handle(method, params)
            self.log.append(str(document.get("error", "ok")))
            return status, document

    def _handle(self, method: str, params: Mapping[str, str]) -> Answer:
        if method != "POST":
            return _error(400, "invalid_request", "use POST")
        if params.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type", "only client_credentials")
        if params.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return _error(400, "invalid_request", "client_assertion_type must be jwt-bearer")
        assertion = params.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return _error(400, "invalid_request", "client_assertion is not a JWT")
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            return _error(401, "invalid_client", "RS256 with a kid only")
        if not self.tool_jwks_url:
            return _error(401, "invalid_client", "no key set URL for this tool")
        try:
            key = self.tool_keys.key(self.tool_jwks_url, kid)
        except (OSError, ValueError, jwt.PyJWTError):
            return _error(401, "invalid_client", "the tool's key set could not be fetched")
        if key is None:
            return _error(401, "invalid_client", "unknown kid")
        try:
            claims = jwt.decode(
                assertion,
                key.key,
                algorithms=["RS256"],
                audience=self.token_url,
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as error:
            return _error(401, "invalid_client", type(error).__name__)
        now = self.clock()
        if not (claims["iss"] == claims["sub"] == self.client_id):
            return _error(401, "invalid_client", "iss and sub must be the client id")
        if not isinstance(claims["exp"], int | float) or claims["exp"] + LEEWAY <= now:
            return _error(401, "invalid_client", "expired")
        if not isinstance(claims["iat"], int | float) or claims["iat"] - LEEWAY > now:
            return _error(401, "invalid_client", "issued in the future")
        jti = str(claims["jti"])
        self._seen_jti = {j: exp for j, exp in self._seen_jti.items() if exp + LEEWAY > now}
        if jti in self._seen_jti:
            return _error(401, "invalid_client", "jti replayed")
        self._seen_jti[jti] = float(claims["exp"])
        scopes = tuple(params.get("scope", "").split())
        token = secrets.token_urlsafe(24)
        self.issued[token] = IssuedToken(self.client_id, scopes, now + TOKEN_LIFETIME)
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": " ".join(scopes),
        }


def _error(status: int, error: str, description: str) -> Answer:
    return status, {"error": error, "error_description": description}


_ENDPOINTS: weakref.WeakKeyDictionary[PlatformSite, TokenEndpoint] = weakref.WeakKeyDictionary()
_ENDPOINTS_LOCK = threading.Lock()


def token_endpoint(peer: PlatformSite) -> TokenEndpoint:
    """The token endpoint of ``peer`` (made at first use; set its ``tool_jwks_url``)."""
    with _ENDPOINTS_LOCK:
        endpoint = _ENDPOINTS.get(peer)
        if endpoint is None:
            endpoint = _ENDPOINTS[peer] = TokenEndpoint(peer.client_id, peer.token_url)
        return endpoint


__all__ = ["CLIENT_ASSERTION_TYPE", "TokenEndpoint", "ToolKeyCache", "token_endpoint"]
