"""PlatformKeyCache: Cache-Control, unknown-kid refetch and its limits, rotation, stale-if-error, parsing.

The platform's key set is served by the ``platform`` fixture, the cache's ``Transport`` (which counts requests); time is
the fake clock. The sans-IO path (``plan``/``accept``/``resolve``) is driven here as an async host would.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import RSAKey

from lti_core.errors import ServiceUnavailable
from lti_core.http import HttpRequest, HttpResponse, TransportError
from lti_core.lti13.jwks import PlatformKeyCache, build_key_set_request, max_age, parse_jwks


def _n(key) -> str:
    return key.jwk["n"]


@pytest.fixture
def second_key(rogue_key):
    return dataclasses.replace(rogue_key, kid="moodle-key-2")


# -- Cache-Control ----------------------------------------------------------------------------


def test_max_age_is_honoured(platform, clock):
    platform.cache_control = "public, max-age=120"
    cache = PlatformKeyCache(platform, now=clock)
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
    cache = PlatformKeyCache(platform, now=clock, max_max_age=3600)
    cache.key_for(platform.jwks_url, platform.key.kid)
    clock.advance(3599)
    cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 1
    clock.advance(1)
    cache.key_for(platform.jwks_url, platform.key.kid)
    assert len(platform.fetches) == 2


def test_no_cache_control_uses_the_default_max_age(platform, clock):
    platform.cache_control = ""
    cache = PlatformKeyCache(platform, now=clock, default_max_age=300)
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
    cache = PlatformKeyCache(platform, now=clock, min_refetch_interval=10)
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
    assert max_age(tuple(headers.items()), 300.0, 86400.0) == expected


# -- unknown kids, rotation -------------------------------------------------------------------


BUDGET = 5  # PlatformKeyCache's default: unknown-kid refetches per key set URL per minute


def test_the_same_unknown_kid_is_refetched_once_per_interval(key_cache, platform, clock, refused):
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    with refused("unknown_kid", 401):
        key_cache.key_for(platform.jwks_url, "forged-1")
    assert len(platform.fetches) == 2
    for _ in range(6):  # a launch retried with the same kid inside the interval costs no request
        clock.advance(1.5)
        with refused("unknown_kid", 401):
            key_cache.key_for(platform.jwks_url, "forged-1")
    assert len(platform.fetches) == 2
    clock.advance(1)  # 10 s since that kid's refetch
    with refused("unknown_kid", 401):
        key_cache.key_for(platform.jwks_url, "forged-1")
    assert len(platform.fetches) == 3
    # The known key is still served from the cache throughout.
    assert key_cache.key_for(platform.jwks_url, platform.key.kid).as_dict()["n"] == _n(platform.key)
    assert len(platform.fetches) == 3


def test_a_flood_of_forged_kids_costs_at_most_the_budget_per_minute(key_cache, platform, clock, refused):
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    for n in range(1000):  # 1,000 forged kids in one minute
        with refused("unknown_kid", 401):
            key_cache.key_for(platform.jwks_url, f"forged-{n}")
        clock.advance(0.059)
    assert len(platform.fetches) == 1 + BUDGET
    # The platform's own key is served from the cache throughout, without a fetch.
    assert key_cache.key_for(platform.jwks_url, platform.key.kid).as_dict()["n"] == _n(platform.key)
    assert len(platform.fetches) == 1 + BUDGET


def test_the_budget_comes_back_a_minute_after_it_was_spent(key_cache, platform, clock, refused):
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    for n in range(BUDGET + 1):
        with refused("unknown_kid", 401):
            key_cache.key_for(platform.jwks_url, f"forged-{n}")
        clock.advance(1)
    assert len(platform.fetches) == 1 + BUDGET  # the sixth was refused without a fetch
    clock.advance(60 - (BUDGET + 1))  # a minute after the first refetch: one refetch is back
    with refused("unknown_kid", 401):
        key_cache.key_for(platform.jwks_url, "forged-a")
    with refused("unknown_kid", 401):
        key_cache.key_for(platform.jwks_url, "forged-b")
    assert len(platform.fetches) == 2 + BUDGET


def test_two_real_rotations_a_second_apart_are_both_picked_up(key_cache, platform, clock, second_key, rsa_keys):
    """Platforms that rotate twice quickly used to be locked out for 10 s after the first new kid."""
    third_key = dataclasses.replace(second_key, kid="moodle-key-3", private=rsa_keys[2])
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    platform.published = [platform.key, second_key]
    assert key_cache.key_for(platform.jwks_url, second_key.kid).as_dict()["n"] == _n(second_key)
    assert len(platform.fetches) == 2
    clock.advance(1)
    platform.published = [second_key, third_key]
    assert key_cache.key_for(platform.jwks_url, third_key.kid).as_dict()["n"] == _n(third_key)
    assert len(platform.fetches) == 3  # one fetch per new kid


def test_a_forged_kid_right_after_a_rotation_does_not_block_the_next_real_kid(
    key_cache, platform, clock, second_key, rsa_keys, refused
):
    third_key = dataclasses.replace(second_key, kid="moodle-key-3", private=rsa_keys[2])
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    platform.published = [platform.key, second_key]
    key_cache.key_for(platform.jwks_url, second_key.kid)  # a real rotation
    clock.advance(0.1)
    with refused("unknown_kid", 401):  # an attacker's kid right after it
        key_cache.key_for(platform.jwks_url, "forged")
    clock.advance(0.1)
    platform.published = [second_key, third_key]
    assert key_cache.key_for(platform.jwks_url, third_key.kid).as_dict()["n"] == _n(third_key)
    assert len(platform.fetches) == 4


def test_forged_kids_do_not_grow_the_bookkeeping(key_cache, platform, clock, refused):
    """Only refetches that happened are remembered, and only the last few of them."""
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    for n in range(2_000):
        with refused("unknown_kid", 401):
            key_cache.key_for(platform.jwks_url, f"forged-{n}")
        clock.advance(2.5)  # 5,000 s: more than 80 budgets' worth of refetches
    limiter = key_cache._limiters[platform.jwks_url]  # internal: the bound is what is tested here
    assert len(limiter._kids) <= BUDGET
    assert len(limiter._spent) <= BUDGET


def test_budget_and_window_are_settings(platform, clock, refused):
    cache = PlatformKeyCache(platform, now=clock, unknown_kid_budget=0)
    cache.key_for(platform.jwks_url, platform.key.kid)
    with refused("unknown_kid", 401):  # no unknown-kid refetch at all: only routine refreshes
        cache.key_for(platform.jwks_url, "new")
    assert len(platform.fetches) == 1
    cache = PlatformKeyCache(platform, now=clock, unknown_kid_budget=1, unknown_kid_window=5)
    cache.key_for(platform.jwks_url, platform.key.kid)
    for kid in ("a", "b"):
        with refused("unknown_kid", 401):
            cache.key_for(platform.jwks_url, kid)
    assert len(platform.fetches) == 3
    clock.advance(5)
    with refused("unknown_kid", 401):
        cache.key_for(platform.jwks_url, "b")
    assert len(platform.fetches) == 4


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

    class Platforms:
        def send(self, request: HttpRequest) -> HttpResponse:
            fetched.append(request.url)
            return HttpResponse(200, (("Cache-Control", "max-age=600"),), json.dumps(served[request.url]).encode())

    cache = PlatformKeyCache(Platforms(), now=clock)
    cache.key_for("https://a.example/jwks", platform.key.kid)
    with refused("unknown_kid", 401):  # the same kid is not in b's set
        cache.key_for("https://b.example/jwks", platform.key.kid)
    assert fetched == ["https://a.example/jwks", "https://b.example/jwks"]
    assert cache.key_for("https://a.example/jwks", platform.key.kid).as_dict()["n"] == _n(platform.key)
    assert len(fetched) == 2


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        TransportError(detail="connection refused"),
        TransportError(detail="timed out"),
        HttpResponse(503, body=b"busy"),
        HttpResponse(404),
    ],
    ids=["refused", "timeout", "503", "404"],
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
    [TransportError(detail="connection refused"), HttpResponse(500, body=b"oops"), HttpResponse(302)],
    ids=["refused", "500", "redirect"],
)
def test_fetch_failure_with_nothing_cached(failure, key_cache, platform, refused):
    platform.failure = failure
    with refused("platform_jwks_unreachable", 502) as caught:
        key_cache.key_for(platform.jwks_url, platform.key.kid)
    assert isinstance(caught[0], ServiceUnavailable)


def test_no_transport_and_nothing_cached(platform, clock, refused):
    cache = PlatformKeyCache(None, now=clock)
    with refused("platform_jwks_unreachable", 502):
        cache.key_for(platform.jwks_url, platform.key.kid)


@pytest.mark.parametrize(
    "body",
    [b"<html>Moodle is down for maintenance</html>", b"", b"[]", b'{"keys": {}}', b'{"key": []}', b"null"],
    ids=["html", "empty", "list", "keys-object", "no-keys", "null"],
)
def test_malformed_jwks(body, platform, refused):
    platform.failure = HttpResponse(200, body=body)
    cache = PlatformKeyCache(platform)
    with refused("platform_jwks_invalid", 502):
        cache.key_for(platform.jwks_url, platform.key.kid)


def test_malformed_jwks_after_good_ones_keeps_the_old_keys_and_is_rate_limited(key_cache, platform, clock):
    """A 200 that is not a key set (a proxy's or maintenance HTML page) is a failed fetch like a 503:
    the known keys keep being served, and the platform is not asked again on every launch."""
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    clock.advance(3600)
    platform.failure = HttpResponse(200, (("Content-Type", "text/html"),), b"<html>Site under maintenance</html>")
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
    cache = PlatformKeyCache(platform, now=clock)
    with refused("unknown_kid", 401):
        cache.key_for(platform.jwks_url, platform.key.kid)


# -- the sans-IO path -------------------------------------------------------------------------


def test_sans_io_plan_accept_resolve(platform, clock, second_key, refused):
    cache = PlatformKeyCache(now=clock)  # no transport: the host does the I/O
    url = platform.jwks_url
    assert cache.plan(url, platform.key.kid) is None  # nothing cached: fetch now
    cache.accept(url, HttpResponse(200, (("Cache-Control", "max-age=60"),), platform.jwks_body()))
    key = cache.resolve(url, platform.key.kid)
    assert key.as_dict()["n"] == _n(platform.key)
    assert cache.plan(url, platform.key.kid) is key  # fresh: no fetch
    assert cache.cached_key(url, platform.key.kid) is key

    assert cache.plan(url, second_key.kid) is None  # unknown kid: one refetch allowed
    cache.accept(url, HttpResponse(200, body=platform.jwks_body()))  # still not there
    with refused("unknown_kid", 401):
        cache.resolve(url, second_key.kid)
    with refused("unknown_kid", 401):  # rate-limited: plan refuses without asking for a fetch
        cache.plan(url, second_key.kid)
    for n in range(BUDGET - 1):  # other unknown kids share the rest of the budget
        assert cache.plan(url, f"other-{n}") is None
    with refused("unknown_kid", 401):
        cache.plan(url, "one-too-many")

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
        cache.accept(platform.jwks_url, HttpResponse(500))
    with refused("platform_jwks_invalid", 502):
        cache.accept(platform.jwks_url, HttpResponse(200, body=b"garbage"))
    with refused("unknown_kid", 401):
        cache.resolve(platform.jwks_url, platform.key.kid)


@pytest.mark.parametrize("error", [RuntimeError("bug in the host's driver"), OSError("a driver breaking the contract")])
def test_errors_other_than_transport_errors_are_not_swallowed(error, platform, clock):
    platform.failure = error
    cache = PlatformKeyCache(platform, now=clock)
    with pytest.raises(type(error)):
        cache.key_for(platform.jwks_url, platform.key.kid)


# -- the request and the response, as plain data --------------------------------------------


def test_the_key_set_request():
    request = build_key_set_request("https://moodle.example/mod/lti/certs.php")
    assert request == HttpRequest(
        "GET",
        "https://moodle.example/mod/lti/certs.php",
        (("Accept", "application/json"), ("User-Agent", "lti-publish")),
        b"",
        5.0,
    )
    assert request.header("accept") == "application/json"
    assert request.header("Authorization") is None
    hash(request)  # frozen, hashable plain data


def test_transport_errors_are_service_unavailable():
    error = TransportError(detail="connection refused")
    assert isinstance(error, ServiceUnavailable)
    assert (error.status, error.reason) == (502, "platform_unreachable")


def test_response_headers_are_case_insensitive_and_may_repeat():
    response = HttpResponse(200, (("link", "<a>; rel=next"), ("Link", "<b>; rel=last"), ("Cache-Control", "max-age=5")))
    assert response.header("LINK") == "<a>; rel=next"
    assert [v for k, v in response.headers if k.lower() == "link"] == ["<a>; rel=next", "<b>; rel=last"]
    assert max_age(response.headers, 300.0, 86400.0) == 5.0


def test_accept_takes_the_headers_of_the_response(platform, clock):
    cache = PlatformKeyCache(now=clock)
    cache.accept(platform.jwks_url, HttpResponse(200, (("cache-control", "max-age=42"),), platform.jwks_body()))
    clock.advance(41)
    assert cache.cached_key(platform.jwks_url, platform.key.kid) is not None
    clock.advance(1)
    assert cache.cached_key(platform.jwks_url, platform.key.kid) is None
