"""Account linking on the hub: the linking prompt's pages, each user's links, the admins' list of links.

A first launch whose provisioning mode prompts (``LtiAuthenticator.instructor_provisioning_mode``)
is kept as a pending launch (``lti_core.prompt``) and answered with the choice page; from there:

    GET/POST /hub/lti/link/<id>             the choice, then the confirmation (``choice``: new,
                                            existing, confirm)
    GET/POST /hub/lti/link/<id>/sign-in     the local sign-in (`local_authenticator_class`)
    GET      /hub/lti/link/<id>/handover    a new window taking over the prompt from a platform's
                                            frame that dropped the hub's cookies (one-time secret)
    GET      /hub/lti/link/<id>/check       an LTI 1.1 launch's prompt in a frame: did the cookie its
                                            answer set come back? The buttons, else the new window

Every step needs the pending launch's cookie (set by the launch's answer, or by the handover), the
form token its pages carry, and, for a POST, the hub's ``_xsrf``: these are the hub's own forms, so
its XSRF check stays on. The form token travels in the forms and in the prompt's own addresses as
``form_token`` (which JupyterHub's request log hides, as any parameter named like a token). The local
sign-in is recorded in the pending launch only; the hub session starts when the prompt is done,
through JupyterHub's ``login_user``, as a launch's does: a new user (create) or the confirmed one (link).

    GET/POST /hub/lti/links                 the signed-in user's links, each with Unlink
    GET/POST /hub/lti/admin/links           hub admins: every link, searched, each with Remove
"""

from __future__ import annotations

import html
import time
from typing import Any

from tornado import web

from jupyter_lti.handlers import FINISHED_PROMPT, LtiFormHandler, LtiPages
from lti_core import pages
from lti_core.errors import LtiError
from lti_core.i18n import N_
from lti_core.prompt import (
    CookieEvidence,
    PendingLaunch,
    PromptNotBound,
    PromptOutcome,
    PromptState,
    form_token_matches,
    parse_prompt_choice,
    prompt_start,
)
from lti_core.types import UserLink
from lti_core.urls import add_query
from lti_publish_assets import static_text

SIGN_IN_TITLE = N_("Sign in to your account on this hub")
SIGN_IN_MESSAGE = N_(
    "Sign in to the account you want to link to your user on %(platform)s. You will be asked to confirm "
    "before anything is linked."
)
SIGN_IN_FAILED = N_("The username or password is wrong.")
NO_SUCH_HUB_USER = N_("This account has no user on this hub yet: sign in to an account that has used the hub.")
USERNAME_LABEL = N_("Username")
PASSWORD_LABEL = N_("Password")
SIGN_IN_LABEL = N_("Sign in")

LINKS_TITLE = N_("Your linked platform accounts")
LINKS_INTRO = N_(
    "Launches from these platform users sign you in to this hub account. Unlink one, and its next launch is a "
    "first launch again."
)
NO_LINKS = N_("No platform user is linked to your account.")
ADMIN_LINKS_TITLE = N_("Linked platform accounts")
ADMIN_LINKS_INTRO = N_(
    "Each link signs a platform user in to a hub user at every launch. Remove a link, and that platform "
    "user's next launch is a first launch again."
)
SEARCH_LABEL = N_("Search")
PLATFORM_LABEL = N_("Platform (issuer or consumer key)")
PLATFORM_USER_LABEL = N_("Platform user ID")
HUB_USER_LABEL = N_("Hub user")
UNLINK_LABEL = N_("Unlink")
REMOVE_LABEL = N_("Remove")
NO_MATCH = N_("No link matches.")
#: Links an admin's search shows at most.
MAX_LISTED = 500


class PromptHandler(LtiFormHandler):
    """Base of the prompt's pages."""

    @property
    def form_token(self) -> str:
        return str(self.get_argument("form_token", ""))

    async def load(self, pending_id: str) -> PendingLaunch:
        """The pending launch, if this browser holds its cookie and the request its form token."""
        authenticator = self.authenticator
        pending: PendingLaunch = await authenticator.off_loop(
            authenticator.prompt_flow.load, pending_id, self.prompt_binding(pending_id), time.time()
        )
        if not form_token_matches(pending, self.form_token):
            raise PromptNotBound(detail="the form token is missing or wrong")
        return pending

    def page_url(self, pending_id: str, *path: str) -> str:
        """A page of the prompt, with its form token (kept out of the hub's log by its name)."""
        return add_query(self.prompt_url(pending_id, *path), {"form_token": self.form_token})


class PromptChoiceHandler(PromptHandler):
    """The choice and the confirmation: GET shows the current step, POST takes one."""

    async def get(self, pending_id: str) -> None:
        try:
            pending = await self.load(pending_id)
        except LtiError as error:
            self.refuse(error)
            return
        if pending.state is PromptState.SIGNING_IN:
            self.redirect(self.page_url(pending_id, "sign-in"))
            return
        self.finish_page(self.prompt_page(pending, self.form_token))

    async def post(self, pending_id: str) -> None:
        authenticator = self.authenticator
        try:
            pending = await self.load(pending_id)
            # The account a confirmation links is the one the local sign-in recorded in this pending
            # launch (bound to this browser), never one the form names.
            event = parse_prompt_choice(self.get_body_argument("choice", ""), pending.local_user_id)
            following = await authenticator.off_loop(
                authenticator.prompt_flow.step,
                pending_id,
                self.prompt_binding(pending_id),
                self.form_token,
                event,
                time.time(),
            )
        except LtiError as error:
            self.refuse(error)
            return
        if isinstance(following, PromptOutcome):
            self.prompt_cookie(pending_id, "", 0)
            await self.sign_in({FINISHED_PROMPT: following})
            return
        self.redirect(self.page_url(pending_id), status=303)


#: Wrong passwords allowed per client address and username within ``SIGN_IN_WINDOW`` seconds, before
#: that pair must wait: the linking sign-in must not become a password-guessing oracle for hub accounts.
MAX_SIGN_IN_FAILURES = 5
SIGN_IN_WINDOW = 300.0
#: Pairs remembered at most (the oldest go first): bounded memory whatever a client sends.
MAX_THROTTLED = 10_000
TOO_MANY_SIGN_INS = N_("Too many wrong sign-ins. Wait a few minutes, then try again.")


class SignInThrottle:
    """Failed sign-ins per (client address, username), forgotten ``window`` seconds after the last.
    The hub's handlers run on one event loop: no lock is needed."""

    def __init__(self, limit: int = MAX_SIGN_IN_FAILURES, window: float = SIGN_IN_WINDOW) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[tuple[str, str], list[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> list[float]:
        recent = [at for at in self._failures.get(key, []) if at > now - self.window]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def blocked(self, key: tuple[str, str], now: float) -> bool:
        return len(self._recent(key, now)) >= self.limit

    def failed(self, key: tuple[str, str], now: float) -> None:
        recent = self._recent(key, now)
        self._failures.pop(key, None)  # re-inserted last: the dict's order is the eviction order
        self._failures[key] = [*recent, now]
        while len(self._failures) > MAX_THROTTLED:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)


SIGN_IN_THROTTLE = SignInThrottle()


class PromptSignInHandler(PromptHandler):
    """The local sign-in (`local_authenticator_class`): a username and password form."""

    async def get(self, pending_id: str) -> None:
        try:
            pending = await self.load(pending_id)
        except LtiError as error:
            self.refuse(error)
            return
        if pending.state is not PromptState.SIGNING_IN:
            self.redirect(self.page_url(pending_id))
            return
        self.finish_sign_in_page(pending)

    async def post(self, pending_id: str) -> None:
        authenticator = self.authenticator
        try:
            pending = await self.load(pending_id)
            local = authenticator.local_authenticator
        except LtiError as error:
            self.refuse(error)
            return
        data = {"username": self.get_body_argument("username", ""), "password": self.get_body_argument("password", "")}
        throttled = (str(self.request.remote_ip), data["username"].strip().lower())
        if SIGN_IN_THROTTLE.blocked(throttled, time.monotonic()):
            self.finish_sign_in_page(pending, TOO_MANY_SIGN_INS, status=429)
            return
        user = await local.get_authenticated_user(self, data)
        name = str(user["name"]) if isinstance(user, dict) else ""
        if not name:
            SIGN_IN_THROTTLE.failed(throttled, time.monotonic())
            self.finish_sign_in_page(pending, SIGN_IN_FAILED, status=403)
            return
        SIGN_IN_THROTTLE.succeeded(throttled)
        if self.find_user(name) is None:  # linking never creates a hub user: it has to exist already
            self.finish_sign_in_page(pending, NO_SUCH_HUB_USER, status=403)
            return
        try:
            await authenticator.off_loop(
                authenticator.prompt_flow.signed_in, pending_id, self.prompt_binding(pending_id), name, time.time()
            )
        except LtiError as error:
            self.refuse(error)
            return
        self.log.info("LTI linking prompt: signed in to %s through %s", name, type(local).__name__)
        self.redirect(self.page_url(pending_id), status=303)

    def finish_sign_in_page(self, pending: PendingLaunch, problem: str = "", status: int = 200) -> None:
        _ = self.gettext
        title = html.escape(_(SIGN_IN_TITLE))
        message = html.escape(_(SIGN_IN_MESSAGE) % {"platform": pending.launch.platform})
        alert = f'<p class="lti-error" role="alert">{html.escape(_(problem))}</p>' if problem else ""
        form = (
            f'<form method="post" action="{html.escape(self.prompt_url(pending.id, "sign-in"))}">'
            f"{self.xsrf_form_html()}"
            f'<input type="hidden" name="form_token" value="{html.escape(self.form_token)}">'
            f'<p><label>{html.escape(_(USERNAME_LABEL))} <input name="username" autocomplete="username" required>'
            "</label></p>"
            f'<p><label>{html.escape(_(PASSWORD_LABEL))} <input name="password" type="password" '
            'autocomplete="current-password"></label></p>'
            f'<button type="submit">{html.escape(_(SIGN_IN_LABEL))}</button></form>'
        )
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        for header, value in pages.HEADERS:
            self.set_header(header, value)
        self.finish(page_html(self.language, title, f"<p>{message}</p>{alert}{form}"))


class PromptHandoverHandler(PromptHandler):
    """A new window takes the prompt over (``PromptFlow.hand_over``): its cookie is set here, first-party."""

    async def get(self, pending_id: str) -> None:
        authenticator = self.authenticator
        handover = str(self.get_argument("handover_token", ""))
        try:
            pending, cookie = await authenticator.off_loop(
                authenticator.prompt_flow.hand_over, pending_id, handover, time.time()
            )
        except LtiError as error:
            self.refuse(error)
            return
        if not form_token_matches(pending, self.form_token):
            self.refuse(PromptNotBound(detail="the form token is missing or wrong"))
            return
        self.prompt_cookie(pending_id, cookie, int(pending.expires_at - time.time()))
        self.redirect(self.page_url(pending_id))  # the used secret leaves the address bar


class PromptCheckHandler(PromptHandler):
    """Back from the launch's redirect that set the prompt's cookie: its buttons if the cookie came
    back, else only the new window. Shown to the launch's own page only (its handover secret, which
    stays unused here, and its form token)."""

    async def get(self, pending_id: str) -> None:
        flow, now = self.authenticator.prompt_flow, time.time()
        handover = str(self.get_argument("handover_token", ""))
        try:
            pending = await self.authenticator.off_loop(flow.holds_handover, pending_id, handover, now)
            if not form_token_matches(pending, self.form_token):
                raise PromptNotBound(detail="the form token is missing or wrong")
        except LtiError as error:
            self.refuse(error)
            return
        try:
            await self.authenticator.off_loop(flow.load, pending_id, self.prompt_binding(pending_id), now)
            cookies = CookieEvidence.KEPT
        except PromptNotBound:
            cookies = CookieEvidence.DROPPED
        self.finish_started_prompt(pending, prompt_start(cookies, framed=self.framed), handover, self.form_token)


def page_html(lang: str, title: str, body: str) -> str:
    """A page of this module: ``title`` and ``body`` already escaped."""
    return (
        f'<!DOCTYPE html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{static_text('css/lti_publish.css')}</style></head>"
        f'<body><main class="lti-links"><h1>{title}</h1>{body}</main></body></html>'
    )


class LinksPage(LtiPages):
    """Base of the links pages: the hub's forms (``_xsrf`` checked), a table of links."""

    def link_rows(self, links: list[UserLink], label: str, *, with_user: bool) -> str:
        _ = self.gettext
        rows = []
        for link in links:
            fields = {"platform": link.platform, "platform_user_id": link.platform_user_id}
            hidden = "".join(
                f'<input type="hidden" name="{name}" value="{html.escape(value)}">' for name, value in fields.items()
            )
            button = f'<button type="submit">{html.escape(_(label))}</button>'
            cells = [f"<code>{html.escape(link.platform)}</code>", f"<code>{html.escape(link.platform_user_id)}</code>"]
            if with_user:
                cells.append(html.escape(link.local_user_id))
            cells.append(f'<form method="post">{self.xsrf_form_html()}{hidden}{button}</form>')
            rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
        headings = [PLATFORM_LABEL, PLATFORM_USER_LABEL, *([HUB_USER_LABEL] if with_user else []), label]
        return (
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(_(h))}</th>" for h in headings)
            + "</tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )

    def finish_html(self, title: str, body: str) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page_html(self.language, html.escape(self.gettext(title)), body))

    def posted_link(self) -> tuple[str, str]:
        return self.get_body_argument("platform", ""), self.get_body_argument("platform_user_id", "")


class UserLinksHandler(LinksPage):
    """The signed-in hub user's links, each with Unlink."""

    @web.authenticated
    async def get(self) -> None:
        authenticator, _ = self.authenticator, self.gettext
        links = await authenticator.off_loop(authenticator.store.find_user_links, self.current_user.name)
        intro = f"<p>{html.escape(_(LINKS_INTRO))}</p>"
        table = self.link_rows(links, UNLINK_LABEL, with_user=False) if links else f"<p>{html.escape(_(NO_LINKS))}</p>"
        self.finish_html(LINKS_TITLE, intro + table)

    @web.authenticated
    async def post(self) -> None:
        authenticator = self.authenticator
        platform, platform_user_id = self.posted_link()
        link = await authenticator.off_loop(authenticator.store.get_user_link, platform, platform_user_id)
        if link is None or link.local_user_id != self.current_user.name:  # only one's own links
            raise web.HTTPError(404, "No such link")
        await authenticator.off_loop(authenticator.store.delete_user_link, platform, platform_user_id)
        self.log.info("LTI link of %s unlinked by its user %s", platform, self.current_user.name)
        self.redirect(self.request.path, status=303)


def matches(link: UserLink, query: str) -> bool:
    folded = query.casefold()
    return any(folded in value.casefold() for value in (link.platform, link.platform_user_id, link.local_user_id))


class LinksAdminHandler(LinksPage):
    """Hub admins: every link, searched by platform, platform user or hub user, each with Remove."""

    def require_admin(self) -> None:
        if not getattr(self.current_user, "admin", False):
            raise web.HTTPError(403, "Only hub admins manage LTI links")

    @web.authenticated
    async def get(self) -> None:
        self.require_admin()
        authenticator, _ = self.authenticator, self.gettext
        query = str(self.get_argument("q", "")).strip()
        links = await authenticator.off_loop(authenticator.store.list_user_links)
        found = [link for link in links if matches(link, query)][:MAX_LISTED] if query else links[:MAX_LISTED]
        search = (
            f'<form method="get"><label>{html.escape(_(SEARCH_LABEL))} '
            f'<input name="q" value="{html.escape(query)}"></label> '
            f'<button type="submit">{html.escape(_(SEARCH_LABEL))}</button></form>'
        )
        table = self.link_rows(found, REMOVE_LABEL, with_user=True) if found else f"<p>{html.escape(_(NO_MATCH))}</p>"
        self.finish_html(ADMIN_LINKS_TITLE, f"<p>{html.escape(_(ADMIN_LINKS_INTRO))}</p>{search}{table}")

    @web.authenticated
    async def post(self) -> None:
        self.require_admin()
        authenticator = self.authenticator
        platform, platform_user_id = self.posted_link()
        if not await authenticator.off_loop(authenticator.store.delete_user_link, platform, platform_user_id):
            raise web.HTTPError(404, "No such link")
        self.log.info("LTI link of a %s user removed by %s", platform, self.current_user.name)
        self.redirect(self.request.path, status=303)


def linking_handlers() -> list[tuple[str, Any]]:
    """The routes of this module, below the hub's prefix."""
    pending = r"/lti/link/([A-Za-z0-9_-]+)"
    return [
        (pending, PromptChoiceHandler),
        (pending + "/sign-in", PromptSignInHandler),
        (pending + "/handover", PromptHandoverHandler),
        (pending + "/check", PromptCheckHandler),
        ("/lti/links", UserLinksHandler),
        ("/lti/admin/links", LinksAdminHandler),
    ]


__all__ = [
    "LinksAdminHandler",
    "PromptCheckHandler",
    "PromptChoiceHandler",
    "PromptHandoverHandler",
    "PromptSignInHandler",
    "UserLinksHandler",
    "linking_handlers",
]
