"""The platform key sets: fetched rarely, cached by Cache-Control, refetched once for an unknown kid.

Brightspace rotates its signing keys about hourly and Moodle rarely: a steady stream of launches
must cost no JWKS request, and a new ``kid`` must be picked up at once. The cache is sans-IO:
``plan`` says whether a fetch is needed and ``accept`` takes its result, so a synchronous host
(Django) and an asynchronous one (JupyterHub's tornado loop) drive the same decisions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from joserfc.jwk import RSAKey

from lti_core.errors import AuthenticationFailed, ServiceUnavailable
from lti_core.i18n import N_

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class FetchResult:
    """What an HTTP GET of a key set URL returned."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Entry:
    keys: dict[str, RSAKey]
    fetched_at: float
    expires_at: float
    # When an unknown kid last caused a refetch: those are rate-limited, routine refreshes are not,
    # so a rotation right after a routine fetch is still picked up at once.
    unknown_kid_refetch_at: float = float("-inf")


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


def max_age(headers: Mapping[str, str], default: float, ceiling: float) -> float:
    """Seconds the response may be reused, from Cache-Control (no-store/no-cache mean 0)."""
    value = next((v for k, v in headers.items() if k.lower() == "cache-control"), "")
    lowered = value.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0.0
    match = _MAX_AGE.search(value)
    return min(float(match.group(1)), ceiling) if match else default


class PlatformKeyCache:
    """Platform signing keys by (key set URL, kid).

    ``fetch`` is only used by the synchronous driver ``key_for``; async hosts call ``plan``, fetch
    themselves, then ``accept``. ``min_refetch_interval`` rate-limits refetches triggered by unknown
    kids, so a flood of forged kids cannot turn into a flood of requests to the platform.
    """

    def __init__(
        self,
        fetch: Callable[[str], FetchResult] | None = None,
        *,
        now: Callable[[], float] = time.monotonic,
        default_max_age: float = 300.0,
        max_max_age: float = 86400.0,
        min_refetch_interval: float = 10.0,
    ) -> None:
        self._fetch = fetch
        self._now = now
        self._default_max_age = default_max_age
        self._max_max_age = max_max_age
        self._min_refetch_interval = min_refetch_interval
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def cached_key(self, url: str, kid: str) -> RSAKey | None:
        """The key if the cache holds it and it is fresh: the steady-state path, no I/O, no lock."""
        entry = self._entries.get(url)
        if entry is not None and entry.expires_at > self._now():
            return entry.keys.get(kid)
        return None

    def plan(self, url: str, kid: str) -> RSAKey | None:
        """The key, or None when a fetch of ``url`` should be made now (then call ``accept``)."""
        entry = self._entries.get(url)
        now = self._now()
        if entry is None or entry.expires_at <= now:
            return None
        key = entry.keys.get(kid)
        if key is None and now - entry.unknown_kid_refetch_at >= self._min_refetch_interval:
            entry.unknown_kid_refetch_at = now
            return None
        if key is None:
            raise AuthenticationFailed(
                "unknown_kid", N_("The launch was signed with a key the platform does not publish.")
            )
        return key

    def accept(self, url: str, result: FetchResult | None) -> None:
        """Take a fetch result (None when the fetch failed). A failed fetch keeps the old keys for a while."""
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
                self._entries[url] = _Entry(
                    previous.keys, now, now + self._min_refetch_interval, previous.unknown_kid_refetch_at
                )
                return
            raise ServiceUnavailable("platform_jwks_unreachable", N_("The platform's key set could not be fetched."))
        ttl = max_age(result.headers if result else {}, self._default_max_age, self._max_max_age)
        # A zero lifetime would mean one fetch per launch; hold it for the refetch interval instead.
        last_unknown = previous.unknown_kid_refetch_at if previous is not None else float("-inf")
        self._entries[url] = _Entry(keys, now, now + max(ttl, self._min_refetch_interval), last_unknown)

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
            if self._fetch is None:
                raise ServiceUnavailable(
                    "platform_jwks_unreachable", N_("The platform's key set could not be fetched.")
                )
            try:
                result: FetchResult | None = self._fetch(url)
            except OSError:
                result = None
            self.accept(url, result)
            return self.resolve(url, kid)
