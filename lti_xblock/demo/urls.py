"""The demo project's URLs: the workbench, the LTI endpoints, and the local launch page."""

from django.urls import include, path

from lti_xblock.demo import platform

urlpatterns = [
    path("lti_publish/", include("lti_xblock.urls")),
    path("demo/", platform.launch_page, name="demo_launch_page"),
    path("demo/launch", platform.start_launch, name="demo_start_launch"),
    path("demo/platform/auth", platform.authorize, name="demo_platform_auth"),
    path("demo/platform/jwks", platform.jwks, name="demo_platform_jwks"),
    path("", include("workbench.urls")),
]
