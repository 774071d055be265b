"""The LTI endpoints, mounted under /lti_publish/ (by the LMS plugin system, or the demo's urls)."""

from django.urls import path, re_path

from lti_xblock import config_views, deep_linking_views, linking_views, registration, views

app_name = "lti_xblock"

urlpatterns = [
    # The LTI 1.1 Tool URL an admin pastes into Moodle: one per published block, ending in /ltiaccess.
    re_path(r"^content/(?P<content_id>[^/]+)/ltiaccess$", views.lti11_launch, name="lti11_launch"),
    # The LTI 1.3 target link URI, and where every launch lands.
    re_path(r"^content/(?P<content_id>[^/]+)/$", views.content, name="content"),
    # A framed launch lands through here (lti_core.handover): the new window of a frame without cookies.
    path("continue", views.continue_launch, name="continue_launch"),
    path("lti13/login", views.lti13_login, name="lti13_login"),
    path("lti13/launch", views.lti13_launch, name="lti13_launch"),
    path("lti13/jwks", views.lti13_jwks, name="lti13_jwks"),
    # LTI Dynamic Registration: a platform admin gives this URL to the platform.
    path("lti13/register", registration.lti13_register, name="lti13_register"),
    # What a platform admin imports: Canvas's developer-key JSON, an LTI 1.1 cartridge (?content_id=).
    path("lti13/config.json", config_views.lti13_config, name="lti13_config"),
    path("lti11/config.xml", config_views.lti11_config, name="lti11_config"),
    # The linking prompt of a first launch (lti_core.prompt): the page, its buttons, the way back from
    # the host's sign-in, and the new window a frame without cookies offers.
    path("link/<str:pending_id>/", linking_views.link_prompt, name="link_prompt"),
    path("link/<str:pending_id>/step", linking_views.link_step, name="link_step"),
    path("link/<str:pending_id>/signed-in", linking_views.link_signed_in, name="link_signed_in"),
    path("link/<str:pending_id>/window", linking_views.link_window, name="link_window"),
    path("link/<str:pending_id>/check", linking_views.link_check, name="link_check"),
    # "Published content": an instructor's deep-linking request picks content here, once.
    path("pick/<str:pick_id>/", deep_linking_views.published_content, name="published_content"),
    # A signed-in user's own links, and removing one.
    path("links", linking_views.links, name="links"),
    path("links/unlink", linking_views.unlink, name="unlink"),
]
