"""lti_core's Store on the Django ORM (the Open edX host and the workbench)."""

from __future__ import annotations

import dataclasses

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from lti_core.store import nonce_digest
from lti_core.types import (
    STATE_FIELDS,
    Consumer,
    Deployment,
    LaunchContext,
    LaunchServices,
    OidcState,
    Registration,
    Role,
    ToolKey,
    UserLink,
)
from lti_xblock import models as m


class DjangoStore:
    """Implements every Protocol of lti_core.store. ``using`` picks the database alias."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    # registrations ---------------------------------------------------------------------------
    @staticmethod
    def _registration(row: m.LtiRegistration) -> Registration:
        deployments = tuple(
            Deployment(d.deployment_id, d.label) for d in sorted(row.deployments.all(), key=lambda d: d.pk)
        )
        return Registration(
            issuer=row.issuer,
            client_id=row.client_id,
            auth_login_url=row.auth_login_url,
            auth_token_url=row.auth_token_url,
            key_set_url=row.key_set_url,
            deployments=deployments,
            name=row.name,
            any_deployment=row.any_deployment,
        )

    def get_registration(self, issuer: str, client_id: str) -> Registration | None:
        row = (
            m.LtiRegistration.objects.using(self.using)
            .prefetch_related("deployments")
            .filter(issuer=issuer, client_id=client_id)
            .first()
        )
        return self._registration(row) if row else None

    def find_registrations(self, issuer: str) -> list[Registration]:
        rows = m.LtiRegistration.objects.using(self.using).prefetch_related("deployments").filter(issuer=issuer)
        return [self._registration(r) for r in rows.order_by("client_id")]

    def save_registration(self, registration: Registration) -> None:
        with transaction.atomic(using=self.using):
            row, _ = m.LtiRegistration.objects.using(self.using).update_or_create(
                issuer=registration.issuer,
                client_id=registration.client_id,
                defaults={
                    "name": registration.name,
                    "auth_login_url": registration.auth_login_url,
                    "auth_token_url": registration.auth_token_url,
                    "key_set_url": registration.key_set_url,
                    "any_deployment": registration.any_deployment,
                },
            )
            wanted = {d.deployment_id: d for d in registration.deployments}
            row.deployments.exclude(deployment_id__in=wanted).delete()
            for deployment in registration.deployments:
                m.LtiDeployment.objects.using(self.using).update_or_create(
                    registration=row, deployment_id=deployment.deployment_id, defaults={"label": deployment.label}
                )

    # LTI 1.1 consumers -----------------------------------------------------------------------
    def get_consumer(self, key: str) -> Consumer | None:
        row = m.LtiConsumer.objects.using(self.using).filter(key=key).first()
        return Consumer(row.key, row.secret, row.name) if row else None

    def save_consumer(self, consumer: Consumer) -> None:
        m.LtiConsumer.objects.using(self.using).update_or_create(
            key=consumer.key, defaults={"secret": consumer.secret, "name": consumer.name}
        )

    # nonces and OIDC state -------------------------------------------------------------------
    def consume_nonce(self, scope: str, nonce: str, expires_at: float, now: float) -> bool:
        digest = nonce_digest(scope, nonce)
        nonces = m.LtiNonce.objects.using(self.using)
        try:
            with transaction.atomic(using=self.using):
                nonces.create(digest=digest, expires_at=expires_at)
            return True
        except IntegrityError:
            # Seen before. Only an expired record may be reused, and the conditional UPDATE lets
            # exactly one of two racing requests win it.
            return nonces.filter(digest=digest, expires_at__lte=now).update(expires_at=expires_at) == 1

    def save_state(self, state: OidcState) -> None:
        m.LtiOidcState.objects.using(self.using).create(**dataclasses.asdict(state))

    def get_state(self, state: str, now: float) -> OidcState | None:
        row = m.LtiOidcState.objects.using(self.using).filter(state=state, expires_at__gt=now).first()
        if row is None:
            return None
        return OidcState(**{name: getattr(row, name) for name in STATE_FIELDS})

    def delete_state(self, state: str) -> None:
        m.LtiOidcState.objects.using(self.using).filter(state=state).delete()

    def purge_expired(self, now: float) -> int:
        states, _ = m.LtiOidcState.objects.using(self.using).filter(expires_at__lte=now).delete()
        nonces, _ = m.LtiNonce.objects.using(self.using).filter(expires_at__lte=now).delete()
        return states + nonces

    # tool keys -------------------------------------------------------------------------------
    def list_tool_keys(self) -> list[ToolKey]:
        rows = m.LtiToolKey.objects.using(self.using).order_by("-created", "-pk")
        return [ToolKey(r.kid, r.private_pem, dict(r.public_jwk), r.active) for r in rows]

    def save_tool_key(self, key: ToolKey) -> None:
        m.LtiToolKey.objects.using(self.using).update_or_create(
            kid=key.kid, defaults={"private_pem": key.private_pem, "public_jwk": key.public_jwk, "active": key.active}
        )

    def set_tool_key_active(self, kid: str, active: bool) -> None:
        m.LtiToolKey.objects.using(self.using).filter(kid=kid).update(active=active)

    # user links ------------------------------------------------------------------------------
    def get_user_link(self, platform: str, platform_user_id: str) -> UserLink | None:
        row = (
            m.LtiUserLink.objects.using(self.using)
            .filter(platform=platform, platform_user_id=platform_user_id)
            .values_list("user_id", flat=True)
            .first()
        )
        return UserLink(platform, platform_user_id, str(row)) if row is not None else None

    def save_user_link(self, link: UserLink) -> UserLink:
        user = get_user_model().objects.using(self.using).get(pk=link.local_user_id)
        try:
            with transaction.atomic(using=self.using):
                m.LtiUserLink.objects.using(self.using).create(
                    platform=link.platform, platform_user_id=link.platform_user_id, user=user
                )
            return link
        except IntegrityError:
            existing = self.get_user_link(link.platform, link.platform_user_id)
            if existing is None:  # the row that refused us was deleted in between: nothing to keep
                raise
            return existing

    def find_user_links(self, local_user_id: str) -> list[UserLink]:
        rows = (
            m.LtiUserLink.objects.using(self.using)
            .filter(user_id=local_user_id)
            .order_by("platform", "platform_user_id")
            .values_list("platform", "platform_user_id")
        )
        return [UserLink(platform, platform_user_id, local_user_id) for platform, platform_user_id in rows]

    # launch contexts -------------------------------------------------------------------------
    @staticmethod
    def _launch_context(row: m.LtiLaunchContext) -> LaunchContext:
        return LaunchContext(
            platform=row.platform,
            platform_user_id=row.platform_user_id,
            local_user_id=str(row.user_id),
            resource_link_id=row.resource_link_id,
            context_id=row.context_id,
            deployment_id=row.deployment_id,
            client_id=row.client_id,
            lti_version=row.lti_version,
            role=Role(row.role),
            roles=tuple(row.roles),
            message_type=row.message_type,
            services=LaunchServices.from_dict(row.services),
            updated_at=row.updated_at,
        )

    def save_launch_context(self, context: LaunchContext) -> None:
        m.LtiLaunchContext.objects.using(self.using).update_or_create(
            platform=context.platform,
            platform_user_id=context.platform_user_id,
            resource_link_id=context.resource_link_id,
            defaults={
                "user_id": context.local_user_id,
                "context_id": context.context_id,
                "deployment_id": context.deployment_id,
                "client_id": context.client_id,
                "lti_version": context.lti_version,
                "role": context.role.value,
                "roles": list(context.roles),
                "message_type": context.message_type,
                "services": context.services.as_dict(),
                "updated_at": context.updated_at,
            },
        )

    def get_launch_context(self, platform: str, platform_user_id: str, resource_link_id: str) -> LaunchContext | None:
        row = (
            m.LtiLaunchContext.objects.using(self.using)
            .filter(platform=platform, platform_user_id=platform_user_id, resource_link_id=resource_link_id)
            .first()
        )
        return self._launch_context(row) if row else None

    def find_launch_contexts(self, local_user_id: str) -> list[LaunchContext]:
        rows = m.LtiLaunchContext.objects.using(self.using).filter(user_id=local_user_id).order_by("-updated_at", "-pk")
        return [self._launch_context(r) for r in rows]
