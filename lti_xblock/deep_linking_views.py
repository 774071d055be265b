"""Deep linking in the XBlock host: the "Published content" page, where an instructor picks published
content to add to their course.

A deep-linking request (LTI 1.3 ``LtiDeepLinkingRequest``, LTI 1.1 ``ContentItemSelectionRequest``)
by an instructor signs them in as any launch does (``views.finish_launch``), then lands here:

    GET/POST /lti_publish/pick/<id>/    what the instructor may publish (``Host.published_contents``:
                                        published blocks, and whole courses marked so): a checkbox (a
                                        radio button when the platform takes one item) and "Add to
                                        gradebook" per item; "Add content" or "Cancel"

and the answer, built by lti_core (``build_deep_linking_response``, ``build_content_item_selection``),
is a results page listing what is sent, whose form posts itself to the platform's return URL.

The pending request is kept in the Django session (bound to this browser and the user signed in),
under a random id; it expires, and its id is a single-use nonce in the LTI store, so a request is
answered once even by two racing posts. Each created link is the content's own launch URL (its LTI
1.3 target link URI, its LTI 1.1 Tool URL) with the custom parameter ``content_id``: its launches land
on that content as every launch of that URL does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from lti_core import pages
from lti_core.deep_linking import (
    ContentItem,
    DeepLinkingReturn,
    Offer,
    PendingPick,
    answer_pick,
    begin_pick,
    load_pick,
    pick_items,
    validate_deep_linking_launch,
)
from lti_core.errors import AuthenticationFailed
from lti_core.i18n import N_
from lti_core.types import Launch
from lti_xblock import compat
from lti_xblock.compat import ContentKind, PublishedContent
from lti_xblock.i18n import gettext as _
from lti_xblock.launch_details import launch_details
from lti_xblock.linking_views import prompt_endpoint
from lti_xblock.views import base_url, store, tool_keys

log = logging.getLogger(__name__)

#: The custom parameter each created link carries: the content it opens.
CONTENT_CUSTOM_KEY = "content_id"
#: The session key of a pending request: this prefix and its id.
PICK_SESSION_PREFIX = "lti_publish_pick_"

EMPTY = N_("There is no published content you can add: publish some in Studio first.")


def session_key(pick_id: str) -> str:
    return PICK_SESSION_PREFIX + pick_id


def picker_url(pick_id: str) -> str:
    return reverse("lti_xblock:published_content", args=[pick_id])


def begin_picking(request: HttpRequest, launch: Launch, user: User) -> HttpResponse:
    """Keep ``launch`` in the session (the user is signed in by then) and go to its picker page."""
    pending = begin_pick(launch, str(user.pk), time.time())
    request.session[session_key(pending.id)] = pending.as_record()
    return HttpResponseRedirect(picker_url(pending.id))


def pending_pick(request: HttpRequest, pick_id: str, now: float) -> PendingPick:
    """The pending request of this browser (its session) and signed-in user."""
    if not request.user.is_authenticated:
        raise AuthenticationFailed("not_signed_in", N_("Open this page from your course in your learning platform."))
    return load_pick(pick_id, request.session.get(session_key(pick_id)), str(request.user.pk), now)


def content_url(base: str, launch: Launch, content_id: str) -> str:
    """Where a created link launches: the content's launch URL in the request's LTI version."""
    details = launch_details(base, content_id)
    return details.lti11_tool_url if launch.lti_version == "1.1" else details.lti13_target_link_uri


def offers_of(contents: Sequence[PublishedContent], base: str, launch: Launch) -> list[Offer]:
    """The published contents as the picker offers them: each link launches its content's URL."""
    return [
        Offer(
            content.content_id,
            content.title,
            content_url(base, launch, content.content_id),
            {CONTENT_CUSTOM_KEY: content.content_id},
            content.max_score,
        )
        for content in contents
    ]


def answer(pending: PendingPick, items: list[ContentItem], now: float) -> DeepLinkingReturn:
    """The signed answer (none picked: the cancellation), then the request used up (single use)."""
    if pending.launch.lti_version != "1.1":
        tool_keys.ensure_key(now)  # the tool's first key, as its key set makes it
    return answer_pick(pending, items, store, tool_keys, now, _)


@prompt_endpoint("GET", "POST")
def published_content(request: HttpRequest, pick_id: str) -> HttpResponse:
    """The "Published content" page of one pending request: GET shows it, POST answers the platform."""
    now = time.time()
    pending = pending_pick(request, pick_id, now)
    settings = validate_deep_linking_launch(pending.launch)
    contents = compat.host().published_contents(cast(User, request.user))  # pending_pick: signed in
    if request.method == "GET":
        return picker_page(request, pending, contents)
    cancelled = request.POST.get("action", "") == "cancel"
    picked, graded = request.POST.getlist("item"), request.POST.getlist("gradebook")
    if not cancelled and not picked:
        return picker_page(request, pending, contents, pages.PICK_NOTHING_PICKED, status=400)
    offers = offers_of(contents, base_url(request), pending.launch)
    items = [] if cancelled else pick_items(offers, picked, graded)
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
            {
                "id": content.content_id,
                "title": content.title,
                "max_score": f"{content.max_score:g}",
                "kind": content.kind.value,
                "kind_label": _(pages.PICK_WHOLE_COURSE) if content.kind is ContentKind.COURSE else "",
            }
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
