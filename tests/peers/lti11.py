"""An LTI 1.1 consumer, signing launches the way Moodle 4.x does (OAuth 1.0a, HMAC-SHA1, in the body).

    form = sign_lti11_launch(tool_url, "key", "secret", moodle_lti11_params(roles="Instructor"))
    client.post(tool_url, form)   # what the browser's auto-submitted form sends

The signature is made by oauthlib's *client* side, independent of the tool's verification code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_BODY, Client

from tests.peers import DELETE, apply_overrides

#: The role strings Moodle's LTI 1.1 launches carry.
LEARNER = "Learner"
INSTRUCTOR = "Instructor"
ADMINISTRATOR = "Instructor,urn:lti:sysrole:ims/lis/Administrator,urn:lti:instrole:ims/lis/Administrator"

MOODLE_URL = "https://moodle.example"


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

    The signature base string includes ``url``'s query string, exactly as a consumer computes it.
    ``timestamp`` and ``nonce`` default to now and a fresh random value.
    """
    client = Client(
        consumer_key,
        client_secret=secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_BODY,
        timestamp=None if timestamp is None else str(timestamp),
        nonce=nonce,
    )
    body = urlencode([(str(k), str(v)) for k, v in params.items()])
    _, _, signed_body = client.sign(
        url,
        http_method="POST",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return dict(parse_qsl(signed_body, keep_blank_values=True))


def moodle_lti11_params(
    resource_link_id: str = "1",
    roles: str = LEARNER,
    user_id: str = "2",
    **extra: Any,
) -> dict[str, str]:
    """The unsigned parameters of a Moodle 4.x LTI 1.1 basic launch (mod/lti/locallib.php).

    ``extra`` adds or replaces parameters (``custom_content_id="..."``, ``lis_person_contact_email_primary=""``);
    the value ``DELETE`` removes one.
    """
    params: dict[str, Any] = {
        "user_id": user_id,
        "lis_person_sourcedid": "",
        "roles": roles,
        "context_id": "2",
        "context_label": "TC101",
        "context_title": "Test course 101",
        "context_type": "CourseSection",
        "lis_course_section_sourcedid": "",
        "resource_link_id": resource_link_id,
        "resource_link_title": "Published content",
        "resource_link_description": "",
        "lis_result_sourcedid": (
            '{"data":{"instanceid":"' + resource_link_id + '","userid":"' + user_id + '","typeid":"1",'
            '"launchid":1462815330},"hash":"5e4e9ec4b56e64d3f8b05cbd2b2d8c6cf5c9e8e3a2c6b4b1b1f9f0b8f0c2a1d3"}'
        ),
        "lis_outcome_service_url": f"{MOODLE_URL}/mod/lti/service.php",
        "lis_person_name_given": "Sam",
        "lis_person_name_family": "Student",
        "lis_person_name_full": "Sam Student",
        "lis_person_contact_email_primary": "sam.student@example.com",
        "ext_user_username": "sam",
        "ext_lms": "moodle-2",
        "launch_presentation_locale": "en",
        "launch_presentation_document_target": "iframe",
        "launch_presentation_return_url": (
            f"{MOODLE_URL}/mod/lti/return.php?course=2&launch_container=3&instanceid={resource_link_id}"
            "&sesskey=q1w2e3"
        ),
        "tool_consumer_info_product_family_code": "moodle",
        "tool_consumer_info_version": "2024100700",
        "tool_consumer_instance_guid": "moodle.example",
        "tool_consumer_instance_name": "Moodle test site",
        "tool_consumer_instance_description": "Moodle test site",
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
    }
    return {k: str(v) for k, v in apply_overrides(params, extra).items()}


__all__ = [
    "ADMINISTRATOR",
    "DELETE",
    "INSTRUCTOR",
    "LEARNER",
    "moodle_lti11_params",
    "sign_lti11_launch",
]
