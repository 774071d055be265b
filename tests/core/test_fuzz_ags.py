"""Property tests of the AGS parsers: whatever a platform answers (any status, headers, body), they return
their documented result or raise an LtiError, never anything else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lti_core import ags
from lti_core.errors import LtiError
from lti_core.http import HttpResponse

FUZZ = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
BASE = "https://m.example/mod/lti/services.php/2/lineitems?type_id=2"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
fields = st.sampled_from(
    ["id", "scoreMaximum", "label", "resourceId", "resourceLinkId", "tag", "userId", "resultScore", "resultMaximum"]
)
plausible_objects = st.dictionaries(fields, json_values, max_size=9)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(plausible_objects, max_size=4).map(lambda v: json.dumps(v).encode()),
    plausible_objects.map(lambda v: json.dumps(v).encode()),
)
link_values = st.one_of(
    st.text(max_size=80),
    st.tuples(st.text(max_size=30), st.sampled_from(["next", '"next"', '"prev next"', "first"])).map(
        lambda t: f"<{t[0]}>; rel={t[1]}"
    ),
)
headers = st.lists(
    st.tuples(st.sampled_from(["Link", "link", "Retry-After", "Content-Type"]), link_values), max_size=3
).map(tuple)
responses = st.builds(HttpResponse, st.integers(100, 599) | st.sampled_from([200, 201, 204]), headers, bodies)


def outcome(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except LtiError as exc:
        return exc


@FUZZ
@given(responses)
def test_every_parser_answers_its_result_or_an_lti_error(response):
    # One response through every parser: generating responses costs more than parsing them.
    page = outcome(ags.parse_lineitems, response, BASE)
    if isinstance(page, ags.LineItemPage):
        assert all(isinstance(item, ags.LineItem) and item.score_maximum > 0 for item in page.items)
        assert page.next_url is None or page.next_url.startswith("https://m.example/")
    else:
        assert isinstance(page, LtiError)
    assert isinstance(outcome(ags.parse_lineitems, response), ags.LineItemPage | LtiError)
    assert isinstance(outcome(ags.parse_lineitem, response), ags.LineItem | LtiError)
    results = outcome(ags.parse_results, response, BASE)
    if isinstance(results, ags.ResultPage):
        assert all(r.user_id and r.result_maximum > 0 for r in results.results)
    else:
        assert isinstance(results, LtiError)
    for parse in (ags.parse_score_response, ags.parse_delete_response):
        result = outcome(parse, response)
        assert result is None or isinstance(result, LtiError)
        if isinstance(result, ags.AgsError) and hasattr(result, "excerpt"):
            assert len(result.excerpt) <= ags.EXCERPT_LENGTH


@FUZZ
@given(st.text(max_size=40), json_values, json_values, st.text(max_size=40))
def test_build_score_refuses_with_reason_codes_only(user_id, given_score, maximum, stamp):
    result = outcome(ags.build_score, user_id, given_score, maximum, stamp)
    assert isinstance(result, ags.Score | LtiError)
