"""The port's redirect and URL rules (lti_core.http), as plain data: every driver gets them from here."""

from __future__ import annotations

import pytest

from lti_core.http import MAX_REDIRECTS, HttpRequest, HttpResponse, SyncDriver, TransportError, redirected

POST = HttpRequest("POST", "https://moodle.example/token", (("Content-Type", "application/json"),), b"{}")


def redirect(status: int, location: str) -> HttpResponse:
    return HttpResponse(status, (("Location", location),))


def test_a_response_that_is_no_redirect_ends_the_exchange() -> None:
    assert redirected(POST, HttpResponse(200)) is None
    assert redirected(POST, HttpResponse(302)) is None  # no Location: nothing to follow


@pytest.mark.parametrize("status", [307, 308])
def test_307_and_308_repeat_the_request(status: int) -> None:
    assert redirected(POST, redirect(status, "/other")) == HttpRequest(
        "POST", "https://moodle.example/other", POST.headers, b"{}"
    )


@pytest.mark.parametrize("status", [301, 302, 303])
def test_others_become_a_get_without_body(status: int) -> None:
    follow = redirected(POST, redirect(status, "https://cdn.example/jwks"))
    assert follow == HttpRequest("GET", "https://cdn.example/jwks")


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://moodle.example/x", "http://moodle.example/x"])
def test_never_to_another_scheme_nor_down_from_https(location: str) -> None:
    with pytest.raises(TransportError):
        redirected(POST, redirect(302, location))


class Scripted(SyncDriver):
    def __init__(self, *responses: HttpResponse) -> None:
        self.responses, self.sent = list(responses), []

    def exchange(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        return self.responses.pop(0)


def test_a_driver_follows_redirects_by_these_rules() -> None:
    driver = Scripted(redirect(302, "/b"), redirect(307, "https://moodle.example/c"), HttpResponse(200, body=b"ok"))
    assert driver.send(HttpRequest("GET", "https://moodle.example/a")).body == b"ok"
    assert [r.url for r in driver.sent] == [
        "https://moodle.example/a",
        "https://moodle.example/b",
        "https://moodle.example/c",
    ]


def test_a_redirect_loop_ends_in_a_transport_error() -> None:
    driver = Scripted(*[redirect(302, "/loop")] * (MAX_REDIRECTS + 1))
    with pytest.raises(TransportError, match="redirects"):
        driver.send(HttpRequest("GET", "https://moodle.example/loop"))
    assert len(driver.sent) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "data:,{}", "/relative", "javascript:x"])
def test_only_http_urls_reach_a_driver(url: str) -> None:
    driver = Scripted(HttpResponse(200))
    with pytest.raises(TransportError, match="non-HTTP"):
        driver.send(HttpRequest("GET", url))
    assert driver.sent == []
