"""LaunchValidator.validate: a Moodle-shaped LTI 1.3 launch, and one refusal per check.

Every refusal asserts the exact reason and HTTP status, and that nothing was written: the store saw no
write at all, and a valid launch with the same state and nonce still succeeds afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from typing import Any

import jwt
import pytest
from jwt.utils import base64url_encode

from lti_core.errors import LtiError, NotFound
from lti_core.lti13 import claims as c
from lti_core.lti13.launch import MAX_TOKEN_LENGTH, LaunchValidator
from lti_core.types import Launch, OidcState, Role

from .conftest import DELETE, INSTITUTION, MEMBERSHIP, SYSTEM, Platform, PlatformKey  # noqa: F401  (types only)


def _segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64url_encode(raw).decode("ascii")
