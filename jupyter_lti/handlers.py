"""The hub's LTI endpoints: tornado request in, lti_core's plain data out, and back.

Platform-facing POSTs are cross-site by design, so they carry no ``_xsrf`` token: their signature
(LTI 1.1) or their state and signed nonce (LTI 1.3) is what protects them. Only these handlers skip
the hub's XSRF check; every other hub form keeps it. Refusals become a readable page with the
reason code and a 4xx status, never a traceback.
"""

from __future__ import annotations

import json
import time
from typing import Any

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join

from lti_core import cookies, frames, pages
from lti_core.errors import (
    AuthenticationFailed,
    Forbidden,
    LtiError,
    method_not_allowed,
    request_malformed,
)
from lti_core.handover import TOKEN_PARAM, HandoverInvalid, HandoverStep
from lti_core.i18n import N_, preferred_language, translation
from lti_core.lti13 import binding
from lti_core.lti13.binding import BrowserCheckRequired, BrowserEvidence
from lti_core.prompt import CookieEvidence, PendingLaunch, PromptSecrets, PromptStart, cookie_evidence, prompt_start
from lti_core.urls import add_query
from lti_publish_assets import TRANSLATIONS_DIR, page_html

#: The linking prompt's pages, below the hub's prefix; its cookie is named as the launch's state
#: cookies are (a prefix and the pending launch's id) and sent to these pages only.
PROMPT_PATH = "lti/link/"
#: The continue step of a framed launch (``lti_core.handover``), below the hub's prefix.
CONTINUE_PATH = "lti/continue"
PROMPT_COOKIE_PREFIX = "lti_link_"
#: The data ``login_user`` gets when a linking prompt is done (``jupyter_lti.linking``).
FINISHED_PROMPT = "lti_finished_prompt"


class LinkPromptRequired(Exception):
    """A launch whose first visit asks how the person gets a hub user (``lti_core.prompt``): the
    launch's handler answers with the prompt's page and sets its cookie."""

    def __init__(self, pending: PendingLaunch, secrets: PromptSecrets) -> None:
        super().__init__("the launch waits for the linking prompt")
        self.pending, self.secrets = pending, secrets


class LtiPages(BaseHandler):  # type: ignore[misc]
    """lti_core's pages in the reader's language: for the platform-facing endpoints and the admin page."""

    def gettext(self, message: str) -> str:
        return translation(str(TRANSLATIONS_DIR), self.language).gettext(message)

    @property
    def language(self) -> str:
        return preferred_language(self.request.headers.get("Accept-Language", ""))

    def finish_page(self, page: pages.Page) -> None:
        """One of lti_core's pages, in the reader's language."""
        self.set_status(page.status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        for name, value in pages.HEADERS:
            self.set_header(name, value)
        self.finish(page_html(page, lang=self.language, translate=self.gettext))


class LtiHandler(LtiPages):
    """Base of the platform-facing endpoints."""

    lti_launch: Any = None

    def check_xsrf_cookie(self) -> None:
        """LTI messages are cross-site form POSTs from the platform: no ``_xsrf`` can be in them."""
        return None

    @property
    def login_url(self) -> str:
        return str(self.authenticator.hub_url(self, "lti13", "oauth_login"))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """What tornado refuses before or while the handler reads the request (a body it cannot parse,
        an argument that is not UTF-8, a method no handler has) gets the LTI error page and reason
        code too; anything else, JupyterHub's own error page."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, LtiError):
            self.refuse(error)
        elif status_code == 405:
            self.refuse(method_not_allowed())
        elif 400 <= status_code < 500:
            self.refuse(request_malformed(str(getattr(error, "log_message", "") or "")[:80]))
        else:
            super().write_error(status_code, **kwargs)

    #: The flow this endpoint's refusals end (their page's title and hint).
    flow = pages.LAUNCH

    def refuse(self, error: LtiError) -> None:
        """The readable error page: what happened, the reason code, what to do. Nothing secret in it."""
        self.log.info("LTI request refused: %s (%s) %s", error.reason, self.request.path, error.detail)
        self.clear()
        self.finish_page(pages.refusal_page(error, self.login_url, self.flow))

    def flow_cookie(self, name: str, value: str, max_age: int, *path: str) -> None:
        """A cookie of an LTI flow (the launch state, the linking prompt, the picker) below ``path`` of
        the hub, with lti_core's attributes: framed over HTTPS, partitioned (max_age 0 deletes it)."""
        secure = self.authenticator.public_origin(self).startswith("https://")
        header = cookies.cookie_header(
            name,
            value,
            max_age=max_age,
            path=url_path_join(self.hub.base_url, *path),
            policy=cookies.state_cookie_policy(secure),
        )
        self.add_header("Set-Cookie", header)

    def state_cookie(self, state: str, max_age: int) -> None:
        """The state cookie (max_age 0 deletes it, in its partition)."""
        self.flow_cookie(binding.state_cookie_name(state), "1", max_age, "lti13/")

    def prompt_url(self, pending_id: str, *path: str) -> str:
        return str(url_path_join(self.hub.base_url, PROMPT_PATH, pending_id, *path))

    def prompt_cookie(self, pending_id: str, value: str, max_age: int) -> None:
        """The pending launch's binding cookie, with the state cookie's attributes (framed: partitioned)."""
        self.flow_cookie(PROMPT_COOKIE_PREFIX + pending_id, value, max_age, PROMPT_PATH)

    def prompt_binding(self, pending_id: str) -> str:
        return self.get_cookie(PROMPT_COOKIE_PREFIX + pending_id, "") or ""

    def prompt_page(self, pending: PendingLaunch, form_token: str, *, new_window_url: str = "") -> pages.LinkPromptPage:
        """The prompt's choice or confirmation, its forms carrying the hub's ``_xsrf`` and the form token."""
        return pages.LinkPromptPage(
            state=pending.state,
            may_create=pending.may_create,
            platform=pending.launch.platform,
            step_url=self.prompt_url(pending.id),
            form_token=form_token,
            account=pending.local_user_id,
            csrf=("_xsrf", self.xsrf_token.decode("ascii")),
            new_window_url=new_window_url,
        )

    #: What the launch's request says about the hub's cookies where it shows (a frame may drop
    #: them): set by the launch handlers; the prompt shows its buttons only where they can work.
    cookie_evidence = CookieEvidence.UNKNOWN

    @property
    def framed(self) -> bool:
        return frames.is_framed(dict(self.request.headers.get_all()))

    def start_prompt(self, prompt: LinkPromptRequired) -> None:
        """The launch's answer when it asks how the person gets a hub user: the prompt's cookie, and
        its page, as ``lti_core.prompt.prompt_start`` says: its buttons; only a link to go on in a new
        window (with the one-time handover secret, only in this page); or first a redirect to the
        prompt's cookie check (``jupyter_lti.linking.PromptCheckHandler``)."""
        pending, browser = prompt.pending, prompt.secrets
        self.prompt_cookie(pending.id, browser.cookie, int(pending.expires_at - time.time()))
        start = prompt_start(self.cookie_evidence, framed=self.framed)
        if start is PromptStart.CHECK_COOKIE:
            self.redirect(self.handover_url(pending.id, browser.handover, browser.form_token, "check"))
            return
        self.finish_started_prompt(pending, start, browser.handover, browser.form_token)

    def handover_url(self, pending_id: str, handover: str, form_token: str, path: str = "handover") -> str:
        return add_query(self.prompt_url(pending_id, path), {"handover_token": handover, "form_token": form_token})

    def finish_started_prompt(self, pending: PendingLaunch, start: PromptStart, handover: str, form_token: str) -> None:
        """The prompt's first page: its buttons, or only the new window."""
        new_window = self.handover_url(pending.id, handover, form_token) if start is PromptStart.NEW_WINDOW else ""
        self.finish_page(self.prompt_page(pending, form_token, new_window_url=new_window))

    async def sign_in(self, data: dict[str, Any]) -> Any:
        """Hand the launch to JupyterHub's login (which calls the authenticator), then land.

        Returns the user, or None when the launch was refused (the page is already written).
        """
        try:
            user = await self.login_user(data)
        except LtiError as error:
            self.refuse(error)
            return None
        except BrowserCheckRequired as needed:
            self.finish_page(pages.BrowserCheckPage(needed.check))
            return None
        except LinkPromptRequired as prompt:
            self.start_prompt(prompt)
            return None
        if user is None:  # verified, but the hub's allow/block lists say no
            self.refuse(Forbidden("user_not_allowed", N_("Your account is not allowed to use this hub.")))
            return None
        self.land(user, self.authenticator.landing_url(self, self.lti_launch, user))
        return user

    def land(self, user: Any, landing_url: str) -> None:
        """To the landing page, signed in; from a platform's frame through the continue step
        (``lti_core.handover``): a frame that kept none of the hub's cookies offers a new window there.
        A request to pick content lands at once (its picker's cookie is set with this answer)."""
        if not self.framed or self.lti_launch.deep_linking is not None:
            self.redirect(landing_url)
            return
        token = self.authenticator.session_handover(self).issue(user.name, landing_url, time.time())
        self.redirect(add_query(url_path_join(self.hub.base_url, CONTINUE_PATH), {TOKEN_PARAM: token}))


#: A hub form whose ``_xsrf`` did not check (an old page, or a form from elsewhere).
FORM_EXPIRED = N_("This form has expired or did not come from this hub. Reload the page and try again.")


class LtiFormHandler(LtiHandler):
    """Base of the hub's own pages with forms that an LTI launch leads to (the linking prompt, the
    content picker): their refusals are launch refusal pages, but their forms carry the hub's
    ``_xsrf``, checked as JupyterHub checks its own, and a failed check is a refusal page too."""

    check_xsrf_cookie = BaseHandler.check_xsrf_cookie  # not cross-site LTI messages: the hub's own forms

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if status_code == 403 and not isinstance(error, LtiError):  # the hub's XSRF check
            self.refuse(Forbidden("form_expired", FORM_EXPIRED))
        else:
            super().write_error(status_code, **kwargs)


class LtiInfoHandler(LtiHandler):
    """Where JupyterHub sends people who are not signed in: this hub is opened from a course."""

    async def get(self) -> None:
        self.refuse(
            AuthenticationFailed("not_signed_in", N_("Open this hub from your course in your learning platform."))
        )

    async def post(self) -> None:
        await self.get()


class LtiLaunchHandler(LtiHandler):
    """A launch endpoint: platforms POST launches; a GET (a bookmark, a reload) gets the refusal page."""

    async def get(self) -> None:
        self.refuse(method_not_allowed())


class LTI11LaunchHandler(LtiLaunchHandler):
    """The LTI 1.1 tool URL: a basic-lti-launch-request, signed with OAuth 1.0a HMAC-SHA1."""

    async def post(self) -> None:
        # tornado decodes form field names as latin-1; platforms send UTF-8 (a teacher's custom
        # parameter "café"), and the signature covers the UTF-8 text.
        pairs = [
            (name.encode("latin-1").decode("utf-8", "replace"), value.decode("utf-8", "replace"))
            for name, values in self.request.body_arguments.items()
            for value in values
        ]
        data = {"method": "POST", "url": self.authenticator.public_request_url(self), "params": pairs}
        # LTI 1.1 has no state cookie: any hub cookie coming back says this browser keeps them here.
        self.cookie_evidence = cookie_evidence(cookie_came_back=bool(self.request.cookies))
        await self.sign_in(data)


class LtiContinueHandler(LtiHandler):
    """The continue step of a framed launch: land, offer the new window, or (in that window) sign
    the launch's user in once; lti_core decides, every refusal writes nothing."""

    async def get(self) -> None:
        authenticator, user = self.authenticator, self.current_user
        try:
            decision = await authenticator.off_loop(
                authenticator.session_handover(self).decide,
                self.get_argument(TOKEN_PARAM, ""),
                session_user=user.name if user is not None else "",
                framed=self.framed,
                now=time.time(),
            )
            if decision.step is HandoverStep.SIGN_IN:
                user = self.find_user(decision.local_user_id)
                if user is None:
                    raise HandoverInvalid(detail="the handover's user is gone")
                self.set_login_cookie(user)
        except LtiError as error:
            self.refuse(error)
            return
        if decision.step is HandoverStep.OPEN_NEW_WINDOW:
            self.finish_page(pages.handover_page(authenticator.public_request_url(self)))
            return
        self.redirect(decision.landing_url)


class LTI11ConfigHandler(LtiHandler):
    """The LTI 1.1 configuration XML (IMS Common Cartridge basic LTI link) to paste into a platform."""

    async def get(self) -> None:
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.finish(self.authenticator.lti11_config_xml(self))


class LTI13LoginHandler(LtiHandler):
    """OIDC third-party login initiation: the platform sends iss, login_hint, target_link_uri."""

    async def get(self) -> None:
        params = {name: self.get_argument(name) for name in self.request.arguments}
        try:
            redirect = await self.authenticator.begin_login(self, params)
        except LtiError as error:
            self.refuse(error)
            return
        if redirect.uses_platform_storage:
            self.finish_page(pages.storage_login_page(redirect, self.login_url))
            return
        self.state_cookie(redirect.state.state, int(redirect.state.expires_at - time.time()))
        self.redirect(redirect.url)

    async def post(self) -> None:
        await self.get()  # Moodle initiates the login with a form POST, others with a GET


class LTI13LaunchHandler(LtiLaunchHandler):
    """The redirect URI: the platform's form POST of the signed id_token."""

    async def post(self) -> None:
        state = self.get_body_argument("state", "")
        evidence = BrowserEvidence.from_request(
            cookie_names=list(self.request.cookies),
            form={k: self.get_body_argument(k, "") for k in (binding.REPOST_FIELD, binding.STORAGE_VALUE_FIELD)},
            headers=dict(self.request.headers.get_all()),
            tool_origin=self.authenticator.public_origin(self),
        )
        data = {"id_token": self.get_body_argument("id_token", ""), "state": state, "browser": evidence}
        bound_by_cookie = state in evidence.cookie_states
        self.cookie_evidence = cookie_evidence(cookie_came_back=bound_by_cookie, bound_by_storage=not bound_by_cookie)
        if state in evidence.cookie_states:
            # Used up by this launch: deleted with its answer (a refusal clears it again).
            self.state_cookie(state, 0)
        await self.sign_in(data)


class LTI13JwksHandler(LtiHandler):
    """The tool's public key set (what platforms verify the tool's signed messages and tokens with)."""

    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "public, max-age=3600")
        # The keys are in the store (the first request makes one): read in the store's threads.
        self.finish(json.dumps(await self.authenticator.off_loop(self.authenticator.tool_jwks)))


class LTI13ConfigHandler(LtiHandler):
    """The tool configuration JSON (Canvas's format, also read by people filling in Moodle's form)."""

    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.authenticator.lti13_config(self), indent=2))


__all__ = [
    "LTI11ConfigHandler",
    "LTI11LaunchHandler",
    "LTI13ConfigHandler",
    "LTI13JwksHandler",
    "LTI13LaunchHandler",
    "LTI13LoginHandler",
    "LinkPromptRequired",
    "LtiContinueHandler",
    "LtiHandler",
    "LtiInfoHandler",
    "LtiLaunchHandler",
]
