"""Test material for the launch bench: a platform key, Moodle-shaped id_tokens and LTI 1.1 launches.

Tokens are signed with pyjwt and LTI 1.1 launches with oauthlib's Client, so nothing here shares code
with lti_core (which verifies with joserfc and its own OAuth 1.0a code).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth1 import SIGNATURE_TYPE_BODY, Client

ISSUER = "https://moodle.example.edu"
CLIENT_ID = "kAWZ0Rj3qUmbVCE"
DEPLOYMENT_ID = "2"
AUTH_LOGIN_URL = ISSUER + "/mod/lti/auth.php"
AUTH_TOKEN_URL = ISSUER + "/mod/lti/token.php"
KEY_SET_URL = ISSUER + "/mod/lti/certs.php"
TOOL_BASE_URL = "http://127.0.0.1:8000"
TARGET_LINK_URI = TOOL_BASE_URL + "/lti_publish/content/demo/"
LTI11_LAUNCH_URL = TOOL_BASE_URL + "/lti_publish/lti11/launch"
CONSUMER_KEY = "moodle-example-edu"
CONSUMER_SECRET = "9f4c2b7e1d8a6035c4e2b9a17d6f0e38"
TOKEN_LIFETIME = 60  # Moodle signs its id_tokens with exp = iat + 60

_LTI = "https://purl.imsglobal.org/spec/lti/claim/"
_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/"


def _b64u_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PlatformKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    private_pem: bytes
    public_jwk: dict[str, str]

    @property
    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [dict(self.public_jwk)]}


def make_platform_key() -> PlatformKey:
    """A 2048-bit RSA key as a Moodle site holds it, and its public JWK as certs.php publishes it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    kid = secrets.token_hex(10)
    e, n = _b64u_uint(numbers.e), _b64u_uint(numbers.n)
    jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "e": e, "n": n}
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return PlatformKey(kid=kid, private_key=key, private_pem=pem, public_jwk=jwk)


def nonce_for(nonce_state: str) -> str:
    """The nonce ltiauthenticator expects: sha256 of the nonce-state cookie (any nonce suits the others)."""
    return hashlib.sha256(nonce_state.encode()).hexdigest()


def launch_claims(nonce: str, iat: int) -> dict[str, Any]:
    """The claims of a Moodle 4.x resource link launch by a student, with AGS and NRPS enabled."""
    course = "1742"
    link = "3391"
    services = f"{ISSUER}/mod/lti/services.php"
    return {
        "nonce": nonce,
        "iat": iat,
        "exp": iat + TOKEN_LIFETIME,
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "sub": "20417",
        _LTI + "deployment_id": DEPLOYMENT_ID,
        _LTI + "target_link_uri": TARGET_LINK_URI,
        _LTI + "lis": {"person_sourcedid": "s2093381", "course_section_sourcedid": "PHYS101-2025-S1"},
        _LTI + "roles": [_ROLE + "membership#Learner"],
        _LTI + "context": {
            "id": course,
            "label": "PHYS101",
            "title": "Physics 101",
            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
        },
        _LTI + "message_type": "LtiResourceLinkRequest",
        _LTI + "resource_link": {"title": "Projectile motion", "description": "", "id": link},
        "given_name": "Amélie",
        "family_name": "Durand-Okafor",
        "name": "Amélie Durand-Okafor",
        "email": "adurand@example.edu",
        _LTI + "launch_presentation": {
            "locale": "fr",
            "document_target": "iframe",
            "return_url": f"{ISSUER}/mod/lti/return.php?course={course}&launch_container=3&instanceid={link}"
            "&sesskey=Xy7kQ2pLmN",
        },
        _LTI + "tool_platform": {
            "product_family_code": "moodle",
            "version": "2024100705",
            "guid": "moodle.example.edu",
            "name": "Example University",
        },
        _LTI + "version": "1.3.0",
        _LTI + "custom": {"section": "mechanics"},
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": [
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            ],
            "lineitems": f"{services}/{course}/lineitems?type_id=11",
            "lineitem": f"{services}/{course}/lineitems/8823/lineitem?type_id=11",
        },
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": f"{services}/CourseSection/{course}/bindings/11/memberships",
            "service_versions": ["1.0", "2.0"],
        },
    }


@dataclass(frozen=True)
class SignedLaunch:
    """One id_token POST as the browser delivers it, plus the cookies the tool set at login."""

    id_token: str
    state: str
    nonce: str
    nonce_state: str  # ltiauthenticator keeps this in a cookie; nonce = sha256(nonce_state)
    iat: int


def make_state() -> str:
    """A state shaped like ltiauthenticator's (base64 JSON), which the other tools accept as an opaque string."""
    payload = f'{{"state_id": "{uuid.uuid4().hex}", "next_url": "/lti_publish/content/demo/"}}'
    return base64.urlsafe_b64encode(payload.encode()).decode("ascii")


def sign_launches(key: PlatformKey, count: int, now: int | None = None) -> list[SignedLaunch]:
    """``count`` id_tokens, each with its own state and nonce, signed with pyjwt (RS256, kid set)."""
    iat = int(time.time()) if now is None else now
    out = []
    for _ in range(count):
        nonce_state = secrets.token_urlsafe(48)
        nonce = nonce_for(nonce_state)
        token = jwt.encode(launch_claims(nonce, iat), key.private_key, algorithm="RS256", headers={"kid": key.kid})
        out.append(SignedLaunch(id_token=token, state=make_state(), nonce=nonce, nonce_state=nonce_state, iat=iat))
    return out


def lti11_params() -> dict[str, str]:
    """The parameters Moodle 4.x posts for an LTI 1.1 launch (before OAuth signing)."""
    return {
        "user_id": "20417",
        "lis_person_sourcedid": "s2093381",
        "roles": "Learner",
        "context_id": "1742",
        "context_label": "PHYS101",
        "context_title": "Physics 101: Mechanics and Waves (2025, Semester 1)",
        "resource_link_title": "Week 3: Projectile motion notebook",
        "resource_link_description": "",
        "resource_link_id": "3391",
        "context_type": "CourseSection",
        "lis_course_section_sourcedid": "PHYS101-2025-S1",
        "lis_result_sourcedid": '{"data":{"instanceid":"3391","userid":"20417","typeid":"11","launchid":1849271150},'
        '"hash":"b5e3d1b0f2a14b0d0a54c6f7a1c4b0e9a2f8d3c1e6b7a9f0d2c4e6a8b0c2d4e6"}',
        "lis_outcome_service_url": ISSUER + "/mod/lti/service.php",
        "lis_person_name_given": "Amélie",
        "lis_person_name_family": "Durand-Okafor",
        "lis_person_name_full": "Amélie Durand-Okafor",
        "ext_user_username": "adurand",
        "lis_person_contact_email_primary": "amelie.durand-okafor@student.example.edu",
        "launch_presentation_locale": "fr",
        "ext_lms": "moodle-2",
        "tool_consumer_info_product_family_code": "moodle",
        "tool_consumer_info_version": "2024100705",
        "lti_version": "LTI-1p0",
        "lti_message_type": "basic-lti-launch-request",
        "tool_consumer_instance_guid": "moodle.example.edu",
        "tool_consumer_instance_name": "Example University",
        "tool_consumer_instance_description": "Example University Moodle",
        "launch_presentation_document_target": "iframe",
        "launch_presentation_return_url": f"{ISSUER}/mod/lti/return.php?course=1742&launch_container=3"
        "&instanceid=3391&sesskey=Xy7kQ2pLmN",
        "custom_section": "mechanics",
    }


@dataclass(frozen=True)
class SignedForm:
    """One LTI 1.1 launch POST: the url-encoded body a consumer sends, and its headers."""

    body: str
    headers: dict[str, str]


def sign_lti11_launches(count: int) -> list[SignedForm]:
    """``count`` launches signed by oauthlib's Client in the body, as a consumer does (own nonce each)."""
    client = Client(CONSUMER_KEY, client_secret=CONSUMER_SECRET, signature_type=SIGNATURE_TYPE_BODY)
    params = lti11_params()
    out = []
    for _ in range(count):
        _, headers, body = client.sign(
            LTI11_LAUNCH_URL,
            http_method="POST",
            body=params,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        out.append(SignedForm(body=body, headers=dict(headers)))
    return out
