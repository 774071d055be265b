"""id_token validation for LTI 1.3 resource link launches: every check of the 1EdTech Security Framework.

Order matters. The registration (and so the key set) is found through the server-side ``state``,
never through claims read before the signature is checked. Nothing is written until every check
has passed; the last step consumes the nonce atomically, so a replay loses even a race.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from lti_core import roles as lis
from lti_core.deep_linking import check_deep_linking_request, parse_deep_linking_settings
from lti_core.errors import AuthenticationFailed, Forbidden, InvalidRequest, LtiError
from lti_core.i18n import N_
from lti_core.lti13 import claims as c
from lti_core.lti13 import jws
from lti_core.lti13.binding import Binding, BrowserEvidence, check_binding, origin_of
from lti_core.lti13.jwks import PlatformKeyCache
from lti_core.registration import unknown_deployment, validate_active
from lti_core.store import LaunchStore
from lti_core.types import AgsEndpoint, Launch, LaunchServices, NrpsEndpoint, OidcState, Registration, Role
from lti_core.urls import belongs_to_tool

MAX_TOKEN_LENGTH = jws.MAX_TOKEN_LENGTH
MAX_STATE_LENGTH = 128
#: The one signing algorithm LTI 1.3 allows (Security Framework 5.1.3): "none" and HS256 (key
#: confusion with the public key as an HMAC secret) never get here.
SIGNING_ALGORITHM = "RS256"
# RS256 (RFC 7518 §3.3) as joserfc verifies it, its padding and hash made once instead of per launch.
_PKCS1V15 = PKCS1v15()
_SHA256 = SHA256()


# I-JSON's (RFC 7493) largest exact number: beyond it exp + leeway loses precision or overflows.
_MAX_NUMERIC_DATE = 2**53

# Pure functions of values that repeat launch after launch (the tool's target URIs, the platform's
# login URL, a course's role lists), remembered so that a launch does not parse the same URL or
# normalise the same roles again. Only signed, validated claims reach them, and only short values
# are kept, so the caches stay small whatever a platform signs.
_CACHED_LENGTH = 2048
_CACHED_ROLES = 32
_cached_belongs_to_tool = lru_cache(maxsize=256)(belongs_to_tool)
_origin_of = lru_cache(maxsize=64)(origin_of)


def _target_belongs_to_tool(target: str, tool_base_urls: Sequence[str]) -> bool:
    if len(target) > _CACHED_LENGTH:
        return belongs_to_tool(target, tool_base_urls)
    return _cached_belongs_to_tool(target, tuple(tool_base_urls))


def _normalised_roles(claimed: tuple[str, ...]) -> tuple[tuple[str, ...], Role]:
    """The normalised roles and the local role they grant."""
    roles = lis.normalise_roles(claimed)
    return roles, lis.local_role(roles)


_cached_roles = lru_cache(maxsize=256)(_normalised_roles)


def _roles_of(claim: list[Any]) -> tuple[tuple[str, ...], Role]:
    claimed = tuple([r for r in claim if isinstance(r, str)])
    if len(claimed) > _CACHED_ROLES or sum(map(len, claimed)) > _CACHED_LENGTH:
        return _normalised_roles(claimed)
    return _cached_roles(claimed)


def split_token(id_token: str) -> tuple[dict[str, Any], str, str, bytes]:
    """(header, header segment, payload segment, signature) of a compact JWS, nothing trusted yet.

    Only the header's ``alg`` and ``kid`` are read before the signature is verified; the payload is
    decoded only afterwards. The strict parsing lives in ``lti_core.lti13.jws``.
    """
    parsed = jws.parse_compact(id_token)
    return parsed.header, parsed.header_segment, parsed.payload_segment, parsed.signature


def _parse_claims(payload: bytes) -> dict[str, Any]:
    """The verified payload, with exp and iat that are real numbers if present (validate_claims needs both)."""
    body = jws.parse_json_object(payload)
    for name in ("exp", "iat"):
        value = body.get(name)
        # True is an int in Python: "exp": true would read as 1970-01-01T00:00:01.
        if isinstance(value, bool) or (isinstance(value, int | float) and abs(value) > _MAX_NUMERIC_DATE):
            raise InvalidRequest("id_token_malformed", N_("The launch token is malformed."), detail=f"bad {name}")
    return body


def check_resource_link_request(body: Mapping[str, Any], tool_base_urls: Sequence[str]) -> None:
    """LtiResourceLinkRequest (LTI 1.3 Core 5.3): a resource link id, and a target inside the tool."""
    link = body.get(c.RESOURCE_LINK)
    if not isinstance(link, dict) or not isinstance(link.get("id"), str) or not link["id"]:
        raise InvalidRequest("resource_link_missing", N_("The launch does not say which link was followed."))
    target = body.get(c.TARGET_LINK_URI)
    if not isinstance(target, str) or not _target_belongs_to_tool(target, tool_base_urls):
        raise Forbidden("target_link_outside_tool", N_("The launch points to an address outside this tool."))


#: The checks of each message type this tool accepts, after the checks every message shares.
#: Submission review adds its row here.
MESSAGE_CHECKS: dict[str, Callable[[Mapping[str, Any], Sequence[str]], None]] = {
    c.RESOURCE_LINK_REQUEST: check_resource_link_request,
    c.DEEP_LINKING_REQUEST: check_deep_linking_request,
}


@dataclass(frozen=True)
class VerifiedLaunch:
    """A launch that passed every check and is not committed yet (its nonce is still unused)."""

    launch: Launch
    claims: dict[str, Any] = field(repr=False)
    state: str = field(repr=False)


class LaunchValidator:
    """Validates the id_token a platform posts to the tool's redirect URI."""

    def __init__(
        self,
        store: LaunchStore,
        keys: PlatformKeyCache,
        *,
        tool_base_urls: Sequence[str] | str,
        redirect_uri: str = "",
        leeway: float = 10.0,
        now: Callable[[], float] = time.time,
        message_types: Sequence[str] = (c.RESOURCE_LINK_REQUEST,),
    ) -> None:
        self._store = store
        # The message types this host handles (a row of MESSAGE_CHECKS each): a host that has no
        # content picker refuses deep-linking requests rather than treat them as resource links.
        self._message_types = frozenset(message_types)
        # Where the browser check page re-posts a launch (the tool's redirect URI).
        self._redirect_uri = redirect_uri
        #: How the last validated launch was bound to its browser.
        self.binding: Binding | None = None
        self._keys = keys
        self._tool_base_urls = (tool_base_urls,) if isinstance(tool_base_urls, str) else tuple(tool_base_urls)
        self._leeway = leeway
        self._now = now
        # What key_set_to_fetch read, so validate does not read it again (one validator per request).
        self._read_state: OidcState | None = None
        self._read_registration: Registration | None = None

    # -- the steps, in order ------------------------------------------------------------------

    def load_state(self, state: str, now: float) -> OidcState:
        """The server-side state of this launch's login. Whether this browser started that login is
        ``lti_core.lti13.binding``'s question, asked once the token has verified."""
        if not state:
            raise InvalidRequest("state_missing", N_("The launch is missing its state; please launch again."))
        if len(state) > MAX_STATE_LENGTH or not state.isascii():
            raise InvalidRequest("state_invalid", N_("The launch's state is malformed; please launch again."))
        found = self._read_state if self._read_state is not None and self._read_state.state == state else None
        if found is None or found.expires_at <= now:
            found = self._store.get_state(state, now)
        if found is None:
            raise AuthenticationFailed(
                "state_unknown", N_("The launch has expired or was not started here; please launch again.")
            )
        return found

    def registration(self, state: OidcState) -> Registration:
        registration = self._read_registration
        if registration is None or (registration.issuer, registration.client_id) != (state.issuer, state.client_id):
            registration = self._store.get_registration(state.issuer, state.client_id)
        if registration is None:
            raise AuthenticationFailed("unknown_platform", N_("This platform is not registered with the tool."))
        return validate_active(registration)

    def verify_signature(self, id_token: str, registration: Registration) -> dict[str, Any]:
        token = jws.parse_compact(id_token)
        header = token.header
        if header.get("alg") != SIGNING_ALGORITHM:
            # Refuses "none" and HS256 key confusion before any key is even looked at.
            raise AuthenticationFailed(
                "alg_not_allowed", N_("The launch token is signed with a method this tool does not accept.")
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationFailed("kid_missing", N_("The launch token does not name its signing key."))
        # The cached key's public key is loaded once (joserfc keeps it); get_op_key checks key_ops.
        public_key = self._keys.key_for(registration.key_set_url, kid).get_op_key("verify")
        try:
            public_key.verify(token.signature, token.signing_input, _PKCS1V15, _SHA256)
        except InvalidSignature:
            raise AuthenticationFailed("bad_signature", N_("The launch token's signature is not valid.")) from None
        return _parse_claims(token.payload)

    def validate_claims(
        self, body: Mapping[str, Any], state: OidcState, registration: Registration, now: float
    ) -> None:
        if body.get("iss") != registration.issuer:
            raise AuthenticationFailed("wrong_issuer", N_("The launch token was issued by another platform."))
        aud = body.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if registration.client_id not in audiences:
            raise AuthenticationFailed("wrong_audience", N_("The launch token was issued for another tool."))
        if (len(audiences) > 1 or "azp" in body) and body.get("azp") != registration.client_id:
            raise AuthenticationFailed("azp_mismatch", N_("The launch token was issued for another tool."))
        exp, iat = body.get("exp"), body.get("iat")
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise InvalidRequest("id_token_malformed", N_("The launch token is malformed."))
        if now >= exp + self._leeway:
            raise AuthenticationFailed("token_expired", N_("The launch has expired; please launch again."))
        if iat > now + self._leeway:
            raise AuthenticationFailed(
                "issued_in_future", N_("The launch token is dated in the future; check the platform's clock.")
            )
        if body.get("nonce") != state.nonce:
            raise AuthenticationFailed("nonce_mismatch", N_("The launch does not match the login that started it."))
        if body.get(c.VERSION) != c.LTI_VERSION:
            raise InvalidRequest("invalid_version", N_("The launch is not an LTI 1.3 launch."))
        message_type = body.get(c.MESSAGE_TYPE)
        message_checks = (
            MESSAGE_CHECKS.get(message_type)
            if isinstance(message_type, str) and message_type in self._message_types
            else None
        )
        if message_checks is None:
            raise InvalidRequest("unsupported_message_type", N_("This kind of LTI message is not supported here."))
        deployment_id = body.get(c.DEPLOYMENT_ID)
        if not isinstance(deployment_id, str) or not registration.has_deployment(deployment_id):
            raise unknown_deployment(deployment_id)
        if not isinstance(body.get("sub"), str) or not body["sub"]:
            raise InvalidRequest("sub_missing", N_("The launch does not identify the user."))
        if not isinstance(body.get(c.ROLES), list):
            raise InvalidRequest("roles_missing", N_("The launch does not say the user's role."))
        message_checks(body, self._tool_base_urls)

    def consume_nonce(self, body: Mapping[str, Any], now: float) -> None:
        expires_at = float(body["exp"]) + self._leeway
        if not self._store.consume_nonce("lti13:" + str(body["iss"]), str(body["nonce"]), expires_at, now):
            raise AuthenticationFailed("nonce_reused", N_("This launch was already used; please launch again."))

    # -- for asynchronous hosts ----------------------------------------------------------------

    def key_set_to_fetch(self, id_token: str, state: str) -> tuple[str, str] | None:
        """``(key set URL, kid)`` when the platform key for this launch is not cached, else None.

        An async host awaits that fetch, hands it to ``PlatformKeyCache.accept``, then calls
        ``validate``, which finds the key cached and does no I/O. Nothing here is trusted or
        written: any problem is left for ``validate`` to report with its proper reason.
        """
        try:
            header = split_token(id_token)[0]
            kid = header.get("kid")
            oidc_state = self._store.get_state(state, self._now()) if state else None
            if not isinstance(kid, str) or not kid or oidc_state is None or header.get("alg") != SIGNING_ALGORITHM:
                return None
            registration = self._store.get_registration(oidc_state.issuer, oidc_state.client_id)
            self._read_state, self._read_registration = oidc_state, registration
            if registration is None or self._keys.plan(registration.key_set_url, kid) is not None:
                return None
        except LtiError:
            return None
        return registration.key_set_url, kid

    # -- the whole validation -----------------------------------------------------------------

    def validate(
        self,
        id_token: str,
        state: str,
        browser: BrowserEvidence,
        *,
        before_commit: Callable[[Launch], None] | None = None,
    ) -> Launch:
        """The verified launch, bound to ``browser``, committed: ``check`` then ``commit``.

        ``before_commit`` lets the host refuse the launch (unknown content, say) before the nonce is
        consumed, so a refused launch writes nothing. A host whose own checks are asynchronous (the
        hub's allow and block lists) calls ``check`` and ``commit`` itself.
        """
        verified = self.check(id_token, state, browser)
        if before_commit is not None:
            before_commit(verified.launch)
        self.commit(verified)
        return verified.launch

    def check(self, id_token: str, state: str, browser: BrowserEvidence) -> VerifiedLaunch:
        """Every check, and nothing written. Raises ``BrowserCheckRequired`` when the host must first
        answer with the browser check page (see ``lti_core.lti13.binding``)."""
        if not id_token:
            raise InvalidRequest("id_token_missing", N_("The launch is missing its token."))
        now = self._now()
        oidc_state = self.load_state(state, now)
        registration = self.registration(oidc_state)
        body = self.verify_signature(id_token, registration)
        self.validate_claims(body, oidc_state, registration, now)
        self.binding = check_binding(
            oidc_state,
            browser,
            id_token=id_token,
            launch_url=self._redirect_uri,
            platform_origin=_origin_of(registration.auth_login_url),
        )
        return VerifiedLaunch(build_launch(body, registration), body, oidc_state.state)

    def commit(self, verified: VerifiedLaunch) -> None:
        """Make the verified launch single-use: consume its nonce (atomically: a racing replay loses),
        then drop its state, so a replay from any browser finds it gone."""
        self.consume_nonce(verified.claims, self._now())
        self._store.delete_state(verified.state)


def _str(mapping: Any, key: str) -> str:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, str) else ""


def build_launch(body: Mapping[str, Any], registration: Registration) -> Launch:
    """The version-neutral Launch from validated claims."""
    roles, role = _roles_of(body[c.ROLES])
    context = body.get(c.CONTEXT)
    link = body.get(c.RESOURCE_LINK) or {}  # a deep-linking request names no link
    custom = body.get(c.CUSTOM)
    deep_linking = body.get(c.DEEP_LINKING_SETTINGS) if body[c.MESSAGE_TYPE] == c.DEEP_LINKING_REQUEST else None
    return Launch(
        lti_version=c.LTI_VERSION,
        platform=registration.issuer,
        platform_user_id=body["sub"],
        roles=roles,
        role=role,
        resource_link_id=_str(link, "id"),
        resource_link_title=_str(link, "title"),
        target_link_uri=body[c.TARGET_LINK_URI],
        deployment_id=body[c.DEPLOYMENT_ID],
        client_id=registration.client_id,
        context_id=_str(context, "id"),
        context_title=_str(context, "title"),
        given_name=_str(body, "given_name"),
        family_name=_str(body, "family_name"),
        name=_str(body, "name"),
        email=_str(body, "email"),
        locale=_str(body.get(c.LAUNCH_PRESENTATION), "locale") or _str(body, "locale"),
        custom={str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {},
        message_type=body[c.MESSAGE_TYPE],
        services=LaunchServices(ags=parse_ags_claim(body.get(c.AGS_ENDPOINT)), nrps=parse_nrps_claim(body.get(c.NRPS))),
        deep_linking=None if deep_linking is None else parse_deep_linking_settings(deep_linking),
        # A copy: the host may change its Launch, but never the claims the commit reads (iss, nonce, exp).
        raw=dict(body),
    )


def _strings(value: Any) -> tuple[str, ...]:
    return tuple([v for v in value if isinstance(v, str)]) if isinstance(value, list) else ()


def parse_ags_claim(claim: Any) -> AgsEndpoint | None:
    """The AGS endpoint claim (LTI AGS 2.0 3.1), or None when it is missing or names no URL."""
    if not isinstance(claim, dict):
        return None
    lineitems_url, lineitem_url = _str(claim, "lineitems"), _str(claim, "lineitem")
    if not lineitems_url and not lineitem_url:
        return None
    return AgsEndpoint(lineitems_url=lineitems_url, lineitem_url=lineitem_url, scopes=_strings(claim.get("scope")))


def parse_nrps_claim(claim: Any) -> NrpsEndpoint | None:
    """The NRPS claim (LTI NRPS 2.0 3.6.1), or None when it is missing or names no URL."""
    url = _str(claim, "context_memberships_url")
    return NrpsEndpoint(url, _strings(claim.get("service_versions"))) if url else None
