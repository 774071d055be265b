"""LaunchValidator.validate: a Moodle-shaped LTI 1.3 launch, and one refusal per check.

Every refusal asserts the exact reason and HTTP status, and that nothing was written: the store saw no
write call at all, and a valid launch with the same state and nonce still succeeds afterwards (so the
nonce was not consumed). Tokens are signed with pyjwt, or by hand for the attacks pyjwt will not make.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import threading
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from jwt.algorithms import RSAAlgorithm
from jwt.utils import base64url_encode

from lti_core.errors import LtiError, NotFound
from lti_core.lti13 import claims as c
from lti_core.lti13.binding import (
    Binding,
    BrowserCheckRequired,
    BrowserEvidence,
    is_same_origin_request,
    origin_of,
)
from lti_core.lti13.jwks import PlatformKeyCache
from lti_core.lti13.launch import MAX_TOKEN_LENGTH, LaunchValidator
from lti_core.types import Launch, OidcState, RegistrationStatus, Role

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
MOODLE_ADMIN_ROLES = (INSTITUTION + "Administrator", MEMBERSHIP + "Instructor", SYSTEM + "Administrator")
LEEWAY = 10  # LaunchValidator's default


def cookie(state: str) -> BrowserEvidence:
    """A browser that holds the state cookie of ``state`` (the usual, bound launch)."""
    return BrowserEvidence(cookie_states=frozenset({state}))


def _segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64url_encode(raw).decode("ascii")


def _hand_signed(header: dict[str, Any], payload: Any, private_key: Any) -> str:
    """An RS256 compact JWS built by hand, for headers pyjwt refuses to write."""
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input.encode(), private_key)
    return f"{signing_input}.{base64url_encode(signature).decode()}"


@pytest.fixture
def nothing_written(validator: LaunchValidator, platform: Any, state: OidcState, store: Any) -> Callable[[], Launch]:
    """Asserts the store saw no write, then that a valid launch with the same state and nonce succeeds."""

    def check() -> Launch:
        assert store.writes == []
        assert store.get_user_link(platform.issuer, "2") is None
        launch = validator.validate(platform.token(state), state.state, cookie(state.state))
        assert launch.platform_user_id == "2"
        assert [name for name, _ in store.writes] == ["consume_nonce", "delete_state"]
        return launch

    return check


# -- the good launch --------------------------------------------------------------------------


def test_moodle_launch_gives_a_launch_with_the_platform_fields(validator, platform, state, store, tool, clock):
    token = platform.token(state)
    clock.advance(59)  # Moodle's tokens live 60 s

    launch = validator.validate(token, state.state, cookie(state.state))

    assert launch.lti_version == "1.3.0"
    assert launch.platform == "https://moodle.example"
    assert launch.platform_user_id == "2"
    assert launch.client_id == platform.client_id
    assert launch.deployment_id == "2"
    assert launch.roles == MOODLE_ADMIN_ROLES
    assert launch.role is Role.STAFF
    assert launch.resource_link_id == "1"
    assert launch.resource_link_title == "Published content"
    assert launch.target_link_uri == tool.content_url
    assert (launch.context_id, launch.context_title) == ("2", "Test course 101")
    assert (launch.given_name, launch.family_name, launch.name) == ("Admin", "User", "Admin User")
    assert launch.email == "admin@example.com"
    assert launch.locale == "en"
    assert launch.custom == {"content_id": "intro"}
    assert launch.raw[c.AGS_ENDPOINT]["lineitem"].endswith("/lineitems/1/lineitem?type_id=2")
    assert launch.raw["nonce"] == state.nonce
    # The one write: the nonce, scoped to the issuer, kept until the token can no longer be accepted.
    start = clock() - 59
    assert store.writes == [
        ("consume_nonce", ("lti13:https://moodle.example", state.nonce, start + 60 + LEEWAY, clock())),
        ("delete_state", (state.state,)),
    ]


def test_learner_launch_is_a_learner(validator, platform, state):
    token = platform.token(state, sub="5", roles=[MEMBERSHIP + "Learner"], given_name="Sam", name="Sam Student")
    launch = validator.validate(token, state.state, cookie(state.state))
    assert (launch.platform_user_id, launch.roles, launch.role) == ("5", (MEMBERSHIP + "Learner",), Role.LEARNER)
    assert launch.given_name == "Sam"


def test_learner_with_institution_administrator_role_stays_a_learner(validator, platform, state):
    token = platform.token(state, roles=[INSTITUTION + "Administrator", MEMBERSHIP + "Learner"])
    assert validator.validate(token, state.state, cookie(state.state)).role is Role.LEARNER


def test_empty_roles_list_is_accepted_as_learner(validator, platform, state):
    launch = validator.validate(platform.token(state, roles=[]), state.state, cookie(state.state))
    assert (launch.roles, launch.role) == ((), Role.LEARNER)


def test_roles_that_are_not_strings_are_left_out(validator, platform, state):
    launch = validator.validate(
        platform.token(state, roles=[7, None, MEMBERSHIP + "Learner"]), state.state, cookie(state.state)
    )
    assert (launch.roles, launch.role) == ((MEMBERSHIP + "Learner",), Role.LEARNER)


def test_optional_claims_may_be_missing_or_odd(validator, platform, state):
    token = platform.token(
        state,
        drop=("context", "launch_presentation", "given_name", "family_name", "name", "email"),
        custom={"n": 5, "flag": True},
        locale="fr-CA",
    )
    launch = validator.validate(token, state.state, cookie(state.state))
    assert (launch.context_id, launch.context_title, launch.given_name, launch.email) == ("", "", "", "")
    assert launch.locale == "fr-CA"  # the top-level OIDC locale when launch_presentation has none
    assert launch.custom == {"n": "5", "flag": "True"}


def test_token_is_accepted_until_exp_plus_leeway(validator, platform, state, clock):
    token = platform.token(state)
    clock.advance(60 + LEEWAY - 1)
    assert validator.validate(token, state.state, cookie(state.state)).platform_user_id == "2"


def test_several_audiences_with_our_azp_pass(validator, platform, state):
    token = platform.token(state, aud=["another-tool", platform.client_id], azp=platform.client_id)
    assert validator.validate(token, state.state, cookie(state.state)).client_id == platform.client_id


def test_single_audience_with_our_azp_passes(validator, platform, state):
    token = platform.token(state, aud=platform.client_id, azp=platform.client_id)
    assert validator.validate(token, state.state, cookie(state.state)).client_id == platform.client_id


def test_iat_within_leeway_in_the_future_passes(validator, platform, state, clock):
    iat = int(clock()) + LEEWAY
    assert (
        validator.validate(
            platform.token(state, iat=iat, exp=iat + 60), state.state, cookie(state.state)
        ).platform_user_id
        == "2"
    )


# -- refusals from the claims -----------------------------------------------------------------


def _claims(*drop: str, **overrides: Any) -> Callable[[Any, OidcState], tuple[dict[str, Any], tuple[str, ...]]]:
    return lambda _platform, _state: (overrides, drop)


CLAIM_REFUSALS = [
    pytest.param(_claims(iss="https://evil.example"), "wrong_issuer", 401, id="iss-other"),
    pytest.param(_claims(iss="https://moodle.example/"), "wrong_issuer", 401, id="iss-trailing-slash"),
    pytest.param(_claims("iss"), "wrong_issuer", 401, id="iss-missing"),
    pytest.param(_claims(aud="another-tool"), "wrong_audience", 401, id="aud-other"),
    pytest.param(_claims(aud=["another-tool", "third-tool"]), "wrong_audience", 401, id="aud-list-without-us"),
    pytest.param(_claims("aud"), "wrong_audience", 401, id="aud-missing"),
    pytest.param(lambda p, s: ({"aud": p.client_id.upper()}, ()), "wrong_audience", 401, id="aud-case"),
    pytest.param(lambda p, s: ({"aud": {"id": p.client_id}}, ()), "wrong_audience", 401, id="aud-object"),
    pytest.param(lambda p, s: ({"aud": [p.client_id, "another-tool"]}, ()), "azp_mismatch", 401, id="auds-no-azp"),
    pytest.param(
        lambda p, s: ({"aud": [p.client_id, "another-tool"], "azp": "another-tool"}, ()),
        "azp_mismatch",
        401,
        id="auds-other-azp",
    ),
    pytest.param(lambda p, s: ({"azp": "another-tool"}, ()), "azp_mismatch", 401, id="aud-other-azp"),
    pytest.param(lambda p, s: ({"exp": int(p.clock()) - LEEWAY}, ()), "token_expired", 401, id="exp-past-leeway"),
    pytest.param(
        lambda p, s: ({"iat": int(p.clock()) + LEEWAY + 1, "exp": int(p.clock()) + LEEWAY + 61}, ()),
        "issued_in_future",
        401,
        id="iat-future",
    ),
    pytest.param(_claims("exp"), "id_token_malformed", 400, id="exp-missing"),
    pytest.param(_claims("iat"), "id_token_malformed", 400, id="iat-missing"),
    pytest.param(_claims(exp="9999999999"), "id_token_malformed", 400, id="exp-string"),
    pytest.param(_claims(nonce="another-nonce"), "nonce_mismatch", 401, id="nonce-other"),
    pytest.param(_claims("nonce"), "nonce_mismatch", 401, id="nonce-missing"),
    pytest.param(_claims("version"), "invalid_version", 400, id="version-missing"),
    pytest.param(_claims(version="1.1"), "invalid_version", 400, id="version-1.1"),
    pytest.param(_claims(version=1.3), "invalid_version", 400, id="version-number"),
    pytest.param(_claims("message_type"), "unsupported_message_type", 400, id="message-type-missing"),
    pytest.param(_claims(message_type="LtiDeepLinkingRequest"), "unsupported_message_type", 400, id="deep-linking"),
    pytest.param(_claims(message_type="ltiresourcelinkrequest"), "unsupported_message_type", 400, id="type-case"),
    pytest.param(_claims(deployment_id="3"), "unknown_deployment", 403, id="deployment-other"),
    pytest.param(_claims(deployment_id=2), "unknown_deployment", 403, id="deployment-int"),
    pytest.param(_claims("deployment_id"), "unknown_deployment", 403, id="deployment-missing"),
    pytest.param(_claims("sub"), "sub_missing", 400, id="sub-missing"),
    pytest.param(_claims(sub=""), "sub_missing", 400, id="sub-empty"),
    pytest.param(_claims(sub=2), "sub_missing", 400, id="sub-int"),
    pytest.param(_claims("roles"), "roles_missing", 400, id="roles-missing"),
    pytest.param(_claims(roles=MEMBERSHIP + "Learner"), "roles_missing", 400, id="roles-string"),
    pytest.param(_claims(roles=None), "roles_missing", 400, id="roles-null"),
    pytest.param(_claims("resource_link"), "resource_link_missing", 400, id="link-missing"),
    pytest.param(_claims(resource_link={"title": "x"}), "resource_link_missing", 400, id="link-no-id"),
    pytest.param(_claims(resource_link={"id": ""}), "resource_link_missing", 400, id="link-empty-id"),
    pytest.param(_claims(resource_link={"id": 1}), "resource_link_missing", 400, id="link-int-id"),
    pytest.param(_claims(resource_link="1"), "resource_link_missing", 400, id="link-string"),
    pytest.param(_claims("target_link_uri"), "target_link_outside_tool", 403, id="target-missing"),
]

TARGET_TRICKS = [
    "https://evil.example/lti_publish/content/intro/",
    "https://tool.example@evil.example/lti_publish/content/intro/",
    "https://tool.example.evil.example/lti_publish/content/intro/",
    "http://tool.example/lti_publish/content/intro/",
    "https://tool.example:8443/lti_publish/content/intro/",
    "https://tool.example/lti_publishX/content/intro/",
    "https://tool.example/lti_publish-admin/",
    "https://tool.example/",
    "https://tool.example\\@evil.example/lti_publish/content/intro/",
    "https://tool.example/lti_publish\\..\\admin",
    "https://tool.example/lti_publish/content/intro/\r\nSet-Cookie: x=1",
    "//tool.example/lti_publish/content/intro/",
    "/lti_publish/content/intro/",
    "javascript:alert(1)//tool.example/lti_publish/",
]
for _target in TARGET_TRICKS:
    CLAIM_REFUSALS.append(
        pytest.param(_claims(target_link_uri=_target), "target_link_outside_tool", 403, id=f"target:{_target}")
    )
CLAIM_REFUSALS.append(pytest.param(_claims(target_link_uri=7), "target_link_outside_tool", 403, id="target-int"))


@pytest.mark.parametrize(("change", "reason", "status"), CLAIM_REFUSALS)
def test_claim_refusal_writes_nothing(change, reason, status, validator, platform, state, refused, nothing_written):
    overrides, drop = change(platform, state)
    token = platform.token(state, drop=drop, **overrides)
    with refused(reason, status):
        validator.validate(token, state.state, cookie(state.state))
    nothing_written()


def test_expired_beyond_leeway(validator, platform, state, clock, refused, nothing_written):
    token = platform.token(state)
    clock.advance(60 + LEEWAY)
    with refused("token_expired", 401):
        validator.validate(token, state.state, cookie(state.state))
    nothing_written()


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["NaN", "Infinity"])
def test_non_json_numbers_in_exp_are_malformed(value, validator, platform, state, refused, nothing_written):
    """``NaN`` and ``Infinity`` are not JSON (RFC 8259), but Python's json module reads them; a token
    carrying them must be refused, not treated as a number that never compares as expired."""
    token = platform.token(state, exp=value)
    assert ("NaN" if math.isnan(value) else "Infinity") in jwt.utils.base64url_decode(token.split(".")[1]).decode()
    with refused("id_token_malformed", 400):
        validator.validate(token, state.state, cookie(state.state))
    nothing_written()


def test_token_with_nan_exp_cannot_be_replayed(validator, platform, state):
    """With ``exp: NaN`` the nonce is stored with a NaN expiry, which never compares as unexpired."""
    token = platform.token(state, exp=float("nan"))
    outcomes = []
    for _ in range(3):
        try:
            validator.validate(token, state.state, cookie(state.state))
            outcomes.append("accepted")
        except LtiError as exc:
            outcomes.append(exc.reason)
    assert outcomes.count("accepted") <= 1, outcomes


def test_forged_token_is_refused_for_its_signature_before_its_claims_are_read(
    validator, platform, state, rogue_key, refused, nothing_written
):
    token = platform.token(state, key=rogue_key, iss="https://evil.example", exp=0, nonce="x")
    with refused("bad_signature", 401):
        validator.validate(token, state.state, cookie(state.state))
    nothing_written()


# -- refusals from the signature --------------------------------------------------------------


def test_token_without_kid(validator, platform, state, refused, nothing_written):
    with refused("kid_missing", 401):
        validator.validate(platform.token(state, no_kid=True), state.state, cookie(state.state))
    assert platform.fetches == []
    nothing_written()


@pytest.mark.parametrize("kid", ["", 42, None], ids=["empty", "int", "null"])
def test_token_with_a_kid_that_is_not_a_string(kid, validator, platform, state, refused, nothing_written):
    token = _hand_signed({"alg": "RS256", "typ": "JWT", "kid": kid}, platform.claims(state), platform.key.private)
    with refused("kid_missing", 401):
        validator.validate(token, state.state, cookie(state.state))
    nothing_written()


def test_unknown_kid_is_refetched_once_then_refused(
    validator, key_cache, platform, state, clock, refused, nothing_written
):
    key_cache.key_for(platform.jwks_url, platform.key.kid)  # the key set is cached, as after earlier launches
    assert len(platform.fetches) == 1

    with refused("unknown_kid", 401):
        validator.validate(platform.token(state, kid="moodle-key-9"), state.state, cookie(state.state))
    assert len(platform.fetches) == 2  # exactly one refetch

    clock.advance(9)
    with refused("unknown_kid", 401):  # the same unknown kid inside the refetch interval: no new fetch
        validator.validate(platform.token(state, kid="moodle-key-9"), state.state, cookie(state.state))
    assert len(platform.fetches) == 2

    nothing_written()
    assert len(platform.fetches) == 2  # the known key came from the cache


def test_unknown_kid_on_a_cold_cache(validator, platform, state, clock, refused, nothing_written):
    """The first fetch is routine; the unknown kid then earns one refetch, and no more for 10 s."""
    for _ in range(3):
        with refused("unknown_kid", 401):
            validator.validate(platform.token(state, kid="moodle-key-9"), state.state, cookie(state.state))
    assert platform.fetches == [platform.jwks_url] * 2
    clock.advance(10)
    with refused("unknown_kid", 401):
        validator.validate(platform.token(state, kid="moodle-key-9"), state.state, cookie(state.state))
    assert len(platform.fetches) == 3
    nothing_written()


def test_rotated_platform_key_is_picked_up_at_once(validator, key_cache, platform, state, rogue_key):
    key_cache.key_for(platform.jwks_url, platform.key.kid)  # a routine fetch just happened
    new_key = dataclasses.replace(rogue_key, kid="moodle-key-2")
    platform.published = [platform.key, new_key]
    launch = validator.validate(platform.token(state, key=new_key), state.state, cookie(state.state))
    assert launch.platform_user_id == "2"
    assert len(platform.fetches) == 2


def test_signature_by_another_key_under_the_same_kid(validator, platform, state, rogue_key, refused, nothing_written):
    with refused("bad_signature", 401):
        validator.validate(platform.token(state, key=rogue_key), state.state, cookie(state.state))
    nothing_written()


def test_payload_changed_after_signing(validator, platform, state, refused, nothing_written):
    header, _, signature = platform.token(state, sub="5").split(".")
    forged_payload = _segment(platform.claims(state, sub="1"))
    with refused("bad_signature", 401):
        validator.validate(f"{header}.{forged_payload}.{signature}", state.state, cookie(state.state))
    nothing_written()


def test_alg_none(validator, platform, state, refused, nothing_written):
    token = jwt.encode(platform.claims(state), None, algorithm="none", headers={"kid": platform.key.kid})
    assert token.endswith(".")
    with refused("alg_not_allowed", 401):
        validator.validate(token, state.state, cookie(state.state))
    assert platform.fetches == []
    nothing_written()


def test_hs256_with_the_platform_public_key_as_hmac_secret(validator, platform, state, refused, nothing_written):
    """Key confusion: an attacker HMACs with the public key, hoping the tool feeds its RSA key to HS256."""
    signing_input = (
        f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': platform.key.kid})}.{_segment(platform.claims(state))}"
    )
    mac = hmac.new(platform.key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64url_encode(mac).decode()}"
    with refused("alg_not_allowed", 401):
        validator.validate(token, state.state, cookie(state.state))
    assert platform.fetches == []
    nothing_written()


@pytest.mark.parametrize("algorithm", ["RS512", "PS256"])
def test_other_rsa_algorithms_with_the_right_key(algorithm, validator, platform, state, refused, nothing_written):
    token = platform.sign(platform.claims(state), algorithm=algorithm)
    with refused("alg_not_allowed", 401):
        validator.validate(token, state.state, cookie(state.state))
    nothing_written()


def test_header_without_alg(validator, platform, state, refused, nothing_written):
    token = f"{_segment({'kid': platform.key.kid})}.{_segment(platform.claims(state))}.c2ln"
    with refused("alg_not_allowed", 401):
        validator.validate(token, state.state, cookie(state.state))
    nothing_written()


# -- malformed tokens -------------------------------------------------------------------------

UNSIGNED_MALFORMED: list[Any] = [
    pytest.param(lambda p, s: "not-a-token", id="no-dots"),
    pytest.param(lambda p, s: "a.b", id="two-parts"),
    pytest.param(lambda p, s: p.token(s) + ".x", id="four-parts"),
    pytest.param(lambda p, s: "a.b.c", id="bad-base64-header"),
    pytest.param(lambda p, s: f"{_segment(b'not json')}.{_segment({})}.c2ln", id="header-not-json"),
    pytest.param(lambda p, s: f"{_segment([1, 2])}.{_segment({})}.c2ln", id="header-list"),
    pytest.param(lambda p, s: f"{_segment('RS256')}.{_segment({})}.c2ln", id="header-string"),
    pytest.param(lambda p, s: "é.é.é", id="non-ascii"),
    pytest.param(lambda p, s: p.token(s).rsplit(".", 1)[0] + ".a", id="bad-base64-signature"),
    pytest.param(lambda p, s: p.token(s, custom={"padding": "x" * MAX_TOKEN_LENGTH}), id="too-long"),
]


@pytest.mark.parametrize("make", UNSIGNED_MALFORMED)
def test_malformed_token_is_refused_before_any_key_lookup(make, validator, platform, state, refused, nothing_written):
    with refused("id_token_malformed", 400):
        validator.validate(make(platform, state), state.state, cookie(state.state))
    assert platform.fetches == []
    nothing_written()


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'"a string"', b"\xff\xfe"], ids=lambda p: repr(p))
def test_signed_payload_that_is_not_a_json_object(payload, validator, platform, state, refused, nothing_written):
    token = jwt.api_jws.encode(payload, platform.key.private, algorithm="RS256", headers={"kid": platform.key.kid})
    with refused("id_token_malformed", 400):
        validator.validate(token, state.state, cookie(state.state))
    nothing_written()


def test_missing_id_token(validator, state, refused, nothing_written):
    with refused("id_token_missing", 400):
        validator.validate("", state.state, cookie(state.state))
    nothing_written()


# -- the state and the nonce ------------------------------------------------------------------


def test_nonce_reused(validator, platform, state, refused, store):
    token = platform.token(state)
    validator.validate(token, state.state, cookie(state.state))
    with refused("state_unknown", 401):  # a state serves one launch
        validator.validate(token, state.state, cookie(state.state))
    store.save_state(state)  # as a racing launch that read the state before it went would see it
    with refused("nonce_reused", 401):
        validator.validate(token, state.state, cookie(state.state))
    with refused("nonce_reused", 401):  # and it stays used
        validator.validate(platform.token(state), state.state, cookie(state.state))


def test_nonce_of_one_login_cannot_be_used_with_the_state_of_another(
    validator, platform, state, oidc_login, login_params, refused, nothing_written
):
    other = oidc_login.begin(login_params).state
    with refused("nonce_mismatch", 401):
        validator.validate(platform.token(state), other.state, cookie(other.state))
    # The other login's nonce is untouched as well.
    assert validator.validate(platform.token(other), other.state, cookie(other.state)).platform_user_id == "2"


def test_state_missing(validator, platform, state, refused, nothing_written):
    with refused("state_missing", 400):
        validator.validate(platform.token(state), "", cookie(state.state))
    nothing_written()


def test_state_unknown(validator, platform, state, refused, nothing_written):
    with refused("state_unknown", 401):
        validator.validate(platform.token(state), "no-such-state", cookie("no-such-state"))
    nothing_written()


def test_state_expired(validator, platform, state, clock, refused, store):
    clock.advance(600)  # OidcLogin's default state lifetime
    with refused("state_unknown", 401):
        validator.validate(platform.token(state), state.state, cookie(state.state))
    assert store.writes == []


def test_state_not_bound_to_this_browser(validator, platform, state, refused, nothing_written):
    """The login-CSRF shape: another login's cookie, then the check page's same-origin re-post."""
    with pytest.raises(BrowserCheckRequired):
        validator.validate(platform.token(state), state.state, cookie("a-state-from-another-login"))
    repost = BrowserEvidence(cookie_states=frozenset({"a-state-from-another-login"}), repost=True, same_origin=True)
    with refused("state_not_bound", 403):
        validator.validate(platform.token(state), state.state, repost)
    nothing_written()


def test_a_browser_without_any_proof_gets_the_check_page_and_nothing_is_written(
    validator, platform, state, store, tool
):
    """The attack of the security test: the id_token and state of an attacker's login, posted by a
    browser holding no state cookie. Never accepted on the cookie-free path any more."""
    token = platform.token(state)
    with pytest.raises(BrowserCheckRequired) as needed:
        validator.validate(token, state.state, BrowserEvidence())
    check = needed.value.check
    assert (check.action, check.id_token, check.state) == (tool.launch_url, token, state.state)
    assert check.storage_target == "" and check.storage_key == ""
    assert store.writes == []


@pytest.mark.parametrize("same_origin", [False, True], ids=["forged-repost", "own-repost"])
def test_a_repost_without_proof_is_refused_with_a_relaunch(same_origin, validator, platform, state, refused):
    evidence = BrowserEvidence(repost=True, same_origin=same_origin, storage_value=state.state)
    with refused("state_not_bound", 403) as caught:
        validator.validate(platform.token(state), state.state, evidence)
    # The state was not a platform-storage login: a storage value proves nothing.
    relaunch = caught[0].relaunch_params
    assert relaunch["iss"] == state.issuer and relaunch["target_link_uri"] == state.target_link_uri
    assert relaunch["login_hint"] == state.login_hint and "lti_storage_target" not in relaunch


def test_platform_storage_binds_only_a_same_origin_repost_with_the_stored_state(
    validator, platform, oidc_login, login_params, store, refused
):
    storage_state = oidc_login.begin({**login_params, "lti_storage_target": "post_message_forwarding"}).state
    assert storage_state.storage_target == "post_message_forwarding"
    token = platform.token(storage_state)
    with pytest.raises(BrowserCheckRequired) as needed:
        validator.validate(token, storage_state.state, BrowserEvidence())
    check = needed.value.check
    assert check.storage_target == "post_message_forwarding"
    assert check.storage_key == "lti_state_" + storage_state.state
    assert check.platform_origin == origin_of(platform.auth_url)
    for wrong in ("", "another-state", storage_state.state + "x"):
        with refused("state_not_bound", 403):
            evidence = BrowserEvidence(repost=True, same_origin=True, storage_value=wrong)
            validator.validate(token, storage_state.state, evidence)
    forged = BrowserEvidence(repost=True, same_origin=False, storage_value=storage_state.state)
    with refused("state_not_bound", 403):
        validator.validate(token, storage_state.state, forged)
    store.writes.clear()
    good = BrowserEvidence(repost=True, same_origin=True, storage_value=storage_state.state)
    assert validator.validate(token, storage_state.state, good).platform_user_id == "2"
    assert validator.binding is Binding.PLATFORM_STORAGE


def test_state_among_several_browser_states_is_bound(validator, platform, state):
    evidence = BrowserEvidence(cookie_states=frozenset({"older-state", state.state}))
    assert validator.validate(platform.token(state), state.state, evidence).platform_user_id == "2"
    assert validator.binding is Binding.COOKIE


@pytest.mark.parametrize(
    ("headers", "same_origin"),
    [
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"sec-fetch-site": "same-origin", "Origin": "https://evil.example"}, True),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://tool.example"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),
        ({"Origin": "https://tool.example"}, True),
        ({"Origin": "https://TOOL.example:443"}, True),
        ({"Origin": "https://tool.example:8443"}, False),
        ({"Origin": "http://tool.example"}, False),
        ({"Origin": "null"}, False),
        ({}, False),
    ],
)
def test_same_origin_is_what_the_browser_says(headers, same_origin):
    assert is_same_origin_request(headers, "https://tool.example/lti_publish/") is same_origin


def test_evidence_from_a_request():
    evidence = BrowserEvidence.from_request(
        cookie_names=["sessionid", "lti1p3_state_abc", "lti1p3_state_def"],
        form={"lti_repost": "1", "lti_storage_value": "abc"},
        headers={"Sec-Fetch-Site": "same-origin"},
        tool_origin="https://tool.example",
    )
    assert evidence == BrowserEvidence(frozenset({"abc", "def"}), True, True, "abc")


def test_state_of_an_unregistered_platform(validator, platform, store, clock, refused):
    orphan = OidcState(
        "s-orphan", "n-orphan", platform.issuer, "deleted-client", "https://tool.example/lti_publish/", clock() + 600
    )
    store.save_state(orphan)
    store.writes.clear()
    with refused("unknown_platform", 401):
        validator.validate(platform.token(orphan), orphan.state, cookie(orphan.state))
    assert store.writes == []


def test_registration_comes_from_the_state_not_from_the_token(
    validator, platform, state, store, rsa_keys, clock, refused, nothing_written
):
    """A second registered platform's token, carrying its own iss, cannot ride on the first platform's login."""
    other = dataclasses.replace(platform, issuer="https://other.example", client_id="other-client", fetches=[])
    other.key = dataclasses.replace(platform.key, private=rsa_keys[2])  # same kid name, another key
    store.save_registration(other.registration())
    store.writes.clear()
    token = other.sign(other.claims(state, iss=other.issuer, aud=other.client_id))
    with refused("bad_signature", 401):  # checked against the first platform's key set
        validator.validate(token, state.state, cookie(state.state))
    assert platform.fetches == [platform.jwks_url]
    nothing_written()


# -- the host's veto and races ----------------------------------------------------------------


def test_before_commit_refusal_consumes_nothing(validator, platform, state, refused, nothing_written):
    seen: list[Launch] = []

    def unknown_content(launch: Launch) -> None:
        seen.append(launch)
        raise NotFound("unknown_content")

    with refused("unknown_content", 404):
        validator.validate(platform.token(state), state.state, cookie(state.state), before_commit=unknown_content)
    assert [launch.resource_link_id for launch in seen] == ["1"]
    nothing_written()


def test_before_commit_sees_the_launch_and_may_accept_it(validator, platform, state, store):
    seen: list[tuple[Launch, list[Any]]] = []

    def record(launch: Launch) -> None:
        seen.append((launch, list(store.writes)))

    launch = validator.validate(platform.token(state), state.state, cookie(state.state), before_commit=record)
    assert seen == [(launch, [])]  # called before the nonce was consumed


def test_two_threads_racing_with_one_token_only_one_wins(validator, key_cache, platform, state):
    token = platform.token(state)
    key_cache.key_for(platform.jwks_url, platform.key.kid)
    barrier = threading.Barrier(2, timeout=10)
    results: list[Launch | LtiError] = []

    def both_checked(_launch: Launch) -> None:
        barrier.wait()  # both threads have passed every check; only the nonce is left

    def run() -> None:
        try:
            results.append(validator.validate(token, state.state, cookie(state.state), before_commit=both_checked))
        except LtiError as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(results) == 2
    assert sum(isinstance(r, Launch) for r in results) == 1
    assert [r.reason for r in results if isinstance(r, LtiError)] == ["nonce_reused"]


def test_many_threads_racing_with_one_token_only_one_wins(store, platform, state, clock, tool):
    validator = LaunchValidator(store, PlatformKeyCache(platform, now=clock), tool_base_urls=tool.base_url, now=clock)
    token = platform.token(state)
    start = threading.Event()
    results: list[str] = []

    def run() -> None:
        start.wait(10)
        try:
            validator.validate(token, state.state, cookie(state.state))
            results.append("ok")
        except LtiError as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(timeout=20)
    # The losers find the nonce used, or (when the winner finished first) the state gone.
    assert results.count("ok") == 1
    assert set(results) - {"ok"} <= {"nonce_reused", "state_unknown"} and len(results) == 8
    assert platform.fetches == [platform.jwks_url]  # racing launches on a cold cache fetch the key set once


# -- strict JOSE parsing (lti_core.lti13.jws) -----------------------------------------------------


def _signed_json(platform: Any, state: OidcState, *, drop: tuple[str, ...] = (), extra: str = "") -> str:
    """The platform's claims signed as raw JSON text, with ``extra`` members json.dumps cannot write."""
    body = json.dumps(platform.claims(state, drop=drop))
    raw = (body[:-1] + ", " + extra + "}") if extra else body
    return jwt.api_jws.encode(raw.encode(), platform.key.private, algorithm="RS256", headers={"kid": platform.key.kid})


@pytest.mark.parametrize(
    ("drop", "extra"),
    [
        (("exp",), '"exp": true'),
        (("iat",), '"iat": true'),
        (("exp",), '"exp": 1e400'),
        (("exp",), '"exp": -1E+999'),
        (("exp",), '"exp": ' + "9" * 400),  # an int: exact in Python, but exp + leeway overflows a float
        (("iat",), '"iat": ' + str(2**53 + 1)),
        ((), '"sub": "1"'),  # sub twice: one reader sees "2", another "1"
        ((), '"nonce": "other"'),
        (("name",), '"name": "\\ud800"'),
    ],
    ids=[
        "exp-true",
        "iat-true",
        "exp-1e400",
        "exp--1e999",
        "exp-huge-int",
        "iat-beyond-2^53",
        "duplicate-sub",
        "duplicate-nonce",
        "lone-surrogate",
    ],
)
def test_signed_payload_that_is_not_strict_json(drop, extra, validator, platform, state, refused, nothing_written):
    """Signed by the platform's own key, so only the strict parse stands between these and the claims checks."""
    with refused("id_token_malformed", 400):
        validator.validate(_signed_json(platform, state, drop=drop, extra=extra), state.state, cookie(state.state))
    nothing_written()


def test_crit_header_is_refused_before_any_key_lookup(validator, platform, state, refused, nothing_written):
    header = {"alg": "RS256", "typ": "JWT", "kid": platform.key.kid, "crit": ["exp"]}
    with refused("crit_not_supported", 401):
        token = _hand_signed(header, platform.claims(state), platform.key.private)
        validator.validate(token, state.state, cookie(state.state))
    assert platform.fetches == []
    nothing_written()


def _flip_unused_bits(segment: str) -> str:
    """The same bytes to a lenient decoder, another spelling: the unused low bits of the last character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 0b1111, 3: 0b11}[len(segment) % 4]
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) | unused]


NON_CANONICAL: list[Any] = [
    pytest.param(lambda t: t + "==", id="padded-signature"),
    pytest.param(lambda t: t.rsplit(".", 1)[0] + "." + _flip_unused_bits(t.rsplit(".", 1)[1]), id="signature-bits"),
    pytest.param(lambda t: t.replace(".", "=.", 1), id="padded-header"),
    pytest.param(lambda t: t.rsplit(".", 1)[0] + ".+" + t.rsplit(".", 1)[1][1:], id="std-alphabet"),
    pytest.param(lambda t: t.replace(".", " .", 1), id="space"),
    pytest.param(lambda t: "{" + "[" * 5000 + "." + t.split(".", 1)[1], id="not-base64-at-all"),
    pytest.param(
        lambda t: _segment(b'{"alg":"RS256","kid":' + b"[" * 5000 + b"]" * 5000 + b"}") + "." + t.split(".", 1)[1],
        id="header-5000-deep",
    ),
]


@pytest.mark.parametrize("spell", NON_CANONICAL)
def test_other_spellings_of_a_genuine_token_are_refused(spell, validator, platform, state, refused, nothing_written):
    token = spell(platform.token(state))
    with refused("id_token_malformed", 400):
        validator.validate(token, state.state, cookie(state.state))
    assert platform.fetches == []
    nothing_written()


def test_key_set_to_fetch_ignores_what_the_strict_parser_refuses(validator, platform, state):
    """The async pre-fetch reads the header with the same parser and names no key set for a refused token."""
    header = {"alg": "RS256", "typ": "JWT", "kid": "moodle-key-9", "crit": ["exp"]}
    token = _hand_signed(header, platform.claims(state), platform.key.private)
    assert validator.key_set_to_fetch(token, state.state) is None
    deep = _segment(b'{"alg":"RS256","kid":"moodle-key-9","x":' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert validator.key_set_to_fetch(deep + "." + token.split(".", 1)[1], state.state) is None


# -- the launch envelope: services the platform offered -----------------------------------------


def test_the_services_moodle_offers_are_typed_on_the_launch(validator, platform, state):
    launch = validator.validate(platform.token(state), state.state, cookie(state.state))
    assert launch.message_type == "LtiResourceLinkRequest"
    ags = launch.services.ags
    assert ags is not None and ags.lineitem_url.endswith("/lineitems/1/lineitem?type_id=2")
    assert ags.lineitems_url and ags.scopes == ("https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",)


@pytest.mark.parametrize("claim", [None, "x", 7, [], {}, {"lineitems": 3, "scope": "score"}])
def test_a_malformed_or_empty_ags_claim_offers_no_service(claim):
    from lti_core.lti13.launch import parse_ags_claim

    assert parse_ags_claim(claim) is None


@pytest.mark.parametrize("claim", [None, "x", [], {}, {"context_memberships_url": 5}])
def test_a_malformed_or_empty_nrps_claim_offers_no_service(claim):
    from lti_core.lti13.launch import parse_nrps_claim

    assert parse_nrps_claim(claim) is None


def test_the_message_type_table_is_what_decides_what_is_accepted(validator, platform, state, refused):
    from lti_core.lti13.launch import MESSAGE_CHECKS

    assert set(MESSAGE_CHECKS) == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    # A host accepts the message types it handles: by default resource links only.
    with refused("unsupported_message_type", 400):
        validator.validate(
            platform.token(state, message_type="LtiDeepLinkingRequest"), state.state, cookie(state.state)
        )


# -- the registration's status ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [(RegistrationStatus.PENDING, "registration_pending"), (RegistrationStatus.DISABLED, "registration_disabled")],
)
def test_a_registration_that_is_not_active_launches_nothing(validator, platform, state, store, status, reason):
    """Disabled (or not yet approved) between the login and the launch: refused, nothing written."""
    store.save_registration(platform.registration(status=status))
    store.writes.clear()
    with pytest.raises(LtiError) as refused:
        validator.validate(platform.token(state), state.state, cookie(state.state))
    assert (refused.value.status, refused.value.reason) == (403, reason)
    assert store.writes == []
    store.save_registration(platform.registration())
    assert validator.validate(platform.token(state), state.state, cookie(state.state)).platform_user_id == "2"
