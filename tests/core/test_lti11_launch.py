"""Lti11LaunchVerifier.verify: Moodle's LTI 1.1 launches, signed by oauthlib's client exactly as a consumer does.

The nonce must be consumed only after every check has passed (the signature included), so a forged or
refused request never burns it: each refusal checks that the store saw no write.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

import pytest
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_PLAINTEXT,
    SIGNATURE_TYPE_BODY,
    Client,
)

from lti_core.errors import NotFound
from lti_core.lti11.launch import MAX_NAME_LENGTH, MAX_TOTAL_LENGTH, MAX_VALUE_LENGTH, Lti11LaunchVerifier
from lti_core.types import Consumer, Launch, Role
from lti_peer.lti11 import moodle_lti11_params

KEY = "moodle-key"
SECRET = "moodle-secret-0123456789"
URL = "https://tool.example/lti_publish/lti11/launch"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
FORM = "application/x-www-form-urlencoded"
ADMINISTRATOR = "Instructor,urn:lti:sysrole:ims/lis/Administrator,urn:lti:instrole:ims/lis/Administrator"


def moodle_params(**changes: str | None) -> list[tuple[str, str]]:
    """The unsigned parameters of a Moodle 4.x LTI 1.1 launch (the shared peer's); None removes one."""
    params = moodle_lti11_params(custom_content_id="intro")
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return list(params.items())


def sign(
    params: list[tuple[str, str]],
    *,
    url: str = URL,
    key: str = KEY,
    secret: str = SECRET,
    timestamp: int | str,
    nonce: str = "nonce-1",
    method: str = SIGNATURE_HMAC_SHA1,
) -> list[tuple[str, str]]:
    """The complete form body, as the pairs the browser posts, signed with oauthlib's client."""
    client = Client(
        key,
        client_secret=secret,
        signature_method=method,
        signature_type=SIGNATURE_TYPE_BODY,
        timestamp=str(timestamp),
        nonce=nonce,
        callback_uri="about:blank",  # Moodle sends oauth_callback=about:blank
    )
    _, _, body = client.sign(
        url, http_method="POST", body=urlencode(params), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    return parse_qsl(body, keep_blank_values=True, strict_parsing=True)


@pytest.fixture
def lti11_store(store):
    store.save_consumer(Consumer(KEY, SECRET, "Moodle"))
    store.save_consumer(Consumer("other-key", "other-secret", "Other Moodle"))
    store.writes.clear()
    return store


@pytest.fixture
def verifier(lti11_store, clock) -> Lti11LaunchVerifier:
    return Lti11LaunchVerifier(lti11_store, now=clock)


@pytest.fixture
def signed(clock):
    """A good signed Moodle launch at the clock's time."""
    return sign(moodle_params(), timestamp=int(clock()))


@pytest.fixture
def nothing_written(verifier, lti11_store, clock):
    """Asserts the store saw no write, then that a good launch with the same nonce still passes."""

    def check(nonce: str = "nonce-1") -> Launch:
        assert lti11_store.writes == []
        launch = verifier.verify(
            method="POST", url=URL, params=sign(moodle_params(), timestamp=int(clock()), nonce=nonce)
        )
        assert launch.platform_user_id == "2"
        return launch

    return check


# -- good launches ----------------------------------------------------------------------------


def test_moodle_learner_launch(verifier, signed, lti11_store, clock):
    launch = verifier.verify(method="POST", url=URL, params=signed)
    assert launch.lti_version == "1.1"
    assert (launch.platform, launch.platform_user_id) == (KEY, "2")
    assert (launch.roles, launch.role) == ((MEMBERSHIP + "Learner",), Role.LEARNER)
    assert launch.resource_link_id == "1"
    assert launch.resource_link_title == "Published content"
    assert (launch.context_id, launch.context_title) == ("2", "Test course 101")
    assert (launch.given_name, launch.family_name, launch.name) == ("Sam", "Student", "Sam Student")
    assert launch.email == "sam.student@example.com"
    assert launch.locale == "en"
    assert launch.custom == {"content_id": "intro"}
    assert launch.raw["lis_result_sourcedid"].startswith('{"data":{"instanceid":"1"')
    assert launch.raw["oauth_callback"] == "about:blank"
    assert "oauth_signature" not in launch.raw
    assert (launch.target_link_uri, launch.deployment_id, launch.client_id) == ("", "", "")
    # The one write: the nonce, scoped to the consumer, held one second past the (inclusive) window.
    assert lti11_store.writes == [("consume_nonce", ("lti11:" + KEY, "nonce-1", int(clock()) + 301, clock()))]


def test_moodle_administrator_launch_is_staff(verifier, clock):
    launch = verifier.verify(
        method="POST", url=URL, params=sign(moodle_params(roles=ADMINISTRATOR), timestamp=int(clock()))
    )
    assert launch.role is Role.STAFF
    assert launch.roles == (
        MEMBERSHIP + "Instructor",
        "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
    )


def test_params_as_a_mapping(verifier, signed):
    assert verifier.verify(method="POST", url=URL, params=dict(signed)).platform_user_id == "2"


def test_lti_1p2_and_no_roles(verifier, clock):
    params = sign(moodle_params(lti_version="LTI-1p2", roles=None), timestamp=int(clock()))
    launch = verifier.verify(method="POST", url=URL, params=params)
    assert (launch.roles, launch.role) == ((), Role.LEARNER)


def test_url_with_query_string_signed_correctly(verifier, clock, refused):
    url = URL + "?content=intro&x=a%20b"
    params = sign(moodle_params(), url=url, timestamp=int(clock()))
    assert verifier.verify(method="POST", url=url, params=params).platform_user_id == "2"
    # The query is part of what was signed: dropping it breaks the signature.
    with refused("bad_signature", 401):
        verifier.verify(
            method="POST", url=URL, params=sign(moodle_params(), url=url, timestamp=int(clock()), nonce="n2")
        )


def test_url_as_seen_behind_a_proxy_does_not_verify(verifier, signed, refused):
    with refused("bad_signature", 401):
        verifier.verify(method="POST", url="http://127.0.0.1:8000/lti_publish/lti11/launch", params=signed)


USAGE_ID = "block-v1:edX+Demo+2024+type@lti_publish+block@intro"
AS_REBUILT = f"https://tool.example/lti_publish/content/{USAGE_ID}/ltiaccess"  # what Django rebuilds
ENCODED = "https://tool.example/lti_publish/content/block-v1%3AedX%2BDemo%2B2024%2Btype%40lti_publish%2Bblock%40intro/ltiaccess"


@pytest.mark.parametrize("signed_url", [AS_REBUILT, ENCODED], ids=["as-is", "percent-encoded"])
def test_an_open_edx_tool_url_verifies_however_the_admin_pasted_it(verifier, clock, signed_url):
    """Moodle signs the Tool URL as pasted; the host rebuilds it from the decoded path."""
    params = sign(moodle_params(), url=signed_url, timestamp=int(clock()))
    assert verifier.verify(method="POST", url=AS_REBUILT, params=params).platform_user_id == "2"


def test_only_spellings_of_the_same_path_verify(verifier, clock, refused, nothing_written):
    other = AS_REBUILT.replace("block@intro", "block@other")
    with refused("bad_signature", 401):
        verifier.verify(method="POST", url=other, params=sign(moodle_params(), url=ENCODED, timestamp=int(clock())))
    nothing_written()


def test_default_port_and_host_case_are_normalised(verifier, clock):
    params = sign(moodle_params(), url="https://TOOL.example:443/lti_publish/lti11/launch", timestamp=int(clock()))
    assert verifier.verify(method="POST", url=URL, params=params).platform_user_id == "2"


@pytest.mark.parametrize(
    "extra",
    [
        [("custom_tag", "a"), ("custom_tag", "b")],
        [("roles", "Instructor")],  # roles=Learner&roles=Instructor: the last one used to win (staff)
        [("user_id", "1")],
        [("custom_tag", "a"), ("custom_tag", "a")],
    ],
    ids=["custom", "roles", "user-id", "same-value"],
)
def test_repeated_parameters_are_refused_even_when_signed(extra, verifier, clock, refused, nothing_written):
    """A consumer signs every value of a repeated name, but only one can be read: which one is ambiguous."""
    params = sign(moodle_params() + extra, timestamp=int(clock()))
    with refused("duplicate_parameter", 400):
        verifier.verify(method="POST", url=URL, params=params)
    nothing_written()


def test_non_ascii_parameters(verifier, clock):
    params = sign(moodle_params(lis_person_name_given="Zoë", context_title="Cours d'été & co"), timestamp=int(clock()))
    launch = verifier.verify(method="POST", url=URL, params=params)
    assert (launch.given_name, launch.context_title) == ("Zoë", "Cours d'été & co")


def test_same_nonce_from_two_consumers(verifier, clock):
    verifier.verify(method="POST", url=URL, params=sign(moodle_params(), timestamp=int(clock())))
    other = sign(moodle_params(), key="other-key", secret="other-secret", timestamp=int(clock()))
    assert verifier.verify(method="POST", url=URL, params=other).platform == "other-key"


# -- the signature ----------------------------------------------------------------------------


def test_bad_signature_does_not_consume_the_nonce(verifier, clock, refused, nothing_written):
    forged = sign(moodle_params(), secret="guessed-secret", timestamp=int(clock()))
    with refused("bad_signature", 401):
        verifier.verify(method="POST", url=URL, params=forged)
    nothing_written()  # the real launch with the same nonce passes afterwards


def test_parameter_changed_after_signing(verifier, signed, refused, nothing_written):
    tampered = [(k, "1" if k == "user_id" else v) for k, v in signed]
    with refused("bad_signature", 401):
        verifier.verify(method="POST", url=URL, params=tampered)
    nothing_written()


def test_role_added_after_signing(verifier, signed, refused, nothing_written):
    tampered = [(k, ADMINISTRATOR if k == "roles" else v) for k, v in signed]
    with refused("bad_signature", 401):
        verifier.verify(method="POST", url=URL, params=tampered)
    nothing_written()


def test_unknown_consumer_key(verifier, clock, refused, nothing_written):
    params = sign(moodle_params(), key="stranger", timestamp=int(clock()))
    with refused("unknown_consumer", 401):
        verifier.verify(method="POST", url=URL, params=params)
    nothing_written()


@pytest.mark.parametrize("method", [SIGNATURE_HMAC_SHA256, SIGNATURE_PLAINTEXT])
def test_wrong_signature_method(method, verifier, clock, refused, nothing_written):
    params = sign(moodle_params(), method=method, timestamp=int(clock()))
    with refused("unsupported_signature_method", 401):
        verifier.verify(method="POST", url=URL, params=params)
    nothing_written()


@pytest.mark.parametrize("name", ["oauth_nonce", "oauth_signature", "oauth_timestamp", "oauth_consumer_key"])
def test_duplicate_oauth_parameter(name, verifier, signed, refused, nothing_written):
    value = dict(signed)[name]
    with refused("duplicate_oauth_parameter", 400):
        verifier.verify(method="POST", url=URL, params=[*signed, (name, value)])
    nothing_written()


@pytest.mark.parametrize("name", ["oauth_signature", "oauth_nonce", "oauth_timestamp", "oauth_consumer_key"])
def test_missing_oauth_parameter(name, verifier, signed, refused, nothing_written):
    with refused(f"{name}_missing", 401):
        verifier.verify(method="POST", url=URL, params=[(k, v) for k, v in signed if k != name])
    nothing_written()


def test_unsupported_oauth_version(verifier, signed, refused, nothing_written):
    with refused("invalid_oauth_version", 401):
        verifier.verify(method="POST", url=URL, params=[(k, "2.0" if k == "oauth_version" else v) for k, v in signed])
    nothing_written()


def test_get_is_refused(verifier, signed, refused, nothing_written):
    with refused("method_not_allowed", 405):
        verifier.verify(method="GET", url=URL, params=signed)
    nothing_written()


# -- time and replay --------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-301, 301, -86400], ids=["too-old", "future", "a-day-old"])
def test_timestamp_out_of_window(offset, verifier, clock, refused, nothing_written):
    params = sign(moodle_params(), timestamp=int(clock()) + offset)
    with refused("timestamp_out_of_window", 401):
        verifier.verify(method="POST", url=URL, params=params)
    nothing_written()


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamp_at_the_window_edge(offset, verifier, clock):
    params = sign(moodle_params(), timestamp=int(clock()) + offset)
    assert verifier.verify(method="POST", url=URL, params=params).platform_user_id == "2"


@pytest.mark.parametrize("timestamp", ["yesterday", "1.5e9", ""])
def test_timestamp_not_an_integer(timestamp, verifier, clock, refused, nothing_written):
    params = [(k, timestamp if k == "oauth_timestamp" else v) for k, v in sign(moodle_params(), timestamp=int(clock()))]
    reason = "oauth_timestamp_missing" if timestamp == "" else "timestamp_invalid"
    with refused(reason, 401):
        verifier.verify(method="POST", url=URL, params=params)
    nothing_written()


def test_nonce_reused(verifier, signed, refused, lti11_store, clock):
    verifier.verify(method="POST", url=URL, params=signed)
    clock.advance(299)
    with refused("nonce_reused", 401):
        verifier.verify(method="POST", url=URL, params=signed)


def test_nonce_reused_in_a_new_signed_request(verifier, clock, refused):
    verifier.verify(method="POST", url=URL, params=sign(moodle_params(), timestamp=int(clock())))
    clock.advance(5)
    with refused("nonce_reused", 401):
        verifier.verify(method="POST", url=URL, params=sign(moodle_params(), timestamp=int(clock())))


def test_nonce_is_held_as_long_as_the_timestamp_is_accepted(verifier, signed, clock, refused):
    """A replay at the last instant its timestamp is still inside the window must still find the nonce."""
    verifier.verify(method="POST", url=URL, params=signed)
    clock.advance(300)  # |now - oauth_timestamp| == window: the timestamp check still accepts it
    with refused("nonce_reused", 401):
        verifier.verify(method="POST", url=URL, params=signed)


def test_nonce_of_a_future_dated_launch_is_held_until_its_timestamp_leaves_the_window(verifier, clock, refused):
    params = sign(moodle_params(), timestamp=int(clock()) + 300)  # a consumer clock 5 minutes fast
    verifier.verify(method="POST", url=URL, params=params)
    clock.advance(600)
    with refused("nonce_reused", 401):
        verifier.verify(method="POST", url=URL, params=params)


def test_before_commit_refusal_consumes_nothing(verifier, signed, refused, nothing_written):
    seen: list[Launch] = []

    def unknown_content(launch: Launch) -> None:
        seen.append(launch)
        raise NotFound("unknown_content")

    with refused("unknown_content", 404):
        verifier.verify(method="POST", url=URL, params=signed, before_commit=unknown_content)
    assert [launch.resource_link_id for launch in seen] == ["1"]
    nothing_written()


def test_before_commit_runs_before_the_nonce_is_consumed(verifier, signed, lti11_store):
    writes_seen: list[list[object]] = []
    verifier.verify(
        method="POST",
        url=URL,
        params=signed,
        before_commit=lambda _launch: writes_seen.append(list(lti11_store.writes)),
    )
    assert writes_seen == [[]]
    assert [name for name, _ in lti11_store.writes] == ["consume_nonce"]


# -- the LTI message --------------------------------------------------------------------------

MESSAGE_REFUSALS = [
    pytest.param({"lti_message_type": None}, "unsupported_message_type", id="message-type-missing"),
    pytest.param({"lti_message_type": "ContentItemSelectionRequest"}, "unsupported_message_type", id="content-item"),
    pytest.param({"lti_version": None}, "invalid_version", id="version-missing"),
    pytest.param({"lti_version": "LTI-2p0"}, "invalid_version", id="version-2"),
    pytest.param({"resource_link_id": None}, "resource_link_missing", id="resource-link-missing"),
    pytest.param({"resource_link_id": ""}, "resource_link_missing", id="resource-link-empty"),
    pytest.param({"user_id": None}, "user_id_missing", id="user-id-missing"),
    pytest.param({"user_id": ""}, "user_id_missing", id="user-id-empty"),
]


@pytest.mark.parametrize(("changes", "reason"), MESSAGE_REFUSALS)
def test_message_refusal(changes: Mapping[str, str | None], reason, verifier, clock, refused, nothing_written):
    params = sign(moodle_params(**changes), timestamp=int(clock()))  # correctly signed, but not a launch we take
    with refused(reason, 400):
        verifier.verify(method="POST", url=URL, params=params)
    nothing_written()


def test_message_is_checked_before_the_consumer(verifier, clock, refused):
    params = sign(moodle_params(user_id=None), key="stranger", timestamp=int(clock()))
    with refused("user_id_missing", 400):
        verifier.verify(method="POST", url=URL, params=params)


# -- hostile input: every refusal is an LtiError, and nothing is written ---------------------


@pytest.mark.parametrize(
    "forged",
    ["é" * 28, "\u0661" * 28, "\ud800", "x\x00", "a" * 10_000],
    ids=["latin", "arabic", "surrogate", "nul", "long"],
)
def test_non_ascii_signature_is_a_bad_signature(forged, verifier, signed, refused, nothing_written):
    """hmac.compare_digest raises TypeError for str with non-ASCII characters: compared as bytes instead."""
    params = [(k, forged if k == "oauth_signature" else v) for k, v in signed]
    reason, status = ("request_malformed", 400) if "\x00" in forged else ("bad_signature", 401)
    with refused(reason, status):
        verifier.verify(method="POST", url=URL, params=params)
    nothing_written()


def _digits(text: str, zero: str) -> str:
    return "".join(chr(ord(zero) + int(d)) for d in text)


@pytest.mark.parametrize(
    "spell",
    [
        lambda t: f"{t[:4]}_{t[4:]}",
        lambda t: f" {t}",
        lambda t: f"{t}\n",
        lambda t: f"+{t}",
        lambda t: _digits(t, "\u0660"),  # Arabic-Indic digits: int() reads them
        lambda t: _digits(t, "\uff10"),  # full-width digits
        lambda t: "0" * (13 - len(t)) + t,  # 13 digits
        lambda t: "9" * 5000,  # int() would refuse it with ValueError... or spend time on it
        lambda t: f"{t}.0",
        lambda t: f"-{t}",
    ],
    ids=[
        "underscore",
        "space",
        "newline",
        "plus",
        "arabic-indic",
        "fullwidth",
        "13-digits",
        "huge",
        "decimal",
        "minus",
    ],
)
def test_timestamp_must_be_ascii_digits(spell, verifier, clock, refused, nothing_written):
    stamp = spell(str(int(clock())))
    assert stamp != str(int(clock()))
    params = sign(moodle_params(), timestamp=stamp)  # even signed as it is, the spelling is refused
    with refused("timestamp_invalid", 401):
        verifier.verify(method="POST", url=URL, params=params)
    nothing_written()


def test_timestamp_with_leading_zeros_within_the_bound(verifier, clock):
    params = sign(moodle_params(), timestamp="0" + str(int(clock())))
    assert verifier.verify(method="POST", url=URL, params=params).platform_user_id == "2"


def test_a_large_real_launch_passes(verifier, clock):
    """Generous bounds: long descriptions, many custom and extension parameters, long titles."""
    custom = {f"custom_param_{n}": "v" * 200 for n in range(300)}
    params = moodle_params(
        resource_link_description="<p>" + "Long activity description. " * 2000 + "</p>",  # ~54 KB
        resource_link_title="T" * 1000,
        **custom,
    )
    launch = verifier.verify(method="POST", url=URL, params=sign(params, timestamp=int(clock())))
    assert len(launch.custom) == 301


@pytest.mark.parametrize(
    "extra",
    [
        [(f"custom_p{n}", "x") for n in range(1000)],
        [("custom_big", "x" * (MAX_VALUE_LENGTH + 1))],
        [("custom_" + "n" * MAX_NAME_LENGTH, "x")],
        [(f"custom_p{n}", "x" * 60_000) for n in range(20)],
    ],
    ids=["too-many", "long-value", "long-name", "too-much-in-all"],
)
def test_requests_too_large_are_refused_before_any_work(extra, verifier, clock, refused, nothing_written):
    params = [*sign(moodle_params(), timestamp=int(clock())), *extra]
    with refused("request_too_large", 400):
        verifier.verify(method="POST", url=URL, params=params)
    nothing_written()


def test_long_url_counts_towards_the_total(verifier, signed, refused, nothing_written):
    with refused("request_too_large", 400):
        verifier.verify(method="POST", url=URL + "?q=" + "a" * MAX_TOTAL_LENGTH, params=signed)
    nothing_written()


@pytest.mark.parametrize(
    ("url", "reason", "status"),
    [
        ("http://[::1/launch", "request_malformed", 400),  # urlsplit: invalid IPv6 URL
        ("/lti_publish/lti11/launch", "request_malformed", 400),  # not absolute
        ("https://tool.example:99999/lti_publish/lti11/launch", "request_malformed", 400),
        ("https://tool.example:port/lti_publish/lti11/launch", "request_malformed", 400),
        (URL + "?q=caf\u00e9", "request_malformed", 400),  # oauthlib: not x-www-form-urlencoded
        (URL + "?q=%zz", "request_malformed", 400),
        (URL + "?q=[1]", "request_malformed", 400),
        ("https://tool.example/caf\u00e9/launch", "bad_signature", 401),
        ("https://t\u00f6\u00f6l.example/launch", "bad_signature", 401),
        ("", "request_malformed", 400),
    ],
    ids=[
        "ipv6",
        "relative",
        "port-range",
        "port-text",
        "query-non-ascii",
        "bad-percent",
        "brackets",
        "path-non-ascii",
        "idn-host",
        "empty",
    ],
)
def test_urls_oauthlib_cannot_sign(url, reason, status, verifier, signed, refused, nothing_written):
    with refused(reason, status):
        verifier.verify(method="POST", url=url, params=signed)
    nothing_written()


@pytest.mark.parametrize(
    ("name", "value"),
    [("custom_x", "\ud800"), ("custom_\udfff", "x"), ("context_title", "a\x00b"), ("custom_\x00", "x")],
    ids=["surrogate-value", "surrogate-name", "nul-value", "nul-name"],
)
def test_unencodable_parameters_are_malformed(name, value, verifier, signed, refused, nothing_written):
    with refused("request_malformed", 400):
        verifier.verify(method="POST", url=URL, params=[*signed, (name, value)])
    nothing_written()


@pytest.mark.parametrize(
    ("name", "spelling"),
    [("oauth_nonce", "nonce%2D1"), ("oauth_nonce", "%6Eonce-1"), ("oauth_version", "1%2E0")],
    ids=["nonce-dash", "nonce-letter", "version"],
)
def test_replay_with_a_re_spelled_oauth_value_is_refused(name, spelling, verifier, signed, refused):
    """oauthlib percent-decodes oauth_* values before signing: "nonce%2D1" verifies as "nonce-1" would,
    and used to be stored as a new nonce, so a captured launch could be replayed once per spelling."""
    verifier.verify(method="POST", url=URL, params=signed)
    respelled = [(k, spelling if k == name else v) for k, v in signed]
    with refused("oauth_parameter_malformed", 400):
        verifier.verify(method="POST", url=URL, params=respelled)


def test_oauth_callback_may_carry_escapes(verifier, clock):
    """The tool never reads oauth_callback, and a consumer's callback URL may hold escapes."""
    client = Client(
        KEY,
        client_secret=SECRET,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_BODY,
        timestamp=str(int(clock())),
        nonce="nonce-1",
        callback_uri="https://lms.example/cb?x=a%20b",
    )
    _, _, body = client.sign(URL, http_method="POST", body=urlencode(moodle_params()), headers={"Content-Type": FORM})
    params = parse_qsl(body, keep_blank_values=True, strict_parsing=True)
    assert "%" in dict(params)["oauth_callback"]
    assert verifier.verify(method="POST", url=URL, params=params).platform_user_id == "2"


def test_lti11_services_are_typed_on_the_launch():
    from lti_core.lti11.launch import lti11_services
    from lti_core.types import AgsEndpoint, BasicOutcome, NrpsEndpoint

    services = lti11_services(
        {
            "lis_outcome_service_url": "https://moodle.example/mod/lti/service.php",
            "lis_result_sourcedid": '{"data":{"instanceid":"1"}}',
            "custom_lineitem_url": "https://moodle.example/mod/lti/services.php/2/lineitems/1/lineitem?type_id=1",
            "custom_context_memberships_url": "https://moodle.example/mod/lti/services.php/CourseSection/2/bindings/1/memberships",
        }
    )
    assert services.basic_outcome == BasicOutcome(
        "https://moodle.example/mod/lti/service.php", '{"data":{"instanceid":"1"}}'
    )
    assert services.ags == AgsEndpoint(
        lineitem_url="https://moodle.example/mod/lti/services.php/2/lineitems/1/lineitem?type_id=1"
    )
    assert services.nrps == NrpsEndpoint(
        "https://moodle.example/mod/lti/services.php/CourseSection/2/bindings/1/memberships"
    )
    empty = lti11_services({"lis_outcome_service_url": "https://moodle.example/x"})  # no sourcedid: nothing
    assert (empty.ags, empty.nrps, empty.basic_outcome) == (None, None, None)


# -- a consumer an admin disabled -------------------------------------------------------------


def test_disabled_consumer_is_refused_and_nothing_is_written(verifier, lti11_store, signed, refused, clock):
    lti11_store.save_consumer(Consumer(KEY, SECRET, "Moodle", enabled=False))
    lti11_store.writes.clear()
    with refused("consumer_disabled", 403) as caught:
        verifier.verify(method="POST", url=URL, params=signed)
    assert "turned off" in caught[0].message
    assert lti11_store.writes == []  # the nonce is not burnt: enabled again, the same launch passes
    lti11_store.save_consumer(Consumer(KEY, SECRET, "Moodle", enabled=True))
    assert verifier.verify(method="POST", url=URL, params=signed).platform == KEY


def test_disabled_consumer_is_told_only_to_its_own_signature(verifier, lti11_store, clock, refused):
    """A forged launch with a disabled consumer's key learns nothing more than with any key: bad_signature."""
    lti11_store.save_consumer(Consumer(KEY, SECRET, "Moodle", enabled=False))
    lti11_store.writes.clear()
    with refused("bad_signature", 401):
        verifier.verify(method="POST", url=URL, params=sign(moodle_params(), secret="guess", timestamp=int(clock())))
    assert lti11_store.writes == []


def test_disabled_consumer_is_refused_by_check_too(verifier, lti11_store, signed, refused):
    lti11_store.save_consumer(Consumer(KEY, SECRET, "Moodle", enabled=False))
    with refused("consumer_disabled", 403):
        verifier.check(method="POST", url=URL, params=signed)
