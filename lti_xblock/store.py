"""lti_core's Store on the Django ORM (the Open edX host and the workbench): lti_core's
``RecordStore`` over this module's row operations on the models of ``lti_xblock.models``."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, models, transaction

from lti_core.records import RecordStore, Row, Rows
from lti_core.sealing import FernetSealer, derive_fernet_key
from lti_xblock import models as m

MODELS: dict[str, type[models.Model]] = {
    "registrations": m.LtiRegistration,
    "deployments": m.LtiDeployment,
    "consumers": m.LtiConsumer,
    "nonces": m.LtiNonce,
    "states": m.LtiOidcState,
    "tool_keys": m.LtiToolKey,
    "user_links": m.LtiUserLink,
    "launch_contexts": m.LtiLaunchContext,
    "grade_outbox": m.LtiGradeOutbox,
    "pending_launches": m.LtiPendingLaunch,
}
# The local user is a foreign key to Django's users here.
_COLUMN = {"local_user_id": "user_id"}
_FIELD = {column: name for name, column in _COLUMN.items()}


def _to_db(values: Mapping[str, Any]) -> dict[str, Any]:
    return {_COLUMN.get(name, name): value for name, value in values.items()}


class ModelRows:
    """lti_core's ``Rows`` on one model; writes that may collide run in a savepoint of their own."""

    def __init__(self, model: type[models.Model], using: str) -> None:
        self._model, self._using = model, using

    def _query(
        self,
        where: Mapping[str, Any],
        live_at: float | None = None,
        expired_at: float | None = None,
        due_at: float | None = None,
    ) -> models.QuerySet[Any]:
        query = self._model._default_manager.using(self._using).filter(**_to_db(where))
        if live_at is not None:
            query = query.filter(expires_at__gt=live_at)
        if expired_at is not None:
            query = query.filter(expires_at__lte=expired_at)
        if due_at is not None:
            query = query.filter(next_attempt_at__lte=due_at)
        return query

    def insert(self, row: Mapping[str, Any]) -> bool:
        try:
            with transaction.atomic(using=self._using):
                self._model._default_manager.using(self._using).create(**_to_db(row))
            return True
        except IntegrityError:
            return False

    def upsert(self, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        # update_or_create is not atomic: of two first saves racing, the loser updates the winner's row.
        if not self.insert({**key, **values}):
            self._query(key).update(**_to_db(values))

    def select(
        self,
        where: Mapping[str, Any],
        *,
        live_at: float | None = None,
        due_at: float | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        rows = self._query(where, live_at, due_at=due_at).order_by("pk").values()
        if limit is not None:
            rows = rows[:limit]
        return [{_FIELD.get(name, name): value for name, value in row.items()} for row in rows]

    def update(self, where: Mapping[str, Any], values: Mapping[str, Any], *, expired_at: float | None = None) -> int:
        return self._query(where, expired_at=expired_at).update(**_to_db(values))

    def delete(self, where: Mapping[str, Any], *, expired_at: float | None = None) -> int:
        deleted, _ = self._query(where, expired_at=expired_at).delete()
        return deleted


class DjangoTables:
    """lti_core's ``Tables`` on a Django database alias."""

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self._rows = {name: ModelRows(model, using) for name, model in MODELS.items()}

    def rows(self, table: str) -> Rows:
        return self._rows[table]

    def atomic(self) -> AbstractContextManager[None]:
        return transaction.atomic(using=self.using)


def encryption_sealer() -> FernetSealer:
    """The sealer of the tool's private keys and consumer secrets: ``LTI_PUBLISH["ENCRYPTION_KEYS"]``
    (Fernet keys; the first seals, all open), else keys derived from ``SECRET_KEY`` (which seals) and
    ``SECRET_KEY_FALLBACKS`` (which still open what older secret keys sealed)."""
    configured = getattr(settings, "LTI_PUBLISH", {}).get("ENCRYPTION_KEYS")
    if configured:
        if isinstance(configured, (str, bytes)):
            configured = [configured]
        try:
            return FernetSealer(list(configured))
        except ValueError as error:
            raise ImproperlyConfigured(f'LTI_PUBLISH["ENCRYPTION_KEYS"]: {error}') from None
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return FernetSealer([derive_fernet_key(secret) for secret in secrets if secret])


class DjangoStore(RecordStore):
    """Every Protocol of lti_core.store on the Django ORM. ``using`` picks the database alias.

    Uncached by default: Open edX runs many worker processes, and a registration an admin changes
    must apply to the next launch in all of them, not when each worker's entry expires. Private keys
    and consumer secrets are encrypted at rest (``encryption_sealer``).
    """

    def __init__(self, using: str = "default", *, cache_size: int = 0, cache_ttl: float = 60.0) -> None:
        self.using = using
        super().__init__(DjangoTables(using), cache_size=cache_size, cache_ttl=cache_ttl, sealer=encryption_sealer())
