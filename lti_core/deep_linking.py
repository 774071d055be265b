"""LTI Deep Linking 2.0: a teacher picks content in the tool, and the tool answers the platform with
links to it (1EdTech Deep Linking 2.0; the LTI 1.1 pair, ContentItemSelectionRequest and
ContentItemSelection, is ``lti_core.lti11.content_item``).

An ``LtiDeepLinkingRequest`` is an LTI 1.3 launch of its own message type: no resource link, and a
``deep_linking_settings`` claim saying where the answer goes (``deep_link_return_url``), what may be
sent (``accept_types``, ``accept_multiple``, ``accept_lineitem``) and an opaque ``data`` to echo.
``check_deep_linking_request`` is its row of the launch validator's message table; the launch then
carries ``Launch.deep_linking``. Only instructors pick content (``validate_deep_linking_launch``).

The answer, ``build_deep_linking_response``, is a JWT the tool signs with its own key, POSTed by the
browser to the return URL (``DeepLinkingReturn``, an auto-submitting form): one ``ltiResourceLink``
per picked item, each with custom parameters that say which content it is and, when "Add to
gradebook" was ticked, a ``lineItem``. A teacher who cancels gets the same message with an error.

Between the request and the answer, the hosts keep a ``PendingPick`` (in the Django session, in the
hub's signed cookie: bound to the browser and the user who launched), offer their content as
``Offer``s, and answer with ``answer_pick``: the picked ids checked against what was offered, the
answer signed, the request used up once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from joserfc import jwt

from lti_core.errors import Forbidden, InvalidRequest, NotFound
from lti_core.i18n import N_
from lti_core.lti13 import claims as c
from lti_core.lti13.token import SigningKeys
from lti_core.pages import PICK_CANCELLED_MESSAGE
from lti_core.store import ConsumerStore, NonceStore
from lti_core.types import DeepLinkingSettings, Launch, Role
from lti_core.urls import belongs_to_tool

#: The only content item type the tool sends.
RESOURCE_LINK_TYPE = "ltiResourceLink"
#: Seconds the platform may take to receive the response (the browser posts it at once).
RESPONSE_LIFETIME = 600


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _text(claim: Mapping[str, Any], name: str) -> str:
    value = claim.get(name)
    return value if isinstance(value, str) else ""


def _flag(claim: Mapping[str, Any], name: str, default: bool) -> bool:
    value = claim.get(name)
    return value if isinstance(value, bool) else default


def parse_deep_linking_settings(claim: Any) -> DeepLinkingSettings:
    """The ``deep_linking_settings`` claim; ``InvalidRequest`` when it is missing or unusable."""
    if not isinstance(claim, Mapping):
        raise InvalidRequest(
            "deep_linking_settings_missing", N_("The request to pick content does not say where to send it.")
        )
    return_url = claim.get("deep_link_return_url")
    if not isinstance(return_url, str) or not return_url.lower().startswith(("https://", "http://")):
        raise InvalidRequest(
            "deep_linking_return_url_invalid", N_("The request to pick content does not say where to send it.")
        )
    return DeepLinkingSettings(
        return_url=return_url,
        accept_types=_strings(claim.get("accept_types")),
        accept_presentation_document_targets=_strings(claim.get("accept_presentation_document_targets")),
        accept_multiple=_flag(claim, "accept_multiple", True),
        accept_lineitem=_flag(claim, "accept_lineitem", True),
        auto_create=_flag(claim, "auto_create", False),
        title=_text(claim, "title"),
        text=_text(claim, "text"),
        data=_text(claim, "data"),
    )


def check_deep_linking_request(body: Mapping[str, Any], tool_base_urls: Sequence[str]) -> None:
    """LtiDeepLinkingRequest: usable settings that accept resource links, and a target inside the tool."""
    settings = parse_deep_linking_settings(body.get(c.DEEP_LINKING_SETTINGS))
    if RESOURCE_LINK_TYPE not in settings.accept_types:
        raise InvalidRequest(
            "deep_linking_type_unsupported", N_("The platform does not accept links to this tool's content.")
        )
    target = body.get(c.TARGET_LINK_URI)
    if not isinstance(target, str) or not belongs_to_tool(target, tool_base_urls):
        raise Forbidden("target_link_outside_tool", N_("The launch points to an address outside this tool."))


def validate_deep_linking_launch(launch: Launch) -> DeepLinkingSettings:
    """The settings of a deep-linking launch, if the person may pick content: instructors only."""
    if launch.deep_linking is None:
        raise InvalidRequest("not_deep_linking", N_("This launch is not a request to pick content."))
    if launch.role is not Role.STAFF:
        raise Forbidden(
            "deep_linking_instructors_only", N_("Only the course's teachers can add content from this tool.")
        )
    return launch.deep_linking


@dataclass(frozen=True)
class LineItem:
    """The gradebook column a picked item gets ("Add to gradebook")."""

    score_maximum: float
    label: str
    resource_id: str = ""
    tag: str = ""


@dataclass(frozen=True)
class ContentItem:
    """One picked item: a resource link to ``url``; ``custom`` says which content it is (the tool
    reads it back at the link's launches)."""

    title: str
    url: str
    text: str = ""
    custom: Mapping[str, str] = field(default_factory=dict)
    line_item: LineItem | None = None

    def as_claim(self) -> dict[str, Any]:
        item: dict[str, Any] = {"type": RESOURCE_LINK_TYPE, "title": self.title, "url": self.url}
        if self.text:
            item["text"] = self.text
        if self.custom:
            item["custom"] = dict(self.custom)
        if self.line_item is not None:
            line: dict[str, Any] = {"scoreMaximum": self.line_item.score_maximum, "label": self.line_item.label}
            if self.line_item.resource_id:
                line["resourceId"] = self.line_item.resource_id
            if self.line_item.tag:
                line["tag"] = self.line_item.tag
            item["lineItem"] = line
        return item


@dataclass(frozen=True)
class DeepLinkingReturn:
    """The browser's POST to the platform: ``fields`` to ``url`` (an auto-submitting form)."""

    url: str
    fields: tuple[tuple[str, str], ...]


def checked_content_items(settings: DeepLinkingSettings, items: Sequence[ContentItem]) -> list[dict[str, Any]]:
    if len(items) > 1 and not settings.accept_multiple:
        raise InvalidRequest("deep_linking_one_item_only", N_("The platform accepts one item at a time: pick one."))
    if any(item.line_item is not None for item in items) and not settings.accept_lineitem:
        raise InvalidRequest(
            "deep_linking_no_gradebook", N_("The platform does not accept gradebook columns from this tool.")
        )
    return [item.as_claim() for item in items]


def build_deep_linking_response(
    launch: Launch,
    items: Sequence[ContentItem],
    tool_keys: SigningKeys,
    now: float,
    *,
    message: str = "",
    error: str = "",
    log: str = "",
) -> DeepLinkingReturn:
    """The signed LtiDeepLinkingResponse for the teacher's ``items`` (none, with ``error``: cancelled).

    ``message``/``error`` are shown to the teacher by the platform (``msg``/``errormsg``); ``log`` is
    for its log (``log``, or ``errorlog`` with an error). ``data`` is echoed as the platform sent it.
    """
    settings = validate_deep_linking_launch(launch)
    issued = int(now)
    claims: dict[str, Any] = {
        "iss": launch.client_id,
        "aud": [launch.platform],
        "azp": launch.platform,
        "iat": issued,
        "exp": issued + RESPONSE_LIFETIME,
        "nonce": secrets.token_urlsafe(24),
        c.DEPLOYMENT_ID: launch.deployment_id,
        c.MESSAGE_TYPE: c.DEEP_LINKING_RESPONSE,
        c.VERSION: c.LTI_VERSION,
        c.DEEP_LINKING_CONTENT_ITEMS: [] if error else checked_content_items(settings, items),
    }
    if settings.data:
        claims[c.DEEP_LINKING_DATA] = settings.data
    if error:
        claims[c.DEEP_LINKING_ERROR_MSG] = error
        if log:
            claims[c.DEEP_LINKING_ERROR_LOG] = log
    else:
        if message:
            claims[c.DEEP_LINKING_MSG] = message
        if log:
            claims[c.DEEP_LINKING_LOG] = log
    key = tool_keys.signing_key(now)
    token = jwt.encode({"alg": "RS256", "typ": "JWT", "kid": key.kid}, claims, key, algorithms=["RS256"])
    return DeepLinkingReturn(settings.return_url, (("JWT", token),))


class AnswerStore(ConsumerStore, NonceStore, Protocol):
    """What answering a request needs: the LTI 1.1 consumers (their secrets sign 1.1 answers) and the
    nonces (each request is answered once)."""


#: The nonce scope that makes each pending request single use, whichever host keeps it.
ANSWER_NONCE_SCOPE = "deep_linking_answer"

EXPIRED = N_("This request to add content has expired or was already answered. Start again from your course.")


def answer_request(
    launch: Launch,
    items: Sequence[ContentItem],
    store: AnswerStore,
    tool_keys: SigningKeys,
    now: float,
    *,
    request_id: str,
    expires_at: float,
    message: str = "",
    error: str = "",
) -> DeepLinkingReturn:
    """The platform's answer to the pending request ``request_id`` of ``launch``: the signed LTI 1.3
    response, or the LTI 1.1 selection signed with the consumer's secret; then the request is used up
    (``Forbidden`` ``deep_linking_expired`` for a second answer, however the two raced)."""
    if launch.lti_version.startswith("1.1"):
        from lti_core.lti11.content_item import build_content_item_selection  # imports this module

        consumer = store.get_consumer(launch.platform)
        if consumer is None:
            raise NotFound("unknown_consumer", N_("This platform is no longer registered with the tool."))
        reply = build_content_item_selection(launch, items, consumer, now, message=message, error=error)
    else:
        reply = build_deep_linking_response(launch, items, tool_keys, now, message=message, error=error)
    if not store.consume_nonce(ANSWER_NONCE_SCOPE, request_id, expires_at, now):
        raise Forbidden("deep_linking_expired", EXPIRED)
    return reply


# -- the picker between request and answer ---------------------------------------------------------

#: Seconds a teacher has to pick (the platform's dialog stays open meanwhile).
PICK_LIFETIME = 3600
#: The message the platform shows after the answer.
SENT_MESSAGE = N_("%(count)s items added.")


@dataclass(frozen=True)
class Offer:
    """Content a host offers on its picker. A link made from it launches ``url`` with ``custom`` (the
    parameters that say which content it is); ``max_score`` None: it cannot go in the gradebook."""

    id: str
    title: str
    url: str
    custom: Mapping[str, str] = field(default_factory=dict)
    max_score: float | None = None


@dataclass(frozen=True)
class PendingPick:
    """A verified deep-linking request waiting for ``user``'s choice until ``expires_at``."""

    id: str
    user: str
    launch: Launch
    expires_at: float

    def as_record(self) -> dict[str, Any]:
        """What the host keeps (JSON-ready): without the launch's claims, which only served to verify
        it and would make a cookie too large."""
        return {"user": self.user, "launch": replace(self.launch, raw={}).as_record(), "expires_at": self.expires_at}


def begin_pick(launch: Launch, user: str, now: float) -> PendingPick:
    """A new pending request of ``launch`` (a checked deep-linking launch) for the local ``user``."""
    return PendingPick(secrets.token_urlsafe(16), user, launch, now + PICK_LIFETIME)


def load_pick(pick_id: str, record: Any, user: str, now: float) -> PendingPick:
    """The pending request ``record`` (``PendingPick.as_record``, as the host kept it) for ``user``;
    ``Forbidden`` ``deep_linking_expired`` when none was kept, it is unreadable, expired, or another
    user's."""
    try:
        pending = PendingPick(pick_id, str(record["user"]), Launch.from_record(record["launch"]), record["expires_at"])
        fresh = float(pending.expires_at) >= now
    except (ValueError, KeyError, TypeError) as error:  # none kept (None), or unreadable
        raise Forbidden("deep_linking_expired", EXPIRED) from error
    if pending.user != user or not fresh:
        raise Forbidden("deep_linking_expired", EXPIRED)
    return pending


def pick_items(offers: Sequence[Offer], picked: Collection[str], graded: Collection[str]) -> list[ContentItem]:
    """The content items of the ``picked`` offer ids, in the offers' order, with a line item for the
    ``graded`` ones that can have one; an id that was not offered is refused."""
    if set(picked) - {offer.id for offer in offers}:
        raise InvalidRequest("unknown_content", N_("The content picked is not offered to you."))
    return [
        ContentItem(
            offer.title,
            offer.url,
            custom=offer.custom,
            line_item=(
                LineItem(offer.max_score, offer.title, resource_id=offer.id)
                if offer.id in graded and offer.max_score is not None
                else None
            ),
        )
        for offer in offers
        if offer.id in picked
    ]


def answer_pick(
    pending: PendingPick,
    items: Sequence[ContentItem],
    store: AnswerStore,
    tool_keys: SigningKeys,
    now: float,
    gettext: Callable[[str], str],
) -> DeepLinkingReturn:
    """The answer to ``pending``: the picked ``items``, or with none the cancellation, in the
    teacher's language (``gettext``); then the request is used up (``answer_request``)."""
    error = "" if items else gettext(PICK_CANCELLED_MESSAGE)
    message = gettext(SENT_MESSAGE) % {"count": len(items)} if items else ""
    return answer_request(
        pending.launch,
        items,
        store,
        tool_keys,
        now,
        request_id=pending.id,
        expires_at=pending.expires_at,
        message=message,
        error=error,
    )


__all__ = [
    "ANSWER_NONCE_SCOPE",
    "EXPIRED",
    "PICK_LIFETIME",
    "SENT_MESSAGE",
    "Offer",
    "PendingPick",
    "answer_pick",
    "begin_pick",
    "load_pick",
    "pick_items",
    "RESOURCE_LINK_TYPE",
    "AnswerStore",
    "answer_request",
    "ContentItem",
    "DeepLinkingReturn",
    "LineItem",
    "build_deep_linking_response",
    "check_deep_linking_request",
    "parse_deep_linking_settings",
    "validate_deep_linking_launch",
]
