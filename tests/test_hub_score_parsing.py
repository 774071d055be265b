"""The hub's score API parses what graders send (untrusted JSON): fuzzed with Hypothesis. Every input is
either a list of well-typed submissions or a 400 with a reason code, never another exception."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_lti.scores import MAX_BATCH, parse_submissions
from lti_core.errors import LtiError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)
submission = st.fixed_dictionaries(
    {"user": st.text(max_size=20), "assignment": st.text(max_size=20), "score": json_values},
    optional={"max_score": json_values, "final": json_values, "extra": json_values},
)


def check(body: bytes) -> None:
    try:
        parsed = parse_submissions(body)
    except LtiError as error:
        assert error.status == 400 and error.reason, error
        return
    assert 1 <= len(parsed) <= MAX_BATCH
    for item in parsed:
        assert item.user.strip() == item.user and item.user and item.assignment
        assert math.isfinite(item.score) and math.isfinite(item.max_score) and isinstance(item.final, bool)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes(body):
    check(body)


@settings(max_examples=300, deadline=None)
@given(json_values | submission | st.lists(submission, max_size=4))
def test_any_json(document):
    check(json.dumps(document).encode())


def test_deep_nesting_and_huge_numbers_are_refused_not_crashes():
    check(b"[" * 100_000 + b"]" * 100_000)
    check(json.dumps({"user": "sam", "assignment": "a", "score": 10**400}).encode())
    check(json.dumps({"user": "s\x00m", "assignment": "a", "score": 1}).encode())
