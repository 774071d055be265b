"""Grade delivery: scores into the durable outbox, and the workers that send them to the platform.

A host records a learner's score with ``score_entry_for`` (which service, which target) and the
store's ``enqueue_score``; a worker (``GradeWorker`` for Django, Celery and the CLI; ``AsyncGradeWorker``
for the hub) then claims due entries, sends each and records the platform's answer:

* AGS (LTI 1.3): the entry's target is the line item URL and the registration's client_id
  (``outbox.ags_target``). The registration comes from the store by (issuer, client_id); the access
  token from a ``TokenCache``, or the registration's token endpoint with a client assertion signed by
  the tool's ``ToolKeySet`` (one request per registration at a time: the others wait for it). A 401
  invalidates the token and the score is sent once more with a new one.
* LTI 1.1 Basic Outcomes: the target is the outcome service URL and the sourcedid; the consumer's
  secret comes from the store.

The score sent carries the time it was given (``OutboxEntry.score_timestamp``), so a platform that
keeps the latest score by timestamp (AGS) ignores an older delivery that lands late. LTI 1.1
replaceResult carries no timestamp, so the outbox never lets two sends of one LTI 1.1 key overlap
(``ServiceKind.ordered``: a newer score waits while an older send may still land).

The delivery of one entry is written once, as a generator that yields what it needs (an
``HttpRequest`` to send, or a ``TokenWanted``) and is sent back the answer: the synchronous and the
asynchronous worker only drive it. No I/O here but through the HTTP port (``Transport``,
``AsyncTransport``) and the store.

Every service URL is checked by ``validate_service_url`` before a token or a signed body goes to it,
and redirects are never followed for service calls (see ``_exchange``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import threading
import time
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol, TypedDict, TypeVar, Unpack
from urllib.parse import urlsplit

from lti_core import ags
from lti_core.errors import LtiError
from lti_core.http import (
    DEFAULT_TIMEOUT,
    AsyncDriver,
    AsyncTransport,
    HttpRequest,
    HttpResponse,
    SyncDriver,
    Transport,
    TransportError,
    check_url,
)
from lti_core.i18n import N_
from lti_core.lti11.outcomes import OutcomeError, ScoreOutOfRange, build_replace_result, parse_outcome_response
from lti_core.lti13.token import (
    AccessToken,
    SigningKeys,
    TokenRefused,
    build_client_assertion,
    build_token_request,
    parse_token_response,
)
from lti_core.outbox import (
    LineItemWanted,
    OutboxEntry,
    OutboxKey,
    Rng,
    Score,
    ServiceKind,
    ags_target,
    excerpt,
    lti11_target,
    split_ags_target,
    split_lti11_target,
)
from lti_core.store import ConsumerStore, OutboxStore, RegistrationStore
from lti_core.types import BasicOutcome, LaunchContext, Registration, RegistrationStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The scopes a grade worker asks for: posting scores only.
SCORE_SCOPES: tuple[str, ...] = (ags.SCOPE_SCORE,)
#: Seconds an entry stays claimed: longer than a delivery can take (a token request and two score
#: posts, each at most ``DEFAULT_TIMEOUT``), so a live worker never loses its claim to another.
DEFAULT_LEASE = 60.0


class GradeServiceUnavailable(LtiError):
    """The platform offered no grade service for this link (no AGS line item, no LTI 1.1 outcome)."""

    status = 409
    reason = "grade_service_unavailable"
    message = N_("The platform did not ask for grades from this activity.")


class ServiceUrlRefused(LtiError):
    """A service URL the tool will not send a token or a signed body to (``validate_service_url``)."""

    status = 400
    reason = "service_url_refused"
    message = N_("The platform's service address is not allowed.")


# -- what to enqueue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreEntry:
    """What ``OutboxStore.enqueue_score`` is given for one score."""

    key: OutboxKey
    kind: ServiceKind
    score: Score
    score_timestamp: float


def _is_lti11(context: LaunchContext) -> bool:
    return context.lti_version.startswith("1.") and not context.lti_version.startswith("1.3")


class ScoreInvalid(ScoreOutOfRange):
    """A score a host was given that no platform would take (400): nothing is enqueued."""

    message = N_("A score must be a number from 0 to its maximum, and the maximum a number above 0.")


def check_score(score_given: float, score_maximum: float) -> tuple[float, float]:
    """``(given, maximum)`` as floats, if they make a score: finite, the maximum above 0, the score
    from 0 to it; ``ScoreInvalid`` otherwise. Hosts check what they are given before anything else."""
    given, maximum = ags._number(score_given), ags._number(score_maximum)  # noqa: SLF001 - the AGS number rule
    if maximum is None or maximum <= 0:
        raise ScoreInvalid(detail=f"score_maximum must be a finite number above 0: {score_maximum!r}")
    if given is None or not 0 <= given <= maximum:
        raise ScoreInvalid(detail=f"score_given must be a finite number from 0 to score_maximum: {score_given!r}")
    return given, maximum


def score_entry_for(
    context: LaunchContext, score_given: float, score_maximum: float, final: bool, now: float
) -> ScoreEntry:
    """Where the score of ``context``'s user for its resource link goes, given at ``now``.

    AGS when the launch (LTI 1.3) offered a line item for the link (with the score scope, when it
    listed scopes); else LTI 1.1 Basic Outcomes when it gave an outcome service URL and sourcedid
    (the score normalised to [0, 1]: ``score_given / score_maximum``); else ``GradeServiceUnavailable``.
    A score below 0 or above its maximum is ``ScoreInvalid``.
    """
    given, maximum = check_score(score_given, score_maximum)
    activity, grading = ("Completed", "FullyGraded") if final else ("InProgress", "Pending")
    offered = context.services.ags
    if (
        not _is_lti11(context)
        and offered is not None
        and offered.lineitem_url
        and context.client_id
        and (not offered.scopes or ags.SCOPE_SCORE in offered.scopes)
    ):
        key = OutboxKey(context.platform, context.platform_user_id, ags_target(offered.lineitem_url, context.client_id))
        return ScoreEntry(key, ServiceKind.AGS, Score(given, maximum, activity, grading), now)
    if (
        not _is_lti11(context)
        and offered is not None
        and offered.lineitems_url
        and context.client_id
        and {ags.SCOPE_SCORE, ags.SCOPE_LINEITEM} <= set(offered.scopes)
        and context.resource_link_id
        and "\n" not in context.resource_link_id + context.content_id
    ):
        # No line item for the link, but the right to manage the container's: the tool finds the
        # link's own line item there, or makes it (Canvas and Moodle do, for a link without a grade).
        label = " ".join((context.resource_link_title or context.resource_link_id).split())
        wanted = LineItemWanted(
            offered.lineitems_url, context.client_id, context.resource_link_id, context.content_id, label
        )
        key = OutboxKey(context.platform, context.platform_user_id, wanted.target)
        return ScoreEntry(key, ServiceKind.AGS_LINEITEMS, Score(given, maximum, activity, grading), now)
    outcome = context.services.basic_outcome
    if outcome is not None and outcome.service_url and outcome.sourcedid:
        key = OutboxKey(
            context.platform, context.platform_user_id, lti11_target(outcome.service_url, outcome.sourcedid)
        )
        return ScoreEntry(key, ServiceKind.LTI11_OUTCOME, Score(given / maximum, 1.0, activity, grading), now)
    raise GradeServiceUnavailable(
        detail=f"no grade service for link {context.resource_link_id[:80]!r} of {context.platform[:80]!r}"
    )


def enqueue_grade(
    store: OutboxStore, context: LaunchContext, score_given: float, score_maximum: float, final: bool, now: float
) -> OutboxEntry:
    """``score_entry_for``, enqueued: the outbox row as it now stands."""
    entry = score_entry_for(context, score_given, score_maximum, final, now)
    return store.enqueue_score(entry.key, entry.kind, entry.score, entry.score_timestamp, now)


# -- the outbound URL guard ------------------------------------------------------------------------


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def platform_hosts(registration: Registration) -> frozenset[str]:
    """The hosts a registration names: its issuer's, login, token and key set URLs'."""
    urls = (registration.issuer, registration.auth_login_url, registration.auth_token_url, registration.key_set_url)
    return _hosts_of(urls)


@lru_cache(maxsize=256)  # the same few registrations, at every score sent
def _hosts_of(urls: tuple[str, ...]) -> frozenset[str]:
    return frozenset(host for host in map(_host, urls) if host)


def _private_ip(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: resolving it is the driver's business (no I/O here)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return bool(
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def validate_service_url(
    url: str, registration_or_platform_origins: Registration | Iterable[str], allow_private: bool
) -> str:
    """``url``, if the tool may send a platform's token or signed body to it; ``ServiceUrlRefused`` if not.

    * https only (http too with ``allow_private``: a test or demo platform on loopback);
    * its host equal to, or a subdomain of, one of the platform's hosts: a ``Registration``'s
      (``platform_hosts``), or the given origins or hosts (``https://moodle.example`` or ``moodle.example``);
    * no literal private, loopback, link-local, multicast or reserved IP address unless
      ``allow_private``. Names resolving to such addresses are the driver's to refuse (it resolves them).

    Ports are not compared: a platform may serve its services on another port than its issuer's.
    """
    if isinstance(registration_or_platform_origins, Registration):
        allowed = platform_hosts(registration_or_platform_origins)
    else:
        allowed = frozenset(
            (_host(origin) if "://" in origin else origin.lower().rstrip("."))
            for origin in registration_or_platform_origins
        )
    if not isinstance(url, str):
        raise ServiceUrlRefused(detail=f"not an http(s) URL: {str(url)[:80]}")
    _check_service_url(url, allowed, allow_private)
    return url


@lru_cache(maxsize=4096)  # a pure check of the same line item URLs score after score (a refusal is not kept)
def _check_service_url(url: str, allowed: frozenset[str], allow_private: bool) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here, not later in a driver
    except ValueError:
        raise ServiceUrlRefused(detail=f"not a URL: {url[:80]}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise ServiceUrlRefused(detail=f"not an http(s) URL: {str(url)[:80]}")
    if scheme == "http" and not allow_private:
        raise ServiceUrlRefused("service_url_not_https", detail=f"not https: {url[:80]}")
    if parts.username is not None or parts.password is not None:
        raise ServiceUrlRefused(detail=f"credentials in the URL: {parts.hostname or ''}")
    host = _host(url)
    if not host:
        raise ServiceUrlRefused(detail=f"no host: {url[:80]}")
    if _private_ip(host) and not allow_private:
        raise ServiceUrlRefused("service_url_private_address", detail=f"a private address: {host[:80]}")
    if not any(host == ok or host.endswith("." + ok) for ok in allowed if ok):
        raise ServiceUrlRefused("service_url_other_host", detail=f"{host[:80]} is not the platform's")


# -- the delivery of one entry, sans-IO ------------------------------------------------------------


@dataclass(frozen=True)
class TokenWanted:
    """What the delivery asks its driver for: a token for ``registration`` with ``scopes`` (not
    ``stale``, which the platform refused)."""

    registration: Registration
    stale: AccessToken | None = None
    scopes: tuple[str, ...] = (ags.SCOPE_SCORE,)


@dataclass(frozen=True)
class Outcome:
    """How one delivery ended: ``delivered``; else ``retryable`` or not, with the platform's answer."""

    delivered: bool
    retryable: bool = False
    status: int = 0
    reason: str = ""
    error: str = ""


class GradeStore(RegistrationStore, ConsumerStore, OutboxStore, Protocol):
    """What a grade worker reads and writes."""


Need = HttpRequest | TokenWanted
Answer = HttpResponse | AccessToken
Plan = Generator[Need, Answer, Outcome]


def _permanent(reason: str, error: str, status: int = 0) -> Outcome:
    return Outcome(False, False, status, reason, excerpt(f"{reason}: {error}"))


def _retry(reason: str, error: str, status: int = 0) -> Outcome:
    return Outcome(False, True, status, reason, excerpt(f"{reason}: {error}"))


def _expect(kind: type[T], answer: object) -> T:
    """The driver's answer, if it is of the kind asked for (a driver bug otherwise)."""
    if not isinstance(answer, kind):
        raise TypeError(f"the driver answered {type(answer).__name__}, not {kind.__name__}")
    return answer


def _registration_of(store: RegistrationStore, issuer: str, client_id: str) -> Registration | None:
    if client_id:
        return store.get_registration(issuer, client_id)
    found = store.find_registrations(issuer)
    return found[0] if len(found) == 1 else None  # an older entry without client_id: only if unambiguous


def deliver_plan(
    entry: OutboxEntry,
    store: GradeStore,
    *,
    allow_private: bool,
    timeout: float = DEFAULT_TIMEOUT,
    now: float,
    lineitems: LineItemCache | None = None,
) -> Plan:
    """The delivery of ``entry``: yields what it needs, returns its ``Outcome`` (never raises
    ``LtiError``: a refusal is a permanent failure; ``TransportError`` thrown in is a retryable one)."""
    try:
        if entry.kind in (ServiceKind.AGS, ServiceKind.AGS_LINEITEMS):
            return (yield from _ags_plan(entry, store, allow_private, timeout, lineitems))
        return (yield from _lti11_plan(entry, store, allow_private, timeout, now))
    except (TransportError, _TokenEndpointBusy) as error:
        return _retry(error.reason, error.detail)
    except LtiError as error:
        return _permanent(error.reason, error.detail or error.reason, getattr(error, "platform_status", 0))


#: Line items found or made for ``AGS_LINEITEMS`` targets: target -> (line item URL, its maximum).
LineItemCache = dict[str, tuple[str, float]]
LINEITEM_SCOPES: tuple[str, ...] = (ags.SCOPE_SCORE, ags.SCOPE_LINEITEM)
#: Container pages read looking for a link's line item before making one.
MAX_LINEITEM_PAGES = 20


def _ags_plan(
    entry: OutboxEntry, store: GradeStore, allow_private: bool, timeout: float, lineitems: LineItemCache | None
) -> Plan:
    wanted = LineItemWanted.from_target(entry.key.target) if entry.kind is ServiceKind.AGS_LINEITEMS else None
    if wanted is not None:
        lineitem_url, client_id, scopes = wanted.lineitems_url, wanted.client_id, LINEITEM_SCOPES
    else:
        (lineitem_url, client_id), scopes = split_ags_target(entry.key.target), SCORE_SCOPES
    registration = _registration_of(store, entry.key.platform, client_id)
    if registration is None:
        return _permanent("registration_unknown", f"no registration of {entry.key.platform[:80]} {client_id[:40]}")
    if registration.status is not RegistrationStatus.ACTIVE:
        return _permanent("registration_inactive", f"the registration is {registration.status.value}")
    validate_service_url(lineitem_url, registration, allow_private)
    score = ags.Score(
        user_id=entry.key.platform_user_id,
        score_given=entry.score.given,
        score_maximum=entry.score.maximum,
        activity_progress=entry.score.activity_progress,
        grading_progress=entry.score.grading_progress,
        timestamp=ags.format_timestamp(entry.score_timestamp),
        comment=entry.score.comment,
    )
    stale: AccessToken | None = None
    for attempt in (1, 2):
        token = _expect(AccessToken, (yield TokenWanted(registration, stale, scopes)))
        try:
            target_url = lineitem_url
            if wanted is not None:
                maximum = entry.score.maximum or 0.0
                target_url = yield from _lineitem_of(
                    wanted, maximum, token, registration, allow_private, timeout, lineitems
                )
            request = replace(ags.build_score_request(target_url, score, token), timeout=timeout)
            response = _expect(HttpResponse, (yield request))
            ags.parse_score_response(response)
        except ags.AgsTokenExpired as expired:
            if attempt == 2:
                return _retry(expired.reason, expired.detail, 401)
            stale = token
            continue
        except ags.AgsRetryable as busy:
            return _retry(busy.reason, busy.detail, busy.platform_status)
        except ags.AgsRefused as refused:
            if wanted is not None and lineitems is not None:
                lineitems.pop(wanted.target, None)  # the item may be gone: look it up again next time
            return _permanent(refused.reason, refused.detail, refused.platform_status)
        return Outcome(True, status=response.status)
    raise AssertionError("unreachable")  # pragma: no cover


def _lineitem_of(
    wanted: LineItemWanted,
    maximum: float,
    token: AccessToken,
    registration: Registration,
    allow_private: bool,
    timeout: float,
    cache: LineItemCache | None,
) -> Generator[HttpRequest, Answer, str]:
    """The URL of the link's line item in the container: found (its maximum updated when the
    content's changed), or made. Remembered in ``cache``, so the next score goes straight to it."""
    known = cache.get(wanted.target) if cache is not None else None
    if known is not None and known[1] == maximum:
        return known[0]
    found: ags.LineItem | None = None
    request: HttpRequest | None = ags.build_lineitems_query(
        wanted.lineitems_url, wanted.resource_link_id, token=token, resource_id=wanted.resource_id
    )
    for _ in range(MAX_LINEITEM_PAGES):
        if request is None:
            break
        asked = replace(request, timeout=timeout)
        page = ags.parse_lineitems(_expect(HttpResponse, (yield asked)), asked.url)
        found = next((item for item in page.items if _is_wanted(item, wanted)), None)
        if found is not None or page.next_url is None:
            break
        validate_service_url(page.next_url, registration, allow_private)
        request = ags.build_lineitems_page(page.next_url, token)
    if found is None:
        create = ags.build_create_lineitem(
            wanted.lineitems_url,
            label=wanted.label or wanted.resource_link_id,
            score_maximum=maximum,
            token=token,
            resource_id=wanted.resource_id,
            resource_link_id=wanted.resource_link_id,
        )
        found = ags.parse_lineitem(_expect(HttpResponse, (yield replace(create, timeout=timeout))))
    else:
        update = ags.build_update_lineitem(found, token, score_maximum=maximum)
        if update is not None:
            found = ags.parse_lineitem(_expect(HttpResponse, (yield replace(update, timeout=timeout))))
    validate_service_url(found.id, registration, allow_private)
    if cache is not None:
        cache[wanted.target] = (found.id, found.score_maximum)
    return found.id


def _is_wanted(item: ags.LineItem, wanted: LineItemWanted) -> bool:
    return item.resource_link_id == wanted.resource_link_id and (
        not wanted.resource_id or item.resource_id in ("", wanted.resource_id)
    )


def _lti11_plan(entry: OutboxEntry, store: GradeStore, allow_private: bool, timeout: float, now: float) -> Plan:
    service_url, sourcedid = split_lti11_target(entry.key.target)
    consumer = store.get_consumer(entry.key.platform)
    if consumer is None:
        return _permanent("consumer_unknown", f"no consumer {entry.key.platform[:80]!r}")
    if not consumer.enabled:
        return _permanent("consumer_disabled", f"the consumer {entry.key.platform[:80]!r} is disabled")
    # An LTI 1.1 consumer names no hosts of its own: the outcome URL came in the launch it signed
    # with the consumer's secret, and is the only host its scores go to. The scheme and private
    # address rules still apply, and no redirect is followed to any other host.
    validate_service_url(service_url, (_host(service_url),), allow_private)
    if entry.score.given is None:
        return _permanent("score_given_missing", "an LTI 1.1 outcome needs a score")
    message_id = secrets.token_hex(12)
    request = build_replace_result(BasicOutcome(service_url, sourcedid), consumer, entry.score.given, message_id, now)
    response = _expect(HttpResponse, (yield replace(request, timeout=timeout)))
    try:
        parse_outcome_response(response)
    except OutcomeError as error:
        status = error.http_status or response.status
        text = f"{error.detail} {ags.excerpt(response.body)}" if not error.description else error.detail
        return Outcome(False, error.retryable, status, error.reason, excerpt(f"{error.reason}: {text}"))
    return Outcome(True, status=response.status)


def _token_plan(
    wanted: TokenWanted, tool_keys: SigningKeys, allow_private: bool, timeout: float, now: float
) -> Generator[HttpRequest, HttpResponse, AccessToken]:
    """A new access token from the registration's token endpoint (``TokenRefused`` if none)."""
    registration = wanted.registration
    validate_service_url(registration.auth_token_url, registration, allow_private)
    assertion = build_client_assertion(tool_keys, registration.client_id, registration.auth_token_url, now)
    response = yield replace(build_token_request(registration, wanted.scopes, assertion), timeout=timeout)
    if response.status == 429 or response.status >= 500:
        raise _TokenEndpointBusy(detail=f"status {response.status}")
    return parse_token_response(response, now)


class _TokenEndpointBusy(TokenRefused):
    """The token endpoint failed or throttled (5xx, 429): try again later."""

    reason = "token_endpoint_unavailable"


# -- redirects -------------------------------------------------------------------------------------
# Service calls never follow redirects. A score POST carries a bearer token or an OAuth-signed body;
# a redirect (even to the same host) is not what AGS or Basic Outcomes answer, and following one
# would hand the credentials to wherever it points (or turn the POST into a GET that sends no
# score). So with the port's own drivers (``SyncDriver``/``AsyncDriver``), the request goes through
# ``exchange`` (one request, one response, the URL checked), and a 3xx is the platform's permanent
# refusal. Another ``Transport`` is trusted to do the same (the ones in lti-publish are all drivers).


def _exchange(transport: Transport, request: HttpRequest) -> HttpResponse:
    if isinstance(transport, SyncDriver):
        return transport.exchange(check_url(request))
    return transport.send(request)


async def _exchange_async(transport: AsyncTransport, request: HttpRequest) -> HttpResponse:
    if isinstance(transport, AsyncDriver):
        return await transport.exchange(check_url(request))
    return await transport.send(request)


# -- workers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliverySummary:
    """What one ``deliver_due`` did: entries claimed, and how each ended.

    ``superseded``: sent, but a newer score replaced the entry meanwhile (it stays pending for it).
    """

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    superseded: int = 0

    def __add__(self, other: DeliverySummary) -> DeliverySummary:
        return DeliverySummary(
            self.claimed + other.claimed,
            self.delivered + other.delivered,
            self.retrying + other.retrying,
            self.failed + other.failed,
            self.superseded + other.superseded,
        )


_EMPTY = DeliverySummary()


class WorkerOptions(TypedDict, total=False):
    """A worker's settings (``_WorkerBase``'s keyword arguments)."""

    tokens: ags.TokenCache | None
    worker_id: str
    lease: float
    concurrency: int
    allow_private: bool
    timeout: float
    rng: Rng | None
    clock: Callable[[], float]


class _WorkerBase:
    def __init__(
        self,
        store: GradeStore,
        tool_keys: SigningKeys,
        *,
        tokens: ags.TokenCache | None = None,
        worker_id: str = "",
        lease: float = DEFAULT_LEASE,
        concurrency: int = 8,
        allow_private: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        rng: Rng | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.tool_keys = tool_keys
        self.tokens = tokens if tokens is not None else ags.TokenCache()
        self.worker_id = worker_id or f"grades-{secrets.token_hex(4)}"
        self.lease = lease
        self.concurrency = max(1, concurrency)
        self.allow_private = allow_private
        self.timeout = timeout
        self.rng: Rng = rng if rng is not None else secrets.SystemRandom()
        self.clock = clock
        #: The line items found or made for links without one (``AGS_LINEITEMS``), per target.
        self.lineitems: LineItemCache = {}

    def _needs_lineitem(self, entry: OutboxEntry) -> bool:
        return entry.kind is ServiceKind.AGS_LINEITEMS and entry.key.target not in self.lineitems

    def _plan(self, entry: OutboxEntry) -> Plan:
        return deliver_plan(
            entry,
            self.store,
            allow_private=self.allow_private,
            timeout=self.timeout,
            now=self.clock(),
            lineitems=self.lineitems,
        )

    def _cached(self, wanted: TokenWanted, now: float) -> AccessToken | None:
        """The cached token, unless it is the one the platform just refused (then it is forgotten)."""
        if wanted.stale is not None:
            self.tokens.invalidate(wanted.registration, wanted.scopes, wanted.stale)
        return self.tokens.get(wanted.registration, wanted.scopes, now)

    def _record(self, entry: OutboxEntry, outcome: Outcome) -> DeliverySummary:
        now = self.clock()
        digest = entry.key.digest[:12]
        if outcome.delivered:
            if self.store.complete(entry.key, entry.version, now, outcome.status):
                log.info("grade delivered: entry %s v%d (%d)", digest, entry.version, outcome.status)
                return DeliverySummary(delivered=1)
            log.info("grade sent, superseded by a newer score: entry %s v%d", digest, entry.version)
            return DeliverySummary(superseded=1)
        settled = self.store.fail(
            entry.key,
            entry.version,
            now,
            retryable=outcome.retryable,
            status=outcome.status,
            error=outcome.error,
            rng=self.rng,
        )
        log.warning(
            "grade not delivered: entry %s v%d, %s (status %d, %s)",
            digest,
            entry.version,
            outcome.reason,
            outcome.status,
            "retrying" if outcome.retryable else "failed",
        )
        if settled is None:
            return DeliverySummary(superseded=1)
        return DeliverySummary(retrying=1) if outcome.retryable else DeliverySummary(failed=1)


class GradeWorker(_WorkerBase):
    """Delivers due outbox entries over a synchronous ``Transport``, ``concurrency`` at a time (a
    thread pool). Keep-alive connections are the driver's business (``UrllibTransport`` opens one
    connection per request; a pooling driver saves the handshakes). Call ``close`` when done."""

    def __init__(
        self, store: GradeStore, transport: Transport, tool_keys: SigningKeys, **options: Unpack[WorkerOptions]
    ) -> None:
        super().__init__(store, tool_keys, **options)
        self.transport = transport
        self._token_locks: dict[ags.TokenKey, threading.Lock] = {}
        self._lineitem_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> GradeWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def deliver_due(self, now: float | None = None, limit: int = 100) -> DeliverySummary:
        """Claim up to ``limit`` due entries, deliver them, record each answer; what happened."""
        at = self.clock() if now is None else now
        entries = self.store.claim_due(at, limit, self.worker_id, self.lease)
        if not entries:
            return _EMPTY
        summary = DeliverySummary(claimed=len(entries))
        if len(entries) == 1 or self.concurrency == 1:
            return sum((self.deliver(entry) for entry in entries), summary)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="grades")
        return sum(self._pool.map(self.deliver, entries), summary)

    def deliver(self, entry: OutboxEntry) -> DeliverySummary:
        """Deliver one claimed entry and record the answer."""
        try:
            if self._needs_lineitem(entry):
                # The first scores of a link without a line item: one thread finds or makes it, the
                # others then find it cached (never two line items for one link).
                with self._lock_of(self._lineitem_locks, entry.key.target, threading.Lock):
                    outcome = self._drive(self._plan(entry))
            else:
                outcome = self._drive(self._plan(entry))
        except Exception:  # noqa: BLE001 - one broken entry must not stop the batch; the lease frees it
            log.exception("grade delivery crashed: entry %s", entry.key.digest[:12])
            return _EMPTY
        return self._record(entry, outcome)

    def _lock_of(
        self, locks: dict[str, threading.Lock], key: str, make: Callable[[], threading.Lock]
    ) -> threading.Lock:
        with self._locks_lock:
            return locks.setdefault(key, make())

    def _drive(self, plan: Plan) -> Outcome:
        try:
            need = next(plan)
            while True:
                answer: Answer
                try:
                    answer = self._token(need) if isinstance(need, TokenWanted) else _exchange(self.transport, need)
                except LtiError as error:  # the token request, or no answer: ends the plan
                    need = plan.throw(error)
                else:
                    need = plan.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _token(self, wanted: TokenWanted) -> AccessToken:
        key = ags.TokenCache.key(wanted.registration, wanted.scopes)
        with self._locks_lock:
            lock = self._token_locks.setdefault(key, threading.Lock())
        with lock:  # one token request per registration at a time: the others find it cached
            cached = self._cached(wanted, self.clock())
            if cached is not None:
                return cached
            now = self.clock()
            plan = _token_plan(wanted, self.tool_keys, self.allow_private, self.timeout, now)
            try:
                request = next(plan)
                plan.send(_exchange(self.transport, request))
            except StopIteration as done:
                token: AccessToken = done.value
                self.tokens.put(wanted.registration, wanted.scopes, token, now)
                return token
            raise AssertionError("unreachable")  # pragma: no cover


class AsyncGradeWorker(_WorkerBase):
    """``GradeWorker``'s logic over an ``AsyncTransport`` (the hub's): asyncio tasks, ``concurrency``
    at a time. The store is synchronous: with ``store_in_thread`` (the default) its calls run in the
    loop's default executor, so a database never blocks the event loop."""

    def __init__(
        self,
        store: GradeStore,
        transport: AsyncTransport,
        tool_keys: SigningKeys,
        *,
        store_in_thread: bool = True,
        **options: Unpack[WorkerOptions],
    ) -> None:
        super().__init__(store, tool_keys, **options)
        self.transport = transport
        self.store_in_thread = store_in_thread
        self._token_locks: dict[ags.TokenKey, asyncio.Lock] = {}
        self._lineitem_locks: dict[str, asyncio.Lock] = {}

    async def _call(self, function: Callable[..., T], *args: object) -> T:
        if self.store_in_thread:
            return await asyncio.to_thread(function, *args)
        return function(*args)

    async def deliver_due(self, now: float | None = None, limit: int = 100) -> DeliverySummary:
        """Claim up to ``limit`` due entries, deliver them, record each answer; what happened."""
        at = self.clock() if now is None else now
        entries = await self._call(self.store.claim_due, at, limit, self.worker_id, self.lease)
        if not entries:
            return _EMPTY
        gate = asyncio.Semaphore(self.concurrency)

        async def one(entry: OutboxEntry) -> DeliverySummary:
            async with gate:
                return await self.deliver(entry)

        results = await asyncio.gather(*(one(entry) for entry in entries))
        return sum(results, DeliverySummary(claimed=len(entries)))

    async def deliver(self, entry: OutboxEntry) -> DeliverySummary:
        """Deliver one claimed entry and record the answer."""
        try:
            if self._needs_lineitem(entry):  # as GradeWorker.deliver: one line item per link
                async with self._lineitem_locks.setdefault(entry.key.target, asyncio.Lock()):
                    outcome = await self._drive(self._plan(entry))
            else:
                outcome = await self._drive(self._plan(entry))
        except Exception:  # noqa: BLE001 - one broken entry must not stop the batch; the lease frees it
            log.exception("grade delivery crashed: entry %s", entry.key.digest[:12])
            return _EMPTY
        return await self._call(self._record, entry, outcome)

    async def _drive(self, plan: Plan) -> Outcome:
        try:
            need = next(plan)
            while True:
                answer: Answer
                try:
                    if isinstance(need, TokenWanted):
                        answer = await self._token(need)
                    else:
                        answer = await _exchange_async(self.transport, need)
                except LtiError as error:
                    need = plan.throw(error)
                else:
                    need = plan.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _token(self, wanted: TokenWanted) -> AccessToken:
        key = ags.TokenCache.key(wanted.registration, wanted.scopes)
        lock = self._token_locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cached(wanted, self.clock())
            if cached is not None:
                return cached
            now = self.clock()
            plan = _token_plan(wanted, self.tool_keys, self.allow_private, self.timeout, now)
            try:
                # Signing the assertion reads the tool's keys from the store: off the event loop.
                request = await self._call(next, plan)
                plan.send(await _exchange_async(self.transport, request))
            except StopIteration as done:
                token: AccessToken = done.value
                self.tokens.put(wanted.registration, wanted.scopes, token, now)
                return token
            raise AssertionError("unreachable")  # pragma: no cover


__all__ = [
    "DEFAULT_LEASE",
    "SCORE_SCOPES",
    "AsyncGradeWorker",
    "DeliverySummary",
    "GradeServiceUnavailable",
    "GradeStore",
    "GradeWorker",
    "Outcome",
    "ScoreEntry",
    "ScoreInvalid",
    "check_score",
    "ServiceUrlRefused",
    "TokenWanted",
    "deliver_plan",
    "enqueue_grade",
    "platform_hosts",
    "score_entry_for",
    "validate_service_url",
]
