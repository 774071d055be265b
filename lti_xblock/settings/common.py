"""Settings the LMS merges in (edx-django-utils plugin settings)."""

from __future__ import annotations

from typing import Any


def plugin_settings(settings: Any) -> None:
    defaults = {"HOST": "openedx", "TOOL_BASE_URLS": []}
    settings.LTI_PUBLISH = {**defaults, **getattr(settings, "LTI_PUBLISH", {})}
