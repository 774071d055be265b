"""OidcLogin.begin: Moodle's login initiation POST in, the redirect to the platform's auth URL out."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from lti_core.errors import LtiError
from lti_core.lti13.binding import BrowserEvidence, origin_of
from lti_core.lti13.login import OidcLogin, parse_login_request
from lti_core.types import Deployment, OidcState, RegistrationStatus


def _query(url: str) -> dict[str, str]:
    parsed = parse_qs(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)
    assert all(len(v) == 1 for v in parsed.values()), parsed  # no parameter twice
    return {k: v[0] for k, v in parsed.items()}


def test_moodle_login_initiation_redirects_to_the_auth_url(oidc_login, login_params, platform, tool, store, clock):
    redirect = oidc_login.begin(login_params)

    parts = urlsplit(redirect.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == platform.auth_url
    query = _query(redirect.url)
    assert query == {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": tool.launch_url,
        "login_hint": "2",
        "lti_message_hint": '{"cmid":7,"launchid":"ltilaunch1_1234567890"}',
        "state": redirect.state.state,
        "nonce": redirect.state.nonce,
    }
    assert redirect.state == OidcState(
        state=query["state"],
        nonce=query["nonce"],
        issuer=platform.issuer,
        client_id=platform.client_id,
        target_link_uri=tool.content_url,
        expires_at=clock() + 600,
        login_hint=login_params["login_hint"],
        lti_message_hint=login_params["lti_message_hint"],
        deployment_id=login_params["lti_deployment_id"],
    )
    assert store.get_state(query["state"], clock()) == redirect.state
    # Besides the state, at most the random sweep (test_logins_sweep_expired_states_and_nonces).
    assert [name for name, _ in store.writes if name != "purge_expired"] == ["save_state"]
    assert redirect.lti_storage_target == ""


def test_state_and_nonce_are_fresh_and_unguessable(oidc_login, login_params):
    redirects = [oidc_login.begin(login_params) for _ in range(5)]
    values = [r.state.state for r in redirects] + [r.state.nonce for r in redirects]
    assert len(set(values)) == 10
    assert all(len(v) >= 32 for v in values)


def test_state_expires_after_its_ttl(store, tool, login_params, clock):
    login = OidcLogin(store, tool_base_urls=[tool.base_url], redirect_uri=tool.launch_url, state_ttl=120, now=clock)
    state = login.begin(login_params).state
    assert state.expires_at == clock() + 120
    clock.advance(119)
    assert store.get_state(state.state, clock()) == state
    clock.advance(1)
    assert store.get_state(state.state, clock()) is None


def test_auth_url_query_string_is_kept(store, platform, oidc_login, login_params):
    store.save_registration(platform.registration(auth_login_url="https://lms.example/auth?tenant=42&x=a%20b#frag"))
    redirect = oidc_login.begin(login_params)
    parts = urlsplit(redirect.url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", "lms.example", "/auth", "frag")
    assert parts.query.startswith("tenant=42&x=a%20b&")
    query = _query(redirect.url)
    assert (query["tenant"], query["x"], query["state"]) == ("42", "a b", redirect.state.state)
    assert query["client_id"] == platform.client_id


def test_login_without_lti_message_hint(oidc_login, login_params):
    del login_params["lti_message_hint"]
    assert "lti_message_hint" not in _query(oidc_login.begin(login_params).url)


def test_hints_are_encoded(oidc_login, login_params):
    login_params["login_hint"] = "a&b=c d/é"
    login_params["lti_message_hint"] = "x#y?z&state=forged"
    query = _query(oidc_login.begin(login_params).url)
    assert query["login_hint"] == "a&b=c d/é"
    assert query["lti_message_hint"] == "x#y?z&state=forged"
    assert query["state"] != "forged"


def test_lti_storage_target_is_passed_through(oidc_login, login_params):
    login_params["lti_storage_target"] = "_parent"
    assert oidc_login.begin(login_params).lti_storage_target == "_parent"


def test_login_by_get_with_only_the_required_parameters(oidc_login, platform, tool):
    """Canvas-style GET initiation: no client_id, no deployment; one registration makes it unambiguous."""
    redirect = oidc_login.begin({"iss": platform.issuer, "login_hint": "u-9", "target_link_uri": tool.content_url})
    assert _query(redirect.url)["client_id"] == platform.client_id
    assert redirect.state.client_id == platform.client_id


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iss", "login_hint", "target_link_uri"])
@pytest.mark.parametrize("value", [None, "", "   "], ids=["absent", "empty", "blank"])
def test_missing_required_parameter(name, value, oidc_login, login_params, store, refused):
    if value is None:
        del login_params[name]
    else:
        login_params[name] = value
    with refused(f"{name}_missing", 400):
        oidc_login.begin(login_params)
    assert store.writes == []


def test_unknown_platform(oidc_login, login_params, store, refused):
    login_params["iss"] = "https://unknown.example"
    with refused("unknown_platform", 401):
        oidc_login.begin(login_params)
    assert store.writes == []


def test_unknown_client_id_of_a_known_issuer(oidc_login, login_params, store, refused):
    login_params["client_id"] = "not-our-client"
    with refused("unknown_platform", 401):
        oidc_login.begin(login_params)
    assert store.writes == []


def test_client_id_omitted_with_two_registrations_is_refused(oidc_login, login_params, store, platform, refused):
    store.save_registration(platform.registration(client_id="second-tool-type"))
    del login_params["client_id"]
    store.writes.clear()
    with refused("unknown_platform", 401):
        oidc_login.begin(login_params)
    assert store.writes == []
    # Naming the client picks the right one.
    login_params["client_id"] = "second-tool-type"
    assert oidc_login.begin(login_params).state.client_id == "second-tool-type"


def test_unknown_deployment(oidc_login, login_params, store, refused):
    login_params["lti_deployment_id"] = "3"
    with refused("unknown_deployment", 403):
        oidc_login.begin(login_params)
    assert store.writes == []


def test_deployment_of_another_registration_is_unknown(oidc_login, login_params, store, platform, refused):
    store.save_registration(platform.registration(client_id="other", deployments=(Deployment("9"),)))
    store.writes.clear()
    login_params["lti_deployment_id"] = "9"
    with refused("unknown_deployment", 403):
        oidc_login.begin(login_params)


def test_deployment_omitted_is_accepted(oidc_login, login_params):
    del login_params["lti_deployment_id"]
    assert oidc_login.begin(login_params).state.client_id


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/lti_publish/content/intro/",
        "http://tool.example/lti_publish/content/intro/",
        "https://tool.example@evil.example/lti_publish/content/intro/",
        "https://tool.example/lti_publishX/content/intro/",
        "https://tool.example\\evil.example/lti_publish/",
        "/lti_publish/content/intro/",
    ],
)
def test_target_outside_the_tool(target, oidc_login, login_params, store, refused):
    login_params["target_link_uri"] = target
    with refused("target_link_outside_tool", 403):
        oidc_login.begin(login_params)
    assert store.writes == []


def test_target_is_checked_before_the_platform(oidc_login, login_params, refused):
    """An unregistered sender learns nothing about which issuers are registered from an outside target."""
    login_params.update(iss="https://unknown.example", target_link_uri="https://evil.example/")
    with refused("target_link_outside_tool", 403):
        oidc_login.begin(login_params)


def test_parse_login_request_strips_and_defaults():
    request = parse_login_request({"iss": " https://moodle.example ", "login_hint": "2", "target_link_uri": "t"})
    assert (request.issuer, request.client_id, request.deployment_id, request.lti_message_hint) == (
        "https://moodle.example",
        "",
        "",
        "",
    )


def test_login_then_launch_round_trip(oidc_login, login_params, validator, platform, store):
    """The state the login saved is the one the launch is validated against, through the redirect URL only."""
    redirect = oidc_login.begin(login_params)
    query = _query(redirect.url)
    state = OidcState(
        query["state"], query["nonce"], platform.issuer, platform.client_id, login_params["target_link_uri"], 0
    )
    launch = validator.validate(
        platform.token(state), query["state"], BrowserEvidence(cookie_states=frozenset({query["state"]}))
    )
    assert (launch.platform_user_id, launch.target_link_uri) == ("2", login_params["target_link_uri"])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("login_hint", "x" * 20_000),
        ("iss", "https://moodle.example/" + "a" * 2000),
        ("target_link_uri", "https://tool.example/" + "a" * 3000),
        ("lti_message_hint", "m" * 10_000),
        ("client_id", "c" * 300),
        ("lti_deployment_id", "d" * 300),
        ("lti_storage_target", "t" * 300),
        ("login_hint", "line\nbreak"),
        ("lti_message_hint", "nul\x00"),
    ],
)
def test_oversized_or_unprintable_login_parameters_are_refused_with_a_reason(
    name, value, oidc_login, login_params, store, refused
):
    with refused(f"{name}_invalid", 400):
        oidc_login.begin({**login_params, name: value})
    assert store.writes == []


def test_platform_storage_login_keeps_the_target_and_the_platform_origin(oidc_login, login_params, platform):
    redirect = oidc_login.begin({**login_params, "lti_storage_target": "_parent"})
    assert redirect.uses_platform_storage
    assert redirect.state.storage_target == "_parent"
    assert redirect.platform_origin == origin_of(platform.auth_url)


@pytest.mark.parametrize(
    ("name", "value"),
    [("lti_message_hint", "é" * 4097), ("lti_message_hint", "&" * 8192), ("login_hint", "💥" * 1400)],
)
def test_a_redirect_too_long_for_proxies_is_refused_before_anything_is_saved(
    name, value, oidc_login, login_params, store, refused
):
    """Within each parameter's limit, but percent-encoded past what proxies and Django pass on."""
    with refused("login_request_too_large", 400):
        oidc_login.begin({**login_params, name: value})
    assert store.writes == []


def test_logins_sweep_expired_states_and_nonces(login_params, platform, tool, store, clock):
    """One login in ``sweep_one_in`` drops what expired; the tables stay small without a scheduler."""
    old = OidcLogin(store, tool_base_urls=[tool.base_url], redirect_uri=tool.launch_url, now=clock, sweep_one_in=10**9)
    expired = old.begin(login_params).state
    assert store.consume_nonce("scope", "used", clock() + 1, clock())
    clock.advance(3600)
    sweeping = OidcLogin(store, tool_base_urls=[tool.base_url], redirect_uri=tool.launch_url, now=clock, sweep_one_in=1)
    fresh = sweeping.begin(login_params).state
    assert ("purge_expired", (clock(),)) in store.writes
    assert store.get_state(expired.state, 0) is None  # gone, however early one asks
    assert store.get_state(fresh.state, clock()) == fresh
    assert store.consume_nonce("scope", "used", clock() + 1, clock())  # its record went with the sweep


@pytest.mark.parametrize(
    ("status", "reason"),
    [(RegistrationStatus.PENDING, "registration_pending"), (RegistrationStatus.DISABLED, "registration_disabled")],
)
def test_a_registration_that_is_not_active_starts_no_login(oidc_login, login_params, platform, store, status, reason):
    store.save_registration(platform.registration(status=status))
    store.writes.clear()
    for params in (login_params, {k: v for k, v in login_params.items() if k != "client_id"}):
        with pytest.raises(LtiError) as refused:
            oidc_login.begin(params)
        assert (refused.value.status, refused.value.reason) == (403, reason)
    assert store.writes == []


def test_without_client_id_the_issuers_one_active_registration_is_meant(oidc_login, login_params, platform, store):
    store.save_registration(platform.registration(client_id="pending-one", status=RegistrationStatus.PENDING))
    params = {k: v for k, v in login_params.items() if k != "client_id"}
    assert oidc_login.begin(params).state.client_id == platform.client_id
    store.save_registration(platform.registration(client_id="second"))
    with pytest.raises(LtiError, match="unknown_platform"):
        oidc_login.begin(params)  # two active ones: which is meant cannot be told
