"""What a tool admin does to the registrations, deployments and consumers, whatever the host.

Every rule of the admins' tools (a host's command line, its admin pages) is here, so that both hosts
apply the same ones:

- An issuer is kept in the one form platforms send it: scheme and host lower-cased, no trailing slash
  (Moodle's is its ``wwwroot``, Canvas's ``https://canvas.instructure.com``), http(s) only, no query
  or fragment. The launch compares ``iss`` with it exactly, so ``https://moodle.example/`` typed by an
  admin must become ``https://moodle.example``: the same registration, never a second one.
- Endpoint URLs get the same scheme and host normalisation; their paths are the platform's own (a
  token endpoint's trailing slash may matter to it), only an empty path loses its ``/``.
- Registrations given by hand merge into the one of the same (issuer, client_id): new endpoints,
  deployments added, an admin's status and "accept new deployments" kept.
- LTI 1.1 consumers get a random key (unless the admin names one) and secret; the secret is returned
  once, to be shown once, and never again (``ConsumerSummary`` has no secret).

Every refusal is an ``LtiError`` with a reason code and a message marked for translation.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

from lti_core.errors import InvalidRequest, NotFound
from lti_core.i18n import N_
from lti_core.store import ConsumerStore, RegistrationStore
from lti_core.types import Consumer, Deployment, Registration, RegistrationStatus

#: The stores' identifier columns hold 255 characters; URLs 1024.
MAX_ID_LENGTH = 255
MAX_URL_LENGTH = 1024
#: Bytes of randomness in an issued secret (43 URL-safe characters) and in a generated key.
SECRET_BYTES = 32
KEY_BYTES = 8
KEY_PREFIX = "lti-"

UNKNOWN_PLATFORM = N_("This platform is not registered with the tool.")
UNKNOWN_CONSUMER = N_("This consumer key is not known to the tool.")


def _bad_url(reason: str, message: str, value: str) -> InvalidRequest:
    return InvalidRequest(reason, message, detail=value[:80])


def normalise_url(value: str, *, reason: str = "url_invalid") -> str:
    """``value`` as an http(s) URL with a lower-case scheme and host; an empty path loses its ``/``.

    Refused (``reason``): anything else than http or https, no host, user info, a bad port, spaces or
    control characters, more than ``MAX_URL_LENGTH`` characters.
    """
    text = value.strip()
    message = N_("This is not an http or https address.")
    if not text or len(text) > MAX_URL_LENGTH or any(ch.isspace() or not ch.isprintable() for ch in text):
        raise _bad_url(reason, message, text)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise _bad_url(reason, message, text) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise _bad_url(reason, message, text)
    host = parts.netloc.lower()
    path = "" if parts.path == "/" else parts.path
    return urlunsplit((scheme, host, path, parts.query, parts.fragment))


def normalise_issuer(value: str) -> str:
    """An LTI 1.3 issuer as platforms send it: ``normalise_url``, no query or fragment, no trailing slash."""
    url = normalise_url(value, reason="issuer_invalid")
    parts = urlsplit(url)
    if parts.query or parts.fragment or url.endswith("?") or url.endswith("#"):
        raise _bad_url("issuer_invalid", N_("A platform's issuer is an address without a query or a fragment."), url)
    return url.rstrip("/")


def validate_identifier(value: str, *, reason: str) -> str:
    """A client ID, deployment ID or consumer key: 1 to 255 printable characters, no spaces around."""
    if not value or len(value) > MAX_ID_LENGTH or value != value.strip() or not value.isprintable():
        raise InvalidRequest(
            reason,
            N_("An identifier must be 1 to 255 printable characters, without spaces around it."),
            detail=value[:80],
        )
    return value


def validate_client_id(value: str) -> str:
    return validate_identifier(value, reason="client_id_invalid")


def validate_deployment_id(value: str) -> str:
    return validate_identifier(value, reason="deployment_id_invalid")


def validate_consumer_key(value: str) -> str:
    key = validate_identifier(value, reason="consumer_key_invalid")
    if any(ch.isspace() for ch in key):
        raise InvalidRequest("consumer_key_invalid", N_("A consumer key cannot contain spaces."), detail=key[:80])
    return key


# -- registrations -----------------------------------------------------------------------------


def find_registration(store: RegistrationStore, issuer: str, client_id: str) -> Registration:
    """The registration an admin names: the issuer as typed, else in its normal form."""
    found = store.get_registration(issuer, client_id)
    if found is None:
        try:
            normal = normalise_issuer(issuer)
        except InvalidRequest:
            normal = ""
        found = store.get_registration(normal, client_id) if normal and normal != issuer else None
    if found is None:
        raise NotFound("unknown_platform", UNKNOWN_PLATFORM, detail=f"{issuer[:80]} {client_id[:80]}")
    return found


@dataclass(frozen=True)
class ManualRegistration:
    """What an admin types for a platform that cannot register the tool by itself (the fields of
    Moodle's "View configuration details" or an LMS's developer key)."""

    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    deployment_ids: tuple[str, ...] = ()
    name: str = ""


def build_manual_registration(entry: ManualRegistration, existing: Registration | None) -> Registration:
    """The registration to save for ``entry`` (already normalised by ``validate_manual_registration``),
    merged into ``existing``: its deployments kept and the new ones added after them, its status and
    "accept new deployments" kept, its name unless a new one is given."""
    deployments = list(existing.deployments) if existing else []
    for deployment_id in entry.deployment_ids:
        if not any(d.deployment_id == deployment_id for d in deployments):
            deployments.append(Deployment(deployment_id))
    return Registration(
        issuer=entry.issuer,
        client_id=entry.client_id,
        auth_login_url=entry.auth_login_url,
        auth_token_url=entry.auth_token_url,
        key_set_url=entry.key_set_url,
        deployments=tuple(deployments),
        name=entry.name or (existing.name if existing else ""),
        any_deployment=existing.any_deployment if existing else False,
        status=existing.status if existing else RegistrationStatus.ACTIVE,
    )


def validate_manual_registration(entry: ManualRegistration) -> ManualRegistration:
    """``entry`` with its issuer and URLs normalised and its identifiers checked."""
    return ManualRegistration(
        issuer=normalise_issuer(entry.issuer),
        client_id=validate_client_id(entry.client_id),
        auth_login_url=normalise_url(entry.auth_login_url, reason="auth_login_url_invalid"),
        auth_token_url=normalise_url(entry.auth_token_url, reason="auth_token_url_invalid"),
        key_set_url=normalise_url(entry.key_set_url, reason="key_set_url_invalid"),
        deployment_ids=tuple(validate_deployment_id(d) for d in entry.deployment_ids),
        name=entry.name.strip()[:MAX_ID_LENGTH],
    )


def save_manual_registration(store: RegistrationStore, entry: ManualRegistration) -> Registration:
    """Register (or update) the platform ``entry`` names; returns what was saved."""
    checked = validate_manual_registration(entry)
    registration = build_manual_registration(checked, store.get_registration(checked.issuer, checked.client_id))
    store.save_registration(registration)
    return registration


def add_deployments(
    store: RegistrationStore, issuer: str, client_id: str, deployment_ids: Iterable[str]
) -> Registration:
    """Accept launches from these deployments too (already known ones stay as they are)."""
    registration = find_registration(store, issuer, client_id)
    deployments = list(registration.deployments)
    for deployment_id in map(validate_deployment_id, deployment_ids):
        if not any(d.deployment_id == deployment_id for d in deployments):
            deployments.append(Deployment(deployment_id))
    changed = replace(registration, deployments=tuple(deployments))
    store.save_registration(changed)
    return changed


def remove_deployment(store: RegistrationStore, issuer: str, client_id: str, deployment_id: str) -> Registration:
    """Stop accepting launches from this deployment; ``unknown_deployment`` if it is not listed."""
    registration = find_registration(store, issuer, client_id)
    kept = tuple(d for d in registration.deployments if d.deployment_id != deployment_id)
    if len(kept) == len(registration.deployments):
        raise NotFound(
            "unknown_deployment",
            N_("This deployment is not registered with the tool."),
            detail=deployment_id[:80],
        )
    changed = replace(registration, deployments=kept)
    store.save_registration(changed)
    return changed


def set_accept_new_deployments(store: RegistrationStore, issuer: str, client_id: str, accept: bool) -> Registration:
    """Accept launches from any deployment of the registration (``any_deployment``), or only from
    the listed ones."""
    registration = find_registration(store, issuer, client_id)
    changed = replace(registration, any_deployment=accept)
    store.save_registration(changed)
    return changed


def deployment_summary(registration: Registration) -> str:
    """The deployments as admins read them: the listed ids, and whether any other is accepted."""
    listed = ", ".join(d.deployment_id for d in registration.deployments)
    if registration.any_deployment:
        return f"{listed} (and any new one)" if listed else "any"
    return listed or "none"


# -- LTI 1.1 consumers ---------------------------------------------------------------------------


def new_secret() -> str:
    """A shared secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(SECRET_BYTES)


def issue_consumer(store: ConsumerStore, name: str, key: str = "") -> Consumer:
    """A new consumer with a new secret (shown once by the caller: never again). ``key``: the admin's,
    else a random one. ``consumer_exists`` if the key is taken: its secret is never reissued."""
    key = validate_consumer_key(key) if key else f"{KEY_PREFIX}{secrets.token_hex(KEY_BYTES)}"
    if store.get_consumer(key) is not None:
        raise InvalidRequest(
            "consumer_exists",
            N_("This consumer key exists already; its secret is not shown again."),
            detail=key[:80],
        )
    consumer = Consumer(key, new_secret(), name.strip()[:MAX_ID_LENGTH])
    store.save_consumer(consumer)
    return consumer


def get_consumer(store: ConsumerStore, key: str) -> Consumer:
    consumer = store.get_consumer(key)
    if consumer is None:
        raise NotFound("unknown_consumer", UNKNOWN_CONSUMER, detail=key[:80])
    return consumer


def set_consumer_enabled(store: ConsumerStore, key: str, enabled: bool) -> Consumer:
    """Turn a consumer's launches on or off; its secret and links stay."""
    changed = replace(get_consumer(store, key), enabled=enabled)
    store.save_consumer(changed)
    return changed


def delete_consumer(store: ConsumerStore, key: str) -> None:
    if not store.delete_consumer(key):
        raise NotFound("unknown_consumer", UNKNOWN_CONSUMER, detail=key[:80])


@dataclass(frozen=True)
class ConsumerSummary:
    """A consumer as lists show it: never its secret."""

    key: str
    name: str
    enabled: bool


def consumer_summary(consumer: Consumer) -> ConsumerSummary:
    return ConsumerSummary(consumer.key, consumer.name, consumer.enabled)


# -- what to paste into a platform -------------------------------------------------------------


@dataclass(frozen=True)
class ToolUrls:
    """Every URL of the tool a platform's admin form asks for."""

    lti11_tool_url: str  # a pattern: <content_id> stands for each content's id
    lti13_target_link_uri: str  # likewise
    lti13_login_url: str
    lti13_redirect_uri: str
    lti13_jwks_url: str
    deep_linking_url: str
    registration_url: str
