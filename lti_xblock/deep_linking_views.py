"""Deep linking in the XBlock host: the "Published content" page, where an instructor picks published
content to add to their course.

A deep-linking request (LTI 1.3 ``LtiDeepLinkingRequest``, LTI 1.1 ``ContentItemSelectionRequest``)
by an instructor signs them in as any launch does (``views.finish_launch``), then lands here:

    GET/POST /lti_publish/pick/<id>/    what the instructor may publish (``Host.published_contents``):
                                        a checkbox (a radio button when the platform takes one item)
                                        and "Add to gradebook" per item; "Add content" or "Cancel"

and the answer, built by lti_core (``build_deep_linking_response``, ``build_content_item_selection``),
is a results page listing what is sent, whose form posts itself to the platform's return URL.

The pending request is kept in the Django session (bound to this browser and the user signed in),
under a random id; it expires, and its id is a single-use nonce in the LTI store, so a request is
answered once even by two racing posts. Each created link is the content's own launch URL (its LTI
1.3 target link URI, its LTI 1.1 Tool URL) with the custom parameter ``content_id``: its launches land
on that content as every launch of that URL does.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from lti_core import deep_linking, pages
from lti_core.deep_linking import (
    ContentItem,
    DeepLinkingReturn,
    LineItem,
    answer_request,
    validate_deep_linking_launch,
)
from lti_core.errors import AuthenticationFailed, Forbidden, InvalidRequest
from lti_core.i18n import N_
from lti_core.types import Launch
from lti_xblock import compat
from lti_xblock.compat import PublishedContent
from lti_xblock.i18n import gettext as _
from lti_xblock.launch_details import launch_details
from lti_xblock.linking_views import prompt_endpoint
from lti_xblock.views import base_url, store, tool_keys

log = logging.getLogger(__name__)

#: The custom parameter each created link carries: the content it opens.
CONTENT_CUSTOM_KEY = "content_id"
#: The session key of a pending request: this prefix and its id.
PICK_SESSION_PREFIX = "lti_publish_pick_"
#: Seconds an instructor has to pick (the platform's dialog stays open meanwhile).
PICK_LIFETIME = 3600

EMPTY = N_("There is no published content you can add: publish some in Studio first.")
SENT_MESSAGE = N_("%(count)s items added from the tool.")


@dataclass(frozen=True)
class PendingPick:
    """A verified deep-linking request waiting for the instructor's choice: for ``user`` until ``expires_at``."""

    id: str
    user: str
    launch: Launch
    expires_at: float


def session_key(pick_id: str) -> str:
    return PICK_SESSION_PREFIX + pick_id


def picker_url(pick_id: str) -> str:
    return reverse("lti_xblock:published_content", args=[pick_id])


def begin_picking(request: HttpRequest, launch: Launch, user: User) -> HttpResponse:
    """Keep ``launch`` in the session (the user is signed in by then) and go to its picker page."""
    pick_id = secrets.token_urlsafe(16)
    # What only served to verify the launch (its claims) stays out of the session.
    record = dataclasses.replace(launch, raw={}).as_record()
    request.session[session_key(pick_id)] = {
        "user": str(user.pk),
        "launch": record,
        "expires_at": time.time() + PICK_LIFETIME,
    }
    return HttpResponseRedirect(picker_url(pick_id))


def load_pick(request: HttpRequest, pick_id: str, now: float) -> PendingPick:
    """The pending request of this browser and user; refused when gone, expired or someone else's."""
    if not request.user.is_authenticated:
        raise AuthenticationFailed("not_signed_in", N_("Open this page from your course in your learning platform."))
    value: Any = request.session.get(session_key(pick_id))
    try:
        pending = PendingPick(pick_id, str(value["user"]), Launch.from_record(value["launch"]), value["expires_at"])
    except (ValueError, KeyError, TypeError) as error:  # none kept (None), or unreadable
        raise Forbidden("deep_linking_expired", deep_linking.EXPIRED) from error
    if pending.user != str(request.user.pk) or pending.expires_at < now:
        raise Forbidden("deep_linking_expired", deep_linking.EXPIRED)
    return pending


def content_url(base: str, launch: Launch, content_id: str) -> str:
    """Where a created link launches: the content's launch URL in the request's LTI version."""
    details = launch_details(base, content_id)
    return details.lti11_tool_url if launch.lti_version == "1.1" else details.lti13_target_link_uri


def picked_items(
    contents: Sequence[PublishedContent], picked: Sequence[str], graded: Sequence[str], base: str, launch: Launch
) -> list[ContentItem]:
    """The content items for the ids the form sent (ids not offered refused), in the page's order."""
    if set(picked) - {content.content_id for content in contents}:
        raise InvalidRequest("unknown_content", N_("The content picked is not offered to you."))
    return [
        ContentItem(
            content.title,
            content_url(base, launch, content.content_id),
            custom={CONTENT_CUSTOM_KEY: content.content_id},
            line_item=(
                LineItem(content.max_score, content.title, resource_id=content.content_id)
                if content.content_id in graded
                else None
            ),
        )
        for content in contents
        if content.content_id in picked
    ]


def answer(pending: PendingPick, items: list[ContentItem], now: float) -> DeepLinkingReturn:
    """The signed answer (none picked: the cancellation), then the request used up (single use)."""
    launch = pending.launch
    error = "" if items else _(pages.PICK_CANCELLED_MESSAGE)
    message = "" if error else _(SENT_MESSAGE) % {"count": len(items)}
    if launch.lti_version != "1.1":
        tool_keys.ensure_key(now)  # the tool's first key, as its key set makes it
    return answer_request(
        launch,
        items,
        store,
        tool_keys,
        now,
        request_id=pending.id,
        expires_at=pending.expires_at,
        message=message,
        error=error,
    )


@prompt_endpoint("GET", "POST")
def published_content(request: HttpRequest, pick_id: str) -> HttpResponse:
    """The "Published content" page of one pending request: GET shows it, POST answers the platform."""
    now = time.time()
    pending = load_pick(request, pick_id, now)
    settings = validate_deep_linking_launch(pending.launch)
    contents = compat.host().published_contents(cast(User, request.user))  # load_pick: signed in
    if request.method == "GET":
        return picker_page(request, pending, contents)
    cancelled = request.POST.get("action", "") == "cancel"
    picked, graded = request.POST.getlist("item"), request.POST.getlist("gradebook")
    if not cancelled and not picked:
        return picker_page(request, pending, contents, pages.PICK_NOTHING_PICKED, status=400)
    items = [] if cancelled else picked_items(contents, picked, graded, base_url(request), pending.launch)
    reply = answer(pending, items, now)
    request.session.pop(session_key(pick_id), None)
    log.info(
        "LTI deep linking: user %s sent %d item(s) to %s",
        pending.user,
        len(items),
        urlsplit(settings.return_url).netloc,
    )
    return sent_page(request, reply, items)


def picker_page(
    request: HttpRequest,
    pending: PendingPick,
    contents: Sequence[PublishedContent],
    problem: str = "",
    status: int = 200,
) -> HttpResponse:
    settings = validate_deep_linking_launch(pending.launch)
    course = pending.launch.context_title or pending.launch.platform
    intro = _(pages.PICK_INTRO if settings.accept_multiple else pages.PICK_INTRO_ONE) % {"course": course}
    context: dict[str, Any] = {
        "title": _(pages.PICK_TITLE),
        "intro": intro if contents else _(EMPTY),
        "problem": _(problem) if problem else "",
        "action": picker_url(pending.id),
        "kind": "checkbox" if settings.accept_multiple else "radio",
        "gradebook": settings.accept_lineitem,
        "contents": [
            {"id": content.content_id, "title": content.title, "max_score": f"{content.max_score:g}"}
            for content in contents
        ],
        "item_label": _(pages.PICK_ITEM_LABEL),
        "max_score_label": _(pages.PICK_MAX_SCORE_LABEL),
        "gradebook_label": _(pages.PICK_GRADEBOOK_LABEL),
        "add_label": _(pages.PICK_ADD_LABEL),
        "cancel_label": _(pages.PICK_CANCEL_LABEL),
    }
    return no_store(render(request, "lti_xblock/published_content.html", context, status=status))


def sent_page(request: HttpRequest, reply: DeepLinkingReturn, items: list[ContentItem]) -> HttpResponse:
    """The results page: what is sent, and the form that posts it to the platform, by itself (in a frame
    or a window: it targets the window it is in) or with Continue."""
    lines = [
        item.title
        + (
            ""
            if item.line_item is None
            else " (" + _(pages.PICK_IN_GRADEBOOK) % {"points": f"{item.line_item.score_maximum:g}"} + ")"
        )
        for item in items
    ]
    context = {
        "title": _(pages.PICK_SENT_TITLE if items else pages.PICK_CANCELLED_TITLE),
        "intro": _(pages.PICK_SENT_INTRO if items else pages.PICK_CANCELLED_INTRO),
        "lines": lines,
        "action": reply.url,
        "fields": reply.fields,
        "continue_label": _(pages.PICK_CONTINUE_LABEL),
    }
    return no_store(render(request, "lti_xblock/content_sent.html", context))


def no_store(response: HttpResponse) -> HttpResponse:
    """Pages with a signed answer or a pending request are never cached (lti_core's page headers)."""
    for name, value in pages.HEADERS:
        response[name] = value
    return response


__all__ = ["CONTENT_CUSTOM_KEY", "begin_picking", "published_content"]
