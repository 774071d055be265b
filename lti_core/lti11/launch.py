"""LTI 1.1 basic-lti-launch-request verification (OAuth 1.0a HMAC-SHA1 over the form body).

oauthlib builds the signature base string and the HMAC; the order of checks is ours. oauthlib's
own endpoint records the nonce *before* it checks the signature, so a forged request would burn a
nonce (and fill the table); here the nonce is consumed only after the signature has verified.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from oauthlib.oauth1.rfc5849 import signature, utils

from lti_core import roles as lis
from lti_core.errors import (
    AuthenticationFailed,
    Forbidden,
    InvalidRequest,
    method_not_allowed,
    request_malformed,
    request_too_large,
)
from lti_core.i18n import N_
from lti_core.store import Lti11Store
from lti_core.types import AgsEndpoint, BasicOutcome, DeepLinkingSettings, Launch, LaunchServices, NrpsEndpoint

LTI_VERSIONS = frozenset({"LTI-1p0", "LTI-1p2"})
BASIC_LAUNCH = "basic-lti-launch-request"
#: LTI 1.1's deep linking (Content-Item Message 1.0): the launch is a ``LtiDeepLinkingRequest``.
CONTENT_ITEM_REQUEST = "ContentItemSelectionRequest"
#: The media type of an LTI link (what the tool sends back).
LTI_LINK_MEDIA_TYPE = "application/vnd.ims.lti.v1.ltilink"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"


def _accepts_lti_links(media_types: str) -> bool:
    accepted = {part.strip().split(";")[0] for part in media_types.split(",")}
    return bool(accepted & {LTI_LINK_MEDIA_TYPE, "application/*", "*/*"})


def parse_content_item_settings(single: Mapping[str, str]) -> DeepLinkingSettings:
    """The settings of a ContentItemSelectionRequest, as LTI 1.3's (``InvalidRequest`` if unusable)."""
    return_url = single.get("content_item_return_url", "")
    if not return_url.lower().startswith(("https://", "http://")):
        raise InvalidRequest(
            "deep_linking_return_url_invalid", N_("The request to pick content does not say where to send it.")
        )
    if not _accepts_lti_links(single.get("accept_media_types", "")):
        raise InvalidRequest(
            "deep_linking_type_unsupported", N_("The platform does not accept links to this tool's content.")
        )
    targets = tuple(t.strip() for t in single.get("accept_presentation_document_targets", "").split(",") if t.strip())
    return DeepLinkingSettings(
        return_url=return_url,
        accept_types=("ltiResourceLink",),
        accept_presentation_document_targets=targets,
        accept_multiple=single.get("accept_multiple", "true").lower() != "false",
        accept_lineitem=True,  # Content-Item 1.0 items may carry a lineItem; Moodle makes a grade item of it
        auto_create=single.get("auto_create", "false").lower() == "true",
        title=single.get("title", ""),
        text=single.get("text", ""),
        data=single.get("data", ""),
    )


Params = Mapping[str, str] | Sequence[tuple[str, str]]

# Bounds far above what platforms send (a Moodle launch has about 40 parameters, Canvas about 80, and
# an activity description can run to a few KiB), low enough that the signature base string of a
# refused request stays small. Django's own default is 1000 form fields.
MAX_PARAMETERS = 1000
MAX_NAME_LENGTH = 1024
MAX_VALUE_LENGTH = 64 * 1024
MAX_TOTAL_LENGTH = 1024 * 1024  # the URL, every name and every value together
# Seconds since 1970 need 10 digits until the year 2286; int() would also take "1_7", " 17" and "١٧".
_MAX_TIMESTAMP_DIGITS = 12


def _pairs(params: Params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


@dataclass(frozen=True)
class VerifiedLti11Launch:
    """A launch whose signature holds, not committed yet (its nonce is still unused)."""

    launch: Launch
    nonce_scope: str
    nonce: str = field(repr=False)
    held_until: float = 0.0


class Lti11LaunchVerifier:
    """Verifies LTI 1.1 launches against the consumers in the store."""

    def __init__(
        self,
        store: Lti11Store,
        *,
        timestamp_window: float = 300.0,
        now: Callable[[], float] = time.time,
        message_types: Sequence[str] = (BASIC_LAUNCH,),
    ) -> None:
        self._store = store
        self._window = timestamp_window
        self._now = now
        # As LTI 1.3's validator: a host without a content picker refuses ContentItemSelectionRequest.
        self._message_types = frozenset(message_types)

    def verify(
        self,
        *,
        method: str,
        url: str,
        params: Params,
        before_commit: Callable[[Launch], None] | None = None,
    ) -> Launch:
        """``url`` is the URL the consumer signed: the public one, as the browser saw it (mind proxies).
        ``before_commit`` lets the host refuse the launch before the nonce is consumed."""
        verified = self.check(method=method, url=url, params=params)
        if before_commit is not None:
            before_commit(verified.launch)
        self.commit(verified)
        return verified.launch

    def check(self, *, method: str, url: str, params: Params) -> VerifiedLti11Launch:
        """Every check, and nothing written (``commit`` consumes the nonce)."""
        pairs = _pairs(params)
        check_size(url, pairs)
        single = self._single_values(pairs)
        self.validate_message(single, self._message_types)
        consumer_key = single.get("oauth_consumer_key", "")
        consumer = self._store.get_consumer(consumer_key) if consumer_key else None
        if consumer is None:
            raise AuthenticationFailed("unknown_consumer", N_("This consumer key is not known to the tool."))
        timestamp = self.validate_timestamp(single.get("oauth_timestamp", ""))
        self.validate_signature(method, url, pairs, single, consumer.secret)
        # After the signature: only the consumer itself learns that it is turned off.
        if not consumer.enabled:
            raise Forbidden(
                "consumer_disabled", N_("The tool's administrator has turned off launches from this platform.")
            )
        # Held one second past the last instant the timestamp is accepted (the window is inclusive and
        # a store treats expires_at <= now as expired), so no replay ever finds it gone.
        held_until = timestamp + self._window + 1
        return VerifiedLti11Launch(build_launch(single), "lti11:" + consumer_key, single["oauth_nonce"], held_until)

    def commit(self, verified: VerifiedLti11Launch) -> None:
        """Make the launch single-use: its nonce, consumed atomically (a racing replay loses)."""
        if not self._store.consume_nonce(verified.nonce_scope, verified.nonce, verified.held_until, self._now()):
            raise AuthenticationFailed("nonce_reused", N_("This launch was already used; please launch again."))

    @staticmethod
    def _single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
        # A repeated name is signed with all its values, but only one of them can be read: refused, so
        # that "roles=Learner&roles=Instructor" cannot mean one thing to the signature and another here.
        single: dict[str, str] = {}
        for name, value in pairs:
            if name in single:
                reason = "duplicate_oauth_parameter" if name.startswith("oauth_") else "duplicate_parameter"
                raise InvalidRequest(reason, N_("The launch request is malformed."), detail=name[:64])
            if name.startswith("oauth_") and name != "oauth_callback" and not _one_spelling(value):
                raise InvalidRequest(
                    "oauth_parameter_malformed", N_("The launch request is malformed."), detail=name[:64]
                )
            single[name] = value
        return single

    @staticmethod
    def validate_message(single: Mapping[str, str], message_types: frozenset[str] = frozenset({BASIC_LAUNCH})) -> None:
        message_type = single.get("lti_message_type", "")
        if message_type not in message_types:
            raise InvalidRequest("unsupported_message_type", N_("This kind of LTI message is not supported here."))
        if single.get("lti_version") not in LTI_VERSIONS:
            raise InvalidRequest("invalid_version", N_("The launch is not an LTI 1.1 launch."))
        if message_type == BASIC_LAUNCH and not single.get("resource_link_id"):
            raise InvalidRequest("resource_link_missing", N_("The launch does not say which link was followed."))
        if message_type == CONTENT_ITEM_REQUEST:
            parse_content_item_settings(single)
        if not single.get("user_id"):
            # Anonymous launches are not supported: the tool signs the user in.
            raise InvalidRequest("user_id_missing", N_("The launch does not identify the user."))
        if single.get("oauth_signature_method") != "HMAC-SHA1":
            raise AuthenticationFailed(
                "unsupported_signature_method", N_("The launch is signed with a method this tool does not accept.")
            )
        for name in ("oauth_signature", "oauth_nonce", "oauth_timestamp", "oauth_consumer_key"):
            if not single.get(name):
                raise AuthenticationFailed(f"{name}_missing", N_("The launch is not signed."))
        if single.get("oauth_version", "1.0") != "1.0":
            raise AuthenticationFailed(
                "invalid_oauth_version", N_("The launch is signed with a method this tool does not accept.")
            )

    def validate_timestamp(self, value: str) -> int:
        if not (value.isascii() and value.isdigit() and len(value) <= _MAX_TIMESTAMP_DIGITS):
            raise AuthenticationFailed("timestamp_invalid", N_("The launch's time stamp is not valid."))
        timestamp = int(value)
        if abs(self._now() - timestamp) > self._window:
            raise AuthenticationFailed(
                "timestamp_out_of_window",
                N_("The launch is too old or dated in the future; check the platform's clock."),
            )
        return timestamp

    @staticmethod
    def validate_signature(
        method: str, url: str, pairs: list[tuple[str, str]], single: Mapping[str, str], secret: str
    ) -> None:
        if method.upper() != "POST":
            raise method_not_allowed()
        # Compared as bytes: compare_digest refuses str with non-ASCII characters (TypeError).
        given = single["oauth_signature"].encode("utf-8", "surrogatepass")
        # The host's own spelling first: a URL that cannot be signed is refused as malformed there.
        if hmac.compare_digest(_expected_signature(url, pairs, secret).encode("ascii"), given):
            return
        for spelling in other_spellings(url):
            if hmac.compare_digest(_expected_signature(spelling, pairs, secret).encode("ascii"), given):
                return
        raise AuthenticationFailed("bad_signature", N_("The launch's signature is not valid."))


def other_spellings(url: str) -> list[str]:
    """Other spellings of ``url`` (as the host rebuilt it) that a consumer may have signed.

    A host rebuilds the URL from the decoded path, with what RFC 3986 allows in a path segment left
    as is (``:``, ``@``, ``+`` of an Open edX usage id); an admin may have pasted the same URL with
    them percent-encoded, and the platform signs it as pasted. Both name the same resource, so a
    signature of either is the consumer's; nothing else is tried.
    """
    parts = urlsplit(url)
    encoded = quote(unquote(parts.path), safe="/")
    return [urlunsplit(parts._replace(path=encoded))] if encoded != parts.path else []


def _one_spelling(value: str) -> bool:
    """oauthlib percent-decodes oauth_* values once more before signing them, so "nonce%2D1" is signed
    as "nonce-1": a replay could re-spell the nonce and pass as new. Only values that decoding leaves
    unchanged are taken, so what is signed is what is read. (oauth_callback is exempt: it is never
    read, and a callback URL may carry escapes.)"""
    if "%" not in value:
        return True
    try:
        return bool(utils.unescape(value) == value)
    except ValueError:
        return False


def check_size(url: str, pairs: list[tuple[str, str]]) -> None:
    """Refuse requests too large to be a launch before any work is done on them, and NUL characters."""
    too_large = request_too_large()
    if len(pairs) > MAX_PARAMETERS:
        raise too_large
    total = len(url)
    for name, value in pairs:
        if len(name) > MAX_NAME_LENGTH or len(value) > MAX_VALUE_LENGTH:
            raise too_large
        total += len(name) + len(value)
        # No form sends NUL; databases refuse it (PostgreSQL) or cut the text at it.
        if "\x00" in name or "\x00" in value:
            raise request_malformed()
    if total > MAX_TOTAL_LENGTH:
        raise too_large


def _expected_signature(url: str, pairs: list[tuple[str, str]], secret: str) -> str:
    """The HMAC-SHA1 signature of the request, as oauthlib computes it (the public URL, as signed)."""
    try:
        query = urlsplit(url).query
        collected = signature.collect_parameters(uri_query=query, body=pairs, exclude_oauth_signature=True)
        # The stubs type normalize_parameters as taking a dict; it takes the (name, value) pairs that
        # collect_parameters returns, and pairs are what OAuth needs (names may repeat).
        normalized = signature.normalize_parameters(collected)  # type: ignore[arg-type]
        base = signature.signature_base_string("POST", signature.base_string_uri(url), normalized)
        return str(signature.sign_hmac_sha1_with_client(base, _ConsumerSecret(secret)))
    except ValueError as exc:
        # A URL that is not absolute or not form-encoded, a bad port, a lone surrogate in a value
        # (UnicodeEncodeError is a ValueError): nothing a consumer could have signed.
        # The detail names the error only: oauthlib's messages quote the request.
        detail = type(exc).__name__
        raise request_malformed(detail) from exc


@dataclass(frozen=True)
class _ConsumerSecret:
    """What oauthlib's HMAC signer reads from a client: LTI launches have no resource-owner token."""

    client_secret: str
    resource_owner_secret: str = ""


def build_launch(single: Mapping[str, str]) -> Launch:
    deep_linking = single.get("lti_message_type") == CONTENT_ITEM_REQUEST
    roles = lis.parse_lti11_roles(single.get("roles", ""))
    custom = {k[len("custom_") :]: v for k, v in single.items() if k.startswith("custom_")}
    return Launch(
        lti_version="1.1",
        platform=single["oauth_consumer_key"],
        platform_user_id=single["user_id"],
        roles=roles,
        role=lis.local_role(roles),
        resource_link_id=single.get("resource_link_id", ""),
        resource_link_title=single.get("resource_link_title", ""),
        context_id=single.get("context_id", ""),
        context_title=single.get("context_title", ""),
        given_name=single.get("lis_person_name_given", ""),
        family_name=single.get("lis_person_name_family", ""),
        name=single.get("lis_person_name_full", ""),
        email=single.get("lis_person_contact_email_primary", ""),
        locale=single.get("launch_presentation_locale", ""),
        custom=custom,
        services=lti11_services(single),
        message_type=RESOURCE_LINK_REQUEST if not deep_linking else DEEP_LINKING_REQUEST,
        deep_linking=parse_content_item_settings(single) if deep_linking else None,
        raw={k: v for k, v in single.items() if k != "oauth_signature"},
    )


def lti11_services(single: Mapping[str, str]) -> LaunchServices:
    """Basic Outcomes (``lis_outcome_service_url`` + ``lis_result_sourcedid``), and the Advantage
    service URLs Moodle adds for LTI 1.1 tools as custom parameters (its "LTI Advantage services for
    1.1 tools": ``custom_lineitems_url``, ``custom_lineitem_url``, ``custom_context_memberships_url``)."""
    outcome_url, sourcedid = single.get("lis_outcome_service_url", ""), single.get("lis_result_sourcedid", "")
    lineitems, lineitem = single.get("custom_lineitems_url", ""), single.get("custom_lineitem_url", "")
    memberships = single.get("custom_context_memberships_url", "") or single.get(
        "custom_context_memberships_v2_url", ""
    )
    return LaunchServices(
        ags=AgsEndpoint(lineitems_url=lineitems, lineitem_url=lineitem) if lineitems or lineitem else None,
        nrps=NrpsEndpoint(memberships) if memberships else None,
        basic_outcome=BasicOutcome(outcome_url, sourcedid) if outcome_url and sourcedid else None,
    )
