"""Test material for the launch bench: a platform key, Moodle-shaped id_tokens and LTI 1.1 launches.

Keys, claims and signatures come from the project's platform peer, `lti_peer` (pyjwt for the tokens,
oauthlib's Client for LTI 1.1), so nothing here shares code with lti_core (which verifies with joserfc
and its own OAuth 1.0a code). What is the bench's own: its Moodle site (a student of a physics course,
with AGS and NRPS enabled) and the pre-signing of many launches, each with its own state and nonce.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from lti_peer import tokens
from lti_peer.claims import (
    AGS_LINEITEM,
    AGS_LINEITEM_READONLY,
    AGS_RESULT_READONLY,
    AGS_SCORE,
    COURSE_OFFERING,
    MoodleActivity,
    MoodleSite,
    MoodleUser,
)
from lti_peer.claims import launch_claims as moodle_launch_claims
from lti_peer.keys import PlatformKey
from lti_peer.lti11 import LEARNER, consumer, moodle_lti11_params, signed_body

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

#: Who launches, from where, on which site.
STUDENT = MoodleUser(
    id="20417",
    given_name="Amélie",
    family_name="Durand-Okafor",
    email="adurand@example.edu",
    username=None,
    sourcedid="s2093381",
    locale="fr",
)
ACTIVITY = MoodleActivity(
    course_id="1742",
    course_label="PHYS101",
    course_title="Physics 101",
    course_type=(COURSE_OFFERING,),
    course_sourcedid="PHYS101-2025-S1",
    link_id="3391",
    link_title="Projectile motion",
    sesskey="Xy7kQ2pLmN",
    custom={"section": "mechanics"},
    type_id="11",
    lineitem_id="8823",
    ags_scopes=(AGS_LINEITEM, AGS_LINEITEM_READONLY, AGS_RESULT_READONLY, AGS_SCORE),
)
SITE = MoodleSite(name="Example University", description=None, version="2024100705")


def make_platform_key() -> PlatformKey:
    """A 2048-bit RSA key as a Moodle site holds it, and its public JWK as certs.php publishes it."""
    return PlatformKey.generate()


def nonce_for(nonce_state: str) -> str:
    """The nonce ltiauthenticator expects: sha256 of the nonce-state cookie (any nonce suits the others)."""
    return hashlib.sha256(nonce_state.encode()).hexdigest()


def launch_claims(nonce: str, iat: int) -> dict[str, Any]:
    """The claims of a Moodle 4.x resource link launch by a student, with AGS and NRPS enabled."""
    return moodle_launch_claims(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        deployment_id=DEPLOYMENT_ID,
        nonce=nonce,
        iat=iat,
        target_link_uri=TARGET_LINK_URI,
        user=STUDENT,
        activity=ACTIVITY,
        site=SITE,
        azp=True,
    )


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
        token = tokens.sign(launch_claims(nonce, iat), key.private, kid=key.kid)
        out.append(SignedLaunch(id_token=token, state=make_state(), nonce=nonce, nonce_state=nonce_state, iat=iat))
    return out


def lti11_params() -> dict[str, str]:
    """The parameters Moodle 4.x posts for an LTI 1.1 launch (before OAuth signing)."""
    return moodle_lti11_params(
        roles=LEARNER,
        user=STUDENT,
        activity=ACTIVITY,
        site=SITE,
        issuer=ISSUER,
        # Where this site's LTI 1.1 activity says more than its LTI 1.3 one.
        context_title="Physics 101: Mechanics and Waves (2025, Semester 1)",
        resource_link_title="Week 3: Projectile motion notebook",
        ext_user_username="adurand",
        lis_person_contact_email_primary="amelie.durand-okafor@student.example.edu",
        tool_consumer_instance_description="Example University Moodle",
        custom_section="mechanics",
    )


@dataclass(frozen=True)
class SignedForm:
    """One LTI 1.1 launch POST: the url-encoded body a consumer sends, and its headers."""

    body: str
    headers: dict[str, str]


def sign_lti11_launches(count: int) -> list[SignedForm]:
    """``count`` launches signed by oauthlib's Client in the body, as a consumer does (own nonce each)."""
    client = consumer(CONSUMER_KEY, CONSUMER_SECRET)
    params = lti11_params()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return [SignedForm(signed_body(client, LTI11_LAUNCH_URL, params), dict(headers)) for _ in range(count)]
