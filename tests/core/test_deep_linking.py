"""Deep linking (lti_core.deep_linking): the request as a message type of its own, who may answer it,
and the signed response, checked with pyjwt (the platform peer's library, not the tool's)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jwt as pyjwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lti_core.deep_linking import (
    ContentItem,
    LineItem,
    Offer,
    answer_pick,
    begin_pick,
    build_deep_linking_response,
    load_pick,
    parse_deep_linking_settings,
    pick_items,
    validate_deep_linking_launch,
)
from lti_core.errors import LtiError
from lti_core.lti13 import claims as c
from lti_core.lti13.launch import LaunchValidator
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.memory import MemoryStore
from lti_core.types import Role
from tests.core.test_lti13_launch import cookie

SETTINGS = {
    "deep_link_return_url": "https://moodle.example/mod/lti/contentitem_return.php?course=2&id=2",
    "accept_types": ["ltiResourceLink"],
    "accept_presentation_document_targets": ["frame", "iframe", "window"],
    "accept_copy_advice": False,
    "accept_multiple": True,
    "accept_unsigned": False,
    "auto_create": False,
    "can_confirm": False,
    "accept_lineitem": True,
    "title": "Chapter 1",
    "text": "",
    "data": "_2_abc",
}


def dl_claims(**settings: Any) -> dict[str, Any]:
    """What Moodle 4.5 sends for "Select content" (mod/lti/locallib.php lti_build_content_item_selection_request)."""
    return {
        "message_type": "LtiDeepLinkingRequest",
        c.DEEP_LINKING_SETTINGS: {**SETTINGS, **settings},
    }


@pytest.fixture
def dl_validator(store, key_cache, tool, clock) -> LaunchValidator:
    return LaunchValidator(
        store,
        key_cache,
        tool_base_urls=[tool.base_url],
        redirect_uri=tool.launch_url,
        now=clock,
        message_types=("LtiResourceLinkRequest", "LtiDeepLinkingRequest"),
    )


def test_a_deep_linking_request_is_a_launch_with_its_settings(dl_validator, platform, state):
    token = platform.token(state, drop=[c.RESOURCE_LINK], **dl_claims())
    launch = dl_validator.validate(token, state.state, cookie(state.state))
    assert launch.message_type == "LtiDeepLinkingRequest" and launch.resource_link_id == ""
    settings = validate_deep_linking_launch(launch)
    assert settings.return_url == SETTINGS["deep_link_return_url"] and settings.data == "_2_abc"
    assert settings.accept_multiple and settings.accept_lineitem and settings.accept_types == ("ltiResourceLink",)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({c.DEEP_LINKING_SETTINGS: None}, "deep_linking_settings_missing"),
        ({c.DEEP_LINKING_SETTINGS: "x"}, "deep_linking_settings_missing"),
        (
            {c.DEEP_LINKING_SETTINGS: {**SETTINGS, "deep_link_return_url": "javascript:alert(1)"}},
            "deep_linking_return_url_invalid",
        ),
        ({c.DEEP_LINKING_SETTINGS: {**SETTINGS, "deep_link_return_url": 5}}, "deep_linking_return_url_invalid"),
        ({c.DEEP_LINKING_SETTINGS: {**SETTINGS, "accept_types": ["file", "html"]}}, "deep_linking_type_unsupported"),
        ({"target_link_uri": "https://evil.example/pick"}, "target_link_outside_tool"),
    ],
)
def test_a_malformed_deep_linking_request_is_refused_and_writes_nothing(
    dl_validator, platform, state, store, refused, changes, reason
):
    body = {**dl_claims(), **changes}
    token = platform.token(state, drop=[c.RESOURCE_LINK], **body)
    with refused(reason, 403 if reason == "target_link_outside_tool" else 400):
        dl_validator.validate(token, state.state, cookie(state.state))
    assert store.writes == []


def test_a_host_without_a_picker_refuses_deep_linking(validator, platform, state, refused):
    with refused("unsupported_message_type", 400):
        validator.validate(
            platform.token(state, drop=[c.RESOURCE_LINK], **dl_claims()), state.state, cookie(state.state)
        )


def test_a_bad_signature_is_refused_before_the_message_type(dl_validator, platform, state, rogue_key, refused):
    with refused("bad_signature", 401):
        dl_validator.validate(platform.token(state, key=rogue_key, **dl_claims()), state.state, cookie(state.state))


@pytest.fixture
def teacher_request(dl_validator, platform, state):
    return dl_validator.validate(
        platform.token(state, drop=[c.RESOURCE_LINK], **dl_claims()), state.state, cookie(state.state)
    )


@pytest.fixture(scope="module")
def tool_keys() -> ToolKeySet:
    keys = ToolKeySet(MemoryStore())
    keys.ensure_key()
    return keys


def decode(token: str, tool_keys: ToolKeySet, audience: str) -> dict[str, Any]:
    public = pyjwt.PyJWKSet.from_dict(tool_keys.jwks())
    header = pyjwt.get_unverified_header(token)
    key = next(k for k in public.keys if k.key_id == header["kid"])
    # The test clock is in the past: the times are checked by the test, the signature and audience here.
    return pyjwt.decode(token, key.key, algorithms=["RS256"], audience=audience, options={"verify_exp": False})


def test_a_learner_may_not_pick_content(teacher_request):
    learner = dataclasses.replace(teacher_request, role=Role.LEARNER)
    with pytest.raises(LtiError) as refused:
        validate_deep_linking_launch(learner)
    assert (refused.value.status, refused.value.reason) == (403, "deep_linking_instructors_only")


def test_the_response_is_signed_by_the_tool_and_holds_the_picked_items(teacher_request, tool_keys, platform, clock):
    items = [
        ContentItem("Chapter 1", "https://tool.example/lti/content/1", text="Intro", custom={"content_id": "c1"}),
        ContentItem(
            "Quiz",
            "https://tool.example/lti/content/2",
            custom={"content_id": "c2"},
            line_item=LineItem(10.0, "Quiz", resource_id="c2", tag="grade"),
        ),
    ]
    answer = build_deep_linking_response(teacher_request, items, tool_keys, clock(), message="2 items added")
    assert answer.url == SETTINGS["deep_link_return_url"] and [name for name, _ in answer.fields] == ["JWT"]
    body = decode(answer.fields[0][1], tool_keys, platform.issuer)
    assert body["iss"] == platform.client_id and body[c.DEPLOYMENT_ID] == platform.deployment_id
    assert body[c.MESSAGE_TYPE] == "LtiDeepLinkingResponse" and body[c.VERSION] == "1.3.0"
    assert body[c.DEEP_LINKING_DATA] == "_2_abc" and body[c.DEEP_LINKING_MSG] == "2 items added"
    assert body["exp"] - body["iat"] == 600 and body["nonce"]
    assert body[c.DEEP_LINKING_CONTENT_ITEMS] == [
        {
            "type": "ltiResourceLink",
            "title": "Chapter 1",
            "url": "https://tool.example/lti/content/1",
            "text": "Intro",
            "custom": {"content_id": "c1"},
        },
        {
            "type": "ltiResourceLink",
            "title": "Quiz",
            "url": "https://tool.example/lti/content/2",
            "custom": {"content_id": "c2"},
            "lineItem": {"scoreMaximum": 10.0, "label": "Quiz", "resourceId": "c2", "tag": "grade"},
        },
    ]


def test_cancelling_sends_an_error_and_no_items(teacher_request, tool_keys, platform, clock):
    answer = build_deep_linking_response(
        teacher_request, [], tool_keys, clock(), error="Cancelled", log="teacher cancelled"
    )
    body = decode(answer.fields[0][1], tool_keys, platform.issuer)
    assert body[c.DEEP_LINKING_CONTENT_ITEMS] == [] and body[c.DEEP_LINKING_ERROR_MSG] == "Cancelled"
    assert body[c.DEEP_LINKING_ERROR_LOG] == "teacher cancelled" and c.DEEP_LINKING_MSG not in body


def test_what_the_platform_does_not_accept_is_not_sent(teacher_request, tool_keys, clock):
    one_only = dataclasses.replace(
        teacher_request,
        deep_linking=dataclasses.replace(teacher_request.deep_linking, accept_multiple=False, accept_lineitem=False),
    )
    two = [ContentItem("A", "https://tool.example/a"), ContentItem("B", "https://tool.example/b")]
    with pytest.raises(LtiError) as refused:
        build_deep_linking_response(one_only, two, tool_keys, clock())
    assert refused.value.reason == "deep_linking_one_item_only"
    graded = [ContentItem("A", "https://tool.example/a", line_item=LineItem(5, "A"))]
    with pytest.raises(LtiError) as refused:
        build_deep_linking_response(one_only, graded, tool_keys, clock())
    assert refused.value.reason == "deep_linking_no_gradebook"


# -- the picker between request and answer ---------------------------------------------------------

OFFERS = [
    Offer("c1", "Chapter 1", "https://tool.example/lti/content/1", {"content_id": "c1"}, 10.0),
    Offer("c2", "Reading", "https://tool.example/lti/content/2", {"content_id": "c2"}),  # no score
    Offer("c3", "Quiz", "https://tool.example/lti/content/3", {"content_id": "c3"}, 5.0),
]


def test_a_pending_pick_comes_back_for_its_user_only_until_it_expires(teacher_request, clock):
    pending = begin_pick(teacher_request, "7", clock())
    record = json.loads(json.dumps(pending.as_record()))  # as a cookie or a session keeps it
    # The claims only served to verify the launch: they are not kept.
    without_claims = dataclasses.replace(pending, launch=dataclasses.replace(pending.launch, raw={}))
    assert load_pick(pending.id, record, "7", clock()) == without_claims
    for pick_id, kept, user, now in [
        (pending.id, record, "8", clock()),  # another user of this browser
        (pending.id, record, "7", pending.expires_at + 1),  # expired
        (pending.id, None, "7", clock()),  # none kept (answered, or another browser)
        (pending.id, {"user": "7"}, "7", clock()),  # unreadable
        (pending.id, {**record, "expires_at": "soon"}, "7", clock()),
    ]:
        with pytest.raises(LtiError) as refused:
            load_pick(pick_id, kept, user, now)
        assert (refused.value.status, refused.value.reason) == (403, "deep_linking_expired")


def test_picked_offers_become_items_in_the_offers_order_with_their_line_items():
    items = pick_items(OFFERS, picked=["c3", "c1", "c2"], graded=["c3", "c2"])
    assert [item.title for item in items] == ["Chapter 1", "Reading", "Quiz"]
    # c2 cannot go in the gradebook (no maximum), c1 was not ticked.
    assert [item.line_item for item in items] == [None, None, LineItem(5.0, "Quiz", resource_id="c3")]
    assert items[0].custom == {"content_id": "c1"} and items[0].url == OFFERS[0].url
    with pytest.raises(LtiError) as refused:
        pick_items(OFFERS, picked=["c1", "c9"], graded=[])
    assert (refused.value.status, refused.value.reason) == (400, "unknown_content")


def test_a_pick_is_answered_once_in_the_teachers_words(teacher_request, tool_keys, platform, clock, store):
    def french(text: str) -> str:
        return {"%(count)s items added.": "%(count)s éléments ajoutés."}.get(text, text)

    pending = begin_pick(teacher_request, "7", clock())
    answer = answer_pick(pending, pick_items(OFFERS, ["c1", "c3"], ["c3"]), store, tool_keys, clock(), french)
    body = decode(answer.fields[0][1], tool_keys, platform.issuer)
    assert body[c.DEEP_LINKING_MSG] == "2 éléments ajoutés." and len(body[c.DEEP_LINKING_CONTENT_ITEMS]) == 2
    with pytest.raises(LtiError) as refused:  # the same request again: used up
        answer_pick(pending, [], store, tool_keys, clock(), french)
    assert refused.value.reason == "deep_linking_expired"
    cancelled = answer_pick(begin_pick(teacher_request, "7", clock()), [], store, tool_keys, clock(), french)
    body = decode(cancelled.fields[0][1], tool_keys, platform.issuer)
    assert body[c.DEEP_LINKING_CONTENT_ITEMS] == [] and body[c.DEEP_LINKING_ERROR_MSG] == "No content was added."


def test_the_settings_survive_a_stored_launch(teacher_request):
    from lti_core.types import Launch

    assert Launch.from_record(teacher_request.as_record()).deep_linking == teacher_request.deep_linking


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=30), inner, max_size=6),
        max_leaves=20,
    )
)
def test_any_settings_claim_parses_or_is_refused_with_a_reason(claim):
    try:
        parse_deep_linking_settings(claim)
    except LtiError as error:
        assert error.status == 400 and error.reason.startswith("deep_linking_")


# -- LTI 1.1: ContentItemSelectionRequest and ContentItemSelection ------------------------------------

RETURN_11 = "https://moodle.example/mod/lti/contentitem_return.php?course=2&id=3&sesskey=x"


def content_item_request(**changes: str | None) -> list[tuple[str, str]]:
    """Moodle 4.5's LTI 1.1 "Select content" request (lti_build_content_item_selection_request)."""
    from tests.core.test_lti11_launch import moodle_params

    params = dict(
        moodle_params(
            lti_message_type="ContentItemSelectionRequest",
            resource_link_id=None,
            content_item_return_url=RETURN_11,
            accept_media_types="application/vnd.ims.lti.v1.ltilink",
            accept_presentation_document_targets="frame,iframe,window",
            accept_multiple="true",
            accept_unsigned="false",
            auto_create="false",
            can_confirm="false",
            data="_3_xyz",
            title="Chapter 1",
            roles="Instructor",
        )
    )
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return list(params.items())


def verify_11(verifier, params, clock):
    from tests.core.test_lti11_launch import URL, sign

    return verifier.verify(method="POST", url=URL, params=sign(params, timestamp=int(clock())))


@pytest.fixture
def picker_11(lti11_store, clock):
    from lti_core.lti11.launch import BASIC_LAUNCH, CONTENT_ITEM_REQUEST, Lti11LaunchVerifier

    return Lti11LaunchVerifier(lti11_store, now=clock, message_types=(BASIC_LAUNCH, CONTENT_ITEM_REQUEST))


@pytest.fixture
def lti11_store(store):
    from lti_core.types import Consumer
    from tests.core.test_lti11_launch import KEY, SECRET

    store.save_consumer(Consumer(KEY, SECRET, "Moodle"))
    store.writes.clear()
    return store


def test_a_content_item_request_is_a_deep_linking_launch(picker_11, clock):
    launch = verify_11(picker_11, content_item_request(), clock)
    assert launch.message_type == "LtiDeepLinkingRequest" and launch.lti_version == "1.1"
    settings = validate_deep_linking_launch(launch)
    assert (settings.return_url, settings.data, settings.accept_multiple) == (RETURN_11, "_3_xyz", True)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"content_item_return_url": None}, "deep_linking_return_url_invalid"),
        ({"content_item_return_url": "ftp://x"}, "deep_linking_return_url_invalid"),
        ({"accept_media_types": "image/*"}, "deep_linking_type_unsupported"),
    ],
)
def test_an_unusable_content_item_request_is_refused_and_writes_nothing(picker_11, lti11_store, clock, changes, reason):
    with pytest.raises(LtiError) as refused:
        verify_11(picker_11, content_item_request(**changes), clock)
    assert (refused.value.status, refused.value.reason) == (400, reason)
    assert lti11_store.writes == []


def test_a_host_without_a_picker_refuses_content_item_requests(lti11_store, clock):
    from lti_core.lti11.launch import Lti11LaunchVerifier

    with pytest.raises(LtiError) as refused:
        verify_11(Lti11LaunchVerifier(lti11_store, now=clock), content_item_request(), clock)
    assert refused.value.reason == "unsupported_message_type"


def test_the_selection_is_signed_with_the_consumers_secret(picker_11, clock):
    import json

    from oauthlib.oauth1.rfc5849 import signature

    from lti_core.lti11.content_item import build_content_item_selection
    from lti_core.types import Consumer
    from tests.core.test_lti11_launch import KEY, SECRET

    launch = verify_11(picker_11, content_item_request(), clock)
    items = [
        ContentItem("Chapter 1", "https://tool.example/c/1", custom={"content_id": "c1"}),
        ContentItem("Quiz", "https://tool.example/c/2", line_item=LineItem(10, "Quiz", resource_id="c2", tag="t")),
    ]
    answer = build_content_item_selection(launch, items, Consumer(KEY, SECRET), clock(), message="Added")
    fields = dict(answer.fields)
    assert answer.url == RETURN_11 and fields["lti_message_type"] == "ContentItemSelection"
    assert (fields["data"], fields["lti_msg"], fields["oauth_consumer_key"]) == ("_3_xyz", "Added", KEY)
    graph = json.loads(fields["content_items"])["@graph"]
    assert [g["title"] for g in graph] == ["Chapter 1", "Quiz"] and graph[0]["custom"] == {"content_id": "c1"}
    assert graph[1]["lineItem"]["scoreConstraints"]["totalMaximum"] == 10
    assert graph[1]["lineItem"]["assignedActivity"]["activityId"] == "c2"
    # The platform's check (oauthlib's server-side functions): the signature over the whole form.
    pairs = [(k, v) for k, v in answer.fields if k != "oauth_signature"]
    collected = signature.collect_parameters(uri_query="course=2&id=3&sesskey=x", body=pairs)
    base = signature.signature_base_string(
        "POST", signature.base_string_uri(RETURN_11), signature.normalize_parameters(collected)
    )

    class Secret:
        client_secret, resource_owner_secret = SECRET, ""

    assert signature.sign_hmac_sha1_with_client(base, Secret()) == fields["oauth_signature"]
    with pytest.raises(LtiError):  # another consumer's key cannot answer this platform's request
        build_content_item_selection(launch, items, Consumer("other", "x"), clock())


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "content_item_return_url",
                "accept_media_types",
                "accept_multiple",
                "data",
                "accept_presentation_document_targets",
                "auto_create",
            ]
        ),
        st.text(max_size=40),
    )
)
def test_any_content_item_parameters_parse_or_are_refused_with_a_reason(params):
    from lti_core.lti11.launch import parse_content_item_settings

    try:
        settings = parse_content_item_settings(params)
    except LtiError as error:
        assert error.status == 400 and error.reason.startswith("deep_linking_")
    else:
        assert settings.return_url.lower().startswith(("http://", "https://"))
