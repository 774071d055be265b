"""PlatformKeyCache: Cache-Control, unknown-kid refetch and its rate limit, rotation, stale-if-error, parsing.

The platform's key set is served by the ``platform`` fixture's ``fetch`` (which counts requests); time is
the fake clock. The sans-IO path (``plan``/``accept``/``resolve``) is driven here as an async host would.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import RSAKey

from lti_core.errors import ServiceUnavailable
from lti_core.lti13.jwks import FetchResult, PlatformKeyCache, max_age, parse_jwks


def _n(key) -> str:
    return key.jwk["n"]


@pytest.fixture
def second_key(rogue_key):
    return dataclasses.replace(rogue_key, kid="moodle-key-2")


# -- Cache-Control ----------------------------------------------------------------------------


def test_max_age_is_honoured(platform, clock):
    platform.cache_control = "public, max-age=120"
    cache = PlatformKeyCache(platform.fetch, now=clock)
    key = cache.key_for(platform.jwks_url, platform.key.kid)
    assert key.as_dict()["n"] == _n(platform.key)
    clock.advance(119)
    assert cache.key_for(platform.jwks_url, platform.key.kid) is key
    assert len(platform.fetches) == 1  # no fetch while fresh
    clock.advance(1)
    cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 2  # expired: fetched again
    clock.advance(119)
    cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 2


def test_max_age_is_capped(platform, clock):
    platform.cache_control = "max-age=31536000"
    cache = PlatformKeyCache(platform.fetch, now=clock, max_max_age=3600)
    cache.key_for(platform.jwks_url, platform.key.kid)
    clock.advance(3599)
    cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 1
    clock.advance(1)
    cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 2


def test_no_cache_control_uses_the_default_max_age(platform, clock):
    platform.cache_control = ""
    cache = PlatformKeyCache(platform.fetch, now=clock, default_max_age=300)
    cache.key_for(platform.jwks_url, platform.key.kid)
    clock.advance(299)
    cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 1
    clock.advance(1)
    cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 2


@pytest.mark.parametrize("header", ["no-store", "no-cache", "private, no-store, max-age=600", "max-age=0"])
def test_no_store_is_held_for_the_refetch_interval_only(header, platform, clock):
    platform.cache_control = header
    cache = PlatformKeyCache(platform.fetch, now=clock, min_refetch_interval=10)
    cache.key_for(platform.jwks_url, platform.key.kid)
    clock.advance(9.5)
    cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 1  # not one fetch per launch
    clock.advance(0.5)
    cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 2


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 300.0),
        ({"Cache-Control": "max-age=60"}, 60.0),
        ({"cache-control": "public, max-age=60"}, 60.0),
        ({"CACHE-CONTROL": "Max-Age = 60"}, 60.0),
        ({"Cache-Control": "s-maxage=5, max-age=60"}, 60.0),
        ({"Cache-Control": "max-age=999999"}, 86400.0),
        ({"Cache-Control": "no-store"}, 0.0),
        ({"Cache-Control": "max-age=60, no-cache"}, 0.0),
        ({"Cache-Control": "max-age=soon"}, 300.0),
        ({"Expires": "Thu, 01 Jan 2099 00:00:00 GMT"}, 300.0),
    ],
)
def test_max_age_parsing(headers, expected):
    assert max_age(headers, 300.0, 86400.0) == expected


# -- unknown kids, rotation -------------------------------------------------------------------


def test_unknown_kid_triggers_one_refetch_then_the_rate_limit(key_cache, platform, clock, refused):
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    with refused("unknown_kid", 401):
        key_cache.key_for(platform.jwks_url, "forged-1")
    assert len(platform.fetches) == 2
    for n in range(5):  # a flood of forged kids inside the interval costs no request
        clock.advance(1.5)
        with refused("unknown_kid", 401):
            key_cache.key_for(platform.jwks_url, f"forged-{n + 2}")
    assert len(platform.fetches) == 2
    clock.advance(2.5)  # 10 s since the unknown-kid refetch
    with refused("unknown_kid", 401):
        key_cache.key_for(platform.jwks_url, "forged-9")
    assert len(platform.fetches) == 3
    # The known key is still served from the cache throughout.
    assert key_cache.key_for(platform.jwks_url, platform.key.kid).as_dict()["n"] == _n(platform.key)
    assert len(platform.fetches) == 3


def test_rotation_new_kid_is_picked_up_by_a_refetch(key_cache, platform, clock, second_key):
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    clock.advance(30)
    platform.published = [second_key]  # the platform rotated and dropped the old key
    assert key_cache.key_for(platform.jwks_url, second_key.kid).as_dict()["n"] == _n(second_key)
    assert len(platform.fetches) == 2
    # The refetched set replaced the old one: the retired kid is gone.
    assert key_cache.cached_key(platform.jwks_url, platform.key.kid) is None


def test_rotation_right_after_a_routine_fetch_is_picked_up_at_once(key_cache, platform, second_key):
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    platform.published = [platform.key, second_key]
    assert key_cache.key_for(platform.jwks_url, second_key.kid).as_dict()["n"] == _n(second_key)
    assert key_cache.key_for(platform.jwks_url, platform.key.kid).as_dict()["n"] == _n(platform.key)
    assert len(platform.fetches) == 2


def test_each_key_set_url_is_cached_separately(platform, clock, refused):
    served = {
        "https://a.example/jwks": {"keys": [platform.key.jwk]},
        "https://b.example/jwks": {"keys": []},
    }
    fetched: list[str] = []

    def fetch(url: str) -> FetchResult:
        fetched.append(url)
        return FetchResult(200, json.dumps(served[url]).encode(), {"Cache-Control": "max-age=600"})

    cache = PlatformKeyCache(fetch, now=clock)
    cache.key_for("https://a.example/jwks", platform.key.kid)
    with refused("unknown_kid", 401):  # the same kid is not in b's set
        cache.key_for("https://b.example/jwks", platform.key.kid)
    assert fetched == ["https://a.example/jwks", "https://b.example/jwks"]
    assert cache.key_for("https://a.example/jwks", platform.key.kid).as_dict()["n"] == _n(platform.key)
    assert len(fetched) == 2


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [OSError("connection refused"), TimeoutError("timed out"), FetchResult(503, b"busy"), FetchResult(404, b"")],
    ids=["oserror", "timeout", "503", "404"],
)
def test_fetch_failure_keeps_the_old_keys(failure, key_cache, platform, clock):
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    clock.advance(3600)  # the cached set expired
    platform.failure = failure
    assert key_cache.key_for(platform.jwks_url, platform.key.kid).as_dict()["n"] == _n(platform.key)
    assert len(platform.fetches) == 2
    clock.advance(9)  # no retry on every launch: the stale keys are held for the refetch interval
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 2
    clock.advance(1)
    platform.failure = None  # the platform is back
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 3


@pytest.mark.parametrize(
    "failure",
    [OSError("connection refused"), FetchResult(500, b"oops"), FetchResult(302, b"")],
    ids=["oserror", "500", "redirect"],
)
def test_fetch_failure_with_nothing_cached(failure, key_cache, platform, refused):
    platform.failure = failure
    with refused("platform_jwks_unreachable", 502) as caught:
        key_cache.key_for(platform.jwks_url, platform.key.kid)
    assert isinstance(caught[0], ServiceUnavailable)


def test_no_fetcher_and_nothing_cached(platform, clock, refused):
    cache = PlatformKeyCache(None, now=clock)
    with refused("platform_jwks_unreachable", 502):
        cache.key_for(platform.jwks_url, platform.key.kid)


@pytest.mark.parametrize(
    "body",
    [b"<html>Moodle is down for maintenance</html>", b"", b"[]", b'{"keys": {}}', b'{"key": []}', b"null"],
    ids=["html", "empty", "list", "keys-object", "no-keys", "null"],
)
def test_malformed_jwks(body, platform, refused):
    platform.failure = FetchResult(200, body)
    cache = PlatformKeyCache(platform.fetch)
    with refused("platform_jwks_invalid", 502):
        cache.key_for(platform.jwks_url, platform.key.kid)


def test_malformed_jwks_after_good_ones_keeps_the_old_keys_and_is_rate_limited(key_cache, platform, clock):
    """A 200 that is not a key set (a proxy's or maintenance HTML page) is a failed fetch like a 503:
    the known keys keep being served, and the platform is not asked again on every launch."""
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    clock.advance(3600)
    platform.failure = FetchResult(200, b"<html>Site under maintenance</html>", {"Content-Type": "text/html"})
    for _ in range(3):
        assert key_cache.key_for(platform.jwks_url, platform.key.kid).as_dict()["n"] == _n(platform.key)
    assert len(platform.fetches) == 2


# -- parsing ----------------------------------------------------------------------------------


def test_parse_jwks_keeps_only_rs256_signing_keys(platform, second_key):
    good = platform.key.jwk
    no_use_no_alg = {k: v for k, v in second_key.jwk.items() if k not in ("use", "alg")}
    document = {
        "keys": [
            good,
            no_use_no_alg,
            {**good, "kid": "enc", "use": "enc"},
            {**good, "kid": "rs512", "alg": "RS512"},
            {**good, "kid": "ps256", "alg": "PS256"},
            {
                "kty": "EC",
                "kid": "ec",
                "crv": "P-256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uE_rh5Vo",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                "use": "sig",
                "alg": "ES256",
            },
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
            {k: v for k, v in good.items() if k != "kid"},
            {**good, "kid": 7},
            {**good, "kid": "broken", "n": "!!!"},
            {"kty": "RSA", "kid": "no-n", "e": "AQAB"},
            "not an object",
        ]
    }
    keys = parse_jwks(json.dumps(document).encode())
    assert sorted(keys) == sorted([platform.key.kid, second_key.kid])
    assert keys[platform.key.kid].as_dict()["n"] == good["n"]


def test_parse_jwks_drops_private_members(platform):
    """A platform that publishes its private key by mistake: only the public part is kept."""
    pem = platform.key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_jwk = RSAKey.import_key(pem).as_dict(private=True)
    assert "d" in private_jwk
    keys = parse_jwks(json.dumps({"keys": [{**private_jwk, "kid": "leaky"}]}).encode())
    assert keys["leaky"].is_private is False
    assert "d" not in keys["leaky"].as_dict()


def test_empty_key_set_means_unknown_kid(platform, clock, refused):
    platform.published = []
    cache = PlatformKeyCache(platform.fetch, now=clock)
    with refused("unknown_kid", 401):
        cache.key_for(platform.jwks_url, platform.key.kid)


# -- the sans-IO path -------------------------------------------------------------------------


def test_sans_io_plan_accept_resolve(platform, clock, second_key, refused):
    cache = PlatformKeyCache(now=clock)  # no fetcher: the host does the I/O
    url = platform.jwks_url
    assert cache.plan(url, platform.key.kid) is None  # nothing cached: fetch now
    cache.accept(url, FetchResult(200, platform.jwks_body(), {"Cache-Control": "max-age=60"}))
    key = cache.resolve(url, platform.key.kid)
    assert key.as_dict()["n"] == _n(platform.key)
    assert cache.plan(url, platform.key.kid) is key  # fresh: no fetch
    assert cache.cached_key(url, platform.key.kid) is key

    assert cache.plan(url, second_key.kid) is None  # unknown kid: one refetch allowed
    cache.accept(url, FetchResult(200, platform.jwks_body()))  # still not there
    with refused("unknown_kid", 401):
        cache.resolve(url, second_key.kid)
    with refused("unknown_kid", 401):  # rate-limited: plan refuses without asking for a fetch
        cache.plan(url, second_key.kid)

    clock.advance(300)  # expired (default max-age for the second response)
    assert cache.cached_key(url, platform.key.kid) is None
    assert cache.plan(url, platform.key.kid) is None
    cache.accept(url, None)  # the host's fetch failed: stale keys are kept
    stale = cache.resolve(url, platform.key.kid)
    assert stale.as_dict()["n"] == _n(platform.key)
    assert cache.plan(url, platform.key.kid) is stale


def test_sans_io_failures_with_nothing_cached(platform, refused):
    cache = PlatformKeyCache()
    with refused("platform_jwks_unreachable", 502):
        cache.accept(platform.jwks_url, None)
    with refused("platform_jwks_unreachable", 502):
        cache.accept(platform.jwks_url, FetchResult(500, b""))
    with refused("platform_jwks_invalid", 502):
        cache.accept(platform.jwks_url, FetchResult(200, b"garbage"))
    with refused("unknown_kid", 401):
        cache.resolve(platform.jwks_url, platform.key.kid)


def test_fetch_errors_other_than_oserror_are_not_swallowed(platform, clock):
    platform.failure = RuntimeError("bug in the host's fetcher")
    cache = PlatformKeyCache(platform.fetch, now=clock)
    with pytest.raises(RuntimeError):
        cache.key_for(platform.jwks_url, platform.key.kid)
