"""The LTI endpoints: each view turns a Django request into lti_core's plain data and back.

No protocol decision is made here; lti_core raises ``LtiError`` for every refusal and
``lti_endpoint`` turns it into a readable error page with its reason code and 4xx status.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import unquote, urlsplit

from django.contrib.auth import get_user_model, login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lti_core.errors import AuthenticationFailed, Forbidden, LtiError, NotFound
from lti_core.i18n import N_
from lti_core.linking import AccountLinker, LinkOutcome
from lti_core.lti11.launch import Lti11LaunchVerifier
from lti_core.lti13.jwks import PlatformKeyCache
from lti_core.lti13.launch import LaunchValidator
from lti_core.lti13.login import OidcLogin
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.types import Launch
from lti_publish_assets import error_page_html
from lti_xblock import compat
from lti_xblock.http import fetch
from lti_xblock.i18n import gettext as _
from lti_xblock.launch_details import URL_PREFIX, lti13_redirect_uri, tool_base_url
from lti_xblock.store import DjangoStore

log = logging.getLogger(__name__)

STATE_COOKIE_PREFIX = "lti1p3_state_"
SESSION_LAUNCH_KEY = "lti_publish_launch"
PURGE_EVERY = 200
HINT = N_("Launch again from your course. If this keeps happening, give the reason code to your administrator.")

# One per process: the platform key cache must outlive requests, or every launch would fetch a JWKS.
store = DjangoStore()
platform_keys = PlatformKeyCache(fetch)
tool_keys = ToolKeySet(store)


def error_page(request: HttpRequest, error: LtiError) -> HttpResponse:
    html = error_page_html(
        lang=getattr(request, "LANGUAGE_CODE", "") or "en",
        title=_(N_("This launch could not be completed")),
        message=_(error.message),
        reason=error.reason,
        reason_label=_(N_("Reason code")),
        hint=_(HINT),
    )
    return HttpResponse(html, status=error.status, content_type="text/html; charset=utf-8")


def lti_endpoint(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Platform-facing endpoint: cross-site POSTs (no CSRF token), framable, refusals as error pages."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except LtiError as error:
            # The reason code and where it came from; never the token, the signature or a secret.
            log.info("LTI request refused: %s (%s) %s", error.reason, request.path, error.detail)
            return error_page(request, error)

    return xframe_options_exempt(csrf_exempt(wrapper))


def base_url(request: HttpRequest) -> str:
    return tool_base_url(request.build_absolute_uri("/"))


def content_id_from_target(target_link_uri: str) -> str:
    """The content a launch points to: target_link_uri is ``<base>/lti_publish/content/<id>/``."""
    parts = [p for p in urlsplit(target_link_uri).path.split("/") if p]
    if len(parts) >= 3 and parts[-3:-1] == [URL_PREFIX, "content"]:
        return unquote(parts[-1])
    raise Forbidden("target_link_not_content", N_("The launch does not point to published content."))


def require_content(content_id: str) -> Callable[[Launch], None]:
    def check(_launch: Launch) -> None:
        if compat.host().content_title(content_id) is None:
            raise NotFound("unknown_content")

    return check


def free_username(suggested: str) -> str:
    """``suggested`` (already unique per platform identity), or with a suffix if a local account took it."""
    # Case-insensitive: Open edX on MySQL treats "Alice" and "alice" as the same username.
    similar = get_user_model().objects.filter(username__istartswith=suggested).values_list("username", flat=True)
    taken = {username.lower() for username in similar}
    name, n = suggested, 0
    while name.lower() in taken:
        n += 1
        name = f"{suggested}_{n}"
    return name


def sign_in(request: HttpRequest, launch: Launch, content_id: str) -> HttpResponse:
    """Link (or create) the local user, give them their rights on the content, start a session."""
    host = compat.host()
    linker = AccountLinker(store)
    user_model = get_user_model()
    with transaction.atomic():
        decision = linker.decide(launch)
        if decision.outcome is LinkOutcome.LINKED:
            user = user_model.objects.get(pk=decision.local_user_id)
        elif decision.outcome is LinkOutcome.CREATE:
            user = host.create_user(free_username(decision.suggested_username), launch)
            link = linker.link(launch, str(user.pk))
            if link.local_user_id != str(user.pk):  # a concurrent first launch linked first
                user.delete()
                user = user_model.objects.get(pk=link.local_user_id)
        else:
            raise Forbidden(
                "account_prompt_unavailable",
                N_("This tool is set to link existing accounts, which is not available yet."),
            )
        host.enroll(user, content_id, launch.role)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_LAUNCH_KEY] = {
        "content_id": content_id,
        "lti_version": launch.lti_version,
        "platform": launch.platform,
        "role": launch.role.value,
        "roles": list(launch.roles),
        "context_id": launch.context_id,
        "resource_link_id": launch.resource_link_id,
    }
    log.info(
        "LTI %s launch: %s user %s -> %s as %s",
        launch.lti_version,
        launch.platform,
        user.pk,
        content_id,
        launch.role.value,
    )
    return HttpResponseRedirect(host.landing_url(content_id))


@lti_endpoint
@require_POST
def lti11_launch(request: HttpRequest, content_id: str) -> HttpResponse:
    verifier = Lti11LaunchVerifier(store)
    pairs = [(name, value) for name, values in request.POST.lists() for value in values]
    launch = verifier.verify(
        method="POST", url=request.build_absolute_uri(), params=pairs, before_commit=require_content(content_id)
    )
    return sign_in(request, launch, content_id)


@lti_endpoint
@require_http_methods(["GET", "POST"])
def lti13_login(request: HttpRequest) -> HttpResponse:
    params = request.POST if request.method == "POST" else request.GET
    base = base_url(request)
    login_handler = OidcLogin(store, tool_base_urls=[base], redirect_uri=lti13_redirect_uri(base))
    redirect = login_handler.begin({k: params.get(k, "") for k in params})
    if secrets.randbelow(PURGE_EVERY) == 0:
        # States and nonces expire within minutes; sweeping now and then keeps the tables small
        # without a scheduler (`lti-publish purge` does the same from cron).
        store.purge_expired(time.time())
    response = HttpResponseRedirect(redirect.url)
    # Binds the state to this browser where cookies work; see LaunchValidator.load_state for the rest.
    secure = request.is_secure()
    response.set_cookie(
        STATE_COOKIE_PREFIX + redirect.state.state,
        "1",
        max_age=max(0, int(redirect.state.expires_at - time.time())),
        httponly=True,
        secure=secure,
        samesite="None" if secure else "Lax",
    )
    return response


@lti_endpoint
@require_POST
def lti13_launch(request: HttpRequest) -> HttpResponse:
    state = request.POST.get("state", "")
    browser_states = {n[len(STATE_COOKIE_PREFIX) :] for n in request.COOKIES if n.startswith(STATE_COOKIE_PREFIX)}
    validator = LaunchValidator(store, platform_keys, tool_base_urls=[base_url(request)])
    content: dict[str, str] = {}

    def check(launch: Launch) -> None:
        content["id"] = content_id_from_target(launch.target_link_uri)
        require_content(content["id"])(launch)

    launch = validator.validate(request.POST.get("id_token", ""), state, browser_states, before_commit=check)
    response = sign_in(request, launch, content["id"])
    response.delete_cookie(STATE_COOKIE_PREFIX + state)
    return response


@require_GET
def lti13_jwks(request: HttpRequest) -> HttpResponse:
    tool_keys.ensure_key()
    response = JsonResponse(tool_keys.jwks())
    response["Cache-Control"] = "public, max-age=3600"
    return response


@lti_endpoint
@require_GET
@ensure_csrf_cookie  # the content's XBlock JavaScript posts to its handlers with this token
def content(request: HttpRequest, content_id: str) -> HttpResponse:
    host = compat.host()
    if not isinstance(host, compat.WorkbenchHost):  # pragma: no cover - the LMS serves its own courseware
        return HttpResponseRedirect(host.landing_url(content_id))
    if not request.user.is_authenticated:
        raise AuthenticationFailed("not_signed_in", N_("Open this content from your course in your learning platform."))
    role = host.enrolled_role(request.user, content_id)
    if role is None:
        raise Forbidden("not_enrolled", N_("You do not have access to this content; open it from your course."))
    return host.render_content(request, content_id, role)
