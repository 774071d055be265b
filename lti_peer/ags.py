"""The platform's gradebook, Moodle's mod/lti/services.php (LTI Assignment and Grade Services 2.0).

    book = gradebook(peer)          # the one of this peer; its routes are served by the peer's server
    book.fail_next(2)               # the next two AGS requests answer 500
    book.delay_ms = 300             # each AGS request waits 300 ms first
    book.stop_answering()           # requests hang (then the connection closes unanswered)...
    book.answer_again()             # ...until this

URLs are Moodle's: ``/mod/lti/services.php/<course>/lineitems?type_id=<t>`` is the container,
``.../lineitems/<id>/lineitem?type_id=<t>`` a line item, with ``/scores`` and ``/results`` after it.
Every request needs a bearer token the peer's token endpoint (``lti_peer.token``) issued, unexpired,
with the scope the operation needs (401 / 403 otherwise). A score is checked like Moodle checks it
(content type, userId, timestamp, progress values, numbers) and the latest per (line item, user) by
timestamp is kept: one not newer than the kept one is acknowledged and ignored.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from lti_peer.token import token_endpoint

if TYPE_CHECKING:
    from lti_peer import PlatformSite

SERVICES_PATH = "/mod/lti/services.php/"
_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_LINEITEM = _SCOPE + "lineitem"
SCOPE_LINEITEM_READONLY = _SCOPE + "lineitem.readonly"
SCOPE_RESULT_READONLY = _SCOPE + "result.readonly"
SCOPE_SCORE = _SCOPE + "score"
MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"
ACTIVITY_PROGRESS = frozenset({"Initialized", "Started", "InProgress", "Submitted", "Completed"})
GRADING_PROGRESS = frozenset({"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"})

_CONTAINER = re.compile(r"^/mod/lti/services\.php/(\w+)/lineitems/?$")
_ITEM = re.compile(r"^/mod/lti/services\.php/(\w+)/lineitems/(\d+)/lineitem(?:/(scores|results))?/?$")


class Headers(Protocol):
    """A request's header fields, looked up by name case-insensitively (``http.server``'s ``headers``)."""

    def get(self, name: str, /) -> str | None: ...


#: (status, content type, body, extra headers); None: drop the connection unanswered.
Answer = tuple[int, str, bytes, dict[str, str]]


@dataclass
class StoredLineItem:
    number: int
    course: str
    type_id: str
    label: str
    score_maximum: float
    resource_id: str = ""
    resource_link_id: str = ""
    tag: str = ""


@dataclass
class StoredScore:
    """The latest score of a user for a line item, as the gradebook keeps it."""

    user_id: str
    score_given: float | None
    score_maximum: float | None
    activity_progress: str
    grading_progress: str
    timestamp: str
    at: datetime
    comment: str = ""
    #: When the gradebook received it (``at`` is the tool's timestamp).
    received_at: float = field(default_factory=time.time)


@dataclass
class Gradebook:
    """The AGS endpoints of one peer (see the module's docstring)."""

    peer_ref: weakref.ref[PlatformSite]
    #: Line items per container page when the request names no ``limit``.
    page_size: int = 10
    #: Milliseconds each AGS request waits before it is handled.
    delay_ms: int = 0
    #: Seconds a request hangs while the gradebook does not answer, before its connection is dropped.
    hang_limit: float = 10.0
    items: dict[int, StoredLineItem] = field(default_factory=dict)
    scores: dict[tuple[int, str], StoredScore] = field(default_factory=dict)
    #: Scores acknowledged but not kept (their timestamp was not newer): (line item, user, timestamp).
    ignored: list[tuple[int, str, str]] = field(default_factory=list)
    #: Every AGS request: (method, path with query, status; 0 when unanswered).
    log: list[tuple[str, str, int]] = field(default_factory=list)
    _next_number: int = 1
    _failures: int = 0
    _failure_status: int = 500
    _answering: threading.Event = field(default_factory=threading.Event)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self._answering.set()

    # -- knobs ---------------------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500) -> None:
        """The next ``count`` AGS requests answer ``status`` (500: a broken platform; 429, 503...)."""
        with self._lock:
            self._failures, self._failure_status = count, status

    def stop_answering(self) -> None:
        """AGS requests hang from now on (up to ``hang_limit``, then the connection closes unanswered)."""
        self._answering.clear()

    def answer_again(self) -> None:
        self._answering.set()

    def revoke_tokens(self) -> None:
        """Every access token the peer's token endpoint issued stops working (the next call: 401)."""
        token_endpoint(self._peer()).issued.clear()

    # -- state ---------------------------------------------------------------------------------------

    def _peer(self) -> PlatformSite:
        peer = self.peer_ref()
        if peer is None:
            raise RuntimeError("the platform peer is gone")
        return peer

    def lineitems_url(self, course: str = "2", type_id: str = "2") -> str:
        return f"{self._peer().issuer}{SERVICES_PATH}{course}/lineitems" + (f"?type_id={type_id}" if type_id else "")

    def item_url(self, item: StoredLineItem) -> str:
        base = f"{self._peer().issuer}{SERVICES_PATH}{item.course}/lineitems/{item.number}/lineitem"
        return base + (f"?type_id={item.type_id}" if item.type_id else "")

    def add_lineitem(
        self, label: str, score_maximum: float, *, course: str = "2", type_id: str = "2", **more: str
    ) -> str:
        """Make a line item as the platform would (the one of a resource link); returns its URL."""
        with self._lock:
            item = StoredLineItem(self._next_number, course, type_id, label, score_maximum, **more)
            self.items[item.number] = item
            self._next_number += 1
            return self.item_url(item)

    @property
    def next_number(self) -> int:
        """The number of the next line item made (numbers are not reused)."""
        return self._next_number

    def restore(
        self, items: Iterable[StoredLineItem], scores: Mapping[tuple[int, str], StoredScore], next_number: int
    ) -> None:
        """Take back the line items and scores a host kept (the demo platform keeps them in a file)."""
        with self._lock:
            self.items = {item.number: item for item in items}
            self.scores = dict(scores)
            self._next_number = max(next_number, max(self.items, default=0) + 1)

    def score_of(self, lineitem_url: str, user_id: str) -> StoredScore | None:
        match = _ITEM.match(urlsplit(lineitem_url).path)
        with self._lock:
            return None if match is None else self.scores.get((int(match.group(2)), user_id))

    def _item_json(self, item: StoredLineItem) -> dict[str, Any]:
        document: dict[str, Any] = {"id": self.item_url(item), "label": item.label, "scoreMaximum": item.score_maximum}
        for name, value in (
            ("resourceId", item.resource_id),
            ("resourceLinkId", item.resource_link_id),
            ("tag", item.tag),
        ):
            if value:
                document[name] = value
        return document

    # -- requests ------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> Answer | None:
        """The answer to an AGS request (``target``: path and query); None: leave it unanswered."""
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        if not self._answering.is_set():
            self._answering.wait(self.hang_limit)
            with self._lock:
                self.log.append((method, target, 0))
            return None
        with self._lock:
            if self._failures > 0:
                self._failures -= 1
                answer = _error(self._failure_status, "the gradebook failed (as asked)")
            else:
                answer = self._route(method, target, headers, body)
            self.log.append((method, target, answer[0]))
            return answer

    def _route(self, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        container = _CONTAINER.match(parts.path)
        if container is not None:
            if method == "GET":
                return self._authorized(headers, (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)) or self._list(
                    container.group(1), query
                )
            if method == "POST":
                return self._authorized(headers, (SCOPE_LINEITEM,)) or self._create(
                    container.group(1), query, headers, body
                )
            return _error(405, "GET or POST")
        found = _ITEM.match(parts.path)
        if found is None:
            return _error(404, "no such service")
        item = self.items.get(int(found.group(2)))
        if item is None or item.course != found.group(1):
            return _error(404, "no such line item")
        leaf = found.group(3)
        if leaf == "scores":
            if method != "POST":
                return _error(405, "POST scores")
            return self._authorized(headers, (SCOPE_SCORE,)) or self._score(item, headers, body)
        if leaf == "results":
            if method != "GET":
                return _error(405, "GET results")
            return self._authorized(headers, (SCOPE_RESULT_READONLY,)) or self._results(item, query)
        if method == "GET":
            scopes = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
            return self._authorized(headers, scopes) or _json(200, MEDIA_LINEITEM, self._item_json(item))
        if method == "PUT":
            return self._authorized(headers, (SCOPE_LINEITEM,)) or self._update(item, headers, body)
        if method == "DELETE":
            if denied := self._authorized(headers, (SCOPE_LINEITEM,)):
                return denied
            del self.items[item.number]
            self.scores = {k: v for k, v in self.scores.items() if k[0] != item.number}
            return 204, "text/plain", b"", {}
        return _error(405, "GET, PUT or DELETE")

    def _authorized(self, headers: Headers, any_of: tuple[str, ...]) -> Answer | None:
        """None when the bearer token is good and has one of the scopes ``any_of``; the refusal otherwise."""
        authorization = headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "no bearer token")
        endpoint = token_endpoint(self._peer())
        issued = endpoint.issued.get(token.strip())
        if issued is None or issued.expires_at <= endpoint.clock():
            return _error(401, "the access token is unknown, revoked or expired")
        if not set(any_of) & set(issued.scopes):
            return _error(403, "the access token lacks the scope")
        return None

    def _list(self, course: str, query: Mapping[str, str]) -> Answer:
        chosen = [
            item
            for item in sorted(self.items.values(), key=lambda i: i.number)
            if item.course == course
            and all(
                not query.get(param) or getattr(item, name) == query[param]
                for param, name in (
                    ("resource_link_id", "resource_link_id"),
                    ("resource_id", "resource_id"),
                    ("tag", "tag"),
                )
            )
        ]
        limit = _int(query.get("limit"), self.page_size)
        start = _int(query.get("from"), 0)
        page = chosen[start : start + limit]
        headers: dict[str, str] = {}
        if start + limit < len(chosen):
            following = {**query, "limit": str(limit), "from": str(start + limit)}
            url = f"{self._peer().issuer}{SERVICES_PATH}{course}/lineitems?{urlencode(following)}"
            headers["Link"] = f'<{url}>; rel="next"'
        return _json(200, MEDIA_LINEITEM_CONTAINER, [self._item_json(item) for item in page], headers)

    def _create(self, course: str, query: Mapping[str, str], headers: Headers, body: bytes) -> Answer:
        document = _document(headers, body, MEDIA_LINEITEM)
        if isinstance(document, tuple):
            return document
        label, maximum = document.get("label"), document.get("scoreMaximum")
        if not isinstance(label, str) or not label.strip():
            return _error(400, "label is required")
        if not _positive(maximum):
            return _error(400, "scoreMaximum must be a number above 0")
        more = {
            name: str(document.get(key) or "")
            for name, key in (("resource_id", "resourceId"), ("resource_link_id", "resourceLinkId"), ("tag", "tag"))
        }
        item = StoredLineItem(self._next_number, course, query.get("type_id", ""), label, float(maximum or 0), **more)
        self.items[item.number] = item
        self._next_number += 1
        return _json(201, MEDIA_LINEITEM, self._item_json(item))

    def _update(self, item: StoredLineItem, headers: Headers, body: bytes) -> Answer:
        document = _document(headers, body, MEDIA_LINEITEM)
        if isinstance(document, tuple):
            return document
        label, maximum = document.get("label", item.label), document.get("scoreMaximum", item.score_maximum)
        if not isinstance(label, str) or not label.strip():
            return _error(400, "label is required")
        if not _positive(maximum):
            return _error(400, "scoreMaximum must be a number above 0")
        item.label, item.score_maximum = label, float(maximum)
        for name, key in (("resource_id", "resourceId"), ("resource_link_id", "resourceLinkId"), ("tag", "tag")):
            if isinstance(document.get(key), str):
                setattr(item, name, document[key])
        return _json(200, MEDIA_LINEITEM, self._item_json(item))

    def _score(self, item: StoredLineItem, headers: Headers, body: bytes) -> Answer:
        document = _document(headers, body, MEDIA_SCORE)
        if isinstance(document, tuple):
            return document
        user_id, stamp = document.get("userId"), document.get("timestamp")
        if not isinstance(user_id, str) or not user_id:
            return _error(400, "userId is required")
        try:
            at = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            return _error(400, "timestamp must be ISO 8601 with a timezone")
        activity, grading = document.get("activityProgress"), document.get("gradingProgress")
        if activity not in ACTIVITY_PROGRESS or grading not in GRADING_PROGRESS:
            return _error(400, "activityProgress and gradingProgress are required")
        given, maximum = document.get("scoreGiven"), document.get("scoreMaximum")
        if given is not None and (not _number(given) or given < 0 or not _positive(maximum)):
            return _error(400, "scoreGiven needs to be a number of at least 0, with a scoreMaximum above 0")
        if maximum is not None and not _positive(maximum):
            return _error(400, "scoreMaximum must be a number above 0")
        comment = document.get("comment")
        key = (item.number, user_id)
        kept = self.scores.get(key)
        if kept is not None and at <= kept.at:
            self.ignored.append((item.number, user_id, str(stamp)))  # Moodle: an older score changes nothing
            return 200, "text/plain", b"", {}
        self.scores[key] = StoredScore(
            user_id=user_id,
            score_given=None if given is None else float(given),
            score_maximum=None if maximum is None else float(maximum),
            activity_progress=str(activity),
            grading_progress=str(grading),
            timestamp=str(stamp),
            at=at,
            comment=comment if isinstance(comment, str) else "",
        )
        return 200, "text/plain", b"", {}

    def _results(self, item: StoredLineItem, query: Mapping[str, str]) -> Answer:
        url = self.item_url(item)
        results = []
        for (number, user_id), score in sorted(self.scores.items()):
            if number != item.number or (query.get("user_id") and user_id != query["user_id"]):
                continue
            result: dict[str, Any] = {
                "id": f"{url.split('?')[0]}/results/{user_id}",
                "scoreOf": url,
                "userId": user_id,
                "resultMaximum": item.score_maximum,
            }
            if score.score_given is not None and score.score_maximum:
                result["resultScore"] = score.score_given / score.score_maximum * item.score_maximum
            if score.comment:
                result["comment"] = score.comment
            results.append(result)
        limit = _int(query.get("limit"), len(results) or 1)
        return _json(200, MEDIA_RESULT_CONTAINER, results[:limit])


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _number(value) and value > 0


def _int(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isdigit() and 0 < len(value) < 6 else default


def _json(status: int, media: str, document: Any, headers: dict[str, str] | None = None) -> Answer:
    return status, media, json.dumps(document).encode("utf-8"), headers or {}


def _error(status: int, reason: str) -> Answer:
    return _json(status, "application/json", {"status": status, "reason": reason})


def _document(headers: Headers, body: bytes, media: str) -> dict[str, Any] | Answer:
    """The JSON object of a request body of type ``media``, or the refusal (415 or 400)."""
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != media:
        return _error(415, f"Content-Type must be {media}")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _error(400, "the body is not JSON")
    if not isinstance(document, dict):
        return _error(400, "the body is not a JSON object")
    return document


def is_gradebook_path(path: str) -> bool:
    return path.startswith(SERVICES_PATH) and (_CONTAINER.match(path) or _ITEM.match(path)) is not None


_BOOKS: weakref.WeakKeyDictionary[PlatformSite, Gradebook] = weakref.WeakKeyDictionary()
_BOOKS_LOCK = threading.Lock()


def gradebook(peer: PlatformSite) -> Gradebook:
    """The gradebook of ``peer`` (made at first use)."""
    with _BOOKS_LOCK:
        book = _BOOKS.get(peer)
        if book is None:
            book = _BOOKS[peer] = Gradebook(weakref.ref(peer))
        return book


__all__ = ["Gradebook", "StoredLineItem", "StoredScore", "gradebook", "is_gradebook_path"]
