"""Property tests: whatever arrives, the parsers answer with a result or an LtiError, and a refusal writes nothing.

Hypothesis throws arbitrary text, bytes, nested JSON and mutated genuine requests at the id_token parser,
the LTI 1.1 verifier and the role mapping. Any exception other than LtiError fails the test. Kept small
(200 examples each, no deadline) so the whole suite stays quick.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_BODY, Client

from lti_core import roles
from lti_core.errors import LtiError
from lti_core.lti11.launch import Lti11LaunchVerifier
from lti_core.lti13.jwks import PlatformKeyCache
from lti_core.lti13.jws import MAX_JSON_DEPTH, parse_compact, parse_payload
from lti_core.lti13.launch import LaunchValidator, split_token
from lti_core.memory import MemoryStore
from lti_core.types import Consumer, Launch, Role
from lti_peer.lti11 import moodle_lti11_params

T = TypeVar("T")
# No example database: the suite leaves no .hypothesis directory behind in the checkout.
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

KEY, SECRET = "moodle-key", "moodle-secret-0123456789"
URL = "https://tool.example/lti_publish/lti11/launch"
NOW = 1_760_000_000


def outcome(call: Callable[..., T], *args: Any, **kwargs: Any) -> T | LtiError:
    """The result, or the LtiError refusing it; any other exception propagates and fails the test."""
    try:
        return call(*args, **kwargs)
    except LtiError as exc:
        return exc


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# -- the id_token -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
# Text that is JSON-ish: brackets, quotes, escapes and numbers json reads in odd ways.
json_ish = st.text(alphabet='[]{}",:\\u0123456789abcdefnrtlsINaity.eE+- \x00\n', max_size=200)


def nested(depth: int, opener: str) -> bytes:
    closer = {"[": "]", "{": "}"}[opener]
    inner = '"a":' if opener == "{" else ""
    return ((opener + inner) * depth + "1" + closer * depth).encode()


segment_bytes = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_ish.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(nested, st.integers(0, 3000), st.sampled_from("[{")),
)
segments = st.one_of(segment_bytes.map(b64), st.text(max_size=60), st.text(alphabet="AQgw-_=+/ .", max_size=12))


@FUZZ
@given(st.text(max_size=300))
def test_split_token_takes_any_text(text):
    outcome(split_token, text)


@FUZZ
@given(segments, segments, segments)
def test_parse_compact_takes_any_three_segments(header, payload, signature):
    result = outcome(parse_compact, f"{header}.{payload}.{signature}")
    if not isinstance(result, LtiError):
        # Accepted only in the one canonical spelling, with an object header and no crit.
        assert b64(base64.urlsafe_b64decode(header + "==")) == header
        assert isinstance(result.header, dict) and "crit" not in result.header
        assert result.signing_input == f"{header}.{payload}".encode("ascii")


@FUZZ
@given(segment_bytes)
def test_parse_payload_takes_any_bytes(raw):
    result = outcome(parse_payload, b64(raw))
    if not isinstance(result, LtiError):
        assert isinstance(result, dict) and _depth(result) <= MAX_JSON_DEPTH


def _depth(value: Any) -> int:
    stack, deepest = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


@FUZZ
@given(st.integers(MAX_JSON_DEPTH + 1, 5000), st.sampled_from("[{"))
def test_deep_nesting_is_refused_cleanly(depth, opener):
    assert isinstance(outcome(parse_payload, b64(b'{"x":' + nested(depth, opener) + b"}")), LtiError)


GENUINE = ".".join(
    [
        b64(b'{"alg":"RS256","typ":"JWT","kid":"k1"}'),
        b64(b'{"iss":"https://moodle.example","sub":"2","exp":1760000060}'),
        b64(bytes(range(256))),
    ]
)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(GENUINE)), st.sampled_from(list(".=+/ \x00é-_AQw{[")), st.booleans())))
def test_mutations_of_a_well_formed_token(edits):
    token = GENUINE
    for position, char, replace in edits:
        position = min(position, len(token))
        token = token[:position] + char + token[position + (1 if replace else 0) :]
    outcome(parse_compact, token)


@FUZZ
@given(st.text(max_size=200), st.text(max_size=60))
def test_key_set_to_fetch_never_raises(token, state):
    validator = LaunchValidator(MemoryStore(), PlatformKeyCache(None), tool_base_urls="https://tool.example/")
    assert validator.key_set_to_fetch(token, state) is None


# -- LTI 1.1 ----------------------------------------------------------------------------------


class RecordingStore(MemoryStore):
    """Holds one consumer and records any write made after it was set up."""

    def __init__(self) -> None:
        super().__init__()
        self.save_consumer(Consumer(KEY, SECRET, "Moodle"))
        self.writes: list[str] = []

    def consume_nonce(self, scope: str, nonce: str, expires_at: float, now: float) -> bool:
        self.writes.append("consume_nonce")
        return super().consume_nonce(scope, nonce, expires_at, now)


def sign(params: list[tuple[str, str]], url: str = URL, nonce: str = "nonce-1") -> list[tuple[str, str]]:
    client = Client(
        KEY,
        client_secret=SECRET,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_BODY,
        timestamp=str(NOW),
        nonce=nonce,
    )
    _, _, body = client.sign(
        url, http_method="POST", body=urlencode(params), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    return parse_qsl(body, keep_blank_values=True)


SIGNED = sign(list(moodle_lti11_params(custom_content_id="intro").items()))


def verify(method: str, url: str, params: Any) -> tuple[Launch | LtiError, RecordingStore]:
    store = RecordingStore()
    result = outcome(Lti11LaunchVerifier(store, now=lambda: NOW).verify, method=method, url=url, params=params)
    if isinstance(result, LtiError):
        assert store.writes == [], result
    return result, store


texts = st.text(max_size=40)
urls = st.one_of(st.just(URL), texts, texts.map(lambda t: URL + "?" + t), texts.map(lambda t: "https://" + t))


@FUZZ
@given(st.sampled_from(["POST", "post", "GET", ""]) | texts, urls, st.lists(st.tuples(texts, texts), max_size=30))
def test_verify_takes_any_form(method, url, pairs):
    result, _ = verify(method, url, pairs)
    assert isinstance(result, LtiError)  # nothing here is signed by the consumer


@FUZZ
@given(st.integers(0, len(SIGNED) - 1), st.booleans(), texts, urls)
def test_verify_takes_any_change_to_a_genuine_launch(index, change_name, text, url):
    pairs = list(SIGNED)
    name, value = pairs[index]
    pairs[index] = (text, value) if change_name else (name, text)
    result, store = verify("POST", url, pairs)
    if isinstance(result, Launch):
        # Only an edit that changed nothing can pass (the URL may be spelled otherwise: "launch?" is
        # the same to OAuth), and then the nonce was consumed, once.
        assert pairs == SIGNED and store.writes == ["consume_nonce"]


@FUZZ
@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), texts), max_size=8), texts)
def test_verify_takes_any_signed_extra_parameters_and_roles(extra, role_text):
    """Signed by the consumer, so only the parameter checks and the role mapping decide."""
    params = [*moodle_lti11_params(custom_content_id="intro", roles=role_text).items(), *extra]
    try:
        signed = sign(params)
    except ValueError:  # oauthlib's client cannot sign it (a lone surrogate): nothing to send
        assume(False)
    result, _ = verify("POST", URL, signed)
    if isinstance(result, Launch):
        assert result.role is roles.local_role(roles.parse_lti11_roles(role_text))


# -- roles ------------------------------------------------------------------------------------

STAFF_SPELLINGS = [
    "Instructor",
    "TeachingAssistant",
    "ContentDeveloper",
    "Administrator",
    "urn:lti:role:ims/lis/Instructor",
    "urn:lti:role:ims/lis/TeachingAssistant",
    "urn:lti:role:ims/lis/Administrator",
    "urn:lti:instrole:ims/lis/Administrator",
    "urn:lti:sysrole:ims/lis/Administrator",
    "urn:lti:sysrole:ims/lis/SysAdmin",
    roles.INSTRUCTOR,
    roles.TEACHING_ASSISTANT,
    roles.INSTITUTION + "Administrator",
    roles.SYSTEM + "SysAdmin",
]
LEARNER_SPELLINGS = ["Learner", "urn:lti:role:ims/lis/Learner", roles.LEARNER]
ADMIN_SPELLINGS = [
    "urn:lti:instrole:ims/lis/Administrator",
    "urn:lti:sysrole:ims/lis/Administrator",
    "urn:lti:sysrole:ims/lis/SysAdmin",
    roles.INSTITUTION + "Administrator",
    roles.SYSTEM + "Administrator",
]


def gives_nothing(role: str) -> bool:
    return roles.local_role([role]) is Role.LEARNER


@FUZZ
@given(st.lists(st.text(max_size=60), max_size=10), st.text(max_size=200))
def test_role_functions_take_any_text(values, joined):
    for value in values:
        normalised = roles.normalise_role(value)
        assert roles.normalise_role(normalised) == normalised  # normalising twice changes nothing
    assert all(isinstance(r, str) and r.strip() for r in roles.normalise_roles(values))
    assert roles.local_role(values) in (Role.STAFF, Role.LEARNER)
    assert roles.local_role(roles.parse_lti11_roles(joined)) in (Role.STAFF, Role.LEARNER)


@FUZZ
@given(st.sampled_from(STAFF_SPELLINGS), st.text(alphabet="abcXYZ019#.-", min_size=1, max_size=12))
def test_a_staff_name_with_anything_appended_is_no_role(spelling, suffix):
    """Exact names only: "TeachingAssistantNotReally" used to be staff through a prefix match."""
    assert roles.local_role([spelling + suffix]) is Role.LEARNER
    assert roles.normalise_role(spelling + suffix) == spelling + suffix


@FUZZ
@given(
    st.sampled_from(LEARNER_SPELLINGS),
    st.lists(st.sampled_from(ADMIN_SPELLINGS), max_size=4),
    st.lists(st.text(max_size=30).filter(gives_nothing), max_size=4),
)
def test_a_learner_here_is_never_staff_whatever_else_is_claimed(learner, admin, junk):
    assert roles.local_role([*admin, *junk, learner]) is Role.LEARNER
