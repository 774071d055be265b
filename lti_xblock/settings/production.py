"""Production settings hook: operators set LTI_PUBLISH in their YAML/ENV tokens; defaults come from common.

LTI_PUBLISH["TRUSTED_PROXIES"] too: the addresses of the LMS's TLS-terminating proxies, as the LMS sees them.
"""

from __future__ import annotations

from typing import Any

from lti_xblock.settings.common import plugin_settings as common_plugin_settings


def plugin_settings(settings: Any) -> None:
    common_plugin_settings(settings)
    tokens = getattr(settings, "ENV_TOKENS", {}) or {}
    settings.LTI_PUBLISH.update(tokens.get("LTI_PUBLISH", {}))
