"""One error tree for every refusal lti_core makes.

Each error carries a stable ``reason`` code (safe to show, log and test against), an HTTP ``status``
that adapters use for the error page, and an English ``message`` marked for translation. Adapters
translate ``message`` with the host's language and never show a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lti_core.i18n import N_


class LtiError(Exception):
    """Root of every error lti_core raises for a request it refuses."""

    status: int = 400
    reason: str = "lti_error"
    message: str = N_("The LTI request could not be processed.")

    def __init__(
        self,
        reason: str | None = None,
        message: str | None = None,
        *,
        detail: str = "",
        arguments: Mapping[str, str] | None = None,
    ) -> None:
        if reason is not None:
            self.reason = reason
        if message is not None:
            self.message = message
        # `detail` is for logs only: it never holds secrets or whole tokens.
        self.detail = detail
        #: Values of the message's ``%(name)s`` placeholders, put in after it is translated.
        self.arguments = dict(arguments or {})
        super().__init__(f"{self.reason}: {detail or self.text()}")

    def text(self, translate: Callable[[str], str] = str) -> str:
        """The message in the language ``translate`` gives, its placeholders filled in."""
        translated = translate(self.message)
        return translated % self.arguments if self.arguments else translated


class InvalidRequest(LtiError):
    """The request is malformed or misses a required parameter (400)."""

    status = 400
    reason = "invalid_request"
    message = N_("The launch request is missing required information or is malformed.")


class AuthenticationFailed(LtiError):
    """The request could not be proven to come from a known platform (401)."""

    status = 401
    reason = "authentication_failed"
    message = N_("The launch could not be verified as coming from a trusted platform.")


class Forbidden(LtiError):
    """The sender is known, but the request is not allowed (403)."""

    status = 403
    reason = "forbidden"
    message = N_("This launch is not allowed.")


class ServiceUnavailable(LtiError):
    """A platform service this request depends on could not be reached (502)."""

    status = 502
    reason = "platform_unreachable"
    message = N_("The platform could not be reached. Please try again in a moment.")


class NotFound(LtiError):
    """The request names something this tool does not publish (404)."""

    status = 404
    reason = "not_found"
    message = N_("The content this link points to is not published here.")


# Refusals the hosts' web frameworks make before lti_core sees the request (a body they cannot
# parse, a wrong method): the same reason codes and pages as lti_core's own.


class MethodNotAllowed(LtiError):
    """A launch URL opened with GET (a bookmark, a reload): launches are POSTed by the platform (405)."""

    status = 405
    reason = "method_not_allowed"
    message = N_("LTI launches must be sent with POST.")


def method_not_allowed() -> MethodNotAllowed:
    return MethodNotAllowed()


def request_malformed(detail: str = "") -> InvalidRequest:
    return InvalidRequest("request_malformed", N_("The launch request is malformed."), detail=detail)


def request_too_large(detail: str = "") -> InvalidRequest:
    return InvalidRequest("request_too_large", N_("The launch request is too large."), detail=detail)
