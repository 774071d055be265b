"""The tool's OAuth 2 client for the platform's services (1EdTech Security Framework §4.1).

Before AGS or NRPS, the tool asks the platform's token endpoint for an access token with the
``client_credentials`` grant, authenticating with a JWT it signs itself (RFC 7523 §2.2, a "client
assertion"): issuer and subject its client id, audience the token URL, a unique ``jti``, a few
minutes of life, the ``kid`` of the signing key in the header so the platform picks the right key
of the tool's JWKS. Sans-IO like every core client: ``build_token_request`` is what to send,
``parse_token_response`` reads what came back, refusing anything but a 2xx JSON answer with an
access token (reason codes ``token_request_refused``, ``token_response_malformed``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey

from lti_core.errors import ServiceUnavailable
from lti_core.http import USER_AGENT, HttpRequest, HttpResponse
from lti_core.i18n import N_
from lti_core.types import Registration

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Seconds a client assertion is valid: enough for clock skew, too short to be worth stealing.
ASSERTION_LIFETIME = 300
#: What ``expires_in`` is taken to be when the platform leaves it out (RFC 6749 lets it).
DEFAULT_EXPIRES_IN = 3600


class SigningKeys(Protocol):
    """Where the signing key comes from (``ToolKeySet``): loaded once per process, never per call."""

    def signing_key(self, now: float | None = None) -> RSAKey: ...


class TokenRefused(ServiceUnavailable):
    """The platform's token endpoint gave no access token (502)."""

    reason = "token_request_refused"
    message = N_("The platform refused the tool access to its services.")


@dataclass(frozen=True)
class AccessToken:
    """An access token the platform granted; ``expires_at`` in epoch seconds."""

    access_token: str
    expires_at: float
    token_type: str = "Bearer"
    scopes: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never the token itself, in a log or a traceback
        return f"AccessToken(expires_at={self.expires_at}, token_type={self.token_type!r}, scopes={self.scopes!r})"


def build_client_assertion(tool_key_set: SigningKeys, client_id: str, token_url: str, now: float) -> str:
    """The RFC 7523 client assertion, signed (RS256) with the tool's current signing key."""
    key = tool_key_set.signing_key(now)
    issued = int(now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": key.kid}, claims, key, algorithms=["RS256"])


def build_token_request(registration: Registration, scopes: Iterable[str], assertion: str) -> HttpRequest:
    """The token request: ``client_credentials`` authenticated by ``assertion``, POSTed as a form."""
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": " ".join(scopes),
    }
    headers = (
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Accept", "application/json"),
        ("User-Agent", USER_AGENT),
    )
    return HttpRequest("POST", registration.auth_token_url, headers, urlencode(form).encode("ascii"))


def _malformed(detail: str) -> TokenRefused:
    return TokenRefused("token_response_malformed", detail=detail)


def parse_token_response(response: HttpResponse, now: float | None = None) -> AccessToken:
    """The access token in a token endpoint's ``response``, expiring ``expires_in`` after ``now``
    (default: the clock)."""
    try:
        document = json.loads(response.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        document = None
    if not 200 <= response.status < 300:
        # The platform's error code (RFC 6749 §5.2: invalid_client, invalid_scope...) says why.
        error = document.get("error") if isinstance(document, dict) else None
        code = error[:64] if isinstance(error, str) else "no error code"
        raise TokenRefused(detail=f"status {response.status}: {code}")
    if not isinstance(document, dict):
        raise _malformed("the token response is not a JSON object")
    token = document.get("access_token")
    if not isinstance(token, str) or not token:
        raise _malformed("no access_token")
    token_type = document.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise _malformed("token_type is not Bearer")
    expires_in = document.get("expires_in", DEFAULT_EXPIRES_IN)
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)  # some platforms send it as a string
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise _malformed("expires_in is not a positive integer")
    scope = document.get("scope", "")
    scopes = tuple(scope.split()) if isinstance(scope, str) else ()
    return AccessToken(token, (time.time() if now is None else now) + expires_in, "Bearer", scopes)


__all__ = [
    "ASSERTION_LIFETIME",
    "CLIENT_ASSERTION_TYPE",
    "AccessToken",
    "SigningKeys",
    "TokenRefused",
    "build_client_assertion",
    "build_token_request",
    "parse_token_response",
]
