"""The hub admins' view of the grade outbox: /hub/lti/grades.

How many scores are in each state (``lti_core.outbox.OutboxState``), and every score not delivered
yet: whose (the hub user linked to the platform identity), for which platform and service, its
attempts, when the next one is due, and the platform's last answer. "Retry now" puts a failed or
retrying score back to pending (``OutboxStore.retry_now``) and wakes the hub's delivery loop.
Hub admins only; the form keeps the hub's ``_xsrf`` check (``LtiPages``).
"""

from __future__ import annotations

import html
import time
from datetime import UTC, datetime
from typing import Protocol

from tornado import web

from jupyter_lti.handlers import LtiPages
from lti_core import pages
from lti_core.errors import LtiError
from lti_core.i18n import N_
from lti_core.outbox import OutboxEntry, OutboxKey, OutboxState, ServiceKind
from lti_core.store import OutboxStore, UserLinkStore
from lti_publish_assets import static_text

TITLE = N_("Grades sent to the platforms")
INTRO = N_(
    "Scores graders submit are kept here until the platform's gradebook has taken them. Scores the "
    "platform did not take are sent again after a while; retry one now once the platform is fixed."
)
COUNTS_HEADING = N_("Scores by state")
WAITING_HEADING = N_("Scores not delivered yet")
NONE_WAITING = N_("Every score has been delivered.")
USER_LABEL = N_("Hub user")
PLATFORM_LABEL = N_("Platform")
SERVICE_LABEL = N_("Service")
SCORE_LABEL = N_("Score")
STATE_LABEL = N_("State")
ATTEMPTS_LABEL = N_("Attempts")
NEXT_ATTEMPT_LABEL = N_("Next attempt")
LAST_ANSWER_LABEL = N_("Platform's last answer")
ACTIONS_LABEL = N_("Actions")
RETRY_LABEL = N_("Retry now")
BACK_LABEL = N_("LTI platform registrations")
STATE_NAMES = {
    OutboxState.PENDING: N_("Pending"),
    OutboxState.IN_FLIGHT: N_("Being sent"),
    OutboxState.DELIVERED: N_("Delivered"),
    OutboxState.RETRYING: N_("Retrying"),
    OutboxState.FAILED: N_("Failed"),
}
SERVICE_NAMES = {ServiceKind.AGS: N_("LTI 1.3 grades (AGS)"), ServiceKind.LTI11_OUTCOME: N_("LTI 1.1 outcomes")}
#: The states listed entry by entry (delivered ones are only counted).
WAITING_STATES = (OutboxState.FAILED, OutboxState.RETRYING, OutboxState.PENDING, OutboxState.IN_FLIGHT)
#: Entries listed at most.
MAX_LISTED = 500


class OutboxEntryUnknown(LtiError):
    status = 404
    reason = "outbox_entry_unknown"
    message = N_("This score is not waiting to be sent any more: reload the page.")


class OutboxStoreForAdmin(OutboxStore, UserLinkStore, Protocol):
    """What the page reads: the outbox and the links to hub users."""


def waiting_entries(store: OutboxStoreForAdmin) -> tuple[dict[OutboxState, int], list[tuple[OutboxEntry, str]]]:
    """The counts per state, and the entries not delivered (at most ``MAX_LISTED``) with their hub user."""
    listed: list[tuple[OutboxEntry, str]] = []
    for state in WAITING_STATES:
        for entry in store.list_outbox(state)[: MAX_LISTED - len(listed)]:
            link = store.get_user_link(entry.key.platform, entry.key.platform_user_id)
            listed.append((entry, link.local_user_id if link is not None else ""))
    return store.outbox_counts(), listed


#: The states "Retry now" applies to.
RETRYABLE_STATES = (OutboxState.FAILED, OutboxState.RETRYING)


def retry_now(store: OutboxStore, digest: str, now: float) -> OutboxKey:
    """Put the failed or retrying entry whose key has ``digest`` back to pending: its key, or
    ``OutboxEntryUnknown`` (delivered meanwhile, or never there)."""
    for state in RETRYABLE_STATES:
        for entry in store.list_outbox(state):
            if entry.key.digest == digest and store.retry_now(entry.key, now):
                return entry.key
    raise OutboxEntryUnknown(detail=f"entry {digest[:12]}")


class OutboxAdminHandler(LtiPages):
    """GET: the page; POST ``action=retry_now``, ``entry`` (its key's digest) and ``_xsrf``."""

    def require_admin(self) -> None:
        if not getattr(self.current_user, "admin", False):
            raise web.HTTPError(403, "Only hub admins see the grade outbox")

    @web.authenticated
    async def get(self) -> None:
        self.require_admin()
        authenticator = self.authenticator
        counts, listed = await authenticator.off_loop(waiting_entries, authenticator.store)
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.page_html(counts, listed))

    @web.authenticated
    async def post(self) -> None:
        self.require_admin()
        if self.get_body_argument("action", "") != "retry_now":
            raise web.HTTPError(400, "Unknown action")
        digest = self.get_body_argument("entry", "")
        authenticator = self.authenticator
        try:
            key = await authenticator.off_loop(retry_now, authenticator.store, digest, time.time())
        except LtiError as error:
            self.log.info("LTI grade retry refused: %s %s", error.reason, error.detail)
            login_url = authenticator.hub_url(self, "lti13", "oauth_login")
            self.finish_page(pages.refusal_page(error, login_url, pages.ADMIN))
            return
        self.log.info("LTI grade entry %s: retry now, by %s", key.digest[:12], self.current_user.name)
        authenticator.grade_sync.wake()
        self.redirect(self.request.path)

    # -- the page ------------------------------------------------------------------------------

    def page_html(self, counts: dict[OutboxState, int], listed: list[tuple[OutboxEntry, str]]) -> str:
        _ = self.gettext
        count_items = "".join(
            f'<li data-state="{state.value}">{html.escape(_(STATE_NAMES[state]))}: '
            f'<span class="count">{counts.get(state, 0)}</span></li>'
            for state in OutboxState
        )
        headings = (
            USER_LABEL,
            PLATFORM_LABEL,
            SERVICE_LABEL,
            SCORE_LABEL,
            STATE_LABEL,
            ATTEMPTS_LABEL,
            NEXT_ATTEMPT_LABEL,
            LAST_ANSWER_LABEL,
            ACTIONS_LABEL,
        )
        rows = "".join(self.row_html(entry, user) for entry, user in listed)
        table = (
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(_(h))}</th>" for h in headings)
            + f"</tr></thead><tbody>{rows}</tbody></table>"
            if rows
            else f"<p>{html.escape(_(NONE_WAITING))}</p>"
        )
        back = f'<p><a href="{html.escape(self.hub.base_url)}lti13/registrations">{html.escape(_(BACK_LABEL))}</a></p>'
        return (
            f'<!DOCTYPE html><html lang="{html.escape(self.language)}"><head><meta charset="utf-8">'
            f"<title>{html.escape(_(TITLE))}</title><style>{static_text('css/lti_publish.css')}</style></head>"
            f'<body><main class="lti-registrations lti-grades"><h1>{html.escape(_(TITLE))}</h1>'
            f"<p>{html.escape(_(INTRO))}</p>{back}"
            f'<h2 id="counts">{html.escape(_(COUNTS_HEADING))}</h2><ul class="outbox-counts">{count_items}</ul>'
            f'<h2 id="waiting">{html.escape(_(WAITING_HEADING))}</h2>{table}</main></body></html>'
        )

    def row_html(self, entry: OutboxEntry, user: str) -> str:
        _ = self.gettext
        score = entry.score
        given = "" if score.given is None else f"{score.given:g}"
        maximum = "" if score.maximum is None else f" / {score.maximum:g}"
        answer = f"{entry.last_status or ''} {entry.last_error}".strip()
        action = ""
        if entry.state in RETRYABLE_STATES:
            hidden = f'<input type="hidden" name="entry" value="{entry.key.digest}">'
            button = f'<button type="submit" name="action" value="retry_now">{html.escape(_(RETRY_LABEL))}</button>'
            action = f'<form method="post">{self.xsrf_form_html()}{hidden}{button}</form>'
        next_attempt = ""
        if entry.state is not OutboxState.FAILED and entry.next_attempt_at:
            next_attempt = datetime.fromtimestamp(entry.next_attempt_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        cells = [
            f"<code>{html.escape(user)}</code>" if user else html.escape(entry.key.platform_user_id),
            f"<code>{html.escape(entry.key.platform)}</code>",
            html.escape(_(SERVICE_NAMES[entry.kind])),
            html.escape(given + maximum),
            f'<span data-state="{entry.state.value}">{html.escape(_(STATE_NAMES[entry.state]))}</span>',
            str(entry.attempts),
            html.escape(next_attempt),
            f"<code>{html.escape(answer)}</code>" if answer else "",
            action,
        ]
        return f'<tr data-entry="{entry.key.digest[:16]}">' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


__all__ = ["OutboxAdminHandler", "OutboxEntryUnknown", "retry_now", "waiting_entries"]
