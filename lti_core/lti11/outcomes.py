"""LTI 1.1 Basic Outcomes: the tool's side of the consumer's outcome service (LTI 1.1 §6, LTI-BO 1.1).

The launch gave the tool ``lis_outcome_service_url`` and ``lis_result_sourcedid`` (``BasicOutcome``).
The tool POSTs an ``imsx_POXEnvelopeRequest`` (replaceResult, readResult or deleteResult) there, as
``application/xml``, signed with OAuth 1.0a HMAC-SHA1 in the ``Authorization`` header with the OAuth
Body Hash extension: ``oauth_body_hash`` is the base64 SHA-1 of the exact body bytes, and it is one of
the signed parameters. The consumer answers with an ``imsx_POXEnvelopeResponse`` whose
``imsx_codeMajor`` says what happened (success, processing, failure, unsupported).

Sans-IO like every core client: ``build_*`` makes the ``HttpRequest``, the host sends it,
``parse_outcome_response`` reads what came back. Responses are parsed with defusedxml, DTDs refused.
Every refusal is an ``OutcomeError`` with a reason code, the HTTP status when there was one, and
``retryable``: whether sending the same request later may succeed (5xx, 429) or not (the rest).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import defusedxml  # type: ignore[import-untyped] # no stubs installed
import defusedxml.ElementTree as SafeET  # type: ignore[import-untyped] # noqa: N814
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER, Client

from lti_core.errors import LtiError, ServiceUnavailable
from lti_core.http import DEFAULT_TIMEOUT, USER_AGENT, HttpRequest, HttpResponse
from lti_core.i18n import N_
from lti_core.types import BasicOutcome, Consumer

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element  # noqa: S405 - the type only: parsing is defusedxml's

NAMESPACE = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
CONTENT_TYPE = "application/xml"
CODE_MAJORS = frozenset({"success", "processing", "failure", "unsupported"})
#: The longest description kept from a consumer's answer (in the result and in log details).
MAX_DESCRIPTION = 512
# A decimal number as the spec's textString carries it; no "nan", "inf", "1_0" or non-ASCII digits.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# What XML 1.0 cannot carry at all, escaped or not: most C0 controls, lone surrogates, U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class OutcomeError(ServiceUnavailable):
    """The consumer's outcome service did not do what was asked (502).

    ``retryable``: the same request may succeed later (the service failed or throttled: 5xx, 429);
    otherwise it never will. ``http_status``: the status of the answer (0: none was parsed so far).
    ``description``: the consumer's ``imsx_description`` when it gave one.
    """

    reason = "outcome_failed"
    message = N_("The platform did not accept the grade.")

    def __init__(
        self,
        reason: str | None = None,
        *,
        detail: str = "",
        retryable: bool = False,
        http_status: int = 0,
        description: str = "",
    ) -> None:
        super().__init__(reason, detail=detail)
        self.retryable = retryable
        self.http_status = http_status
        self.description = description


class ScoreOutOfRange(LtiError):
    """A score that is not a finite number from 0.0 to 1.0 (400): nothing is sent."""

    status = 400
    reason = "score_out_of_range"
    message = N_("A grade must be a number from 0 to 1.")


@dataclass(frozen=True)
class OutcomeResult:
    """What the outcome service answered: ``success`` when its code major is ``success``
    (``processing`` is not a failure, and not done yet). ``score`` is readResult's: None when
    the consumer holds no score (or for the other operations)."""

    success: bool
    code_major: str
    description: str = ""
    score: float | None = None


# -- requests ---------------------------------------------------------------------------------


def format_score(score: float) -> str:
    """``score`` as the spec's textString: a plain decimal from 0.0 to 1.0 (never ``1e-05``)."""
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise ScoreOutOfRange(detail=f"not a number: {type(score).__name__}")
    value = float(score)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ScoreOutOfRange(detail=f"score {value!r}")
    text = format(Decimal(repr(value + 0.0)), "f")  # + 0.0: never "-0.0"
    return text if "." in text else text + ".0"


def _xml_text(value: str, reason: str) -> str:
    """``value`` escaped for element content; refused when XML cannot carry it."""
    if _NOT_XML.search(value):
        raise LtiError(reason, N_("The grade could not be sent."), detail="a character XML cannot carry")
    return escape(value)


def _envelope(operation: str, message_id: str, record: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<imsx_POXEnvelopeRequest xmlns="{NAMESPACE}">'
        "<imsx_POXHeader><imsx_POXRequestHeaderInfo>"
        "<imsx_version>V1.0</imsx_version>"
        f"<imsx_messageIdentifier>{_xml_text(message_id, 'message_id_invalid')}</imsx_messageIdentifier>"
        "</imsx_POXRequestHeaderInfo></imsx_POXHeader>"
        f"<imsx_POXBody><{operation}Request><resultRecord>{record}</resultRecord></{operation}Request></imsx_POXBody>"
        "</imsx_POXEnvelopeRequest>"
    ).encode()


def _sourced_guid(outcome: BasicOutcome) -> str:
    return f"<sourcedGUID><sourcedId>{_xml_text(outcome.sourcedid, 'sourcedid_invalid')}</sourcedId></sourcedGUID>"


def body_hash(body: bytes) -> str:
    """``oauth_body_hash``: the base64 SHA-1 of the body's bytes (OAuth Request Body Hash §3.1)."""
    return base64.b64encode(hashlib.sha1(body).digest()).decode("ascii")  # noqa: S324 - the spec's hash


class _BodyHashClient(Client):
    """oauthlib's client, carrying the body hash computed here rather than its own (older releases
    add none; newer ones hash ``body.encode('utf-8')``, which is the same for a UTF-8 body)."""

    def __init__(self, *args: Any, body_hash: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._body_hash = body_hash

    def get_oauth_params(self, request: Any) -> list[tuple[str, str]]:
        params = [
            (k, v)
            for k, v in super().get_oauth_params(request)  # type: ignore[no-untyped-call]
            if k != "oauth_body_hash"
        ]
        return [*params, ("oauth_body_hash", self._body_hash)]


def _signed(outcome: BasicOutcome, consumer: Consumer, body: bytes, now: float, nonce: str | None) -> HttpRequest:
    client = _BodyHashClient(
        consumer.key,
        client_secret=consumer.secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        timestamp=str(int(now)),
        nonce=nonce,
        body_hash=body_hash(body),
    )
    try:
        _, headers, _ = client.sign(
            outcome.service_url, http_method="POST", body=body.decode("utf-8"), headers={"Content-Type": CONTENT_TYPE}
        )
    except ValueError as exc:  # a URL oauthlib cannot sign (not absolute, a bad port, ...)
        raise OutcomeError("outcome_url_invalid", detail=type(exc).__name__) from exc
    authorization = str(headers["Authorization"])
    return HttpRequest(
        "POST",
        outcome.service_url,
        (
            ("Content-Type", CONTENT_TYPE),
            ("Accept", CONTENT_TYPE),
            ("Authorization", authorization),
            ("User-Agent", USER_AGENT),
        ),
        body,
        DEFAULT_TIMEOUT,
    )


def build_replace_result(
    outcome: BasicOutcome,
    consumer: Consumer,
    score: float,
    message_id: str,
    now: float,
    *,
    nonce: str | None = None,
) -> HttpRequest:
    """replaceResult: set this user's score for this link to ``score`` (0.0 to 1.0)."""
    text = format_score(score)
    record = (
        _sourced_guid(outcome) + f"<result><resultScore><language>en</language><textString>{text}</textString>"
        "</resultScore></result>"
    )
    return _signed(outcome, consumer, _envelope("replaceResult", message_id, record), now, nonce)


def build_read_result(
    outcome: BasicOutcome, consumer: Consumer, message_id: str, now: float, *, nonce: str | None = None
) -> HttpRequest:
    """readResult: the score the consumer holds for this user and link."""
    return _signed(outcome, consumer, _envelope("readResult", message_id, _sourced_guid(outcome)), now, nonce)


def build_delete_result(
    outcome: BasicOutcome, consumer: Consumer, message_id: str, now: float, *, nonce: str | None = None
) -> HttpRequest:
    """deleteResult: remove this user's score for this link."""
    return _signed(outcome, consumer, _envelope("deleteResult", message_id, _sourced_guid(outcome)), now, nonce)


# -- responses --------------------------------------------------------------------------------


def _q(*names: str) -> str:
    return "/".join(f"{{{NAMESPACE}}}{name}" for name in names)


def _text(element: Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _malformed(detail: str, status: int) -> OutcomeError:
    return OutcomeError("outcome_response_malformed", detail=detail, http_status=status)


def parse_outcome_response(response: HttpResponse) -> OutcomeResult:
    """The outcome service's answer, or an ``OutcomeError`` saying why there is none."""
    status = response.status
    if not 200 <= status < 300:
        retryable = status >= 500 or status == 429
        reason = "outcome_service_unavailable" if retryable else "outcome_request_rejected"
        raise OutcomeError(reason, detail=f"status {status}", retryable=retryable, http_status=status)
    try:
        root = SafeET.fromstring(response.body, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise OutcomeError("outcome_xml_forbidden", detail=type(exc).__name__, http_status=status) from exc
    except (SafeET.ParseError, ValueError, LookupError) as exc:
        # Not XML (an HTML error page, truncated), or XML in an encoding expat does not know.
        raise _malformed(f"not XML: {type(exc).__name__}", status) from exc
    if root.tag != _q("imsx_POXEnvelopeResponse"):
        raise _malformed(f"root element {str(root.tag)[:80]!r}", status)
    info = root.find(_q("imsx_POXHeader", "imsx_POXResponseHeaderInfo", "imsx_statusInfo"))
    code_element = info.find(_q("imsx_codeMajor")) if info is not None else None
    code_major = _text(code_element).lower()
    if code_element is None or not code_major:
        raise _malformed("no imsx_codeMajor", status)
    if code_major not in CODE_MAJORS:
        raise _malformed(f"unknown imsx_codeMajor {code_major[:40]!r}", status)
    description = _text(info.find(_q("imsx_description")) if info is not None else None)[:MAX_DESCRIPTION]
    if code_major in ("failure", "unsupported"):
        raise OutcomeError(
            f"outcome_{code_major}",
            detail=f"{code_major}: {description[:200]}",
            http_status=status,
            description=description,
        )
    score = _read_score(root, status)
    return OutcomeResult(success=code_major == "success", code_major=code_major, description=description, score=score)


def _read_score(root: Element, status: int) -> float | None:
    """readResultResponse's score: None when there is none (an empty textString: no grade yet)."""
    element = root.find(_q("imsx_POXBody", "readResultResponse", "result", "resultScore", "textString"))
    text = _text(element)
    if not text:
        return None
    if not _DECIMAL.fullmatch(text):
        raise _malformed("the score is not a decimal number", status)
    score = float(text)
    if not 0.0 <= score <= 1.0:  # float() of a long digit string can be inf: not in range either
        raise _malformed("the score is not from 0.0 to 1.0", status)
    return score


__all__ = [
    "CONTENT_TYPE",
    "NAMESPACE",
    "OutcomeError",
    "OutcomeResult",
    "ScoreOutOfRange",
    "body_hash",
    "build_delete_result",
    "build_read_result",
    "build_replace_result",
    "format_score",
    "parse_outcome_response",
]
