"""The LTI endpoints: each view turns a Django request into lti_core's plain data and back.

No protocol decision is made here; lti_core raises ``LtiError`` for every refusal and
``lti_endpoint`` turns it into a readable error page with its reason code and 4xx status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import User  # both hosts' AUTH_USER_MODEL
from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_GET

from lti_core import cookies, frames, pages
from lti_core.deep_linking import validate_deep_linking_launch
from lti_core.errors import (
    AuthenticationFailed,
    Forbidden,
    LtiError,
    NotFound,
    method_not_allowed,
    request_malformed,
    request_too_large,
)
from lti_core.handover import TOKEN_PARAM, HandoverInvalid, HandoverStep, SessionHandover
from lti_core.i18n import N_
from lti_core.linking import AccountLinker, LinkOutcome, ProvisioningModes, choose_username
from lti_core.lti11.launch import BASIC_LAUNCH, CONTENT_ITEM_REQUEST, Lti11LaunchVerifier
from lti_core.lti13 import binding
from lti_core.lti13 import claims as lti13_claims
from lti_core.lti13.binding import BrowserCheckRequired, BrowserEvidence
from lti_core.lti13.jwks import PlatformKeyCache
from lti_core.lti13.launch import LaunchValidator
from lti_core.lti13.login import OidcLogin
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.prompt import CookieEvidence, cookie_evidence
from lti_core.roles import DEFAULT_ROLES, RoleTable
from lti_core.types import Launch, launch_context
from lti_publish_assets import page_html
from lti_xblock import compat, scores
from lti_xblock.block import site_provisioning_modes
from lti_xblock.cookies import set_cookie_header
from lti_xblock.http import UrllibTransport
from lti_xblock.i18n import gettext as _
from lti_xblock.launch_details import URL_PREFIX, lti13_redirect_uri, tool_base_url
from lti_xblock.store import DjangoStore

log = logging.getLogger(__name__)


# One per process: the platform key cache must outlive requests, or every launch would fetch a JWKS.
store = DjangoStore()
platform_keys = PlatformKeyCache(UrllibTransport())
tool_keys = ToolKeySet(store)


def language(request: HttpRequest) -> str:
    return getattr(request, "LANGUAGE_CODE", "") or "en"


def page(request: HttpRequest, model: pages.Page) -> HttpResponse:
    """One of lti_core's pages, in the request's language."""
    html = page_html(model, lang=language(request), translate=_)
    response = HttpResponse(html, status=model.status, content_type="text/html; charset=utf-8")
    for name, value in pages.HEADERS:
        response[name] = value
    return response


def set_flow_cookie(
    request: HttpRequest, response: HttpResponse, name: str, value: str, *, max_age: int, path: str
) -> None:
    """A cookie of an LTI flow (the launch state, the linking prompt) with lti_core's attributes: in a
    platform's frame over HTTPS, SameSite=None; Secure; Partitioned (max_age 0 deletes it)."""
    policy = cookies.state_cookie_policy(secure_origin(request))
    set_cookie_header(response, name, cookies.cookie_header(name, value, max_age=max_age, path=path, policy=policy))


def set_state_cookie(request: HttpRequest, response: HttpResponse, state: str, max_age: int) -> None:
    """The state cookie with lti_core's attributes (max_age 0 deletes it)."""
    set_flow_cookie(
        request, response, binding.state_cookie_name(state), "1", max_age=max_age, path=f"/{URL_PREFIX}/lti13/"
    )


# What Django refuses while it reads a request body (the view reads it, inside lti_endpoint):
# refused with lti_core's reason codes like any other bad input.
_TOO_LARGE = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)
_UNREADABLE = (SuspiciousOperation, BadRequest, MultiPartParserError, UnicodeDecodeError)


def lti_endpoint(
    *methods: str, flow: pages.Flow = pages.LAUNCH
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Platform-facing endpoint answering ``methods``: cross-site POSTs (no CSRF token), framable,
    every refusal an error page with its reason code (a wrong method and an unreadable body too)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise method_not_allowed()
                try:
                    return view(request, *args, **kwargs)
                except _TOO_LARGE as exc:
                    raise request_too_large(type(exc).__name__) from exc
                except _UNREADABLE as exc:
                    raise request_malformed(type(exc).__name__) from exc
            except LtiError as error:
                # The reason code and where it came from; never the token, the signature or a secret.
                log.info("LTI request refused: %s (%s) %s", error.reason, request.path, error.detail)
                return page(request, pages.refusal_page(error, lti13_login_url(request), flow))

        return xframe_options_exempt(csrf_exempt(wrapper))

    return decorate


def base_url(request: HttpRequest) -> str:
    return tool_base_url(request.build_absolute_uri("/"))


def lti13_login_url(request: HttpRequest) -> str:
    return f"{base_url(request)}/{URL_PREFIX}/lti13/login"


def secure_origin(request: HttpRequest) -> bool:
    return base_url(request).startswith("https://")


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


def require_instructor(launch: Launch) -> None:
    """A request to pick content: refused for anyone but an instructor, before anything is written.
    Its target is the tool itself (no content id needed: the instructor picks the content)."""
    validate_deep_linking_launch(role_table().apply(launch))


#: What the launch endpoints accept: launches, and requests to pick content (lti_xblock.deep_linking_views).
LTI13_MESSAGE_TYPES = (lti13_claims.RESOURCE_LINK_REQUEST, lti13_claims.DEEP_LINKING_REQUEST)
LTI11_MESSAGE_TYPES = (BASIC_LAUNCH, CONTENT_ITEM_REQUEST)


class DjangoAccounts:
    """This host's side of lti_core's username rule (``LocalAccounts``): an existing account is never
    taken over, and names compare without case (Open edX on MySQL treats "Alice" and "alice" alike)."""

    def username_available(self, name: str) -> bool:
        return not get_user_model().objects.filter(username__iexact=name).exists()


def role_table() -> RoleTable:
    """Which launch roles give staff rights: lti_core's table, with ``LTI_PUBLISH["STAFF_ROLES"]`` added."""
    return DEFAULT_ROLES.extended(getattr(settings, "LTI_PUBLISH", {}).get("STAFF_ROLES") or ())


def provisioning_modes(content_id: str) -> ProvisioningModes:
    """The published content's provisioning modes (its Studio settings, else the site's default)."""
    block = compat.host().published_block(content_id, with_children=False) if content_id else None
    return block.provisioning_modes() if block is not None else site_provisioning_modes()


def signed_in_user_id(request: HttpRequest) -> str:
    return str(request.user.pk) if request.user.is_authenticated else ""


def create_linked_user(linker: AccountLinker, launch: Launch, suggested_username: str) -> User:
    """A new local account for the launch's identity, linked to it (inside the caller's transaction)."""
    user = compat.host().create_user(choose_username(suggested_username, launch, DjangoAccounts()), launch)
    link = linker.link(launch, str(user.pk))
    if link.local_user_id != str(user.pk):  # a concurrent first launch linked first
        user.delete()
        return get_user_model().objects.get(pk=link.local_user_id)
    return user


def finish_launch(request: HttpRequest, launch: Launch, content_id: str, user: User) -> HttpResponse:
    """The launch's user is known: rights on the content from the launch's role (never from the
    account's other rights), the launch context, a score earned before, a session, the content.
    Called inside the transaction that linked the user: a failure here links nobody.

    A request to pick content (``launch.deep_linking``) has no content: it signs the instructor in
    and lands on the "Published content" page, with no rights given nor launch context saved."""
    if launch.deep_linking is not None:
        from lti_xblock import deep_linking_views  # it builds on this module

        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        log.info("LTI %s deep-linking request: %s user %s", launch.lti_version, launch.platform, user.pk)
        return deep_linking_views.begin_picking(request, launch, user)
    host = compat.host()
    host.enroll(user, content_id, launch.role)
    # For grade and roster jobs later, without a browser: the latest launch of this user and link.
    context = launch_context(launch, str(user.pk), time.time(), content_id)
    store.save_launch_context(context)
    scores.send_current_score(user, context)  # a score earned before this link existed
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    log.info(
        "LTI %s launch: %s user %s -> %s as %s",
        launch.lti_version,
        launch.platform,
        user.pk,
        content_id,
        launch.role.value,
    )
    return land(request, user, host.landing_url(content_id))


def session_handover() -> SessionHandover:
    """The continue step's tokens, keyed from SECRET_KEY (read per request: tests change settings)."""
    return SessionHandover(settings.SECRET_KEY, store)


def land(request: HttpRequest, user: User, landing_url: str) -> HttpResponse:
    """To the content, signed in; from a platform's frame through the continue step
    (``lti_core.handover``): a frame that kept none of this tool's cookies offers a new window there."""
    if not frames.is_framed(request.headers):
        return HttpResponseRedirect(landing_url)
    token = session_handover().issue(str(user.pk), landing_url, time.time())
    return HttpResponseRedirect(f"{reverse('lti_xblock:continue_launch')}?{urlencode({TOKEN_PARAM: token})}")


@lti_endpoint("GET")
def continue_launch(request: HttpRequest) -> HttpResponse:
    """The continue step of a framed launch: land, offer the new window, or (in that window) sign
    the launch's user in once; lti_core decides, every refusal writes nothing."""
    decision = session_handover().decide(
        request.GET.get(TOKEN_PARAM, ""),
        session_user=signed_in_user_id(request),
        framed=frames.is_framed(request.headers),
        now=time.time(),
    )
    if decision.step is HandoverStep.OPEN_NEW_WINDOW:
        return page(request, pages.handover_page(request.build_absolute_uri()))
    if decision.step is HandoverStep.SIGN_IN:
        user = get_user_model().objects.filter(pk=decision.local_user_id, is_active=True).first()
        if user is None:
            raise HandoverInvalid(detail="the handover's user is gone")
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponseRedirect(decision.landing_url)


def sign_in(request: HttpRequest, launch: Launch, content_id: str, *, cookies: CookieEvidence) -> HttpResponse:
    """The local user of a verified launch: the linked one, a new one, or the prompt's choice first.

    ``cookies``: what the launch says about this tool's cookies where it shows (a platform's frame
    may drop them): the prompt shows its buttons only where they can work."""
    launch = role_table().apply(launch)
    linker = AccountLinker(store, provisioning_modes(content_id))
    with transaction.atomic():
        decision = linker.decide(launch, signed_in_user_id(request), host_can_sign_in=True)
        if decision.outcome is LinkOutcome.LINKED:
            user = get_user_model().objects.get(pk=decision.local_user_id)
            if decision.new_link:  # found through its LTI 1.1 identity: the 1.3 identity is linked too
                linker.link(launch, decision.local_user_id)
        elif decision.outcome is LinkOutcome.CREATE:
            user = create_linked_user(linker, launch, decision.suggested_username)
        elif decision.outcome is LinkOutcome.PROMPT:
            from lti_xblock import linking_views  # it builds on this module

            return linking_views.begin_prompt(request, launch, decision, content_id, cookies=cookies)
        else:
            raise Forbidden(decision.reason, N_("No account here can be used for this launch. Nothing was created."))
        return finish_launch(request, launch, content_id, user)


@lti_endpoint("POST")
def lti11_launch(request: HttpRequest, content_id: str) -> HttpResponse:
    verifier = Lti11LaunchVerifier(store, message_types=LTI11_MESSAGE_TYPES)
    pairs = [(name, value) for name, values in request.POST.lists() for value in values]

    def check(launch: Launch) -> None:
        if launch.deep_linking is not None:
            require_instructor(launch)
        else:
            require_content(content_id)(launch)

    launch = verifier.verify(method="POST", url=request.build_absolute_uri(), params=pairs, before_commit=check)
    # LTI 1.1 carries no cookie of this tool: any that came back says this browser keeps them here.
    cookies = cookie_evidence(cookie_came_back=bool(request.COOKIES))
    return sign_in(request, launch, "" if launch.deep_linking is not None else content_id, cookies=cookies)


@lti_endpoint("GET", "POST")
def lti13_login(request: HttpRequest) -> HttpResponse:
    params = request.POST if request.method == "POST" else request.GET
    base = base_url(request)
    login_handler = OidcLogin(store, tool_base_urls=[base], redirect_uri=lti13_redirect_uri(base))
    redirect = login_handler.begin({k: params.get(k, "") for k in params})
    if redirect.uses_platform_storage:
        return page(request, pages.storage_login_page(redirect, lti13_login_url(request)))
    response = HttpResponseRedirect(redirect.url)
    set_state_cookie(request, response, redirect.state.state, int(redirect.state.expires_at - time.time()))
    return response


@lti_endpoint("POST")
def lti13_launch(request: HttpRequest) -> HttpResponse:
    state = request.POST.get("state", "")
    base = base_url(request)
    evidence = BrowserEvidence.from_request(
        cookie_names=request.COOKIES.keys(),
        form={k: request.POST.get(k, "") for k in (binding.REPOST_FIELD, binding.STORAGE_VALUE_FIELD)},
        headers=request.headers,
        tool_origin=base,
    )
    validator = LaunchValidator(
        store,
        platform_keys,
        tool_base_urls=[base],
        redirect_uri=lti13_redirect_uri(base),
        message_types=LTI13_MESSAGE_TYPES,
    )
    content: dict[str, str] = {}

    def check(launch: Launch) -> None:
        if launch.deep_linking is not None:
            require_instructor(launch)
            content["id"] = ""
            return
        content["id"] = content_id_from_target(launch.target_link_uri)
        require_content(content["id"])(launch)

    id_token = request.POST.get("id_token", "")
    try:
        launch = validator.validate(id_token, state, evidence, before_commit=check)
    except BrowserCheckRequired as needed:
        return page(request, pages.BrowserCheckPage(needed.check))
    bound_by_storage = validator.binding is binding.Binding.PLATFORM_STORAGE
    cookies = cookie_evidence(cookie_came_back=not bound_by_storage, bound_by_storage=bound_by_storage)
    response = sign_in(request, launch, content["id"], cookies=cookies)
    if validator.binding is binding.Binding.COOKIE:
        set_state_cookie(request, response, state, 0)  # used up: delete it (in its partition)
    return response


@require_GET
def lti13_jwks(request: HttpRequest) -> HttpResponse:
    now = time.time()
    try:
        tool_keys.retire_due(now)  # keys whose overlap after a rotation is over leave the set now
        tool_keys.ensure_key(now)
        response = JsonResponse(tool_keys.jwks(now))
    except LtiError as error:  # e.g. store_key_mismatch: the keys cannot be read with the configured keys
        log.error("LTI tool JWKS unavailable: %s %s", error.reason, error.detail)
        return JsonResponse({"error": error.reason}, status=error.status)
    response["Cache-Control"] = "public, max-age=3600"
    return response


@lti_endpoint("GET")
@ensure_csrf_cookie  # the content's XBlock JavaScript posts to its handlers with this token
def content(request: HttpRequest, content_id: str) -> HttpResponse:
    host = compat.host()
    if not isinstance(host, compat.WorkbenchHost):  # the LMS serves its own courseware
        return HttpResponseRedirect(host.landing_url(content_id))
    if not request.user.is_authenticated:
        raise AuthenticationFailed("not_signed_in", N_("Open this content from your course in your learning platform."))
    role = host.enrolled_role(request.user, content_id)
    if role is None:
        raise Forbidden("not_enrolled", N_("You do not have access to this content; open it from your course."))
    return host.render_content(request, content_id, role)
