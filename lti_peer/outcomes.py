"""The consumer's LTI 1.1 Basic Outcomes service, shaped like Moodle 4.x's mod/lti/service.php.

    outcomes = platform.outcomes
    outcomes.add_consumer("key", "secret")
    url, sourcedid = outcomes.issue("2", "7")     # what a launch hands the tool (user 2, link 7)
    ... the tool POSTs replaceResult/readResult/deleteResult to url ...
    outcomes.gradebook[sourcedid]                 # the score it set

Built as a consumer builds it, without the tool's code: the OAuth 1.0a signature over the
``Authorization`` header parameters is checked with oauthlib's server-side functions, the
``oauth_body_hash`` (base64 SHA-1 of the raw body) by hand, and the POX body is read with defusedxml's
ElementTree. Like Moodle, every refusal (a bad signature or body hash, an unknown sourcedid, a score
outside 0..1, XML it cannot read) is a ``failure`` POX answered with HTTP 200: Moodle's
service_exception_handler echoes the XML and sets no status. Fault knobs: ``fail_next`` (the next N
requests answer 500) and ``delay_ms`` (every answer waits that long).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET  # noqa: N814
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature, utils

if TYPE_CHECKING:
    from lti_peer import PlatformSite

#: Where Moodle serves Basic Outcomes (its ``lis_outcome_service_url``).
OUTCOME_SERVICE_PATH = "/mod/lti/service.php"
NAMESPACE = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
OPERATIONS = ("replaceResult", "readResult", "deleteResult")
#: Moodle's OAuth.php accepts timestamps this many seconds from its clock.
TIMESTAMP_WINDOW = 300


def _q(*names: str) -> str:
    return "/".join(f"{{{NAMESPACE}}}{name}" for name in names)


@dataclass(frozen=True)
class OutcomeRequestLog:
    """One request the service received, and what it answered (``code_major``, ``description``)."""

    operation: str
    sourcedid: str
    code_major: str
    description: str
    http_status: int


class _Refused(Exception):
    """A failure POX: ``description`` says why (Moodle's exception message)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def response_xml(
    code_major: str, description: str, message_ref: str, response_type: str, *, body_extra: str = ""
) -> bytes:
    """An ``imsx_POXEnvelopeResponse`` the way Moodle's ``lti_get_response_xml`` writes one."""
    operation_ref = response_type.replace("Response", "Request")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<imsx_POXEnvelopeResponse xmlns="{NAMESPACE}">'
        "<imsx_POXHeader><imsx_POXResponseHeaderInfo>"
        "<imsx_version>V1.0</imsx_version>"
        f"<imsx_messageIdentifier>{secrets.randbelow(2**31)}</imsx_messageIdentifier>"
        "<imsx_statusInfo>"
        f"<imsx_codeMajor>{escape(code_major)}</imsx_codeMajor>"
        "<imsx_severity>status</imsx_severity>"
        f"<imsx_description>{escape(description)}</imsx_description>"
        f"<imsx_messageRefIdentifier>{escape(message_ref)}</imsx_messageRefIdentifier>"
        f"<imsx_operationRefIdentifier>{escape(operation_ref)}</imsx_operationRefIdentifier>"
        "</imsx_statusInfo>"
        "</imsx_POXResponseHeaderInfo></imsx_POXHeader>"
        f"<imsx_POXBody><{response_type}>{body_extra}</{response_type}></imsx_POXBody>"
        "</imsx_POXEnvelopeResponse>"
    ).encode()


class OutcomeService:
    """mod/lti/service.php for one platform (a ``PlatformPeer``...): a gradebook {sourcedid: score}."""

    def __init__(self, peer: PlatformSite) -> None:
        self._peer = peer
        self._lock = threading.Lock()
        #: consumer key -> shared secret (Moodle: the tool type's key and secret).
        self.consumers: dict[str, str] = {}
        #: The sourcedids launches handed out; others are refused (Moodle: "SourcedId hash not valid").
        self.sourcedids: set[str] = set()
        #: sourcedid -> score from 0.0 to 1.0; no entry: no grade (never set, or deleted).
        self.gradebook: dict[str, float] = {}
        #: sourcedid -> when (epoch seconds) its score in ``gradebook`` was received.
        self.received_at: dict[str, float] = {}
        #: Fault knobs: the next ``fail_next`` requests answer 500; every answer waits ``delay_ms``.
        self.fail_next = 0
        self.delay_ms = 0
        #: Every request, in order.
        self.log: list[OutcomeRequestLog] = []

    @property
    def url(self) -> str:
        """The ``lis_outcome_service_url`` of this platform."""
        return self._peer.issuer + OUTCOME_SERVICE_PATH

    def add_consumer(self, key: str, secret: str) -> None:
        with self._lock:
            self.consumers[key] = secret

    def issue(self, user_id: str, link_id: str, *, type_id: str = "2") -> tuple[str, str]:
        """``(lis_outcome_service_url, lis_result_sourcedid)`` for a launch of ``user_id`` in
        ``link_id``: Moodle's JSON sourcedid with its hash (here random, not a real HMAC)."""
        data = {"instanceid": link_id, "userid": user_id, "typeid": type_id, "launchid": secrets.randbelow(10**9)}
        sourcedid = json.dumps({"data": data, "hash": secrets.token_hex(32)}, separators=(",", ":"))
        with self._lock:
            self.sourcedids.add(sourcedid)
        return self.url, sourcedid

    # -- the endpoint -------------------------------------------------------------------------------

    def handle(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
        """A POST to the service: ``(status, body, content type)``. Header names in any case."""
        headers = {name.lower(): value for name, value in headers.items()}
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                self.log.append(OutcomeRequestLog("", "", "", "fault: 500", 500))
                return 500, b"<html><body><h1>Internal Server Error</h1></body></html>", "text/html"
        message_id, response_type, sourcedid = "", "unknownResponse", ""
        try:
            self._verify(path, headers, body)
            root = self._parse(body)
            message_id = (
                root.findtext(_q("imsx_POXHeader", "imsx_POXRequestHeaderInfo", "imsx_messageIdentifier")) or ""
            ).strip()
            pox_body = root.find(_q("imsx_POXBody"))
            request = pox_body[0] if pox_body is not None and len(pox_body) else None
            operation = str(request.tag).rsplit("}", 1)[-1].removesuffix("Request") if request is not None else ""
            response_type = f"{operation}Response"
            if operation not in OPERATIONS or request is None:
                return self._answer(operation, "", "unsupported", "unsupported", message_id, response_type)
            sourcedid = request.findtext(_q("resultRecord", "sourcedGUID", "sourcedId")) or ""
            with self._lock:
                if sourcedid not in self.sourcedids:
                    raise _Refused("SourcedId hash not valid")
            return self._operate(operation, request, sourcedid, message_id, response_type)
        except _Refused as refused:
            return self._answer("", sourcedid, "failure", refused.description, message_id, response_type)

    def _answer(
        self,
        operation: str,
        sourcedid: str,
        code_major: str,
        description: str,
        message_id: str,
        response_type: str,
        body_extra: str = "",
    ) -> tuple[int, bytes, str]:
        with self._lock:
            self.log.append(OutcomeRequestLog(operation, sourcedid, code_major, description, 200))
        xml = response_xml(code_major, description, message_id, response_type, body_extra=body_extra)
        return 200, xml, "text/xml; charset=utf-8"

    def _verify(self, path: str, headers: Mapping[str, str], body: bytes) -> None:
        """mod/lti/OAuthBody.php's handle_oauth_body_post, with oauthlib's server-side functions."""
        if (headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
            raise _Refused("OAuth request body signing must not use application/x-www-form-urlencoded")
        authorization = headers.get("authorization") or ""
        if not authorization.startswith("OAuth "):
            raise _Refused("Consumer key is missing.")
        try:
            oauth = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(authorization)}
            params = signature.collect_parameters(
                uri_query=urlsplit(path).query, headers={"Authorization": authorization}, exclude_oauth_signature=True
            )
        except (ValueError, TypeError) as exc:
            raise _Refused(f"Message signature not valid: {type(exc).__name__}") from exc
        secret = self.consumers.get(oauth.get("oauth_consumer_key", ""))
        if secret is None:
            raise _Refused("Message signature not valid")  # Moodle: no shared secret for this key
        if oauth.get("oauth_signature_method") != "HMAC-SHA1":
            raise _Refused("Message signature not valid: signature method")
        timestamp = oauth.get("oauth_timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TIMESTAMP_WINDOW:
            raise _Refused("Message signature not valid: expired timestamp")
        request = OAuthRequest(self._peer.issuer + path, http_method="POST")
        request.params = params
        request.signature = oauth.get("oauth_signature", "")
        if not signature.verify_hmac_sha1(request, secret):
            raise _Refused("Message signature not valid")
        given = oauth.get("oauth_body_hash")
        if given is None:
            raise _Refused("OAuth request body signing requires oauth_body_hash body")
        expected = base64.b64encode(hashlib.sha1(body).digest()).decode("ascii")  # noqa: S324 - the spec's hash
        if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            raise _Refused("OAuth oauth_body_hash mismatch")

    @staticmethod
    def _parse(body: bytes) -> Any:
        try:
            root = SafeET.fromstring(body, forbid_dtd=True)
        except Exception as exc:  # noqa: BLE001 - whatever defusedxml refuses: Moodle's "Invalid XML content"
            raise _Refused("Invalid XML content") from exc
        if root.tag != _q("imsx_POXEnvelopeRequest"):
            raise _Refused("Invalid XML content")
        return root

    def _operate(
        self, operation: str, request: Any, sourcedid: str, message_id: str, response_type: str
    ) -> tuple[int, bytes, str]:
        if operation == "replaceResult":
            text = (request.findtext(_q("resultRecord", "result", "resultScore", "textString")) or "").strip()
            try:
                score = float(text)
            except ValueError:
                raise _Refused("Score must be numeric") from None
            if not math.isfinite(score) or not 0.0 <= score <= 1.0:
                raise _Refused("Score not between 0.0 and 1.0")
            with self._lock:
                self.gradebook[sourcedid] = score
                self.received_at[sourcedid] = time.time()
            return self._answer(operation, sourcedid, "success", "Grade replace response", message_id, response_type)
        if operation == "readResult":
            with self._lock:
                score_or_none = self.gradebook.get(sourcedid)
            value = "" if score_or_none is None else repr(score_or_none)
            extra = (
                f"<result><resultScore><language>en</language><textString>{value}</textString></resultScore></result>"
            )
            return self._answer(operation, sourcedid, "success", "Result read", message_id, response_type, extra)
        with self._lock:
            self.gradebook.pop(sourcedid, None)
            self.received_at.pop(sourcedid, None)
        return self._answer(operation, sourcedid, "success", "Grade delete request", message_id, response_type)


__all__ = ["NAMESPACE", "OUTCOME_SERVICE_PATH", "OutcomeRequestLog", "OutcomeService", "response_xml"]
