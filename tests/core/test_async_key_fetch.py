"""The sans-IO path an asynchronous host (the hub) drives: ask which key set to fetch, fetch it
itself, hand it to the cache, then validate with no I/O. Also: registrations open to any deployment."""

from __future__ import annotations

import dataclasses

from lti_core.lti13.binding import BrowserEvidence
from lti_core.lti13.jwks import PlatformKeyCache, build_key_set_request
from lti_core.lti13.launch import LaunchValidator


def test_cold_cache_names_the_key_set_then_validate_does_no_io(store, platform, state, tool, clock):
    keys = PlatformKeyCache(None, now=clock)  # no transport: validate must never need one
    validator = LaunchValidator(store, keys, tool_base_urls=[tool.base_url], now=clock)
    token = platform.token(state)
    assert validator.key_set_to_fetch(token, state.state) == (platform.jwks_url, platform.key.kid)
    keys.accept(platform.jwks_url, platform.send(build_key_set_request(platform.jwks_url)))
    assert validator.key_set_to_fetch(token, state.state) is None  # steady state: nothing to fetch
    launch = validator.validate(token, state.state, BrowserEvidence(cookie_states=frozenset({state.state})))
    assert launch.platform_user_id == "2"
    assert len(platform.fetches) == 1


def test_nothing_to_fetch_for_what_validate_will_refuse_anyway(store, platform, state, tool, clock):
    validator = LaunchValidator(store, PlatformKeyCache(None, now=clock), tool_base_urls=[tool.base_url], now=clock)
    token = platform.token(state)
    assert validator.key_set_to_fetch("not.a.token", state.state) is None
    assert validator.key_set_to_fetch(token, "unknown-state") is None
    assert validator.key_set_to_fetch(token, "") is None
    assert validator.key_set_to_fetch("", state.state) is None
    assert platform.fetches == []


def test_registration_open_to_any_deployment(platform):
    registration = dataclasses.replace(platform.registration(), deployments=(), any_deployment=True)
    assert registration.has_deployment("42")
    assert not registration.has_deployment("")
    assert not dataclasses.replace(registration, any_deployment=False).has_deployment("42")


def test_validate_after_key_set_to_fetch_reads_state_and_registration_once(store, platform, state, tool, clock):
    reads: list[str] = []
    get_state, get_registration = store.get_state, store.get_registration
    store.get_state = lambda *a: reads.append("state") or get_state(*a)  # type: ignore[method-assign]
    store.get_registration = lambda *a: reads.append("registration") or get_registration(*a)  # type: ignore[method-assign]
    keys = PlatformKeyCache(platform, now=clock)
    validator = LaunchValidator(store, keys, tool_base_urls=[tool.base_url], now=clock)
    token = platform.token(state)
    validator.key_set_to_fetch(token, state.state)
    assert (
        validator.validate(token, state.state, BrowserEvidence(cookie_states=frozenset({state.state}))).platform_user_id
        == "2"
    )
    assert reads == ["state", "registration"]
