"""The session handover: a launch that signed a person in inside a platform's frame whose browser
keeps none of the tool's cookies there (Safari before partitioned cookies, strict privacy settings)
continues in a new, first-party window, still signed in.

A verified launch signs the person in and, when its request was framed (``lti_core.frames.is_framed``),
the host answers with a redirect to its "continue" step instead of the content, carrying a one-time
token (``SessionHandover.issue``): the local user and the landing URL, encrypted and authenticated with
a key the host derives from its own secret (Django's ``SECRET_KEY``, the hub's ``cookie_secret``),
valid ``HANDOVER_LIFETIME`` seconds. Where the frame kept the session the continue step is one more
redirect; where it did not, the page (``lti_core.pages.handover_page``) offers "Open in a new window",
whose first-party request redeems the token once and signs the person in there.

Decision table of the continue step (``SessionHandover.decide``), evaluated in order:

==========================  =====================  ===========  =====================================
token                       host's session         framed       outcome
==========================  =====================  ===========  =====================================
forged, garbled or missing  any                    any          refused ``handover_invalid``
older than its lifetime     any                    any          refused ``handover_expired``
valid                       the token's user       any          LAND (the token is not used up)
valid                       another user           any          refused ``handover_other_user``
valid                       none                   yes          OPEN_NEW_WINDOW (the page)
valid, first redemption     none                   no           SIGN_IN the token's user, then land
valid, redeemed before      none                   no           refused ``handover_used``
==========================  =====================  ===========  =====================================

Single use goes through the store's ``NonceStore.consume_nonce`` in its own scope, so of two racing
redemptions exactly one signs in. A refusal writes nothing. The token is a bearer secret for two
minutes: lti-publish never logs it (its parameter's name, ``TOKEN_PARAM``, also keeps it out of
JupyterHub's request log), and its pages are sent with ``lti_core.pages.HEADERS`` (no Referer out).

Pure: no I/O but the ``NonceStore`` a host implements; times are passed in.
"""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from lti_core.errors import Forbidden
from lti_core.i18n import N_
from lti_core.sealing import derive_fernet_key
from lti_core.store import NonceStore

#: Seconds between the launch and the click on "Open in a new window".
HANDOVER_LIFETIME = 120.0
#: The ``NonceStore`` scope of redeemed tokens.
NONCE_SCOPE = "session-handover"
#: HKDF's ``info``: a key of its own, never the store's encryption key.
KEY_INFO = b"lti-publish session handover v1"
#: The query parameter carrying the token (named like a token: JupyterHub's request log hides it).
TOKEN_PARAM = "handover_token"


class HandoverInvalid(Forbidden):
    reason = "handover_invalid"
    message = N_("This link is not valid. Please open the activity again from your course.")


class HandoverExpired(Forbidden):
    reason = "handover_expired"
    message = N_("This link has expired. Please open the activity again from your course.")


class HandoverUsed(Forbidden):
    reason = "handover_used"
    message = N_("This link was already used. Please open the activity again from your course.")


class HandoverOtherUser(Forbidden):
    status = 409
    reason = "handover_other_user"
    message = N_(
        "This browser is signed in to the tool as someone else. Sign out of the tool, then open the activity "
        "again from your course."
    )


class HandoverStep(enum.StrEnum):
    LAND = "land"  # signed in here already: go to the landing URL
    OPEN_NEW_WINDOW = "open_new_window"  # the frame kept no session: offer the new window
    SIGN_IN = "sign_in"  # the new window redeemed the token: sign the user in, then land


@dataclass(frozen=True)
class HandoverDecision:
    step: HandoverStep
    local_user_id: str
    landing_url: str


@dataclass(frozen=True)
class _Grant:
    """What a token says: who, where to, its single-use id, when it stops being valid."""

    local_user_id: str
    landing_url: str
    nonce: str
    expires_at: float


class SessionHandover:
    """Issues and decides the continue step's tokens, with a key derived from ``host_secret``."""

    def __init__(self, host_secret: str | bytes, nonces: NonceStore, lifetime: float = HANDOVER_LIFETIME) -> None:
        self._fernet = Fernet(derive_fernet_key(host_secret, info=KEY_INFO))
        self.nonces = nonces
        self.lifetime = lifetime

    def issue(self, local_user_id: str, landing_url: str, now: float) -> str:
        """The token naming ``local_user_id`` and ``landing_url``, issued at ``now``."""
        payload = {"user": local_user_id, "landing": landing_url, "nonce": secrets.token_urlsafe(16)}
        return self._fernet.encrypt_at_time(json.dumps(payload).encode(), int(now)).decode("ascii")

    def _open(self, token: str, now: float) -> _Grant:
        try:
            issued_at = self._fernet.extract_timestamp(token.encode("ascii"))  # checks the MAC first
            payload = json.loads(self._fernet.decrypt(token.encode("ascii")))
            grant = _Grant(str(payload["user"]), str(payload["landing"]), str(payload["nonce"]), 0.0)
        except (InvalidToken, UnicodeError, ValueError, KeyError, TypeError) as error:
            raise HandoverInvalid(detail="the handover token does not open") from error
        if not grant.local_user_id or not grant.nonce:
            raise HandoverInvalid(detail="the handover token names no user")
        expires_at = issued_at + self.lifetime
        if now >= expires_at or issued_at > now + 60:  # 60 s: clock steps between a host's processes
            raise HandoverExpired(detail="the handover token is outside its lifetime")
        return _Grant(grant.local_user_id, grant.landing_url, grant.nonce, expires_at)

    def decide(self, token: str, *, session_user: str, framed: bool, now: float) -> HandoverDecision:
        """The continue step for ``token`` (the module's table); ``session_user`` is who the host's
        session signs in now ("" for nobody). A SIGN_IN decision has used the token up."""
        grant = self._open(token, now)
        if session_user == grant.local_user_id:
            return HandoverDecision(HandoverStep.LAND, grant.local_user_id, grant.landing_url)
        if session_user:
            raise HandoverOtherUser(detail="the session's user is not the handover's")
        if framed:
            return HandoverDecision(HandoverStep.OPEN_NEW_WINDOW, grant.local_user_id, grant.landing_url)
        if not self.nonces.consume_nonce(NONCE_SCOPE, grant.nonce, grant.expires_at, now):
            raise HandoverUsed(detail="the handover token was redeemed before")
        return HandoverDecision(HandoverStep.SIGN_IN, grant.local_user_id, grant.landing_url)


__all__ = [
    "HANDOVER_LIFETIME",
    "NONCE_SCOPE",
    "TOKEN_PARAM",
    "HandoverDecision",
    "HandoverExpired",
    "HandoverInvalid",
    "HandoverOtherUser",
    "HandoverStep",
    "HandoverUsed",
    "SessionHandover",
]
