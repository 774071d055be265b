"""The linking prompt's pages (``lti_core.prompt``) and the page where users see and remove their links.

A first launch whose provisioning mode asks (``LinkOutcome.PROMPT``) is kept as a pending launch;
these views walk it through the choice, the host's own sign-in and the confirmation, then finish the
launch as ``views.sign_in`` does. Every form is a same-site POST with Django's CSRF token and the
prompt's form token; every refusal is lti_core's refusal page, and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.views import LoginView
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils.functional import lazy
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from lti_core import frames, pages
from lti_core.errors import AuthenticationFailed, Forbidden, LtiError, NotFound, method_not_allowed
from lti_core.i18n import N_
from lti_core.linking import AccountLinker, LinkDecision
from lti_core.prompt import (
    CHOICE_EXISTING,
    ChooseExisting,
    CookieEvidence,
    PendingLaunch,
    PromptAction,
    PromptFlow,
    PromptNotBound,
    PromptOutcome,
    PromptStart,
    PromptState,
    parse_prompt_choice,
    prompt_start,
)
from lti_core.types import Launch
from lti_xblock import compat
from lti_xblock.i18n import gettext as _
from lti_xblock.launch_details import URL_PREFIX
from lti_xblock.views import (
    create_linked_user,
    finish_launch,
    lti13_login_url,
    page,
    set_flow_cookie,
    signed_in_user_id,
    store,
)

PROMPT_COOKIE_PREFIX = "lti_publish_prompt_"
PROMPT_COOKIE_PATH = f"/{URL_PREFIX}/link/"
COOKIE_SEPARATOR = "."  # never in the secrets (token_urlsafe: letters, digits, "-" and "_")
CSRF_REFUSED = N_("This form was not sent from this site's page. Please launch the activity again from your course.")

flow = PromptFlow(store)


def prompt_endpoint(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A prompt page answering ``methods``: framable (the prompt starts in the platform's frame), its
    POSTs checked for Django's CSRF token here, so that a refusal is lti_core's page with a reason code."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise method_not_allowed()
                if CsrfViewMiddleware(lambda _request: HttpResponse()).process_view(request, view, args, kwargs):
                    raise Forbidden("csrf_failed", CSRF_REFUSED)
                return view(request, *args, **kwargs)
            except LtiError as error:
                return page(request, pages.refusal_page(error, lti13_login_url(request)))

        return xframe_options_exempt(csrf_exempt(wrapper))

    return decorate


def cookie_name(pending_id: str) -> str:
    return PROMPT_COOKIE_PREFIX + pending_id


def set_prompt_cookie(
    request: HttpRequest, response: HttpResponse, pending: PendingLaunch, binding_secret: str = "", form_token: str = ""
) -> None:
    """The cookie binding the pending launch to this browser, with the launch state cookie's
    attributes (no secret: deleted). It carries the form token too: the store keeps only its digest,
    and a page shown again (back from the sign-in) must put it in its forms. HttpOnly, and a
    cross-site form cannot read it: it still cannot take a step for the person."""
    value = f"{binding_secret}{COOKIE_SEPARATOR}{form_token}" if binding_secret else ""
    max_age = int(pending.expires_at - time.time()) if value else 0
    set_flow_cookie(request, response, cookie_name(pending.id), value, max_age=max_age, path=PROMPT_COOKIE_PATH)


#: ``link_window``'s ``then``: the window was opened to sign in to an existing account.
SIGN_IN_NEXT = "sign-in"


def prompt_url(pending_id: str, view: str = "link_prompt") -> str:
    return reverse(f"lti_xblock:{view}", args=[pending_id])


def account_name(local_user_id: str) -> str:
    if not local_user_id:
        return ""
    user = get_user_model().objects.filter(pk=local_user_id).first()
    return "" if user is None else str(user.get_username())


def prompt_page(
    request: HttpRequest,
    pending: PendingLaunch,
    form_token: str,
    new_window_url: str = "",
    sign_in_window_url: str = "",
) -> HttpResponse:
    """The choice, or the confirmation of the signed-in account, with both tokens in its forms."""
    model = pages.LinkPromptPage(
        state=pending.state,
        may_create=pending.may_create,
        platform=pending.launch.platform,
        step_url=prompt_url(pending.id, "link_step"),
        form_token=form_token,
        account=account_name(pending.local_user_id),
        csrf=("csrfmiddlewaretoken", get_token(request)),
        new_window_url=new_window_url,
        sign_in_window_url=sign_in_window_url,
    )
    return page(request, model)


def begin_prompt(
    request: HttpRequest, launch: Launch, decision: LinkDecision, content_id: str, *, cookies: CookieEvidence
) -> HttpResponse:
    """The launch's answer when its mode asks: the pending launch kept, the prompt's cookie, and its
    page, shown as ``lti_core.prompt.prompt_start`` says: its buttons; only a new window, where the
    handover secret binds the prompt (a frame that drops this tool's cookies); or first a redirect to
    ``link_check``, which sees whether the cookie came back (an LTI 1.1 launch in a frame)."""
    pending, secrets = flow.begin(launch, decision, content_id, time.time())
    secrets_query = {"handover": secrets.handover, "form_token": secrets.form_token}
    framed = frames.is_framed(request.headers)
    start = prompt_start(cookies, framed=framed)
    if start is PromptStart.CHECK_COOKIE:
        response: HttpResponse = HttpResponseRedirect(
            f"{prompt_url(pending.id, 'link_check')}?{urlencode(secrets_query)}"
        )
    else:
        response = started_prompt(request, pending, secrets_query, start, framed=framed)
    set_prompt_cookie(request, response, pending, secrets.cookie, secrets.form_token)
    return response


def started_prompt(
    request: HttpRequest, pending: PendingLaunch, secrets_query: dict[str, str], start: PromptStart, *, framed: bool
) -> HttpResponse:
    """The prompt's first page: its buttons, or only the new window. In a frame that keeps this
    tool's cookies, only the sign-in to an existing account opens that window (the host's sign-in
    page refuses to be framed)."""
    window = request.build_absolute_uri(prompt_url(pending.id, "link_window"))
    new_window = f"{window}?{urlencode(secrets_query)}" if start is PromptStart.NEW_WINDOW else ""
    sign_in_window = ""
    if start is PromptStart.PAGE and framed:
        sign_in_window = f"{window}?{urlencode({**secrets_query, 'then': SIGN_IN_NEXT})}"
    return prompt_page(request, pending, secrets_query["form_token"], new_window, sign_in_window)


@prompt_endpoint("GET")
def link_check(request: HttpRequest, pending_id: str) -> HttpResponse:
    """Back from the redirect that set the prompt's cookie: the buttons if it came back, else only
    the new window. Shown to the launch's own page only (its handover secret, not used up here)."""
    now, handover = time.time(), request.GET.get("handover", "")
    pending = flow.holds_handover(pending_id, handover, now)
    try:
        flow.load(pending_id, _cookie(request, pending_id)[0], now)
        cookies = CookieEvidence.KEPT
    except PromptNotBound:
        cookies = CookieEvidence.DROPPED
    secrets_query = {"handover": handover, "form_token": request.GET.get("form_token", "")}
    framed = frames.is_framed(request.headers)
    return started_prompt(request, pending, secrets_query, prompt_start(cookies, framed=framed), framed=framed)


def _cookie(request: HttpRequest, pending_id: str) -> tuple[str, str]:
    """(the binding secret, the form token) this browser holds for the pending launch."""
    binding_secret, _sep, form_token = request.COOKIES.get(cookie_name(pending_id), "").partition(COOKIE_SEPARATOR)
    return binding_secret, form_token


@prompt_endpoint("GET")
def link_prompt(request: HttpRequest, pending_id: str) -> HttpResponse:
    """The prompt page again: a reload, back from the sign-in, in the new window."""
    binding_secret, form_token = _cookie(request, pending_id)
    return prompt_page(request, flow.load(pending_id, binding_secret, time.time()), form_token)


@prompt_endpoint("POST")
def link_step(request: HttpRequest, pending_id: str) -> HttpResponse:
    """A button of the prompt page: sign in elsewhere, or finish (create, or link the confirmed account)."""
    now = time.time()
    cookie, form_token = _cookie(request, pending_id)[0], request.POST.get("form_token", "")
    choice = request.POST.get("choice", "")
    pending = flow.load(pending_id, cookie, now)
    if choice == CHOICE_EXISTING and pending.state is PromptState.SIGNING_IN:
        # Back without signing in, and asking again: the same sign-in again (this browser's, as load
        # checked); no step is taken, nothing changes.
        return HttpResponseRedirect(compat.host().sign_in_url(prompt_url(pending_id, "link_signed_in")))
    following = flow.step(pending_id, cookie, form_token, parse_prompt_choice(choice, signed_in_user_id(request)), now)
    if isinstance(following, PendingLaunch):  # now signing in: the host's sign-in, back to the confirmation
        return HttpResponseRedirect(compat.host().sign_in_url(prompt_url(pending_id, "link_signed_in")))
    response = finish_prompt(request, following)
    set_prompt_cookie(request, response, following.pending)
    return response


def finish_prompt(request: HttpRequest, outcome: PromptOutcome) -> HttpResponse:
    """Create and link a new account, or link the confirmed one; then the launch goes on as any other."""
    pending = outcome.pending
    linker = AccountLinker(store)  # to link: the mode was decided when the prompt began
    with transaction.atomic():
        if outcome.action is PromptAction.CREATE:
            user = create_linked_user(linker, pending.launch, pending.suggested_username)
        else:
            user = get_user_model().objects.get(pk=outcome.local_user_id)
            link = linker.link(pending.launch, str(user.pk))
            if link.local_user_id != str(user.pk):  # the identity got linked meanwhile: that link wins
                user = get_user_model().objects.get(pk=link.local_user_id)
        return finish_launch(request, pending.launch, pending.content_id, user)


@prompt_endpoint("GET")
def link_signed_in(request: HttpRequest, pending_id: str) -> HttpResponse:
    """The host's sign-in comes back here: the confirmation of the account signed in is next."""
    if not request.user.is_authenticated:  # back without signing in: the choice again
        return HttpResponseRedirect(prompt_url(pending_id))
    flow.signed_in(pending_id, _cookie(request, pending_id)[0], str(request.user.pk), time.time())
    return HttpResponseRedirect(prompt_url(pending_id))


@prompt_endpoint("GET")
def link_window(request: HttpRequest, pending_id: str) -> HttpResponse:
    """The new window a frame offered: the handover binds the prompt to this window. Opened by the
    existing-account choice (``then=sign-in``), it goes on to the host's sign-in at once; the handover
    and form token (secrets only the launch's page held) stand for the form that was not posted."""
    now, form_token = time.time(), request.GET.get("form_token", "")
    pending, cookie = flow.hand_over(pending_id, request.GET.get("handover", ""), now)
    if request.GET.get("then") == SIGN_IN_NEXT:
        flow.step(pending_id, cookie, form_token, ChooseExisting(), now)
        response = HttpResponseRedirect(compat.host().sign_in_url(prompt_url(pending_id, "link_signed_in")))
    else:
        response = HttpResponseRedirect(prompt_url(pending_id))
    set_prompt_cookie(request, response, pending, cookie, form_token)
    return response


# -- a user's own links -----------------------------------------------------------------------------


@prompt_endpoint("GET")
def links(request: HttpRequest) -> HttpResponse:
    """The signed-in user's links: which platform identities sign in as them, each with Unlink."""
    user = _signed_in(request)
    return render(
        request,
        "lti_xblock/links.html",
        {
            "title": _(N_("Your links to learning platforms")),
            "intro": _(
                N_(
                    "Launches from these platform users sign you in to this account. Unlink one and its next "
                    "launch is a first launch again."
                )
            ),
            "empty": _(N_("No platform user is linked to your account.")),
            "platform_label": _(N_("Platform")),
            "user_label": _(N_("Platform user id")),
            "unlink_label": _(N_("Unlink")),
            "links": store.find_user_links(str(user.pk)),
            "unlink_url": reverse("lti_xblock:unlink"),
        },
    )


@prompt_endpoint("POST")
def unlink(request: HttpRequest) -> HttpResponse:
    """Remove one of the signed-in user's own links (never anyone else's)."""
    user = _signed_in(request)
    platform, platform_user_id = request.POST.get("platform", ""), request.POST.get("platform_user_id", "")
    link = store.get_user_link(platform, platform_user_id)
    if link is None or link.local_user_id != str(user.pk):
        raise NotFound("unknown_user_link", N_("No user is linked to this platform identity."))
    store.delete_user_link(platform, platform_user_id)
    return HttpResponseRedirect(reverse("lti_xblock:links"))


def _signed_in(request: HttpRequest) -> Any:
    if not request.user.is_authenticated:
        raise AuthenticationFailed("not_signed_in", N_("Sign in to see the platforms linked to your account."))
    return request.user


# -- the workbench host's own sign-in ---------------------------------------------------------------

_lazy = lazy(_, str)
#: Django's sign-in page, for the workbench (the demo and the tests mount it at ``LOGIN_URL``); Open
#: edX has its own.
workbench_sign_in = LoginView.as_view(
    template_name="lti_xblock/sign_in.html", extra_context={"sign_in_label": _lazy(N_("Sign in"))}
)
