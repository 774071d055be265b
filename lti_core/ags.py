"""LTI Assignment and Grade Services 2.0: the tool's client for the platform's gradebook, sans-IO.

Line items (the gradebook's columns) are listed, created, updated and deleted at the line items URL
the launch's AGS claim gives (Moodle's carry ``?type_id=N``: every URL built here keeps the query);
a score is POSTed to ``<line item URL>/scores`` and the results read from ``<line item URL>/results``.
Every request carries the access token the platform's token endpoint granted (``lti_core.lti13.token``,
cached by ``TokenCache``) as a bearer token.

The answers are refused by kind, so a caller knows what to do next:

* ``AgsTokenExpired`` (``ags_token_expired``): a 401, the token is no longer good; invalidate it in the
  ``TokenCache``, fetch a new one and try once more.
* ``AgsRetryable`` (``ags_unavailable``): a 429 or 5xx; try again later (``retry_after`` when the
  platform said how long to wait).
* ``AgsRefused`` (``ags_refused``): any other status; permanent, with the platform's status and a short
  excerpt of its body.
* ``AgsResponseMalformed`` (``ags_response_malformed``): a success whose body is not what AGS says.

A score needs a timestamp newer than the last one the platform kept for (line item, user), or the
platform drops it: ``ScoreClock`` gives strictly increasing ones.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from lti_core.errors import InvalidRequest, ServiceUnavailable
from lti_core.http import USER_AGENT, HttpRequest, HttpResponse
from lti_core.i18n import N_
from lti_core.lti13.token import AccessToken
from lti_core.types import Registration

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"

MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"

ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")

#: Characters of the platform's body kept in a refusal (for logs).
EXCERPT_LENGTH = 200
#: Seconds before its expiry a cached token is no longer handed out.
TOKEN_MARGIN = 60.0
_OK_SCORE = frozenset({200, 201, 202, 204})
_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_REL = re.compile(r"""\brel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


# -- refusals --------------------------------------------------------------------------------------


class AgsError(ServiceUnavailable):
    """A gradebook request that did not succeed (502 for a page; a job reads ``retryable``)."""

    reason = "ags_failed"
    message = N_("The platform's gradebook could not be updated. Please try again later.")
    retryable = False


class AgsTokenExpired(AgsError):
    """401: the access token is expired or revoked; fetch a new one and try once more."""

    reason = "ags_token_expired"
    retryable = True


class AgsRetryable(AgsError):
    """429 or 5xx: the platform is busy or failing; try again later."""

    reason = "ags_unavailable"
    retryable = True

    def __init__(self, status: int, excerpt: str, retry_after: float | None = None) -> None:
        self.platform_status = status
        self.excerpt = excerpt
        self.retry_after = retry_after
        super().__init__(detail=f"status {status}: {excerpt}")


class AgsRefused(AgsError):
    """Any other non-success status: permanent; ``platform_status`` and ``excerpt`` say what the platform said."""

    reason = "ags_refused"

    def __init__(self, status: int, excerpt: str) -> None:
        self.platform_status = status
        self.excerpt = excerpt
        super().__init__(detail=f"status {status}: {excerpt}")


class AgsResponseMalformed(AgsError):
    """A success whose body is not the document AGS defines."""

    reason = "ags_response_malformed"


def _invalid(reason: str, detail: str) -> InvalidRequest:
    return InvalidRequest(reason, N_("The grade could not be sent to the platform."), detail=detail)


# -- URLs ------------------------------------------------------------------------------------------


def _check_url(url: str) -> None:
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")) or not urlsplit(url).netloc:
        raise _invalid("ags_url_invalid", f"not an http(s) URL: {str(url)[:80]}")


def _sub_url(lineitem_url: str, leaf: str) -> str:
    _check_url(lineitem_url)
    parts = urlsplit(lineitem_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/" + leaf, parts.query, ""))


def scores_url(lineitem_url: str) -> str:
    """Where scores of the line item ``lineitem_url`` are POSTed: ``/scores`` after its path, its query kept."""
    return _sub_url(lineitem_url, "scores")


def results_url(lineitem_url: str) -> str:
    """Where the results of the line item ``lineitem_url`` are read: ``/results`` after its path, query kept."""
    return _sub_url(lineitem_url, "results")


def with_params(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to its query (replacing parameters of the same name; empty ones left out)."""
    parts = urlsplit(url)
    added = {name: value for name, value in params.items() if value}
    kept = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name not in added]
    query = urlencode(kept + list(added.items()))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _bearer(token: AccessToken | str) -> str:
    value = token.access_token if isinstance(token, AccessToken) else token
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n\x00 "):
        raise _invalid("ags_token_invalid", "no usable access token")
    return f"Bearer {value}"


def _request(
    method: str, url: str, token: AccessToken | str, accept: str, body: Any = None, media: str = ""
) -> HttpRequest:
    _check_url(url)
    headers: list[tuple[str, str]] = [("Authorization", _bearer(token))]
    if accept:
        headers.append(("Accept", accept))
    data = b""
    if body is not None:
        headers.append(("Content-Type", media))
        data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
    headers.append(("User-Agent", USER_AGENT))
    return HttpRequest(method, url, tuple(headers), data)


# -- answers ---------------------------------------------------------------------------------------


def excerpt(body: bytes) -> str:
    """A short, printable excerpt of a platform's body, for a log line."""
    text = body[: EXCERPT_LENGTH * 4].decode("utf-8", errors="replace")
    return " ".join(_CONTROL.sub(" ", text).split())[:EXCERPT_LENGTH]


def _retry_after(response: HttpResponse) -> float | None:
    value = (response.header("Retry-After") or "").strip()
    return float(value) if value.isdigit() and len(value) <= 9 else None


def check_status(response: HttpResponse, ok: Iterable[int] = (200,)) -> None:
    """Nothing when ``response`` has one of the ``ok`` statuses; the refusal of its kind otherwise."""
    status = response.status
    if status in tuple(ok):
        return
    if status == 401:
        raise AgsTokenExpired(detail=f"status 401: {excerpt(response.body)}")
    if status == 429 or 500 <= status <= 599:
        raise AgsRetryable(status, excerpt(response.body), _retry_after(response))
    raise AgsRefused(status, excerpt(response.body))


def _json(response: HttpResponse) -> Any:
    try:
        return json.loads(response.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise AgsResponseMalformed(detail="the body is not JSON") from error


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def _text(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
        return str(value)  # some platforms send ids as numbers
    if not isinstance(value, str):
        raise AgsResponseMalformed(detail=f"{name} is not text")
    return value


def next_link(response: HttpResponse, base_url: str = "") -> str | None:
    """The ``rel="next"`` URL of the ``Link`` headers of ``response``, resolved against ``base_url``.

    Only to http(s) and, given ``base_url``, only to its origin: the next page gets the bearer token.
    """
    for name, value in response.headers:
        if name.lower() != "link":
            continue
        for found in _LINK.finditer(value):
            rels = " ".join(a or b for a, b in _REL.findall(found.group(2))).lower().split()
            if "next" not in rels:
                continue
            target = urljoin(base_url, found.group(1).strip()) if base_url else found.group(1).strip()
            parts = urlsplit(target)
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise AgsResponseMalformed(detail=f"next link is not an http(s) URL: {target[:80]}")
            if base_url:
                base = urlsplit(base_url)
                if (parts.scheme.lower(), parts.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
                    raise AgsResponseMalformed(detail=f"next link to another origin: {target[:80]}")
            return target
    return None


# -- scores ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """One score of one user (``user_id``: the platform's ``sub``) for a line item (AGS §3.4)."""

    user_id: str
    score_given: float | None
    score_maximum: float | None
    activity_progress: str
    grading_progress: str
    timestamp: str
    comment: str = ""

    def as_json(self) -> dict[str, Any]:
        """The score document (``application/vnd.ims.lis.v1.score+json``)."""
        document: dict[str, Any] = {"userId": self.user_id}
        if self.score_given is not None:
            document["scoreGiven"] = self.score_given
        if self.score_maximum is not None:
            document["scoreMaximum"] = self.score_maximum
        document["activityProgress"] = self.activity_progress
        document["gradingProgress"] = self.grading_progress
        document["timestamp"] = self.timestamp
        if self.comment:
            document["comment"] = self.comment
        return document


def format_timestamp(now: float) -> str:
    """``now`` (epoch seconds) in ISO 8601 with milliseconds and the UTC offset: ``2025-10-09T08:53:20.123+00:00``."""
    return _format_millis(math.floor(now * 1000))


def _format_millis(millis: int) -> str:
    moment = datetime.fromtimestamp(millis // 1000, UTC).replace(microsecond=(millis % 1000) * 1000)
    return moment.isoformat(timespec="milliseconds")


def _check_timestamp(timestamp: str) -> None:
    try:
        parsed = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) and "T" in timestamp else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise _invalid("score_timestamp_invalid", f"not an ISO 8601 timestamp with a timezone: {str(timestamp)[:40]}")


def build_score(
    user_id: str,
    score_given: float | None,
    score_maximum: float | None,
    timestamp: str,
    *,
    final: bool = True,
    comment: str = "",
) -> Score:
    """A score: ``Completed``/``FullyGraded`` when ``final``, else ``InProgress``/``Pending``.

    Refused (``InvalidRequest``): no user (``score_user_missing``), a maximum that is not a finite number
    above 0 (``score_maximum_invalid``), a score that is not a finite number of at least 0
    (``score_given_invalid``) or given without a maximum, a timestamp without timezone
    (``score_timestamp_invalid``).
    """
    if not isinstance(user_id, str) or not user_id:
        raise _invalid("score_user_missing", "no user id")
    if score_maximum is not None:
        maximum = _number(score_maximum)
        if maximum is None or maximum <= 0:
            raise _invalid("score_maximum_invalid", f"scoreMaximum must be a finite number above 0: {score_maximum!r}")
    if score_given is not None:
        given = _number(score_given)
        if given is None or given < 0:
            raise _invalid("score_given_invalid", f"scoreGiven must be a finite number of at least 0: {score_given!r}")
        if score_maximum is None:
            raise _invalid("score_maximum_invalid", "scoreGiven needs a scoreMaximum")
    _check_timestamp(timestamp)
    activity, grading = ("Completed", "FullyGraded") if final else ("InProgress", "Pending")
    return Score(user_id, score_given, score_maximum, activity, grading, timestamp, comment)


def build_score_request(lineitem_url: str, score: Score, token: AccessToken | str) -> HttpRequest:
    """POST ``score`` to the line item's scores URL."""
    return _request("POST", scores_url(lineitem_url), token, "", score.as_json(), MEDIA_SCORE)


def parse_score_response(response: HttpResponse) -> None:
    """Nothing when the platform took the score (200, 201, 202, 204); the refusal of its kind otherwise."""
    check_status(response, _OK_SCORE)


class ScoreClock:
    """Score timestamps strictly increasing per key (a user, or a line item and a user): a platform
    drops a score whose timestamp is not newer than the one it kept. Thread-safe."""

    #: Keys remembered; beyond, those not used for a minute are forgotten.
    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def next(self, user_id: str, now: float) -> str:
        """A timestamp at ``now`` (epoch seconds), or one millisecond after the last one given for ``user_id``."""
        millis = math.floor(now * 1000)
        with self._lock:
            last = self._last.get(user_id)
            if last is not None and millis <= last:
                millis = last + 1
            self._last[user_id] = millis
            if len(self._last) > self.MAX_KEYS:
                horizon = math.floor(now * 1000) - 60_000
                self._last = {k: v for k, v in self._last.items() if v >= horizon or k == user_id}
        return _format_millis(millis)


# -- line items ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    """A gradebook column (AGS §3.2); ``id`` is its URL."""

    id: str
    score_maximum: float
    label: str = ""
    resource_id: str = ""
    resource_link_id: str = ""
    tag: str = ""


@dataclass(frozen=True)
class LineItemPage:
    """One page of a line item container; ``next_url``: the next page's URL, None on the last."""

    items: tuple[LineItem, ...]
    next_url: str | None = None


def _lineitem_body(
    label: str, score_maximum: float, resource_id: str, resource_link_id: str, tag: str
) -> dict[str, Any]:
    if not isinstance(label, str) or not label.strip():
        raise _invalid("lineitem_label_missing", "a line item needs a label")
    maximum = _number(score_maximum)
    if maximum is None or maximum <= 0:
        raise _invalid("score_maximum_invalid", f"scoreMaximum must be a finite number above 0: {score_maximum!r}")
    body: dict[str, Any] = {"scoreMaximum": score_maximum, "label": label}
    for name, value in (("resourceId", resource_id), ("resourceLinkId", resource_link_id), ("tag", tag)):
        if value:
            body[name] = value
    return body


def build_lineitems_query(
    lineitems_url: str,
    resource_link_id: str = "",
    tag: str = "",
    token: AccessToken | str = "",
    *,
    resource_id: str = "",
    limit: int | None = None,
) -> HttpRequest:
    """GET the line items, filtered by ``resource_link_id``, ``tag``, ``resource_id`` (the empty ones not)."""
    _check_url(lineitems_url)
    params = {"resource_link_id": resource_link_id, "resource_id": resource_id, "tag": tag}
    if limit is not None:
        params["limit"] = str(max(int(limit), 1))
    return _request("GET", with_params(lineitems_url, params), token, MEDIA_LINEITEM_CONTAINER)


def build_lineitems_page(next_url: str, token: AccessToken | str) -> HttpRequest:
    """GET the next page of a line item container (``LineItemPage.next_url``)."""
    return _request("GET", next_url, token, MEDIA_LINEITEM_CONTAINER)


def build_create_lineitem(
    lineitems_url: str,
    *,
    label: str,
    score_maximum: float,
    token: AccessToken | str,
    resource_id: str = "",
    resource_link_id: str = "",
    tag: str = "",
) -> HttpRequest:
    """POST a new line item to the container."""
    body = _lineitem_body(label, score_maximum, resource_id, resource_link_id, tag)
    return _request("POST", lineitems_url, token, MEDIA_LINEITEM, body, MEDIA_LINEITEM)


def build_update_lineitem(
    item: LineItem, token: AccessToken | str, *, score_maximum: float | None = None, label: str | None = None
) -> HttpRequest | None:
    """PUT ``item`` with a new maximum or label; None when neither changes (nothing to send)."""
    new_maximum = item.score_maximum if score_maximum is None else score_maximum
    new_label = item.label if label is None else label
    if new_maximum == item.score_maximum and new_label == item.label:
        return None
    body = {"id": item.id, **_lineitem_body(new_label, new_maximum, item.resource_id, item.resource_link_id, item.tag)}
    return _request("PUT", item.id, token, MEDIA_LINEITEM, body, MEDIA_LINEITEM)


def build_delete_lineitem(lineitem_url: str, token: AccessToken | str) -> HttpRequest:
    """DELETE the line item ``lineitem_url``."""
    return _request("DELETE", lineitem_url, token, "")


def parse_delete_response(response: HttpResponse) -> None:
    """Nothing when the line item is gone (200, 204; 404: it already was)."""
    check_status(response, (200, 202, 204, 404))


def _lineitem(document: Any) -> LineItem:
    if not isinstance(document, dict):
        raise AgsResponseMalformed(detail="a line item is not a JSON object")
    item_id = document.get("id")
    if not isinstance(item_id, str) or not item_id.lower().startswith(("http://", "https://")):
        raise AgsResponseMalformed(detail="a line item has no URL as id")
    maximum = _number(document.get("scoreMaximum"))
    if maximum is None or maximum <= 0:
        raise AgsResponseMalformed(detail="a line item's scoreMaximum is not a number above 0")
    return LineItem(
        id=item_id,
        score_maximum=maximum,
        label=_text(document, "label"),
        resource_id=_text(document, "resourceId"),
        resource_link_id=_text(document, "resourceLinkId"),
        tag=_text(document, "tag"),
    )


def parse_lineitem(response: HttpResponse) -> LineItem:
    """The line item a GET, POST (create) or PUT answered with."""
    check_status(response, (200, 201))
    return _lineitem(_json(response))


def parse_lineitems(response: HttpResponse, base_url: str = "") -> LineItemPage:
    """The line items of one container page, and the next page's URL (``Link: <...>; rel="next"``).

    ``base_url``, the URL asked: relative links are resolved against it, links to another origin refused.
    """
    check_status(response)
    document = _json(response)
    if not isinstance(document, list):
        raise AgsResponseMalformed(detail="the line item container is not a JSON array")
    return LineItemPage(tuple(_lineitem(item) for item in document), next_link(response, base_url))


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """The platform's current result of one user for a line item (AGS §3.3)."""

    user_id: str
    result_score: float | None
    result_maximum: float
    comment: str = ""
    id: str = ""
    score_of: str = ""


@dataclass(frozen=True)
class ResultPage:
    results: tuple[Result, ...]
    next_url: str | None = None


def build_results_request(
    lineitem_url: str, token: AccessToken | str, *, user_id: str = "", limit: int | None = None
) -> HttpRequest:
    """GET the results of the line item (of one user, with ``user_id``)."""
    params = {"user_id": user_id}
    if limit is not None:
        params["limit"] = str(max(int(limit), 1))
    return _request("GET", with_params(results_url(lineitem_url), params), token, MEDIA_RESULT_CONTAINER)


def _result(document: Any) -> Result:
    if not isinstance(document, dict):
        raise AgsResponseMalformed(detail="a result is not a JSON object")
    user_id = _text(document, "userId")
    if not user_id:
        raise AgsResponseMalformed(detail="a result has no userId")
    score = document.get("resultScore")
    result_score = None if score is None else _number(score)
    if score is not None and result_score is None:
        raise AgsResponseMalformed(detail="resultScore is not a number")
    maximum = document.get("resultMaximum")
    result_maximum = 1.0 if maximum is None else _number(maximum)  # AGS: 1 when absent
    if result_maximum is None or result_maximum <= 0:
        raise AgsResponseMalformed(detail="resultMaximum is not a number above 0")
    return Result(
        user_id=user_id,
        result_score=result_score,
        result_maximum=result_maximum,
        comment=_text(document, "comment"),
        id=_text(document, "id"),
        score_of=_text(document, "scoreOf"),
    )


def parse_results(response: HttpResponse, base_url: str = "") -> ResultPage:
    """The results of one result container page, and the next page's URL."""
    check_status(response)
    document = _json(response)
    if not isinstance(document, list):
        raise AgsResponseMalformed(detail="the result container is not a JSON array")
    return ResultPage(tuple(_result(item) for item in document), next_link(response, base_url))


# -- tokens ----------------------------------------------------------------------------------------

TokenKey = tuple[str, str, tuple[str, ...]]


class TokenCache:
    """Access tokens per (registration, scope set), until ``margin`` seconds before they expire.

    Pure and thread-safe: ``now`` is passed in. After a 401 (``AgsTokenExpired``), ``invalidate`` the
    token and ask the platform for a new one.
    """

    def __init__(self, margin: float = TOKEN_MARGIN) -> None:
        self.margin = margin
        self._tokens: dict[TokenKey, AccessToken] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(registration: Registration, scopes: Iterable[str]) -> TokenKey:
        return (registration.issuer, registration.client_id, tuple(sorted(set(scopes))))

    def get(self, registration: Registration, scopes: Iterable[str], now: float) -> AccessToken | None:
        """The cached token for these scopes, if it is good for more than ``margin`` seconds."""
        key = self.key(registration, scopes)
        with self._lock:
            token = self._tokens.get(key)
            if token is None:
                return None
            if now >= token.expires_at - self.margin:
                del self._tokens[key]
                return None
            return token

    def put(self, registration: Registration, scopes: Iterable[str], token: AccessToken, now: float) -> None:
        """Keep ``token`` (forgetting the expired ones)."""
        with self._lock:
            self._tokens = {k: t for k, t in self._tokens.items() if now < t.expires_at - self.margin}
            self._tokens[self.key(registration, scopes)] = token

    def invalidate(self, registration: Registration, scopes: Iterable[str], token: AccessToken | None = None) -> None:
        """Forget the token for these scopes (only if it is still ``token``, when given: a newer one stays)."""
        key = self.key(registration, scopes)
        with self._lock:
            current = self._tokens.get(key)
            if current is not None and (token is None or current.access_token == token.access_token):
                del self._tokens[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)


__all__ = [
    "ACTIVITY_PROGRESS",
    "GRADING_PROGRESS",
    "MEDIA_LINEITEM",
    "MEDIA_LINEITEM_CONTAINER",
    "MEDIA_RESULT_CONTAINER",
    "MEDIA_SCORE",
    "SCOPE_LINEITEM",
    "SCOPE_LINEITEM_READONLY",
    "SCOPE_RESULT_READONLY",
    "SCOPE_SCORE",
    "AgsError",
    "AgsRefused",
    "AgsResponseMalformed",
    "AgsRetryable",
    "AgsTokenExpired",
    "LineItem",
    "LineItemPage",
    "Result",
    "ResultPage",
    "Score",
    "ScoreClock",
    "TokenCache",
    "build_create_lineitem",
    "build_delete_lineitem",
    "build_lineitems_page",
    "build_lineitems_query",
    "build_results_request",
    "build_score",
    "build_score_request",
    "build_update_lineitem",
    "check_status",
    "excerpt",
    "format_timestamp",
    "next_link",
    "parse_delete_response",
    "parse_lineitem",
    "parse_lineitems",
    "parse_results",
    "parse_score_response",
    "results_url",
    "scores_url",
    "with_params",
]
