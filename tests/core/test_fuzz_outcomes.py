"""Property tests of the Basic Outcomes parser: whatever a consumer answers, ``parse_outcome_response``
gives an ``OutcomeResult`` or an ``LtiError``, never another exception.

Arbitrary bytes, XML-ish text, mutations of a genuine Moodle answer and random statuses. Kept small
(200 examples each, no deadline, no example database) so the suite stays quick.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lti_core.errors import LtiError
from lti_core.http import HttpResponse
from lti_core.lti11.outcomes import NAMESPACE, OutcomeResult, parse_outcome_response

FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

GENUINE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<imsx_POXEnvelopeResponse xmlns="{NAMESPACE}"><imsx_POXHeader><imsx_POXResponseHeaderInfo>'
    "<imsx_version>V1.0</imsx_version><imsx_messageIdentifier>1</imsx_messageIdentifier><imsx_statusInfo>"
    "<imsx_codeMajor>success</imsx_codeMajor><imsx_severity>status</imsx_severity>"
    "<imsx_description>Result read</imsx_description><imsx_messageRefIdentifier>m</imsx_messageRefIdentifier>"
    "<imsx_operationRefIdentifier>readResultRequest</imsx_operationRefIdentifier></imsx_statusInfo>"
    "</imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody><readResultResponse><result><resultScore>"
    "<language>en</language><textString>0.5</textString></resultScore></result></readResultResponse>"
    "</imsx_POXBody></imsx_POXEnvelopeResponse>"
)
XML_ISH = st.text(alphabet="<>/=\"'?!&;#x[]:- abcdeimnopsrtxyzDOCTYPEENTITYSYSTEMimsx_0123456789.\n\x00é", max_size=300)
statuses = st.one_of(st.just(200), st.integers(min_value=0, max_value=999))


def check(response: HttpResponse) -> None:
    try:
        result = parse_outcome_response(response)
    except LtiError as exc:
        assert exc.reason.startswith("outcome_"), exc.reason
        return
    assert isinstance(result, OutcomeResult)
    assert 200 <= response.status < 300
    assert result.code_major in ("success", "processing")
    assert result.score is None or (math.isfinite(result.score) and 0.0 <= result.score <= 1.0)


@FUZZ
@given(status=statuses, body=st.binary(max_size=500))
def test_any_bytes(status: int, body: bytes) -> None:
    check(HttpResponse(status, (), body))


@FUZZ
@given(body=XML_ISH)
def test_xml_ish_text(body: str) -> None:
    check(HttpResponse(200, (), body.encode("utf-8", "surrogatepass")))


@FUZZ
@given(
    start=st.integers(min_value=0, max_value=len(GENUINE)),
    length=st.integers(min_value=0, max_value=40),
    insert=XML_ISH,
    encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]),
)
def test_mutated_genuine_answers(start: int, length: int, insert: str, encoding: str) -> None:
    text = GENUINE[:start] + insert + GENUINE[start + length :]
    check(HttpResponse(200, (), text.encode(encoding, "replace")))


@FUZZ
@given(score=st.text(max_size=40), code=st.text(max_size=20), description=st.text(max_size=60))
def test_any_values_in_a_genuine_shape(score: str, code: str, description: str) -> None:
    def xml(value: str) -> str:
        return value.replace("&", "&amp;").replace("<", "&lt;")

    text = (
        GENUINE.replace(">0.5<", f">{xml(score)}<")
        .replace(">success<", f">{xml(code)}<")
        .replace(">Result read<", f">{xml(description)}<")
    )
    check(HttpResponse(200, (), text.encode("utf-8", "surrogatepass")))
