"""Property tests of LTI Dynamic Registration's parsers of untrusted input: whatever the platform (or
whoever opened the registration URL) sends, the parsers answer with a result or an LtiError; what
they accept keeps their promises (http(s) URLs only, the issuer at the configuration's origin)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lti_core.errors import LtiError
from lti_core.http import HttpResponse
from lti_core.registration import (
    MAX_ID_LENGTH,
    PLATFORM_CONFIGURATION,
    TOOL_CONFIGURATION,
    PlatformConfiguration,
    _origin,
    parse_platform_configuration,
    parse_registration_initiation,
    parse_registration_response,
)
from lti_core.types import RegistrationStatus

FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
CONFIG_URL = "https://moodle.example/mod/lti/openid-configuration.php"
PLATFORM = PlatformConfiguration(
    issuer="https://moodle.example",
    authorization_endpoint="https://moodle.example/mod/lti/auth.php",
    token_endpoint="https://moodle.example/mod/lti/token.php",
    jwks_uri="https://moodle.example/mod/lti/certs.php",
    registration_endpoint="https://moodle.example/mod/lti/openid-registration.php",
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
# URLs and near-URLs: schemes, credentials, ports, odd hosts and whitespace.
urls = st.builds(
    lambda scheme, userinfo, host, port, path: f"{scheme}{userinfo}{host}{port}{path}",
    st.sampled_from(["https://", "http://", "HTTPS://", "ftp://", "javascript:", "", "//", "https:/"]),
    st.sampled_from(["", "user@", "u:p@", "@"]),
    st.sampled_from(["moodle.example", "MOODLE.example", "evil.example", "127.0.0.1", "[::1]", "", "moodle.example."]),
    st.sampled_from(["", ":443", ":80", ":8443", ":0", ":99999", ":x"]),
    st.text(max_size=30),
)
url_or_anything = urls | json_values


def outcome(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except LtiError as exc:
        assert 400 <= exc.status < 500
        return exc


@FUZZ
@given(st.dictionaries(st.sampled_from(["openid_configuration", "registration_token", "x"]), urls | st.text()))
def test_initiation_never_fails_otherwise(params):
    result = outcome(parse_registration_initiation, params)
    if not isinstance(result, LtiError):
        assert _origin(result.openid_configuration) is not None
        assert not any(ch.isspace() for ch in result.registration_token)


configurations = st.fixed_dictionaries(
    {},
    optional={
        "issuer": url_or_anything,
        "authorization_endpoint": url_or_anything,
        "token_endpoint": url_or_anything,
        "jwks_uri": url_or_anything,
        "registration_endpoint": url_or_anything,
        "scopes_supported": json_values,
        PLATFORM_CONFIGURATION: json_values
        | st.fixed_dictionaries({}, optional={"messages_supported": json_values, "product_family_code": json_values}),
    },
)


@FUZZ
@given(document=configurations | json_values, status=st.sampled_from([200, 201, 204, 301, 400, 401, 500]), url=urls)
def test_platform_configuration_never_fails_otherwise(document, status, url):
    response = HttpResponse(status, (), json.dumps(document).encode())
    result = outcome(parse_platform_configuration, response, url)
    if not isinstance(result, LtiError):
        assert _origin(result.issuer) == _origin(url) is not None
        for endpoint in (result.authorization_endpoint, result.token_endpoint, result.jwks_uri):
            assert _origin(endpoint) is not None
        assert all(isinstance(scope, str) for scope in result.scopes_supported)


@FUZZ
@given(body=st.binary(max_size=200) | st.text(alphabet='[]{}",:\\u0123456789 ', max_size=200).map(str.encode))
def test_platform_configuration_of_any_bytes(body):
    outcome(parse_platform_configuration, HttpResponse(200, (), body), CONFIG_URL)


answers = st.fixed_dictionaries(
    {},
    optional={
        "client_id": json_values,
        TOOL_CONFIGURATION: json_values | st.fixed_dictionaries({}, optional={"deployment_id": json_values}),
    },
)


@FUZZ
@given(document=answers | json_values, status=st.sampled_from([200, 201, 400, 401, 403, 500]))
def test_registration_response_never_fails_otherwise(document, status):
    response = HttpResponse(status, (), json.dumps(document).encode())
    result = outcome(parse_registration_response, response, PLATFORM, RegistrationStatus.PENDING)
    if not isinstance(result, LtiError):
        assert 200 <= status < 300
        assert result.client_id and len(result.client_id) <= MAX_ID_LENGTH and result.client_id.isprintable()
        assert result.issuer == PLATFORM.issuer and result.status is RegistrationStatus.PENDING
        assert all(d.deployment_id and len(d.deployment_id) <= MAX_ID_LENGTH for d in result.deployments)
