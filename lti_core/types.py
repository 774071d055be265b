"""Value types shared by the protocol code, the stores and the hosts (all frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any


@dataclass(frozen=True)
class Deployment:
    """One placement of the tool in a platform (Moodle: one tool type; Canvas: one install)."""

    deployment_id: str
    label: str = ""


class RegistrationStatus(StrEnum):
    """Whether a registration's launches are accepted: a dynamic registration may wait for an admin."""

    ACTIVE = "active"
    PENDING = "pending"  # made by dynamic registration, not yet approved by an admin
    DISABLED = "disabled"  # switched off by an admin; kept, with its deployments and links


@dataclass(frozen=True)
class Registration:
    """An LTI 1.3 platform this tool trusts, identified by (issuer, client_id)."""

    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    deployments: tuple[Deployment, ...] = ()
    name: str = ""
    # Accept every deployment of this (issuer, client_id). Only for hosts whose existing configs name
    # no deployments (jupyterhub-ltiauthenticator's never did); listing them is safer.
    any_deployment: bool = False
    status: RegistrationStatus = RegistrationStatus.ACTIVE

    def has_deployment(self, deployment_id: str) -> bool:
        if self.any_deployment:
            return bool(deployment_id)
        return any(d.deployment_id == deployment_id for d in self.deployments)


@dataclass(frozen=True)
class Consumer:
    """An LTI 1.1 consumer: the key and secret a tool admin issued to one platform."""

    key: str
    secret: str
    name: str = ""
    #: False once an admin disables it: its launches are refused, its links kept.
    enabled: bool = True
    #: The LTI 1.3 issuer this consumer's platform moved to, set by an admin: a 1.3 launch from it
    #: signs in the user linked to this consumer's same user id (``lti_core.lti13.migration``).
    migrated_to: str = ""


@dataclass(frozen=True)
class ToolKey:
    """One of the tool's own RSA signing keys. ``private_pem`` never leaves the store's host."""

    kid: str
    private_pem: str
    public_jwk: dict[str, Any] = field(hash=False)
    active: bool = True
    #: When it was made (epoch seconds; 0: unknown, a key made before the tool kept times).
    created_at: float = 0.0
    #: When it leaves the key set (epoch seconds), set when a newer key replaces it; 0: not planned.
    retires_at: float = 0.0


@dataclass(frozen=True)
class OidcState:
    """What the tool remembers between OIDC login initiation and the launch."""

    state: str
    nonce: str
    issuer: str
    client_id: str
    target_link_uri: str
    expires_at: float
    # The rest of the login initiation: enough to start the same launch again in a new window
    # when the browser cannot be bound inside the platform's frame (lti_core.lti13.binding).
    login_hint: str = ""
    lti_message_hint: str = ""
    deployment_id: str = ""
    #: The platform's storage frame when the login used platform storage instead of a cookie.
    storage_target: str = ""


#: OidcState's field names: the columns every store keeps for it.
STATE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(OidcState))


class Role(Enum):
    """The local rights a launch grants; a learner can never gain staff rights."""

    LEARNER = "learner"
    STAFF = "staff"


@dataclass(frozen=True)
class UserLink:
    """A permanent link from a platform identity to a local user.

    ``platform`` is the LTI 1.3 issuer or the LTI 1.1 consumer key; ``platform_user_id`` is ``sub``
    or ``user_id``. The pair never changes meaning, so the same person always lands as the same user.
    """

    platform: str
    platform_user_id: str
    local_user_id: str


@dataclass(frozen=True)
class AgsEndpoint:
    """Assignment and Grade Services the platform offered with the launch (LTI AGS 2.0, or the URLs
    Moodle sends LTI 1.1 tools as ``custom_lineitems_url`` / ``custom_lineitem_url``)."""

    lineitems_url: str = ""
    #: The line item of this resource link, when the platform made one (Moodle: with ``?type_id=``).
    lineitem_url: str = ""
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class NrpsEndpoint:
    """Names and Role Provisioning Services: the context's memberships URL (LTI NRPS 2.0)."""

    memberships_url: str
    versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class BasicOutcome:
    """LTI 1.1 Basic Outcomes: where to post this user's score for this link, and under what id."""

    service_url: str
    sourcedid: str


@dataclass(frozen=True)
class LaunchServices:
    """What the platform offered the tool with this launch; None where it offered nothing."""

    ags: AgsEndpoint | None = None
    nrps: NrpsEndpoint | None = None
    basic_outcome: BasicOutcome | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: how stores keep the services (``from_dict`` reads it back exactly)."""
        return {
            "ags": None
            if self.ags is None
            else {
                "lineitems_url": self.ags.lineitems_url,
                "lineitem_url": self.ags.lineitem_url,
                "scopes": list(self.ags.scopes),
            },
            "nrps": None
            if self.nrps is None
            else {"memberships_url": self.nrps.memberships_url, "versions": list(self.nrps.versions)},
            "basic_outcome": None
            if self.basic_outcome is None
            else {"service_url": self.basic_outcome.service_url, "sourcedid": self.basic_outcome.sourcedid},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> LaunchServices:
        """The services ``as_dict`` wrote (a missing or null entry: not offered)."""
        data = data or {}
        ags, nrps, outcome = data.get("ags"), data.get("nrps"), data.get("basic_outcome")
        return cls(
            ags=None
            if ags is None
            else AgsEndpoint(
                lineitems_url=str(ags.get("lineitems_url", "")),
                lineitem_url=str(ags.get("lineitem_url", "")),
                scopes=tuple(str(s) for s in ags.get("scopes", ())),
            ),
            nrps=None
            if nrps is None
            else NrpsEndpoint(
                memberships_url=str(nrps["memberships_url"]), versions=tuple(str(v) for v in nrps.get("versions", ()))
            ),
            basic_outcome=None
            if outcome is None
            else BasicOutcome(service_url=str(outcome["service_url"]), sourcedid=str(outcome["sourcedid"])),
        )


@dataclass(frozen=True)
class DeepLinkingSettings:
    """What a platform's request to pick content allows (LTI Deep Linking 2.0 ``deep_linking_settings``;
    LTI 1.1 ContentItemSelectionRequest's parameters): where the answer goes, what it may hold, and
    ``data`` to echo."""

    return_url: str
    accept_types: tuple[str, ...] = ()
    accept_presentation_document_targets: tuple[str, ...] = ()
    accept_multiple: bool = True
    accept_lineitem: bool = True
    auto_create: bool = False
    title: str = ""
    text: str = ""
    data: str = ""

    def as_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(
            accept_types=list(self.accept_types),
            accept_presentation_document_targets=list(self.accept_presentation_document_targets),
        )
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DeepLinkingSettings | None:
        if not data:
            return None
        values = dict(data)
        values.update(
            accept_types=tuple(data.get("accept_types", ())),
            accept_presentation_document_targets=tuple(data.get("accept_presentation_document_targets", ())),
        )
        return cls(**values)


@dataclass(frozen=True)
class Launch:
    """A verified launch, the same shape for LTI 1.1 and LTI 1.3, ready for the host to act on."""

    lti_version: str  # "1.1" or "1.3.0"
    platform: str  # issuer (1.3) or consumer key (1.1)
    platform_user_id: str  # sub (1.3) or user_id (1.1)
    roles: tuple[str, ...]  # full role URIs, normalised
    role: Role
    resource_link_id: str
    target_link_uri: str = ""
    deployment_id: str = ""
    client_id: str = ""
    context_id: str = ""
    context_title: str = ""
    resource_link_title: str = ""
    given_name: str = ""
    family_name: str = ""
    name: str = ""
    email: str = ""
    locale: str = ""
    custom: dict[str, str] = field(default_factory=dict, hash=False)
    #: The message type (LTI 1.3's names; LTI 1.1 basic launches are LtiResourceLinkRequest too).
    message_type: str = "LtiResourceLinkRequest"
    services: LaunchServices = LaunchServices()
    #: A request to pick content (LtiDeepLinkingRequest, ContentItemSelectionRequest): its settings.
    deep_linking: DeepLinkingSettings | None = None
    # Everything else the platform sent (claims or parameters), for later services.
    raw: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)

    def platform_data(self) -> dict[str, Any]:
        """What the platform sent, less what only served to verify it (OAuth parameters, the nonce):
        safe to keep beside the user."""
        return {k: v for k, v in self.raw.items() if not k.startswith("oauth_") and k != "nonce"}

    def value(self, key: str) -> str:
        """A launch value an admin names (e.g. the username source): a parameter (1.1) or claim
        (1.3) by name; ``custom_<name>`` is also ``<name>`` of the 1.3 custom claim (as LTI 1.1 spells
        custom parameters). Stripped text, or "" when absent or not text."""
        value = self.raw.get(key)
        if value is None and key.startswith("custom_"):
            value = self.custom.get(key[len("custom_") :])
        return value.strip() if isinstance(value, str) else ""

    def summary(self) -> dict[str, Any]:
        """The launch in plain JSON-able data, the same in every version: who, where, in which
        roles, and the services offered (what a host keeps with the session, e.g. the hub's auth_state)."""
        return {
            "lti_version": self.lti_version,
            "platform": self.platform,
            "user_id": self.platform_user_id,
            "client_id": self.client_id,
            "deployment_id": self.deployment_id,
            "roles": list(self.roles),
            "role": self.role.value,
            "context": {"id": self.context_id, "title": self.context_title},
            "resource_link": {"id": self.resource_link_id, "title": self.resource_link_title},
            "target_link_uri": self.target_link_uri,
            "custom": dict(self.custom),
            "person": {
                "name": self.name,
                "given_name": self.given_name,
                "family_name": self.family_name,
                "email": self.email,
                "locale": self.locale,
            },
            "message_type": self.message_type,
            "services": self.services.as_dict(),
        }

    def as_record(self) -> dict[str, Any]:
        """Every field as JSON-able data, for a launch kept server-side a while (a pending prompt):
        ``raw`` less what only served to verify it (``platform_data``). ``from_record`` reads it back."""
        skipped = ("raw", "services", "deep_linking")
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skipped}
        record.update(
            roles=list(self.roles),
            role=self.role.value,
            custom=dict(self.custom),
            services=self.services.as_dict(),
            deep_linking=None if self.deep_linking is None else self.deep_linking.as_dict(),
            raw=self.platform_data(),
        )
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Launch:
        """The launch ``as_record`` wrote."""
        values = dict(record)
        values.update(
            roles=tuple(record["roles"]),
            role=Role(record["role"]),
            services=LaunchServices.from_dict(record.get("services")),
            deep_linking=DeepLinkingSettings.from_dict(record.get("deep_linking")),
        )
        return cls(**values)


@dataclass(frozen=True)
class LaunchContext:
    """What a launch said about one user in one resource link, kept for the jobs that run later
    without a browser (grade passback, roster sync): the latest launch of (platform,
    platform_user_id, resource_link_id) wins. ``local_user_id`` is the host's user it signed in as;
    ``content_id`` the host's content the link opens (an XBlock usage id; on the hub, the launch's
    target_link_uri), so a score given for that content finds the links it goes to; ``updated_at``
    is when (epoch seconds)."""

    platform: str
    platform_user_id: str
    local_user_id: str
    resource_link_id: str
    context_id: str = ""
    deployment_id: str = ""
    client_id: str = ""
    lti_version: str = "1.3.0"
    role: Role = Role.LEARNER
    roles: tuple[str, ...] = ()
    message_type: str = "LtiResourceLinkRequest"
    services: LaunchServices = LaunchServices()
    updated_at: float = 0.0
    content_id: str = ""
    resource_link_title: str = ""


def launch_context(launch: Launch, local_user_id: str, now: float, content_id: str = "") -> LaunchContext:
    """The context to keep for ``launch``, which signed in as ``local_user_id`` at ``now`` to open
    the host's ``content_id``."""
    return LaunchContext(
        platform=launch.platform,
        platform_user_id=launch.platform_user_id,
        local_user_id=local_user_id,
        resource_link_id=launch.resource_link_id,
        context_id=launch.context_id,
        deployment_id=launch.deployment_id,
        client_id=launch.client_id,
        lti_version=launch.lti_version,
        role=launch.role,
        roles=tuple(launch.roles),
        message_type=launch.message_type,
        services=launch.services,
        updated_at=now,
        content_id=content_id,
        resource_link_title=launch.resource_link_title,
    )
