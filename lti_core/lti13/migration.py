"""LTI 1.1 to 1.3 migration: who a 1.3 launch's user was under LTI 1.1 (1EdTech LTI 1.3 migration
guide, "LTI 1.1 migration claim").

A platform that moved a course from LTI 1.1 to 1.3 may send, in the id_token, the
``https://purl.imsglobal.org/spec/lti/claim/lti1p1`` claim: the user's LTI 1.1 ``user_id``, the 1.1
``oauth_consumer_key``, and ``oauth_consumer_key_sign``, an HMAC-SHA256 with the consumer's shared
secret over ``oauth_consumer_key & deployment_id & iss & client_id & exp & nonce``. Only a platform
that knows the secret can sign it, so a verified claim proves that the 1.3 user is the 1.1 consumer's
``user_id``: the tool reuses that user's link. An unverified claim is ignored (never trusted).

Where a platform sends no such claim, an admin may name the issuer a 1.1 consumer became
(``Consumer.migrated_to``): the platform's stable user id is then the same in both versions (Moodle
sends its user id as both ``user_id`` and ``sub``), and is matched as such, never an email.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lti_core.lti13 import claims as c
from lti_core.store import ConsumerStore
from lti_core.types import Launch


@dataclass(frozen=True)
class Lti11Identity:
    """The LTI 1.1 identity of a 1.3 launch's user: the consumer key and the 1.1 ``user_id``."""

    consumer_key: str
    user_id: str


def migration_base_string(body: Mapping[str, Any]) -> str | None:
    """The base string ``oauth_consumer_key_sign`` signs, or None when a part is missing."""
    claim = body.get(c.LTI1P1)
    audience = body.get("aud")
    client_id = audience if isinstance(audience, str) else body.get("azp")
    if not isinstance(claim, Mapping) or not isinstance(client_id, str):
        return None
    parts = (claim.get("oauth_consumer_key"), body.get(c.DEPLOYMENT_ID), body.get("iss"), client_id)
    exp, nonce = body.get("exp"), body.get("nonce")
    if not all(isinstance(part, str) and part for part in parts) or not isinstance(nonce, str):
        return None
    if isinstance(exp, bool) or not isinstance(exp, int):
        return None
    return "&".join([*(str(part) for part in parts), str(exp), nonce])


def sign_migration_claim(base_string: str, secret: str) -> str:
    """``oauth_consumer_key_sign`` for ``base_string``: base64 of HMAC-SHA256 with the consumer's secret."""
    digest = hmac.new(secret.encode(), base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verified_lti11_identity(launch: Launch, consumers: ConsumerStore) -> Lti11Identity | None:
    """The launch's LTI 1.1 identity, if its migration claim verifies with the secret of an enabled
    consumer of this tool; None otherwise (no claim, an unknown consumer, a wrong signature)."""
    body = launch.raw
    base = migration_base_string(body)
    claim = body.get(c.LTI1P1)
    if base is None or not isinstance(claim, Mapping):
        return None
    user_id, sign = claim.get("user_id"), claim.get("oauth_consumer_key_sign")
    if not isinstance(user_id, str) or not user_id or not isinstance(sign, str):
        return None
    consumer = consumers.get_consumer(str(claim["oauth_consumer_key"]))
    if consumer is None or not consumer.enabled:
        return None
    if not hmac.compare_digest(sign_migration_claim(base, consumer.secret).encode(), sign.encode()):
        return None
    return Lti11Identity(consumer.key, user_id)


def mapped_lti11_identities(launch: Launch, consumers: ConsumerStore) -> list[Lti11Identity]:
    """The LTI 1.1 identities an admin's mapping gives the launch's user: for each enabled consumer
    that became the launch's issuer (``Consumer.migrated_to``), the same platform user id."""
    return [
        Lti11Identity(consumer.key, launch.platform_user_id)
        for consumer in consumers.list_consumers()
        if consumer.enabled and consumer.migrated_to and consumer.migrated_to == launch.platform
    ]


__all__ = [
    "Lti11Identity",
    "mapped_lti11_identities",
    "migration_base_string",
    "sign_migration_claim",
    "verified_lti11_identity",
]
