"""What a Moodle 4.x platform says in an LTI 1.3 launch: the id_token's claims and the login initiation.

One builder, `launch_claims`, makes the claims of a resource link launch (mod/lti/locallib.php) from
who launches (`MoodleUser`), from where (`MoodleActivity`: the course, its activity, the tool type)
and on which site (`MoodleSite`). The defaults are the tests' site; the benchmark and the demo pass
their own people, courses and sites. A member set to None leaves its claim (or claim member) out,
for platforms that do not send it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
CLAIM_MESSAGE_TYPE = LTI + "message_type"
CLAIM_VERSION = LTI + "version"
CLAIM_DEPLOYMENT_ID = LTI + "deployment_id"
CLAIM_TARGET_LINK_URI = LTI + "target_link_uri"
CLAIM_RESOURCE_LINK = LTI + "resource_link"
CLAIM_ROLES = LTI + "roles"
CLAIM_CONTEXT = LTI + "context"
CLAIM_TOOL_PLATFORM = LTI + "tool_platform"
CLAIM_LAUNCH_PRESENTATION = LTI + "launch_presentation"
CLAIM_CUSTOM = LTI + "custom"
CLAIM_LIS = LTI + "lis"
CLAIM_EXT = LTI + "ext"
CLAIM_AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CLAIM_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
CLAIM_DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"

#: Short names for the LTI claims (`PlatformPeer.id_token(**overrides)`, the core tests' ``Platform.claims``).
CLAIM_ALIASES = {
    "message_type": CLAIM_MESSAGE_TYPE,
    "version": CLAIM_VERSION,
    "deployment_id": CLAIM_DEPLOYMENT_ID,
    "target_link_uri": CLAIM_TARGET_LINK_URI,
    "resource_link": CLAIM_RESOURCE_LINK,
    "roles": CLAIM_ROLES,
    "context": CLAIM_CONTEXT,
    "tool_platform": CLAIM_TOOL_PLATFORM,
    "launch_presentation": CLAIM_LAUNCH_PRESENTATION,
    "custom": CLAIM_CUSTOM,
    "lis": CLAIM_LIS,
    "ext": CLAIM_EXT,
    "ags": CLAIM_AGS,
    "nrps": CLAIM_NRPS,
    "deep_linking_settings": CLAIM_DEEP_LINKING_SETTINGS,
}

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"
#: The roles Moodle sends for a student, a teacher and the site administrator (as teacher).
LEARNER_ROLES = [MEMBERSHIP + "Learner"]
INSTRUCTOR_ROLES = [MEMBERSHIP + "Instructor"]
ADMIN_ROLES = [INSTITUTION + "Administrator", MEMBERSHIP + "Instructor", SYSTEM + "Administrator"]

_AGS_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
AGS_LINEITEM = _AGS_SCOPE + "lineitem"
AGS_LINEITEM_READONLY = _AGS_SCOPE + "lineitem.readonly"
AGS_RESULT_READONLY = _AGS_SCOPE + "result.readonly"
AGS_SCORE = _AGS_SCOPE + "score"

TOKEN_LIFETIME = 60  # Moodle signs its id_tokens with exp = iat + 60


@dataclass(frozen=True)
class MoodleUser:
    """Who launches. The default is the tests' student."""

    id: str = "2"
    given_name: str = "Sam"
    family_name: str = "Student"
    email: str = "sam.student@example.com"
    roles: tuple[str, ...] = tuple(LEARNER_ROLES)
    #: The ``ext`` claim's user_username; None: no ``ext`` claim.
    username: str | None = "sam"
    #: ``lis.person_sourcedid``; None here and on the activity: no ``lis`` claim.
    sourcedid: str | None = ""
    locale: str = "en"

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"


#: The site administrator launching as the course's teacher.
ADMIN = MoodleUser(
    given_name="Admin", family_name="User", email="admin@example.com", roles=tuple(ADMIN_ROLES), username="admin"
)


@dataclass(frozen=True)
class MoodleActivity:
    """Where the launch comes from: a course, its LTI activity (the resource link), the tool type behind it."""

    course_id: str = "2"
    course_label: str | None = "TC101"
    course_title: str = "Test course 101"
    course_type: tuple[str, ...] = ("CourseSection",)
    course_sourcedid: str | None = ""
    link_id: str = "1"
    link_title: str = "Published content"
    link_description: str | None = ""
    document_target: str = "iframe"
    #: In the return URL; None: no return URL.
    sesskey: str | None = "q1w2e3"
    #: The ``custom`` claim; empty: none.
    custom: Mapping[str, str] = field(default_factory=lambda: {"course": "TC101"})
    #: The tool type's id, in the AGS and NRPS URLs; None: no AGS nor NRPS claim.
    type_id: str | None = "1"
    lineitem_id: str = "1"
    ags_scopes: tuple[str, ...] = (AGS_LINEITEM_READONLY, AGS_RESULT_READONLY, AGS_SCORE)


@dataclass(frozen=True)
class MoodleSite:
    """The ``tool_platform`` claim's site (its guid is the issuer's host name)."""

    name: str = "Moodle test site"
    description: str | None = "Moodle test site"
    version: str = "2024100700"


def launch_claims(
    *,
    issuer: str,
    client_id: str,
    deployment_id: str,
    nonce: str,
    iat: int,
    target_link_uri: str,
    user: MoodleUser = MoodleUser(),  # noqa: B008 - frozen, never changed
    activity: MoodleActivity = MoodleActivity(),  # noqa: B008
    site: MoodleSite | None = MoodleSite(),  # noqa: B008
    azp: bool = False,
) -> dict[str, Any]:
    """The claims of a Moodle 4.x LtiResourceLinkRequest; ``site`` None: no ``tool_platform``; ``azp`` adds it."""
    a = activity
    body: dict[str, Any] = {
        "nonce": nonce,
        "iat": iat,
        "exp": iat + TOKEN_LIFETIME,
        "iss": issuer,
        "aud": client_id,
    }
    if azp:
        body["azp"] = client_id
    body |= {
        CLAIM_DEPLOYMENT_ID: deployment_id,
        CLAIM_TARGET_LINK_URI: target_link_uri,
        "sub": user.id,
    }
    if user.sourcedid is not None or a.course_sourcedid is not None:
        body[CLAIM_LIS] = {
            "person_sourcedid": user.sourcedid or "",
            "course_section_sourcedid": a.course_sourcedid or "",
        }
    body[CLAIM_ROLES] = list(user.roles)
    body[CLAIM_CONTEXT] = _without_none(
        {"id": a.course_id, "label": a.course_label, "title": a.course_title, "type": list(a.course_type)}
    )
    body[CLAIM_RESOURCE_LINK] = _without_none(
        {"title": a.link_title, "description": a.link_description, "id": a.link_id}
    )
    if a.type_id is not None:
        services = f"{issuer}/mod/lti/services.php"
        body[CLAIM_AGS] = {
            "scope": list(a.ags_scopes),
            "lineitems": f"{services}/{a.course_id}/lineitems?type_id={a.type_id}",
            "lineitem": f"{services}/{a.course_id}/lineitems/{a.lineitem_id}/lineitem?type_id={a.type_id}",
        }
        body[CLAIM_NRPS] = {
            "context_memberships_url": f"{services}/CourseSection/{a.course_id}/bindings/{a.type_id}/memberships",
            "service_versions": ["1.0", "2.0"],
        }
    body |= {"given_name": user.given_name, "family_name": user.family_name, "name": user.name, "email": user.email}
    if user.username is not None:
        body[CLAIM_EXT] = {"user_username": user.username, "lms": "moodle-2"}
    presentation = {"locale": user.locale, "document_target": a.document_target}
    if a.sesskey is not None:
        presentation["return_url"] = (
            f"{issuer}/mod/lti/return.php?course={a.course_id}&launch_container=3&instanceid={a.link_id}"
            f"&sesskey={a.sesskey}"
        )
    body[CLAIM_LAUNCH_PRESENTATION] = presentation
    if site is not None:
        body[CLAIM_TOOL_PLATFORM] = _without_none(
            {
                "product_family_code": "moodle",
                "version": site.version,
                "guid": urlsplit(issuer).hostname or "",
                "name": site.name,
                "description": site.description,
            }
        )
    body |= {CLAIM_VERSION: "1.3.0", CLAIM_MESSAGE_TYPE: "LtiResourceLinkRequest"}
    if a.custom:
        body[CLAIM_CUSTOM] = dict(a.custom)
    return body


def deep_linking_settings(
    return_url: str, *, data: str = "", accept_multiple: bool = True, accept_lineitem: bool = True
) -> dict[str, Any]:
    """The ``deep_linking_settings`` claim of Moodle 4.5's "Select content" (an LtiDeepLinkingRequest:
    message_type LtiDeepLinkingRequest, no resource_link; mod/lti/locallib.php)."""
    return {
        "deep_link_return_url": return_url,
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["frame", "iframe", "window"],
        "accept_copy_advice": False,
        "accept_multiple": accept_multiple,
        "accept_unsigned": False,
        "auto_create": False,
        "can_confirm": False,
        "accept_lineitem": accept_lineitem,
        "title": "",
        "text": "",
        "data": data,
    }


def _without_none(members: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in members.items() if v is not None}


def login_initiation_params(
    *, issuer: str, target_link_uri: str, login_hint: str, message_hint: str, client_id: str, deployment_id: str
) -> dict[str, str]:
    """The third-party login initiation form Moodle POSTs to a tool's login URL."""
    return {
        "iss": issuer,
        "target_link_uri": target_link_uri,
        "login_hint": login_hint,
        "lti_message_hint": message_hint,
        "client_id": client_id,
        "lti_deployment_id": deployment_id,
    }


__all__ = [
    "ADMIN",
    "ADMIN_ROLES",
    "CLAIM_ALIASES",
    "INSTRUCTOR_ROLES",
    "LEARNER_ROLES",
    "MoodleActivity",
    "MoodleSite",
    "MoodleUser",
    "deep_linking_settings",
    "launch_claims",
    "login_initiation_params",
]


CLAIM_LTI1P1 = "https://purl.imsglobal.org/spec/lti/claim/lti1p1"


def add_lti1p1_claim(body: dict[str, Any], *, consumer_key: str, secret: str, user_id: str) -> dict[str, Any]:
    """``body`` (an id_token's claims) with the LTI 1.1 migration claim a platform that moved a course
    from LTI 1.1 sends: the 1.1 ``user_id`` and consumer key, and ``oauth_consumer_key_sign``, the
    HMAC-SHA256 with the 1.1 secret of ``key&deployment_id&iss&client_id&exp&nonce`` (1EdTech's LTI
    1.3 migration guide). Call it last: the signature covers ``exp`` and ``nonce`` as they are."""
    audience = body["aud"] if isinstance(body["aud"], str) else body["aud"][0]
    parts = [consumer_key, body[CLAIM_DEPLOYMENT_ID], body["iss"], audience, str(body["exp"]), body["nonce"]]
    mac = hmac.new(secret.encode(), "&".join(parts).encode(), hashlib.sha256).digest()
    body[CLAIM_LTI1P1] = {
        "user_id": user_id,
        "oauth_consumer_key": consumer_key,
        "oauth_consumer_key_sign": base64.b64encode(mac).decode(),
    }
    return body
