"""lti_core.cookies: the attributes of the launch's cookies, as Set-Cookie text both hosts write."""

from __future__ import annotations

import pytest

from lti_core.cookies import CookiePolicy, cookie_header, partitioned_cookie, state_cookie_policy


def test_https_cookies_ride_cross_site_posts_and_survive_in_frames():
    assert state_cookie_policy(True) == CookiePolicy(samesite="None", secure=True, partitioned=True)
    assert state_cookie_policy(False) == CookiePolicy(samesite="Lax", secure=False, partitioned=False)


def test_cookie_header_over_https_and_http():
    assert cookie_header("s", "1", max_age=600, path="/lti13/", policy=state_cookie_policy(True)) == (
        "s=1; Max-Age=600; Path=/lti13/; HttpOnly; SameSite=None; Secure; Partitioned"
    )
    assert cookie_header("s", "1", max_age=-5, path="/", policy=state_cookie_policy(False)) == (
        "s=1; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a=1; Path=/; SameSite=None; Secure", "a=1; Path=/; SameSite=None; Secure; Partitioned"),
        ("a=1; Path=/; SameSite=None; Secure; Partitioned", "a=1; Path=/; SameSite=None; Secure; Partitioned"),
        ("a=1; Path=/; SameSite=Lax; Secure", "a=1; Path=/; SameSite=Lax; Secure"),
        ("a=1; Path=/; SameSite=None", "a=1; Path=/; SameSite=None"),
        ("a=1; Path=/", "a=1; Path=/"),
        # tornado's clear_cookie, as JupyterHub's logout calls it: the removal reaches the partition.
        (
            "_xsrf=; expires=Mon, 01 Jan 2024 00:00:00 GMT; Path=/hub/",
            "_xsrf=; expires=Mon, 01 Jan 2024 00:00:00 GMT; Path=/hub/; Secure; SameSite=None; Partitioned",
        ),
    ],
)
def test_partitioned_cookie(header, expected):
    assert partitioned_cookie(header) == expected
