"""Browser binding: proof that a launch comes back to the browser that started its login.

Without it an attacker who starts a launch, stops at the platform's auto-submitting form and has a
victim's browser post that id_token and state signs the victim in as the attacker (login CSRF).
The proof is never skipped. It is one of:

- **the state cookie** the login step set (first-party in a new window; ``SameSite=None; Secure;
  Partitioned`` in a frame over HTTPS, see ``lti_core.cookies``);
- **the platform-storage round trip** (1EdTech "LTI Client Side postMessages" and "Platform
  Storage"): when the login carried ``lti_storage_target`` the tool's login page stored the state
  with the platform's frame (``lti.put_data``), and the tool's own page reads it back
  (``lti.get_data``, answered only by the platform's origin) before re-posting the launch.

A launch posted cross-site without a cookie gets the browser check page (``BrowserCheckRequired``),
which re-posts it from the tool's own origin: with the value read back from platform storage, or,
without storage, just once so that ``SameSite=Lax`` cookies ride along (plain HTTP in a new
window). A re-post is only believed when the browser says it came from the tool's own origin
(``Sec-Fetch-Site: same-origin`` or an ``Origin`` equal to the tool's): a cross-site attacker can
put any field into a form, but not those headers. When the re-post carries no proof either, the
launch is refused with ``state_not_bound`` and a link that starts the login again in a new,
first-party window, where the state cookie works.

Decision table (evaluated in order, after the state was found):

=========================  ================  =============================  ==================
state cookie present        re-post           storage value                  outcome
=========================  ================  =============================  ==================
yes                         any               any                            bound (cookie)
no                          same-origin       equals the state (login used)  bound (storage)
no                          no                -                              check page
no                          same-origin       missing or wrong               refused
no                          not same-origin   -                              refused
=========================  ================  =============================  ==================
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from lti_core.errors import Forbidden
from lti_core.i18n import N_
from lti_core.types import OidcState

STATE_COOKIE_PREFIX = "lti1p3_state_"
#: Form field the check page adds when it re-posts a launch.
REPOST_FIELD = "lti_repost"
#: Form field carrying the value the check page read back from platform storage.
STORAGE_VALUE_FIELD = "lti_storage_value"
#: Platform-storage key prefix; one key per login, so parallel launches in tabs do not collide.
STORAGE_KEY_PREFIX = "lti_state_"


class Binding(Enum):
    COOKIE = "cookie"
    PLATFORM_STORAGE = "platform_storage"


@dataclass(frozen=True)
class BrowserEvidence:
    """What the launch request shows about the browser that sent it, read by the host adapter."""

    cookie_states: frozenset[str] = frozenset()
    #: The request has the check page's marker field (``REPOST_FIELD``).
    repost: bool = False
    #: The browser said the request came from the tool's own origin (Sec-Fetch-Site / Origin).
    same_origin: bool = False
    storage_value: str = ""

    @classmethod
    def from_request(
        cls,
        *,
        cookie_names: Collection[str],
        form: Mapping[str, str],
        headers: Mapping[str, str],
        tool_origin: str,
    ) -> BrowserEvidence:
        """Read the evidence from a request's cookie names, form fields and (case-insensitive) headers."""
        return cls(
            cookie_states=frozenset(
                name[len(STATE_COOKIE_PREFIX) :] for name in cookie_names if name.startswith(STATE_COOKIE_PREFIX)
            ),
            repost=form.get(REPOST_FIELD, "") == "1",
            same_origin=is_same_origin_request(headers, tool_origin),
            storage_value=form.get(STORAGE_VALUE_FIELD, ""),
        )


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), "")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped (as browsers send Origin)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return ""
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return ""
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port and port != default else "")


def is_same_origin_request(headers: Mapping[str, str], tool_origin: str) -> bool:
    """True when the browser says the request came from a page of the tool's own origin.

    Browsers set Sec-Fetch-Site and Origin themselves; a page on another site cannot forge either.
    Sec-Fetch-Site wins where present (every current browser); Origin is the fallback.
    """
    fetch_site = _header(headers, "Sec-Fetch-Site").strip().lower()
    if fetch_site:
        return fetch_site == "same-origin"
    origin = _header(headers, "Origin").strip()
    return bool(origin) and origin != "null" and origin_of(origin) == origin_of(tool_origin)


def storage_key(state: str) -> str:
    return STORAGE_KEY_PREFIX + state


@dataclass(frozen=True)
class BrowserCheck:
    """What the host's browser check page needs: it re-posts the launch from the tool's origin."""

    action: str  # the launch URL to re-post to
    id_token: str
    state: str
    #: Empty when the login carried no ``lti_storage_target``: the page then only re-posts.
    storage_target: str
    storage_key: str
    #: Only messages from this origin are believed (the platform's, from its registration).
    platform_origin: str


class BrowserCheckRequired(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The launch must be re-posted from the tool's own page before it can be bound (nothing written)."""

    def __init__(self, check: BrowserCheck) -> None:
        super().__init__("browser check required")
        self.check = check


class NotBoundToBrowser(Forbidden):
    """No proof that this browser started the launch; the page offers a first-party relaunch."""

    reason = "state_not_bound"
    message = N_(
        "This launch could not be tied to your browser, which may block cookies inside the course page. "
        "Open it in a new window to continue."
    )

    def __init__(self, relaunch_params: Mapping[str, str], *, detail: str = "") -> None:
        super().__init__(detail=detail)
        #: Login initiation parameters that start the same launch again (in a new window).
        self.relaunch_params = dict(relaunch_params)


def relaunch_params(state: OidcState) -> dict[str, str]:
    """The login initiation that starts this launch again, as the platform first sent it.

    The platform decides whom the new id_token is for (from its own session), so a relaunch can
    only ever sign in the person who is signed in to the platform in that browser.
    """
    params = {
        "iss": state.issuer,
        "login_hint": state.login_hint,
        "target_link_uri": state.target_link_uri,
        "client_id": state.client_id,
    }
    if state.lti_message_hint:
        params["lti_message_hint"] = state.lti_message_hint
    if state.deployment_id:
        params["lti_deployment_id"] = state.deployment_id
    return params


def check_binding(
    state: OidcState,
    evidence: BrowserEvidence,
    *,
    id_token: str,
    launch_url: str,
    platform_origin: str,
) -> Binding:
    """How this browser is bound to ``state``; raises ``BrowserCheckRequired`` or ``NotBoundToBrowser``."""
    if state.state in evidence.cookie_states:
        return Binding.COOKIE
    if evidence.repost:
        if not evidence.same_origin:
            # The marker field without the browser's same-origin headers: a forged re-post.
            raise NotBoundToBrowser(relaunch_params(state), detail="re-post not from the tool's origin")
        if (
            state.storage_target
            and evidence.storage_value
            and hmac.compare_digest(evidence.storage_value.encode(), state.state.encode())
        ):
            return Binding.PLATFORM_STORAGE
        raise NotBoundToBrowser(relaunch_params(state), detail="no state cookie, no platform storage")
    raise BrowserCheckRequired(
        BrowserCheck(
            action=launch_url,
            id_token=id_token,
            state=state.state,
            storage_target=state.storage_target,
            storage_key=storage_key(state.state) if state.storage_target else "",
            platform_origin=platform_origin,
        )
    )


def state_cookie_name(state: str) -> str:
    return STATE_COOKIE_PREFIX + state


# What the hosts' binding pages say (one wording for both hosts).
CHECK_PAGE_TITLE = N_("Opening your content")
CHECK_PAGE_MESSAGE = N_("Opening your content…")
CONTINUE_LABEL = N_("Continue")
RELAUNCH_LABEL = N_("Open in a new window")
