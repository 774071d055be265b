"""The platform's deep-linking return endpoint, Moodle's mod/lti/contentitem_return.php.

    claims = peer.deep_linking.request_claims(data="_2_abc")  # "Select content": an LtiDeepLinkingRequest
    ... the tool's auto-submitting form POSTs JWT (1.3) or a ContentItemSelection (1.1) to its return URL ...
    peer.deep_links                                           # the resource links it created
    claims = peer.deep_linking.launch_claims(link)            # a learner's launch of one of them

An LTI 1.3 answer is checked with pyjwt (never the tool's joserfc) against the tool's JWKS, the URL the
token endpoint (``lti_peer.token``) already knows: RS256 with a kid, iss = the tool's client id, aud =
this platform, message type, deployment id, a nonce not seen before, and ``data`` one the platform
sent. An LTI 1.1 ContentItemSelection is checked with oauthlib's server-side functions (HMAC-SHA1 with
the consumer's secret, as ``lti_peer.outcomes`` checks its requests). Each ``ltiResourceLink`` becomes
a resource link; one with a ``lineItem`` also gets a line item in the peer's gradebook
(``lti_peer.ags``), tied to the link, as Moodle makes the activity's grade item. The answer is a small
HTML page listing what was made (200), or a refusal with its reason (400).
"""

from __future__ import annotations

import hmac
import html
import json
import secrets
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
from oauthlib.oauth1.rfc5849 import signature

from lti_peer import DELETE
from lti_peer.ags import SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE, gradebook
from lti_peer.claims import (
    CLAIM_AGS,
    CLAIM_CUSTOM,
    CLAIM_DEEP_LINKING_SETTINGS,
    CLAIM_DEPLOYMENT_ID,
    CLAIM_MESSAGE_TYPE,
    CLAIM_RESOURCE_LINK,
    deep_linking_settings,
)
from lti_peer.token import LEEWAY, TokenEndpoint, token_endpoint

if TYPE_CHECKING:
    from lti_peer.platform import PlatformPeer

#: Where Moodle takes the tool's answer.
RETURN_PATH = "/mod/lti/contentitem_return.php"
_DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
CLAIM_CONTENT_ITEMS = _DL + "content_items"
CLAIM_DATA = _DL + "data"
RESPONSE_MESSAGE_TYPE = "LtiDeepLinkingResponse"
#: Moodle's OAuth.php accepts timestamps this many seconds from its clock.
TIMESTAMP_WINDOW = 300


@dataclass(frozen=True)
class CreatedLink:
    """A resource link the platform made from a content item (Moodle: a new external tool activity)."""

    id: str
    title: str
    url: str
    custom: Mapping[str, str] = field(default_factory=dict)
    #: The URL of its line item in the gradebook; "" without "Add to gradebook".
    lineitem: str = ""
    #: "1.3.0" or "1.1": how the tool sent it (and how its launches go).
    lti_version: str = "1.3.0"


@dataclass(frozen=True)
class _OAuthSecrets:
    """What oauthlib's signing function reads of a client: the consumer's secret (no token secret)."""

    client_secret: str
    resource_owner_secret: str = ""


class AnswerRefused(Exception):
    """An answer the platform does not take: ``reason`` says why (on the 400 page)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def verify_response(
    token: str, endpoint: TokenEndpoint, *, platform: str, client_id: str, deployment_id: str
) -> dict[str, Any]:
    """The claims of a tool's LtiDeepLinkingResponse, checked with pyjwt against the tool's JWKS (the
    URL ``endpoint`` knows): RS256 with a kid, iss = ``client_id``, aud = ``platform`` (its issuer), the
    message type, ``deployment_id``, and ``content_items`` a list of objects. ``AnswerRefused`` says
    why not. The nonce and ``data`` are the caller's to check (it knows what it sent)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AnswerRefused("the JWT cannot be read") from None
    kid = header.get("kid")
    if header.get("alg") != "RS256" or not isinstance(kid, str):
        raise AnswerRefused("RS256 with a kid only")
    if not endpoint.tool_jwks_url:
        raise AnswerRefused("no key set URL for this tool")
    try:
        key = endpoint.tool_keys.key(endpoint.tool_jwks_url, kid)
    except (OSError, ValueError, jwt.PyJWTError):
        raise AnswerRefused("the tool's key set could not be fetched") from None
    if key is None:
        raise AnswerRefused("unknown kid")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=platform,
            issuer=client_id,
            leeway=LEEWAY,
            options={"require": ["iss", "aud", "iat", "exp", "nonce"]},
        )
    except jwt.PyJWTError as error:
        raise AnswerRefused(f"JWT not valid: {type(error).__name__}") from None
    if claims.get(CLAIM_MESSAGE_TYPE) != RESPONSE_MESSAGE_TYPE:
        raise AnswerRefused("not an LtiDeepLinkingResponse")
    if claims.get(CLAIM_DEPLOYMENT_ID) != deployment_id:
        raise AnswerRefused("unknown deployment id")
    items = claims.get(CLAIM_CONTENT_ITEMS, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise AnswerRefused("content_items must be a list of objects")
    return claims


def resource_links(claims: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``ltiResourceLink`` items of a checked answer (``verify_response``), in order; none in an
    error answer (the teacher cancelled: ``errormsg``, no items)."""
    items = claims.get(CLAIM_CONTENT_ITEMS, [])
    return [item for item in items if item.get("type") == "ltiResourceLink"]


def line_item_args(line: Any, title: str) -> tuple[str, float, dict[str, str]] | None:
    """What the platform makes of an item's ``lineItem`` (None: no line item): the column's label (the
    item's title without one), its maximum (100 when not a positive number) and the keywords
    ``resource_id`` and ``tag`` for ``Gradebook.add_lineitem``."""
    if not isinstance(line, Mapping):
        return None
    maximum = line.get("scoreMaximum")
    return (
        str(line.get("label") or title),
        float(maximum) if isinstance(maximum, int | float) and maximum > 0 else 100.0,
        {"resource_id": str(line.get("resourceId") or ""), "tag": str(line.get("tag") or "")},
    )


class DeepLinkingReturn:
    """contentitem_return.php of one platform: the requests it sent, the links it made."""

    def __init__(self, peer: PlatformPeer) -> None:
        self._peer = weakref.ref(peer)
        self._lock = threading.Lock()
        #: The ``data`` of each request sent and not answered yet (one answer each, as Moodle's course module).
        self._open_data: set[str] = set()
        self._seen_nonces: set[str] = set()
        self._next_link = 1
        #: Every resource link made, in order.
        self.links: list[CreatedLink] = []
        #: Every answer's outcome, in order: "ok" or the reason of the refusal.
        self.log: list[str] = []

    def _site(self) -> PlatformPeer:
        peer = self._peer()
        if peer is None:
            raise RuntimeError("the platform peer is gone")
        return peer

    @property
    def return_url(self) -> str:
        return self._site().issuer + RETURN_PATH + "?course=2&id=2"

    # -- what the platform sends ------------------------------------------------------------------

    def expect(self, data: str | None = None) -> str:
        """Remember a request's ``data`` (fresh when None) so its answer is accepted once; returns it."""
        data = data if data is not None else "_2_" + secrets.token_urlsafe(8)
        with self._lock:
            self._open_data.add(data)
        return data

    def request_claims(self, *, data: str | None = None, **settings: Any) -> dict[str, Any]:
        """The claims (for ``PlatformPeer.login_form(claims=...)``) of Moodle's "Select content": an
        LtiDeepLinkingRequest, no resource link, ``deep_linking_settings`` returning here."""
        claim = deep_linking_settings(self.return_url, data=self.expect(data), **settings)
        return {
            CLAIM_MESSAGE_TYPE: "LtiDeepLinkingRequest",
            CLAIM_RESOURCE_LINK: DELETE,
            CLAIM_DEEP_LINKING_SETTINGS: claim,
        }

    def launch_claims(self, link: CreatedLink) -> dict[str, Any]:
        """The claims of a learner's launch of ``link`` (its url is the target_link_uri): its resource
        link, custom parameters and, as Moodle sends, the AGS claim with the score scope; its
        ``lineitem`` is the link's line item, and absent for a link without one."""
        ags: dict[str, Any] = {
            "scope": [SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE],
            "lineitems": gradebook(self._site()).lineitems_url(),
        }
        if link.lineitem:
            ags["lineitem"] = link.lineitem
        return {
            CLAIM_MESSAGE_TYPE: "LtiResourceLinkRequest",
            CLAIM_RESOURCE_LINK: {"id": link.id, "title": link.title},
            CLAIM_CUSTOM: dict(link.custom),
            CLAIM_AGS: ags,
        }

    # -- the endpoint -------------------------------------------------------------------------------

    def handle(self, target: str, form: Mapping[str, str]) -> tuple[int, str]:
        """A POST to the endpoint (``target``: path and query): ``(status, HTML page)``."""
        try:
            if "JWT" in form:
                made = self._from_jwt(form["JWT"])
            elif form.get("lti_message_type") == "ContentItemSelection":
                made = self._from_selection(target, form)
            else:
                raise AnswerRefused("neither a JWT nor a ContentItemSelection")
        except AnswerRefused as refused:
            with self._lock:
                self.log.append(refused.reason)
            return 400, _page("Error", f"<p>invalidrequest: <code>{html.escape(refused.reason)}</code></p>")
        with self._lock:
            self.log.append("ok")
        rows = "".join(
            f"<li>{html.escape(link.title)} ({html.escape(link.id)})"
            + (f" &mdash; gradebook: {html.escape(link.lineitem)}" if link.lineitem else "")
            + "</li>"
            for link in made
        )
        return 200, _page("Content added", f"<h1>Content added</h1><ul>{rows}</ul>")

    def _from_jwt(self, token: str) -> list[CreatedLink]:
        peer = self._site()
        claims = verify_response(
            token,
            token_endpoint(peer),
            platform=peer.issuer,
            client_id=peer.client_id,
            deployment_id=peer.deployment_id,
        )
        with self._lock:
            nonce = str(claims["nonce"])
            if nonce in self._seen_nonces:
                raise AnswerRefused("nonce reused")
            self._use_data(claims.get(CLAIM_DATA))
            self._seen_nonces.add(nonce)
            return [self._create(item, item.get("lineItem"), "1.3.0") for item in resource_links(claims)]

    def _from_selection(self, target: str, form: Mapping[str, str]) -> list[CreatedLink]:
        secret = self._site().outcomes.consumers.get(form.get("oauth_consumer_key", ""))
        if secret is None:
            raise AnswerRefused("unknown consumer key")
        if form.get("oauth_signature_method") != "HMAC-SHA1":
            raise AnswerRefused("HMAC-SHA1 only")
        timestamp = form.get("oauth_timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TIMESTAMP_WINDOW:
            raise AnswerRefused("expired timestamp")
        # The signature base string over the whole form and the return URL's query (RFC 5849 3.4).
        collected = signature.collect_parameters(
            uri_query=urlsplit(target).query, body=list(form.items()), exclude_oauth_signature=True
        )
        base = signature.signature_base_string(
            "POST",
            signature.base_string_uri(self._site().issuer + target),
            # The stub says a dict; oauthlib takes the pairs (a parameter may repeat).
            signature.normalize_parameters(collected),  # type: ignore[arg-type]
        )
        expected = str(signature.sign_hmac_sha1_with_client(base, _OAuthSecrets(secret)))
        if not hmac.compare_digest(expected.encode(), form.get("oauth_signature", "").encode()):
            raise AnswerRefused("signature not valid")
        try:
            graph = json.loads(form.get("content_items", "")).get("@graph", [])
        except (ValueError, AttributeError):
            raise AnswerRefused("content_items is not JSON-LD") from None
        if not isinstance(graph, list) or not all(isinstance(item, dict) for item in graph):
            raise AnswerRefused("content_items must hold a @graph of objects")
        with self._lock:
            nonce = "1.1:" + form.get("oauth_nonce", "")
            if nonce in self._seen_nonces:
                raise AnswerRefused("nonce reused")
            self._use_data(form.get("data"))
            self._seen_nonces.add(nonce)
            return [
                self._create(item, _line_item_11(item.get("lineItem")), "1.1")
                for item in graph
                if item.get("@type") == "LtiLinkItem"
            ]

    def _use_data(self, data: Any) -> None:
        """The answer's ``data`` must be one a request carried, not answered yet (called under the lock)."""
        if not isinstance(data, str) or data not in self._open_data:
            raise AnswerRefused("data does not match a request")
        self._open_data.discard(data)

    def _create(self, item: Mapping[str, Any], line: Any, lti_version: str) -> CreatedLink:
        """A resource link for ``item`` and, with a line item, its gradebook column (under the lock)."""
        link_id = f"dl{self._next_link}"
        self._next_link += 1
        custom = item.get("custom")
        title = str(item.get("title") or "")
        lineitem = ""
        column = line_item_args(line, title)
        if column is not None:
            label, maximum, more = column
            lineitem = gradebook(self._site()).add_lineitem(label, maximum, resource_link_id=link_id, **more)
        link = CreatedLink(
            id=link_id,
            title=title,
            url=str(item.get("url") or ""),
            custom={str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {},
            lineitem=lineitem,
            lti_version=lti_version,
        )
        self.links.append(link)
        return link


def _line_item_11(line: Any) -> dict[str, Any] | None:
    """A Content-Item ``lineItem`` in the LTI 1.3 shape (``scoreConstraints.totalMaximum``: scoreMaximum)."""
    if not isinstance(line, dict):
        return None
    constraints = line.get("scoreConstraints")
    activity = line.get("assignedActivity")
    return {
        "label": line.get("label"),
        "scoreMaximum": constraints.get("totalMaximum") if isinstance(constraints, dict) else None,
        "resourceId": activity.get("activityId") if isinstance(activity, dict) else None,
        "tag": line.get("tag"),
    }


def _page(title: str, body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head><body>{body}</body></html>"


__all__ = [
    "RETURN_PATH",
    "AnswerRefused",
    "CreatedLink",
    "DeepLinkingReturn",
    "line_item_args",
    "resource_links",
    "verify_response",
]
