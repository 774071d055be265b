"""LTI 1.1 deep linking: the answer to a ContentItemSelectionRequest (Content-Item Message 1.0).

The request is verified like any LTI 1.1 launch (``lti_core.lti11.launch``: its settings become
``Launch.deep_linking``). The answer is a ``ContentItemSelection`` form the browser POSTs to the
request's ``content_item_return_url``, signed with OAuth 1.0a HMAC-SHA1 by the consumer's key and
secret (the platform checks it as it checks a launch): the picked items as JSON-LD ``LtiLinkItem``s
in ``content_items``, ``data`` echoed, and ``lti_msg`` or ``lti_errormsg``. A picked item with "Add
to gradebook" carries a ``lineItem`` in the shape Moodle reads back (``scoreConstraints``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_BODY, Client

from lti_core.deep_linking import ContentItem, DeepLinkingReturn, checked_content_items, validate_deep_linking_launch
from lti_core.errors import InvalidRequest
from lti_core.i18n import N_
from lti_core.lti11.launch import LTI_LINK_MEDIA_TYPE
from lti_core.types import Consumer, Launch

CONTENT_ITEM_CONTEXT = "http://purl.imsglobal.org/ctx/lti/v1/ContentItem"
TOTAL_SCORE = "http://purl.imsglobal.org/ctx/lis/v2p1/Result#totalScore"
_FORM = "application/x-www-form-urlencoded"


def content_item_graph(items: Sequence[ContentItem]) -> dict[str, Any]:
    """The JSON-LD ``content_items`` value: one ``LtiLinkItem`` per item."""
    graph: list[dict[str, Any]] = []
    for item in items:
        link: dict[str, Any] = {"@type": "LtiLinkItem", "mediaType": LTI_LINK_MEDIA_TYPE, "title": item.title}
        link["url"] = item.url
        if item.text:
            link["text"] = item.text
        if item.custom:
            link["custom"] = dict(item.custom)
        if item.line_item is not None:
            line = item.line_item
            link["lineItem"] = {
                "@type": "LineItem",
                "label": line.label,
                "reportingMethod": TOTAL_SCORE,
                "scoreConstraints": {"@type": "NumericLimits", "totalMaximum": line.score_maximum},
                **(
                    {"assignedActivity": {"@type": "Activity", "activityId": line.resource_id}}
                    if line.resource_id
                    else {}
                ),
                **({"tag": line.tag} if line.tag else {}),
            }
        graph.append(link)
    return {"@context": CONTENT_ITEM_CONTEXT, "@graph": graph}


def build_content_item_selection(
    launch: Launch,
    items: Sequence[ContentItem],
    consumer: Consumer,
    now: float,
    *,
    message: str = "",
    error: str = "",
    nonce: str | None = None,
) -> DeepLinkingReturn:
    """The signed ContentItemSelection for the teacher's ``items`` (none, with ``error``: cancelled)."""
    settings = validate_deep_linking_launch(launch)
    if consumer.key != launch.platform:
        raise InvalidRequest("consumer_mismatch", N_("The request to pick content came from another platform."))
    checked_content_items(settings, items)  # accept_multiple and the gradebook, as for LTI 1.3
    fields = [
        ("lti_message_type", "ContentItemSelection"),
        ("lti_version", "LTI-1p0"),
        ("content_items", json.dumps(content_item_graph([] if error else items), separators=(",", ":"))),
    ]
    if settings.data:
        fields.append(("data", settings.data))
    if error:
        fields.append(("lti_errormsg", error))
    elif message:
        fields.append(("lti_msg", message))
    client = Client(
        consumer.key,
        client_secret=consumer.secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_BODY,
        timestamp=str(int(now)),
        nonce=nonce,
    )
    try:
        _, _, body = client.sign(
            settings.return_url, http_method="POST", body=urlencode(fields), headers={"Content-Type": _FORM}
        )
    except ValueError as exc:  # a return URL oauthlib cannot sign
        raise InvalidRequest(
            "deep_linking_return_url_invalid",
            N_("The request to pick content does not say where to send it."),
            detail=type(exc).__name__,
        ) from exc
    return DeepLinkingReturn(settings.return_url, tuple(parse_qsl(str(body), keep_blank_values=True)))


__all__ = ["CONTENT_ITEM_CONTEXT", "build_content_item_selection", "content_item_graph"]
