"""The demo project's URLs: the LTI endpoints, the local launch page, and of the XBlock SDK workbench
only what launched content needs: its handlers, its runtime's resources and JavaScript catalog.

Published content is shown only after a launch (``lti_publish/content/<id>/``). The workbench's own
pages are not mounted: its scenario list (``/``) and scenario views (``/scenario/...``,
``/view/...``) render every scenario, studio views included, to anyone; ``/userlist/`` lists user
ids; ``/reset_state`` wipes all state; its handler view runs blocks as whichever student the
``?student=`` query string names. Here handlers run as the signed-in user, on content they launched
into (the lti_publish block's permission check relies on that: see ``LtiPublishBlock.user_may_author``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog
from workbench import views as workbench_views
from workbench.runtime import WorkbenchRuntime
from xblock.django.request import django_to_webob_request, webob_to_django_response
from xblock.exceptions import NoSuchHandlerError, NoSuchUsage

from demo import platform
from lti_core.i18n import N_
from lti_xblock import linking_views
from lti_xblock.compat import WorkbenchHost
from lti_xblock.i18n import gettext as _

# The same refusals as the content page's (lti_xblock.views.content), with their translations.
NOT_SIGNED_IN = N_("Open this content from your course in your learning platform.")
NOT_ENROLLED = N_("You do not have access to this content; open it from your course.")
PUBLISHED_BLOCK_TYPE = "lti_publish"


def _refusal(message: str) -> JsonResponse:
    """What ``XBlock.json_handler`` answers for an error: ``{"error": <message>}``."""
    return JsonResponse({"error": _(message)}, status=403)


def published_content_id(block: Any) -> str | None:
    """The lti_publish block ``block`` is, or is inside of; None for anything else the workbench knows."""
    while block is not None:
        if block.scope_ids.block_type == PUBLISHED_BLOCK_TYPE:
            return str(block.scope_ids.usage_id)
        parent = block.parent
        block = block.runtime.get_block(parent) if parent else None
    return None


def handler(request: HttpRequest, usage_id: str, handler_slug: str, suffix: str | None = "") -> HttpResponse:
    """An XBlock handler call from launched content, run as the signed-in user, whatever ``?student=`` says."""
    if not request.user.is_authenticated:
        return _refusal(NOT_SIGNED_IN)
    runtime = WorkbenchRuntime(str(request.user.pk))
    try:
        block = runtime.get_block(usage_id)
        # A block of a published block, or of a published course (a scenario published whole).
        content_id = published_content_id(block) or WorkbenchHost().published_course_of(block)
    except (NoSuchUsage, KeyError, ValueError) as error:
        raise Http404 from error
    if content_id is None:
        raise Http404
    if WorkbenchHost().enrolled_role(request.user, content_id) is None:
        return _refusal(NOT_ENROLLED)
    webob_request = django_to_webob_request(request)
    # The handler sees the path after /handler/<usage_id>/, as in the workbench.
    webob_request.path_info_pop()
    webob_request.path_info_pop()
    try:
        result = block.runtime.handle(block, handler_slug, webob_request, suffix or "")
    except NoSuchHandlerError as error:
        raise Http404 from error
    response: HttpResponse = webob_to_django_response(result)
    return response


urlpatterns = [
    path("lti_publish/", include("lti_xblock.urls")),
    # Django's admin (staff only: it asks for a staff account's login): registrations, consumers, keys, links.
    path("admin/", admin.site.urls),
    # The workbench host's own sign-in (settings.LOGIN_URL): where the linking prompt sends someone who
    # links an existing account (Open edX has its own, /login).
    path("accounts/login/", linking_views.workbench_sign_in, name="login"),
    path("demo/", platform.launch_page, name="demo_launch_page"),
    path("demo/launch", platform.start_launch, name="demo_start_launch"),
    # "Select content" (LTI Deep Linking) and its return, Moodle's mod/lti/contentitem_return.php.
    path("demo/select", platform.select_content, name="demo_select_content"),
    path(
        "demo/platform/mod/lti/contentitem_return.php",
        platform.select_content_return,
        name="demo_platform_select_content_return",
    ),
    path("demo/platform/auth", platform.authorize, name="demo_platform_auth"),
    path("demo/platform/jwks", platform.jwks, name="demo_platform_jwks"),
    # Its grade services (Moodle's paths below the issuer) and the page showing what they received.
    path("demo/platform/token", platform.token, name="demo_platform_token"),
    re_path(r"^demo/platform/mod/lti/services\.php/", platform.ags_services, name="demo_platform_ags"),
    path("demo/platform/mod/lti/service.php", platform.outcome_service, name="demo_platform_outcomes"),
    path("demo/gradebook", platform.gradebook_page, name="demo_gradebook"),
    # The workbench's URL names that the content page and the workbench runtime reverse. The index
    # (the content page's base for handler URLs) sends visitors to the launch page.
    path("", RedirectView.as_view(pattern_name="demo_launch_page"), name="workbench_index"),
    re_path(r"^handler/(?P<usage_id>[^/]+)/(?P<handler_slug>[^/]*)(?:/(?P<suffix>.*))?$", handler, name="handler"),
    re_path(
        r"^resource/(?P<block_type>[^/]+)/(?P<resource>.*)$",
        workbench_views.package_resource,
        name="package_resource",
    ),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    *staticfiles_urlpatterns(),
]
