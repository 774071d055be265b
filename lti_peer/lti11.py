"""An LTI 1.1 consumer, signing launches the way Moodle 4.x does (OAuth 1.0a, HMAC-SHA1, in the body).

    form = sign_lti11_launch(tool_url, "key", "secret", moodle_lti11_params(roles="Instructor"))
    client.post(tool_url, form)   # what the browser's auto-submitted form sends

The signature is made by oauthlib's *client* side, independent of the tool's verification code. The
parameters come from the same people, courses and sites as the LTI 1.3 claims (`lti_peer.claims`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_BODY, Client

from lti_peer import DELETE, apply_overrides
from lti_peer.claims import MoodleActivity, MoodleSite, MoodleUser

#: The role strings Moodle's LTI 1.1 launches carry.
LEARNER = "Learner"
INSTRUCTOR = "Instructor"
ADMINISTRATOR = "Instructor,urn:lti:sysrole:ims/lis/Administrator,urn:lti:instrole:ims/lis/Administrator"

MOODLE_URL = "https://moodle.example"


def consumer(consumer_key: str, secret: str, *, timestamp: str | int | None = None, nonce: str | None = None) -> Client:
    """oauthlib's client, signing as Moodle does; ``timestamp`` and ``nonce`` default to now and fresh each time."""
    return Client(
        consumer_key,
        client_secret=secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_BODY,
        timestamp=None if timestamp is None else str(timestamp),
        nonce=nonce,
    )


def signed_body(client: Client, url: str, params: Mapping[str, str]) -> str:
    """The url-encoded body of a launch POSTed to ``url``: ``params`` plus the ``oauth_*`` fields.

    The signature base string includes ``url``'s query string, exactly as a consumer computes it.
    """
    body = urlencode([(str(k), str(v)) for k, v in params.items()])
    _, _, signed = client.sign(
        url, http_method="POST", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    return str(signed)


def sign_lti11_launch(
    url: str,
    consumer_key: str,
    secret: str,
    params: Mapping[str, str],
    *,
    timestamp: str | int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The complete form body (``params`` plus the ``oauth_*`` fields) of a launch POSTed to ``url``.

    ``timestamp`` and ``nonce`` default to now and a fresh random value.
    """
    client = consumer(consumer_key, secret, timestamp=timestamp, nonce=nonce)
    return dict(parse_qsl(signed_body(client, url, params), keep_blank_values=True))


def moodle_lti11_params(
    resource_link_id: str | None = None,
    roles: str = LEARNER,
    user_id: str | None = None,
    *,
    user: MoodleUser = MoodleUser(),  # noqa: B008 - frozen, never changed
    activity: MoodleActivity = MoodleActivity(),  # noqa: B008
    site: MoodleSite = MoodleSite(),  # noqa: B008
    issuer: str = MOODLE_URL,
    **extra: Any,
) -> dict[str, str]:
    """The unsigned parameters of a Moodle 4.x LTI 1.1 basic launch (mod/lti/locallib.php).

    ``resource_link_id`` and ``user_id`` default to ``activity``'s and ``user``'s. ``extra`` adds or
    replaces parameters (``custom_content_id="..."``, ``lis_person_contact_email_primary=""``); the
    value ``DELETE`` removes one.
    """
    link = activity.link_id if resource_link_id is None else resource_link_id
    uid = user.id if user_id is None else user_id
    params: dict[str, Any] = {
        "user_id": uid,
        "lis_person_sourcedid": user.sourcedid or "",
        "roles": roles,
        "context_id": activity.course_id,
        "context_label": activity.course_label or "",
        "context_title": activity.course_title,
        "context_type": "CourseSection",
        "lis_course_section_sourcedid": activity.course_sourcedid or "",
        "resource_link_id": link,
        "resource_link_title": activity.link_title,
        "resource_link_description": activity.link_description or "",
        "lis_result_sourcedid": (
            '{"data":{"instanceid":"' + link + '","userid":"' + uid + '","typeid":"' + (activity.type_id or "") + '",'
            '"launchid":1462815330},"hash":"5e4e9ec4b56e64d3f8b05cbd2b2d8c6cf5c9e8e3a2c6b4b1b1f9f0b8f0c2a1d3"}'
        ),
        "lis_outcome_service_url": f"{issuer}/mod/lti/service.php",
        "lis_person_name_given": user.given_name,
        "lis_person_name_family": user.family_name,
        "lis_person_name_full": user.name,
        "lis_person_contact_email_primary": user.email,
        "ext_user_username": user.username or "",
        "ext_lms": "moodle-2",
        "launch_presentation_locale": user.locale,
        "launch_presentation_document_target": activity.document_target,
        "launch_presentation_return_url": (
            f"{issuer}/mod/lti/return.php?course={activity.course_id}&launch_container=3&instanceid={link}"
            f"&sesskey={activity.sesskey or ''}"
        ),
        "tool_consumer_info_product_family_code": "moodle",
        "tool_consumer_info_version": site.version,
        "tool_consumer_instance_guid": urlsplit(issuer).hostname or "",
        "tool_consumer_instance_name": site.name,
        "tool_consumer_instance_description": site.description or "",
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
    }
    return {k: str(v) for k, v in apply_overrides(params, extra).items()}


__all__ = [
    "ADMINISTRATOR",
    "DELETE",
    "INSTRUCTOR",
    "LEARNER",
    "consumer",
    "moodle_lti11_params",
    "sign_lti11_launch",
    "signed_body",
]
