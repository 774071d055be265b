"""LTI 1.3 registrations: which platforms' launches the tool accepts, and how they get registered.

A registration is (issuer, client_id) with its endpoints and deployments; its ``status`` says
whether its launches are accepted now (``RegistrationStatus``): a dynamic registration may wait
for an admin's approval, and an admin may disable one without losing its deployments and links.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from lti_core.errors import Forbidden, InvalidRequest, NotFound
from lti_core.http import USER_AGENT, Headers, HttpRequest, HttpResponse
from lti_core.i18n import N_
from lti_core.lti13 import claims as c
from lti_core.store import RegistrationStore
from lti_core.types import Deployment, Registration, RegistrationStatus


def validate_active(registration: Registration) -> Registration:
    """``registration`` if its launches are accepted now; else the refusal that says why."""
    if registration.status is RegistrationStatus.PENDING:
        raise Forbidden(
            "registration_pending",
            N_("This platform's registration is waiting for the tool's administrator to approve it."),
        )
    if registration.status is RegistrationStatus.DISABLED:
        raise Forbidden(
            "registration_disabled", N_("The tool's administrator has turned off launches from this platform.")
        )
    return registration


UNKNOWN_DEPLOYMENT = N_("This deployment of the tool is not registered.")


def unknown_deployment(deployment_id: object) -> Forbidden:
    """The refusal of a launch from a deployment the registration does not list: its message names the
    deployment ID, so the platform's admin can tell the tool's admin which one to add
    (``lti-publish platforms deployments add``). Only a printable ID of at most ``MAX_ID_LENGTH``
    characters is quoted (the page escapes it); any other says only that the deployment is unknown."""
    shown = deployment_id if isinstance(deployment_id, str) else ""
    if not shown or len(shown) > MAX_ID_LENGTH or not shown.isprintable():
        return Forbidden("unknown_deployment", UNKNOWN_DEPLOYMENT, detail=repr(deployment_id)[:80])
    return Forbidden(
        "unknown_deployment",
        N_("This deployment of the tool is not registered: deployment ID “%(deployment_id)s”."),
        detail=f"deployment {shown[:80]!r}",
        arguments={"deployment_id": shown},
    )


def the_one_registration(candidates: Sequence[Registration]) -> Registration | None:
    """The registration a login without ``client_id`` means: the issuer's only active one, else its
    only one (whose status then says why it cannot launch), else None (ambiguous or unknown)."""
    active = [r for r in candidates if r.status is RegistrationStatus.ACTIVE]
    if len(active) == 1:
        return active[0]
    return candidates[0] if len(candidates) == 1 else None


# -- LTI Dynamic Registration 1.0, the tool's side ------------------------------------------------
#
# https://www.imsglobal.org/spec/lti-dr/v1p0. An admin of the platform pastes the tool's registration
# URL; the platform opens it (in a frame or a new window) with ``openid_configuration`` and usually a
# ``registration_token``. The tool reads the platform's OpenID configuration, posts its own client
# registration to the platform's ``registration_endpoint``, keeps the client_id and deployment_id the
# platform answers with, and tells the platform's window it is done (``org.imsglobal.lti.close``).
# Every step is plain data here: ``build_*`` makes what a host sends with its HTTP driver, ``parse_*``
# reads what came back; the host only sends and saves.

#: The platform's LTI part of its OpenID configuration, and the tool's of its client registration.
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
#: The service scopes the tool asks for, when the platform supports them (AGS 2.0, NRPS 2.0).
SERVICE_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
)
#: The claims the tool asks the platform to send in launches.
REQUESTED_CLAIMS = ("iss", "sub", "name", "given_name", "family_name", "email")
#: The close message of LTI Dynamic Registration (section 3.6.3), posted to the platform's window.
CLOSE_SUBJECT = "org.imsglobal.lti.close"

#: Longest URL accepted from the platform (the initiation's configuration URL, the configuration's
#: endpoints) and longest registration token: Moodle's is a JWT of about 600 characters.
MAX_URL_LENGTH = 2048
MAX_TOKEN_LENGTH = 8192
#: Longest identifier (client_id, deployment_id, issuer) kept from the platform's answers: the
#: stores' columns hold 255 characters.
MAX_ID_LENGTH = 255

_CONFIGURATION_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")
_REFUSED = N_("The platform refused the registration. Start it again from the platform.")
_INVALID_CONFIGURATION = N_("The platform's registration details could not be read.")


@dataclass(frozen=True)
class RegistrationInitiation:
    """What the platform opened the tool's registration URL with."""

    openid_configuration: str
    registration_token: str = ""


@dataclass(frozen=True)
class PlatformConfiguration:
    """The parts of the platform's OpenID configuration a registration needs (all checked)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    scopes_supported: tuple[str, ...] = ()
    product_family_code: str = ""
    version: str = ""
    messages_supported: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolDescription:
    """The tool as it registers itself: its URLs, filled in by the host from its own addresses."""

    name: str
    initiate_login_uri: str
    redirect_uri: str
    target_link_uri: str
    jwks_uri: str
    description: str = ""
    logo_uri: str = ""
    #: Where deep linking requests go (default: ``target_link_uri``).
    deep_linking_uri: str = ""


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, lower-cased, default port left out; None otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    default = 443 if parts.scheme.lower() == "https" else 80
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port not in (None, default) else "")


def _is_http_url(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_URL_LENGTH
        and value == value.strip()
        and not any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
        and _origin(value) is not None
    )


def parse_registration_initiation(params: Mapping[str, str]) -> RegistrationInitiation:
    """The registration initiation: ``openid_configuration`` (an http(s) URL) and ``registration_token``."""
    url = params.get("openid_configuration", "")
    if not url:
        raise InvalidRequest(
            "openid_configuration_missing",
            N_("The registration request does not say where the platform's configuration is."),
        )
    if not _is_http_url(url):
        raise InvalidRequest(
            "openid_configuration_invalid", N_("The platform's configuration address is not a web address.")
        )
    token = params.get("registration_token", "")
    if len(token) > MAX_TOKEN_LENGTH or any(ch.isspace() or not ch.isprintable() for ch in token):
        raise InvalidRequest("registration_token_invalid", N_("The registration token is malformed."))
    return RegistrationInitiation(url, token)


def _headers(token: str, *extra: tuple[str, str]) -> Headers:
    bearer = (("Authorization", f"Bearer {token}"),) if token else ()
    return (("Accept", "application/json"), ("User-Agent", USER_AGENT), *extra, *bearer)


def build_configuration_request(initiation: RegistrationInitiation) -> HttpRequest:
    """The GET of the platform's OpenID configuration; Moodle wants the registration token here too."""
    return HttpRequest("GET", initiation.openid_configuration, _headers(initiation.registration_token))


def _json_object(response: HttpResponse, reason: str, message: str) -> dict[str, Any]:
    try:
        document = json.loads(response.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidRequest(reason, message, detail="not JSON") from exc
    if not isinstance(document, dict):
        raise InvalidRequest(reason, message, detail="not a JSON object")
    return document


def _strings(value: Any) -> tuple[str, ...]:
    """A list of strings (others dropped); a space-separated string is read as such a list (scopes)."""
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def _text(value: Any, limit: int = MAX_ID_LENGTH) -> str:
    return value[:limit] if isinstance(value, str) else ""


def parse_platform_configuration(response: HttpResponse, configuration_url: str) -> PlatformConfiguration:
    """The platform's OpenID configuration, fetched from ``configuration_url``.

    Its issuer must be at the origin the configuration came from (LTI-DR 3.5.1): else anyone could
    serve a configuration claiming another platform's issuer, and receive its users' launches.
    """
    if not 200 <= response.status < 300:
        raise Forbidden(
            "registration_configuration_unavailable",
            N_("The platform did not give its registration details. Start the registration again from the platform."),
            detail=f"the platform answered {response.status}",
        )
    document = _json_object(response, "registration_configuration_invalid", _INVALID_CONFIGURATION)
    missing = [name for name in ("issuer", *_CONFIGURATION_ENDPOINTS) if not document.get(name)]
    if missing:
        raise InvalidRequest(
            "registration_configuration_incomplete",
            N_("The platform's registration details miss a required address."),
            detail=f"missing {', '.join(missing)}",
        )
    issuer = document["issuer"]
    if not _is_http_url(issuer) or len(issuer) > MAX_ID_LENGTH:
        raise InvalidRequest(
            "registration_configuration_invalid", _INVALID_CONFIGURATION, detail="issuer is not an http(s) URL"
        )
    if _origin(issuer) != _origin(configuration_url):
        raise Forbidden(
            "registration_issuer_mismatch",
            N_("The platform's configuration names an issuer at another address than its own."),
            detail=f"issuer {issuer[:80]} from {configuration_url[:80]}",
        )
    bad = [name for name in _CONFIGURATION_ENDPOINTS if not _is_http_url(document[name])]
    if bad:
        raise InvalidRequest(
            "registration_configuration_invalid", _INVALID_CONFIGURATION, detail=f"not http(s): {', '.join(bad)}"
        )
    lti = document.get(PLATFORM_CONFIGURATION)
    lti = lti if isinstance(lti, dict) else {}
    messages = lti.get("messages_supported")
    message_types = tuple(
        m["type"]
        for m in (messages if isinstance(messages, list) else [])
        if isinstance(m, dict) and isinstance(m.get("type"), str)
    )
    return PlatformConfiguration(
        issuer=issuer,
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        jwks_uri=document["jwks_uri"],
        registration_endpoint=document["registration_endpoint"],
        scopes_supported=_strings(document.get("scopes_supported")),
        product_family_code=_text(lti.get("product_family_code")),
        version=_text(lti.get("version")),
        messages_supported=message_types,
    )


def registration_document(platform: PlatformConfiguration, tool: ToolDescription) -> dict[str, Any]:
    """The tool's client registration (LTI-DR 3.4): OpenID Connect's client metadata and the LTI part."""
    scopes = [scope for scope in SERVICE_SCOPES if scope in platform.scopes_supported]
    deep_linking = tool.deep_linking_uri or tool.target_link_uri
    lti: dict[str, Any] = {
        "domain": urlsplit(tool.target_link_uri).netloc,
        "target_link_uri": tool.target_link_uri,
        "claims": list(REQUESTED_CLAIMS),
        "messages": [
            {"type": c.RESOURCE_LINK_REQUEST, "target_link_uri": tool.target_link_uri},
            {"type": DEEP_LINKING_REQUEST, "target_link_uri": deep_linking},
        ],
    }
    if tool.description:
        lti["description"] = tool.description
    document: dict[str, Any] = {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": tool.initiate_login_uri,
        "redirect_uris": [tool.redirect_uri],
        "client_name": tool.name,
        "jwks_uri": tool.jwks_uri,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        TOOL_CONFIGURATION: lti,
    }
    if tool.logo_uri:
        document["logo_uri"] = tool.logo_uri
    return document


def build_registration_request(platform: PlatformConfiguration, tool: ToolDescription, token: str) -> HttpRequest:
    """The POST of the tool's registration to the platform, with the registration token as Bearer."""
    body = json.dumps(registration_document(platform, tool)).encode("utf-8")
    return HttpRequest(
        "POST", platform.registration_endpoint, _headers(token, ("Content-Type", "application/json")), body
    )


def _identifier(value: Any) -> str:
    """A client or deployment id as the platform sent it: text (Moodle, Canvas) or a number."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value == value.strip() and value.isprintable() and len(value) <= MAX_ID_LENGTH:
        return value
    return ""


def parse_registration_response(
    response: HttpResponse, platform: PlatformConfiguration, status: RegistrationStatus
) -> Registration:
    """The registration the platform made: its client_id, its deployment, and the platform's endpoints."""
    if not 200 <= response.status < 300:
        raise Forbidden("registration_refused", _REFUSED, detail=f"the platform answered {response.status}")
    document = _json_object(
        response, "registration_response_invalid", N_("The platform's answer to the registration could not be read.")
    )
    client_id = _identifier(document.get("client_id"))
    if not client_id:
        raise InvalidRequest(
            "registration_client_id_missing",
            N_("The platform's answer to the registration has no client ID."),
            detail="client_id missing or malformed",
        )
    lti = document.get(TOOL_CONFIGURATION)
    deployment_id = _identifier(lti.get("deployment_id")) if isinstance(lti, dict) else ""
    return Registration(
        issuer=platform.issuer,
        client_id=client_id,
        auth_login_url=platform.authorization_endpoint,
        auth_token_url=platform.token_endpoint,
        key_set_url=platform.jwks_uri,
        deployments=(Deployment(deployment_id),) if deployment_id else (),
        name=platform.product_family_code,
        status=status,
    )


def initial_status(approve: bool) -> RegistrationStatus:
    """A new dynamic registration waits for an admin (``approve``, the default), else is active at once."""
    return RegistrationStatus.PENDING if approve else RegistrationStatus.ACTIVE


def merged_registration(new: Registration, existing: Registration | None) -> Registration:
    """What to save for ``new`` when the store holds ``existing`` for the same (issuer, client_id).

    Registering again from the same platform updates that registration, never duplicates it: the
    endpoints are the platform's new ones, the deployments are the old and the new ones together,
    and the status is the one an admin gave it (an approved registration stays approved, a disabled
    one disabled). Moodle keeps the client_id when a tool type is registered again from its
    "update" action; a new registration started from Moodle's tool list makes a new tool type with a
    new client_id (the registration token's ``sub``), which is a new registration here too.
    """
    if existing is None:
        return new
    deployments = list(existing.deployments)
    deployments += [d for d in new.deployments if not existing.has_deployment(d.deployment_id)]
    return replace(
        new,
        deployments=tuple(deployments),
        name=new.name or existing.name,
        any_deployment=existing.any_deployment,
        status=existing.status,
    )


def save_dynamic_registration(store: RegistrationStore, registration: Registration) -> Registration:
    """Save ``registration`` as ``merged_registration`` says; returns what was saved."""
    saved = merged_registration(registration, store.get_registration(registration.issuer, registration.client_id))
    store.save_registration(saved)
    return saved


def set_registration_status(
    store: RegistrationStore, issuer: str, client_id: str, status: RegistrationStatus
) -> Registration:
    """Approve (ACTIVE) or disable (DISABLED) a registration; ``unknown_platform`` if there is none."""
    registration = store.get_registration(issuer, client_id)
    if registration is None:
        raise NotFound("unknown_platform", N_("This platform is not registered with the tool."))
    changed = replace(registration, status=status)
    store.save_registration(changed)
    return changed
