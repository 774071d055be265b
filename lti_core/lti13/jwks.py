"""The platform key sets: fetched rarely, cached by Cache-Control, refetched for an unknown kid within a budget.

Brightspace rotates its signing keys about hourly and Moodle rarely: a steady stream of launches
must cost no JWKS request, and a new ``kid`` must be picked up at once. The cache is sans-IO:
``plan`` says whether a fetch is needed and ``accept`` takes its result, so a synchronous host
(Django) and an asynchronous one (JupyterHub's tornado loop) drive the same decisions. The fetch
itself goes through lti_core's HTTP port: ``build_key_set_request`` is what to send, and ``accept``
takes the ``HttpResponse`` (or None when the driver raised ``TransportError``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from joserfc.jwk import RSAKey

from lti_core.errors import AuthenticationFailed, ServiceUnavailable
from lti_core.http import USER_AGENT, HttpRequest, HttpResponse, Transport, TransportError, header_value
from lti_core.i18n import N_

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


@dataclass
class _Entry:
    keys: dict[str, RSAKey]
    fetched_at: float
    expires_at: float


class _UnknownKidLimiter:
    """Which unknown-kid refetches of one key set URL may happen now.

    Two limits, so that every genuinely new kid is fetched at once while forged kids cost little:
    the same kid is refetched at most once per ``interval`` (a retried launch is not a new fetch),
    and all kids together share ``budget`` refetches per ``window`` (each spent refetch comes back
    ``window`` seconds later). Routine refreshes of an expired set are not counted, so a rotation
    right after a routine fetch is still picked up at once.
    """

    def __init__(self, interval: float, budget: int, window: float) -> None:
        self._interval = interval
        self._window = window
        # Both only grow when a refetch is granted, so their size is bounded by the budget.
        self._spent: deque[float] = deque(maxlen=max(budget, 0))
        self._kids: OrderedDict[str, float] = OrderedDict()
        self._max_kids = max(budget, 1)

    def allow(self, kid: str, now: float) -> bool:
        """True (and the refetch is counted) when an unknown ``kid`` may cause a fetch now."""
        last = self._kids.get(kid)
        if last is not None and now - last < self._interval:
            return False
        if self._spent.maxlen == 0:
            return False
        if len(self._spent) == self._spent.maxlen and now - self._spent[0] < self._window:
            return False
        self._spent.append(now)  # a full deque drops its oldest, already outside the window
        self._kids.pop(kid, None)
        self._kids[kid] = now
        while len(self._kids) > self._max_kids:
            # The oldest kid leaves first: at worst it may be refetched sooner, still within the budget.
            self._kids.popitem(last=False)
        return True


def build_key_set_request(url: str) -> HttpRequest:
    """The GET of a platform's key set URL."""
    return HttpRequest("GET", url, (("Accept", "application/json"), ("User-Agent", USER_AGENT)))


def parse_jwks(body: bytes) -> dict[str, RSAKey]:
    """The RS256 signing keys of a JWKS document, by kid. Keys for other uses are left out."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ServiceUnavailable("platform_jwks_invalid", N_("The platform's key set could not be read.")) from exc
    keys: dict[str, RSAKey] = {}
    raw_keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(raw_keys, list):
        raise ServiceUnavailable("platform_jwks_invalid", N_("The platform's key set could not be read."))
    for jwk in raw_keys:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            continue
        public = {k: jwk[k] for k in ("kty", "n", "e", "kid") if k in jwk}
        try:
            keys[jwk["kid"]] = RSAKey.import_key(public)
        except Exception:  # noqa: BLE001, S112 - one malformed key must not hide the good ones
            continue
    return keys


def max_age(headers: Iterable[tuple[str, str]], default: float, ceiling: float) -> float:
    """Seconds the response may be reused, from Cache-Control (no-store/no-cache mean 0)."""
    value = header_value(headers, "Cache-Control") or ""
    lowered = value.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0.0
    match = _MAX_AGE.search(value)
    return min(float(match.group(1)), ceiling) if match else default


class PlatformKeyCache:
    """Platform signing keys by (key set URL, kid).

    ``transport`` is only used by the synchronous driver ``key_for``; async hosts call ``plan``, send
    ``build_key_set_request(url)`` with their own driver, then ``accept``. A refetch for an unknown
    kid happens at most once per ``min_refetch_interval`` for the same kid, and at most
    ``unknown_kid_budget`` times per ``unknown_kid_window`` for one key set URL, so a flood of forged
    kids cannot turn into a flood of requests to the platform, nor lock out a real new kid for long.
    ``min_refetch_interval`` is also how long a set is held when the platform forbids caching it or
    cannot be reached.
    """

    def __init__(
        self,
        transport: Transport | None = None,
        *,
        now: Callable[[], float] = time.monotonic,
        default_max_age: float = 300.0,
        max_max_age: float = 86400.0,
        min_refetch_interval: float = 10.0,
        unknown_kid_budget: int = 5,
        unknown_kid_window: float = 60.0,
    ) -> None:
        self._transport = transport
        self._now = now
        self._default_max_age = default_max_age
        self._max_max_age = max_max_age
        self._min_refetch_interval = min_refetch_interval
        self._unknown_kid_budget = unknown_kid_budget
        self._unknown_kid_window = unknown_kid_window
        self._entries: dict[str, _Entry] = {}
        # One per key set URL; URLs come from registrations, never from a launch.
        self._limiters: dict[str, _UnknownKidLimiter] = {}
        # Reentrant: key_for holds it around plan and accept. An async host calls those from threads
        # too (the hub's store threads plan, its event loop accepts), so they take it themselves.
        self._lock = threading.RLock()

    def cached_key(self, url: str, kid: str) -> RSAKey | None:
        """The key if the cache holds it and it is fresh: the steady-state path, no I/O, no lock."""
        entry = self._entries.get(url)
        if entry is not None and entry.expires_at > self._now():
            return entry.keys.get(kid)
        return None

    def plan(self, url: str, kid: str) -> RSAKey | None:
        """The key, or None when a fetch of ``url`` should be made now (then call ``accept``)."""
        with self._lock:
            entry = self._entries.get(url)
            now = self._now()
            if entry is None or entry.expires_at <= now:
                return None
            key = entry.keys.get(kid)
            if key is not None:
                return key
            if self._limiter(url).allow(kid, now):
                return None
        raise AuthenticationFailed("unknown_kid", N_("The launch was signed with a key the platform does not publish."))

    def _limiter(self, url: str) -> _UnknownKidLimiter:
        limiter = self._limiters.get(url)
        if limiter is None:
            limiter = _UnknownKidLimiter(self._min_refetch_interval, self._unknown_kid_budget, self._unknown_kid_window)
            self._limiters[url] = limiter
        return limiter

    def accept(self, url: str, result: HttpResponse | None) -> None:
        """Take the response to ``build_key_set_request(url)`` (None when the driver raised ``TransportError``).

        Anything but a 200 with a key set is a failed fetch, which keeps the old keys for a while.
        """
        with self._lock:
            self._accept(url, result)

    def _accept(self, url: str, result: HttpResponse | None) -> None:
        now = self._now()
        previous = self._entries.get(url)
        keys: dict[str, RSAKey] | None = None
        if result is not None and result.status == 200:
            try:
                keys = parse_jwks(result.body)
            except ServiceUnavailable:
                # A 200 that is not a key set (a proxy's or a maintenance page) is a failed fetch too.
                if previous is None:
                    raise
        if keys is None:
            if previous is not None:
                # Keep serving known keys; try again after the rate-limit interval, not on every launch.
                self._entries[url] = _Entry(previous.keys, now, now + self._min_refetch_interval)
                return
            raise ServiceUnavailable("platform_jwks_unreachable", N_("The platform's key set could not be fetched."))
        ttl = max_age(result.headers if result else (), self._default_max_age, self._max_max_age)
        # A zero lifetime would mean one fetch per launch; hold it for the refetch interval instead.
        self._entries[url] = _Entry(keys, now, now + max(ttl, self._min_refetch_interval))

    def resolve(self, url: str, kid: str) -> RSAKey:
        """After ``accept``: the key, or the unknown-kid refusal."""
        entry = self._entries.get(url)
        key = entry.keys.get(kid) if entry is not None else None
        if key is None:
            raise AuthenticationFailed(
                "unknown_kid", N_("The launch was signed with a key the platform does not publish.")
            )
        return key

    def key_for(self, url: str, kid: str) -> RSAKey:
        """Synchronous driver: cached key, or one fetch (under a lock, so racing launches fetch once)."""
        key = self.cached_key(url, kid)
        if key is not None:
            return key
        with self._lock:
            key = self.plan(url, kid)
            if key is not None:
                return key
            if self._transport is None:
                raise ServiceUnavailable(
                    "platform_jwks_unreachable", N_("The platform's key set could not be fetched.")
                )
            try:
                result: HttpResponse | None = self._transport.send(build_key_set_request(url))
            except TransportError:
                result = None
            self.accept(url, result)
            return self.resolve(url, kid)
