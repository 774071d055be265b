"""Deep linking on the hub: the "Published content" page, where a teacher picks notebooks to add to a course.

The hub admin lists what may be published (``LtiAuthenticator.catalog``). A deep-linking launch
(LTI 1.3 ``LtiDeepLinkingRequest``, LTI 1.1 ``ContentItemSelectionRequest``) by an instructor signs
them in as any launch does, then, instead of landing in their server, goes to

    GET/POST /hub/lti/content/<id>          the catalog: a checkbox (or a radio button, when the
                                            platform takes one item) and "Add to gradebook" per item;
                                            "Add content" or "Cancel"

and the answer, built by lti_core (``build_deep_linking_response``, ``build_content_item_selection``),
is a results page listing what is sent, whose form posts itself to the platform's return URL.

The pending request is kept in a cookie the hub signs (its ``cookie_secret``), bound to the hub user
who launched and sent to these pages only; it expires, and its id is a single-use nonce in the LTI
store, so a request is answered once. Each created link launches the hub as the platform's other
links do, with the custom parameter ``catalog_item``: its launches land on that item
(``catalog_landing``), pulling its git repository first where the item has one (nbgitpuller's
``git-pull`` in the user's server).
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from jupyterhub.utils import url_path_join
from tornado import web

from jupyter_lti.handlers import LtiFormHandler, LtiHandler
from jupyter_lti.linking import page_html
from lti_core import pages
from lti_core.deep_linking import (
    PICK_LIFETIME,
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
from lti_core.errors import InvalidRequest, LtiError, NotFound
from lti_core.i18n import N_
from lti_core.types import Launch

#: The custom parameter each created link carries: the catalog item it opens.
CATALOG_CUSTOM_KEY = "catalog_item"
#: The picker's pages, below the hub's prefix; its cookie is named by this prefix and the request's id.
PICKER_PATH = "lti/content/"
PICKER_COOKIE_PREFIX = "lti_pick_"
_ITEM_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

EMPTY = N_("The hub's administrator has not published any content yet.")
LOCATION_LABEL = N_("Location")


@dataclass(frozen=True)
class CatalogItem:
    """What the hub admin lets teachers publish: a notebook or folder in the user's server."""

    id: str
    title: str
    path: str
    git: str = ""
    branch: str = ""
    max_score: float | None = None


def parse_catalog(entries: Sequence[Any]) -> tuple[CatalogItem, ...]:
    """The `catalog` setting, checked: ValueError says what is wrong with which entry."""
    items: list[CatalogItem] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ValueError(f"entry {index} is not a dict")
        unknown = set(entry) - {"id", "title", "path", "git", "branch", "max_score"}
        if unknown:
            raise ValueError(f"entry {index} has unknown keys {sorted(unknown)}")
        item_id, title, path = entry.get("id"), entry.get("title"), entry.get("path", "")
        git, branch, max_score = entry.get("git", ""), entry.get("branch", ""), entry.get("max_score")
        if not isinstance(item_id, str) or not _ITEM_ID.fullmatch(item_id):
            raise ValueError(f"entry {index}: id must be 1-64 letters, digits, '_', '.' or '-'")
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"entry {item_id!r}: title must be a non-empty string")
        if not isinstance(path, str) or path.startswith(("/", "~")) or ".." in PurePosixPath(path).parts:
            raise ValueError(f"entry {item_id!r}: path must be relative to the user's home, without '..'")
        if not isinstance(git, str) or (git and urlsplit(git).scheme not in ("https", "http")):
            raise ValueError(f"entry {item_id!r}: git must be an https URL of a repository")
        if not isinstance(branch, str):
            raise ValueError(f"entry {item_id!r}: branch must be a string")
        if max_score is not None and (isinstance(max_score, bool) or not isinstance(max_score, int | float)):
            raise ValueError(f"entry {item_id!r}: max_score must be a number")
        if max_score is not None and not max_score > 0:
            raise ValueError(f"entry {item_id!r}: max_score must be above 0")
        if any(item.id == item_id for item in items):
            raise ValueError(f"id {item_id!r} is listed twice")
        score = None if max_score is None else float(max_score)
        items.append(CatalogItem(item_id, title.strip(), path.strip("/"), git, branch, score))
    return tuple(items)


def catalog_landing(item: CatalogItem, open_prefix: str) -> str:
    """Where a launch of ``item`` goes in the user's server, relative to it: ``lab/tree/<path>``, or
    nbgitpuller's ``git-pull`` of its repository (into a folder named by the item's id) then there."""
    if not item.git:
        return open_prefix + quote(item.path)
    query = {"repo": item.git, "targetpath": item.id, "urlpath": open_prefix + quote(f"{item.id}/{item.path}")}
    if item.branch:
        query["branch"] = item.branch
    return "git-pull?" + urlencode(query)


def find_item(catalog: Sequence[CatalogItem], item_id: str) -> CatalogItem:
    """The item a link's custom parameter names; ``NotFound`` when the catalog no longer has it."""
    for item in catalog:
        if item.id == item_id:
            return item
    raise NotFound(
        "catalog_item_unknown",
        N_("The content this link opens is no longer offered on this hub. Please tell your teacher."),
    )


# -- the pending request --------------------------------------------------------------------------


def begin_picking(handler: LtiHandler, user_name: str, launch: Launch) -> str:
    """Keep ``launch`` in the picker's signed cookie for ``user_name``; the picker's URL."""
    pending = begin_pick(launch, user_name, time.time())
    value = json.dumps(pending.as_record())
    signed = handler.create_signed_value(PICKER_COOKIE_PREFIX + pending.id, value).decode("ascii")
    set_pick_cookie(handler, pending.id, signed, PICK_LIFETIME)
    return str(url_path_join(handler.hub.base_url, PICKER_PATH, pending.id))


def set_pick_cookie(handler: LtiHandler, pick_id: str, value: str, max_age: int) -> None:
    """The picker's cookie, with the launch cookies' attributes (in a frame: partitioned)."""
    handler.flow_cookie(PICKER_COOKIE_PREFIX + pick_id, value, max_age, PICKER_PATH)


def pending_pick(handler: LtiHandler, pick_id: str, user_name: str, now: float) -> PendingPick:
    """The pending request of this browser (its signed cookie) and hub user."""
    raw = handler.get_signed_cookie(PICKER_COOKIE_PREFIX + pick_id, max_age_days=1)
    try:
        record = None if raw is None else json.loads(raw)
    except ValueError:
        record = None
    return load_pick(pick_id, record, user_name, now)


def catalog_offers(catalog: Sequence[CatalogItem], launch_url: str) -> list[Offer]:
    """The catalog as the picker offers it: every item launches the hub, naming itself."""
    return [Offer(item.id, item.title, launch_url, {CATALOG_CUSTOM_KEY: item.id}, item.max_score) for item in catalog]


# -- the page --------------------------------------------------------------------------------------


class ContentPickerHandler(LtiFormHandler):
    """The "Published content" page of one pending request: GET shows it, POST answers the platform."""

    @property
    def catalog(self) -> tuple[CatalogItem, ...]:
        return tuple(self.authenticator.catalog_items)

    @web.authenticated
    async def get(self, pick_id: str) -> None:
        try:
            pending = pending_pick(self, pick_id, self.current_user.name, time.time())
        except LtiError as error:
            self.refuse(error)
            return
        self.finish_picker(pending)

    @web.authenticated
    async def post(self, pick_id: str) -> None:
        authenticator, now = self.authenticator, time.time()
        cancelled = self.get_body_argument("action", "") == "cancel"
        picked, graded = self.get_body_arguments("item"), self.get_body_arguments("gradebook")
        try:
            pending = pending_pick(self, pick_id, self.current_user.name, now)
            settings = validate_deep_linking_launch(pending.launch)
            if not cancelled and not picked:
                self.finish_picker(pending, pages.PICK_NOTHING_PICKED, status=400)
                return
            offers = catalog_offers(self.catalog, self.launch_url(pending.launch))
            items = [] if cancelled else pick_items(offers, picked, graded)
            answer = await authenticator.off_loop(self.answer, pending, items, now)
        except LtiError as error:
            self.refuse(error)
            return
        set_pick_cookie(self, pick_id, "", 0)
        self.log.info(
            "LTI deep linking: %s sent %d item(s) to %s", pending.user, len(items), urlsplit(settings.return_url).netloc
        )
        self.finish_sent(answer, items, cancelled)

    def launch_url(self, launch: Launch) -> str:
        """Where a created link launches: the hub's launch URL of the request's LTI version."""
        authenticator = self.authenticator
        if launch.lti_version == "1.1":
            return str(authenticator.hub_url(self, "lti", "ltiaccess"))
        return str(authenticator.redirect_uri(self))

    def answer(self, pending: PendingPick, items: list[ContentItem], now: float) -> DeepLinkingReturn:
        """In the store's threads: the signed answer, then the request's id used up (single use)."""
        authenticator = self.authenticator
        if pending.launch.lti_version != "1.1":
            authenticator.tool_jwks()  # makes the tool's first key, as its key set does
        return answer_pick(pending, items, authenticator.store, authenticator.tool_keys, now, self.gettext)

    def finish_html(self, title: str, body: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        for name, value in pages.HEADERS:
            self.set_header(name, value)
        self.finish(page_html(self.language, html.escape(self.gettext(title)), body))

    def finish_picker(self, pending: PendingPick, problem: str = "", status: int = 200) -> None:
        _, settings = self.gettext, pending.launch.deep_linking
        if settings is None:  # checked by validate_deep_linking_launch before any pick is kept
            raise InvalidRequest("not_deep_linking", N_("This launch is not a request to pick content."))
        course = pending.launch.context_title or pending.launch.platform
        intro = _(pages.PICK_INTRO if settings.accept_multiple else pages.PICK_INTRO_ONE) % {"course": course}
        alert = f'<p class="lti-error" role="alert">{html.escape(_(problem))}</p>' if problem else ""
        # Without a catalog, the form is only Cancel: the platform's dialog still gets its answer.
        shown = intro if self.catalog else _(EMPTY)
        body = f"<p>{html.escape(shown)}</p>{alert}" + self.picker_form(pending, settings.accept_multiple)
        self.finish_html(pages.PICK_TITLE, body, status)

    def picker_form(self, pending: PendingPick, multiple: bool) -> str:
        _, settings = self.gettext, pending.launch.deep_linking
        gradebook = settings is not None and settings.accept_lineitem
        kind = "checkbox" if multiple else "radio"
        rows = []
        for item in self.catalog:
            field_id = f"item-{item.id}"
            pick = f'<input type="{kind}" name="item" value="{html.escape(item.id)}" id="{html.escape(field_id)}">'
            label = f'<label for="{html.escape(field_id)}">{html.escape(item.title)}</label>'
            where = f"<code>{html.escape(item.path or '.')}</code>" + (
                f"<br><code>{html.escape(item.git)}</code>" if item.git else ""
            )
            score = "" if item.max_score is None else f"{item.max_score:g}"
            graded = ""
            if gradebook and item.max_score is not None:
                graded = (
                    f'<label><input type="checkbox" name="gradebook" value="{html.escape(item.id)}"> '
                    f"{html.escape(_(pages.PICK_GRADEBOOK_LABEL))}</label>"
                )
            rows.append(f"<tr><td>{pick} {label}</td><td>{where}</td><td>{score}</td><td>{graded}</td></tr>")
        headings = (pages.PICK_ITEM_LABEL, LOCATION_LABEL, pages.PICK_MAX_SCORE_LABEL, pages.PICK_GRADEBOOK_LABEL)
        table = (
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(_(h))}</th>" for h in headings)
            + "</tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
        add = f'<button type="submit" name="action" value="add">{html.escape(_(pages.PICK_ADD_LABEL))}</button> '
        cancel = (
            f'<button type="submit" name="action" value="cancel">{html.escape(_(pages.PICK_CANCEL_LABEL))}</button>'
        )
        action = url_path_join(self.hub.base_url, PICKER_PATH, pending.id)
        return (
            f'<form method="post" action="{html.escape(action)}">{self.xsrf_form_html()}'
            + (table + "<p>" + add if rows else "<p>")
            + cancel
            + "</p></form>"
        )

    def finish_sent(self, answer: DeepLinkingReturn, items: list[ContentItem], cancelled: bool) -> None:
        """The results page: what is sent, and the form that posts it to the platform, by itself (in a
        frame or a window: it targets the window it is in) or with Continue."""
        _ = self.gettext
        if cancelled:
            title, listing = pages.PICK_CANCELLED_TITLE, f"<p>{html.escape(_(pages.PICK_CANCELLED_INTRO))}</p>"
        else:
            lines = []
            for item in items:
                line = html.escape(item.title)
                if item.line_item is not None:
                    line += (
                        " ("
                        + html.escape(_(pages.PICK_IN_GRADEBOOK) % {"points": f"{item.line_item.score_maximum:g}"})
                        + ")"
                    )
                lines.append(f"<li>{line}</li>")
            title, listing = (
                pages.PICK_SENT_TITLE,
                f"<p>{html.escape(_(pages.PICK_SENT_INTRO))}</p><ul>{''.join(lines)}</ul>",
            )
        fields = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in answer.fields
        )
        form = (
            f'<form method="post" id="lti-deep-linking-return" action="{html.escape(answer.url)}">{fields}'
            f'<button type="submit">{html.escape(_(pages.PICK_CONTINUE_LABEL))}</button></form>'
            '<script>document.getElementById("lti-deep-linking-return").submit();</script>'
        )
        self.finish_html(title, listing + form)


def deep_linking_handlers() -> list[tuple[str, Any]]:
    """The routes of this module, below the hub's prefix."""
    return [(r"/lti/content/([A-Za-z0-9_-]+)", ContentPickerHandler)]


__all__ = [
    "CATALOG_CUSTOM_KEY",
    "CatalogItem",
    "ContentPickerHandler",
    "begin_picking",
    "catalog_landing",
    "deep_linking_handlers",
    "find_item",
    "parse_catalog",
]
