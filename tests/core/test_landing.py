"""Where a launch lands (lti_core.landing), and the launch values an admin names (Launch.value)."""

from __future__ import annotations

import pytest

from lti_core.landing import Landing, landing, wanted_landing
from lti_core.types import Launch, Role

HUB = "https://hub.example/prefix/"


def make_launch(target: str = "", custom: dict[str, str] | None = None, raw: dict | None = None) -> Launch:
    return Launch(
        lti_version="1.3.0",
        platform="https://moodle.example",
        platform_user_id="2",
        roles=(),
        role=Role.LEARNER,
        resource_link_id="1",
        target_link_uri=target,
        custom=custom or {},
        raw=raw or {},
    )


def land(launch: Launch) -> Landing:
    return landing(
        launch,
        custom_key="next",
        public_base_url=HUB,
        relative_to="/prefix/hub/user-redirect/",
        start_paths=("", "hub", "hub/"),
        launch_prefixes=("hub/lti/", "hub/lti13/"),
    )


def test_the_custom_parameter_wins_then_next_then_the_target_link() -> None:
    target = HUB + "hub/lti13/oauth_callback?next=lab/tree/b.ipynb"
    assert wanted_landing(make_launch(target, {"next": "lab/tree/a.ipynb"}), "next") == "lab/tree/a.ipynb"
    assert wanted_landing(make_launch(target), "next") == "lab/tree/b.ipynb"
    assert wanted_landing(make_launch(HUB + "hub/home"), "next") == HUB + "hub/home"
    assert wanted_landing(make_launch(HUB + "x", {"next": "y"}), "") == HUB + "x"  # no key configured
    assert wanted_landing(make_launch(), "next") == ""


@pytest.mark.parametrize(
    ("custom", "path"),
    [
        ("lab/tree/week1/intro.ipynb", "/prefix/hub/user-redirect/lab/tree/week1/intro.ipynb"),
        ("/prefix/hub/home", "/prefix/hub/home"),
        (HUB + "hub/admin?x=1", "/prefix/hub/admin?x=1"),
    ],
)
def test_a_place_inside_the_tool_is_where_it_lands(custom: str, path: str) -> None:
    assert land(make_launch(custom={"next": custom})) == Landing(path)


@pytest.mark.parametrize("custom", ["https://evil.example/", "//evil.example/x", "/other/", "../../etc"])
def test_a_place_outside_the_tool_is_refused_and_said(custom: str) -> None:
    assert land(make_launch(custom={"next": custom})) == Landing(outside=True)


@pytest.mark.parametrize("target", [HUB, HUB + "hub/", HUB + "hub/lti13/oauth_callback", HUB + "hub/lti/launch"])
def test_a_place_that_would_start_the_launch_over_gets_the_default_page(target: str) -> None:
    assert land(make_launch(target)) == Landing()


def test_launch_values_by_name_and_custom_claims_by_their_11_spelling() -> None:
    launch = make_launch(
        custom={"canvas_user_login": " sam "},
        raw={"email": " sam@example.org ", "ext_user_username": "sam", "nested": {"a": 1}, "custom_x": "1.1 form"},
    )
    assert launch.value("email") == "sam@example.org"
    assert launch.value("custom_canvas_user_login") == "sam"
    assert launch.value("custom_x") == "1.1 form"  # a 1.1 form parameter by its own name
    assert launch.value("nested") == launch.value("missing") == launch.value("custom_missing") == ""
