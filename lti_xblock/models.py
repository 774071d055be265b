"""The Django Store's tables. Portable across SQLite, MySQL/MariaDB and PostgreSQL: every indexed
text column fits MySQL's utf8mb4 index limit, single-use values are enforced by unique keys, and
identifiers (ExactCharField) compare exactly, also on MySQL/MariaDB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from lti_core import records

if TYPE_CHECKING:
    # Importing it at run time needs MySQLdb; vendor "mysql" below says the connection is one.
    from django.db.backends.mysql.base import DatabaseWrapper as MySQLDatabaseWrapper

    # django-stubs' CharField is generic in the types it is set with and read as.
    _CharField = models.CharField[str, str]
else:
    _CharField = models.CharField


def exact_collation(connection: BaseDatabaseWrapper) -> str | None:
    """lti_core's exact collation for the server ``connection`` reaches."""
    if connection.vendor != "mysql":
        return None
    mysql = cast("MySQLDatabaseWrapper", connection)
    return records.exact_collation("mysql", mariadb=mysql.mysql_is_mariadb, version=tuple(mysql.mysql_version))


class ExactCharField(_CharField):
    """A CharField for identifiers (issuers, client and deployment ids, consumer keys, OIDC states,
    key ids, platform user ids): equal only if identical, on every database."""

    db_collation: str | None  # set by CharField.__init__; django-stubs does not declare it

    def db_parameters(self, connection: BaseDatabaseWrapper) -> dict[str, Any]:
        params: dict[str, Any] = super().db_parameters(connection)
        if not self.db_collation:
            params["collation"] = exact_collation(connection)
        return params


class LtiRegistration(models.Model):
    """An LTI 1.3 platform registration (issuer, client_id)."""

    issuer = ExactCharField(max_length=255)
    client_id = ExactCharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    auth_login_url = models.CharField(max_length=1024)
    auth_token_url = models.CharField(max_length=1024)
    key_set_url = models.CharField(max_length=1024)
    any_deployment = models.BooleanField(default=False)
    # lti_core.types.RegistrationStatus: "active", "pending" (dynamic, awaiting an admin) or "disabled".
    status = models.CharField(max_length=16, default="active")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "client_id"], name="lti_registration_unique")]

    def __str__(self) -> str:
        return f"{self.issuer} / {self.client_id}"


class LtiDeployment(models.Model):
    registration = models.ForeignKey(LtiRegistration, on_delete=models.CASCADE, related_name="deployments")
    deployment_id = ExactCharField(max_length=255)
    label = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registration", "deployment_id"], name="lti_deployment_unique")]


class LtiConsumer(models.Model):
    """An LTI 1.1 consumer key and its secret (needed in clear to verify HMAC-SHA1 signatures)."""

    key = ExactCharField(max_length=255, unique=True)
    # Text: sealed at rest (lti_core.sealing), a secret takes about 1.4 times its length plus 64 characters.
    secret = models.TextField()
    name = models.CharField(max_length=255, blank=True, default="")
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    # The LTI 1.3 issuer its platform moved to (lti_core.lti13.migration); added by 0011.
    migrated_to = models.CharField(max_length=255, blank=True, default="")


class LtiNonce(models.Model):
    """A used nonce. ``digest`` is sha256(scope, nonce): fixed length, so any nonce fits the unique index."""

    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.FloatField(db_index=True)


class LtiOidcState(models.Model):
    state = ExactCharField(max_length=128, unique=True)
    nonce = models.CharField(max_length=128)
    issuer = models.CharField(max_length=255)
    client_id = models.CharField(max_length=255)
    target_link_uri = models.TextField()
    expires_at = models.FloatField(db_index=True)
    # The rest of the login initiation, to start the launch again in a new window (binding.py).
    login_hint = models.TextField(default="")
    lti_message_hint = models.TextField(default="")
    deployment_id = models.CharField(max_length=255, default="")
    storage_target = models.CharField(max_length=255, default="")


class LtiToolKey(models.Model):
    kid = ExactCharField(max_length=128, unique=True)
    private_pem = models.TextField()
    public_jwk = models.JSONField()
    active = models.BooleanField(default=True)
    # lti_core.types.ToolKey's times, epoch seconds (0: unknown / not planned).
    created_at = models.FloatField(default=0.0)
    retires_at = models.FloatField(default=0.0)
    created = models.DateTimeField(auto_now_add=True)


class LtiUserLink(models.Model):
    """Permanent: (platform, platform user id) -> local user."""

    platform = ExactCharField(max_length=255)
    platform_user_id = ExactCharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_links")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["platform", "platform_user_id"], name="lti_user_link_unique")]


class LtiLaunchContext(models.Model):
    """The latest launch of (platform, platform user id, resource link): what grade and roster jobs
    need later, without a browser. ``services`` is ``LaunchServices.as_dict()``; ``updated_at`` epoch
    seconds. The key's three 255-character columns fit MySQL's utf8mb4 index limit (3060 of 3072 bytes)."""

    platform = ExactCharField(max_length=255)
    platform_user_id = ExactCharField(max_length=255)
    resource_link_id = ExactCharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_launch_contexts")
    context_id = ExactCharField(max_length=255, blank=True, default="")
    deployment_id = ExactCharField(max_length=255, blank=True, default="")
    client_id = ExactCharField(max_length=255, blank=True, default="")
    lti_version = models.CharField(max_length=16)
    role = models.CharField(max_length=16)
    roles = models.JSONField(default=list)
    message_type = models.CharField(max_length=255)
    services = models.JSONField(default=dict)
    updated_at = models.FloatField()
    # The published content the link opens (its usage id), so a score finds its links; added by 0009.
    content_id = ExactCharField(max_length=255, blank=True, default="")
    resource_link_title = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "platform_user_id", "resource_link_id"], name="lti_launch_context_unique"
            )
        ]
        indexes = [models.Index(fields=["content_id"], name="lti_launch_context_content")]


class LtiContentEnrollment(models.Model):
    """Who may see which published content, with which rights (the workbench host's enrolment).

    In Open edX, enrolment and course roles are edx-platform's own; see compat.OpenEdxHost.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_enrollments")
    content_id = ExactCharField(max_length=255)
    role = models.CharField(max_length=16)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "content_id"], name="lti_enrollment_unique")]


class LtiGradeOutbox(models.Model):
    """The durable grade outbox (lti_core.outbox): one row per (platform, platform user, target).

    Keyed by ``key_digest``, sha256 of the three (``OutboxKey.digest``): a target (a line item URL,
    or an outcome service URL and a sourcedid) has no length limit and would pass MySQL's index
    limit. Times are epoch seconds; workers claim due rows by (state, next_attempt_at)."""

    key_digest = ExactCharField(max_length=64, unique=True)
    platform = ExactCharField(max_length=255)
    platform_user_id = ExactCharField(max_length=255)
    target = models.TextField()
    kind = models.CharField(max_length=16)  # lti_core.outbox.ServiceKind
    score_given = models.FloatField(null=True)
    score_maximum = models.FloatField(null=True)
    activity_progress = models.CharField(max_length=32)
    grading_progress = models.CharField(max_length=32)
    comment = models.TextField(blank=True, default="")
    score_timestamp = models.FloatField()
    state = models.CharField(max_length=16)  # lti_core.outbox.OutboxState
    version = models.IntegerField()
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.FloatField()
    last_status = models.IntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    claimed_by = models.CharField(max_length=255, blank=True, default="")
    claim_expires_at = models.FloatField(default=0.0)
    delivered_at = models.FloatField(default=0.0)
    updated_at = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="lti_grade_outbox_due")]


class LtiChildScore(models.Model):
    """A learner's latest score on one graded block inside published content (``content_id``, the
    lti_publish block's usage id), as the block published it: what the published block's score is
    computed from (lti_xblock.scores). ``scored_at`` epoch seconds; an older score never replaces a
    newer one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_child_scores")
    content_id = ExactCharField(max_length=255)
    child_id = ExactCharField(max_length=255)
    earned = models.FloatField()
    possible = models.FloatField()
    scored_at = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "content_id", "child_id"], name="lti_child_score_unique")
        ]


class LtiPendingLaunch(models.Model):
    """A first launch waiting for the person's choice (lti_core.prompt): the launch as
    ``Launch.as_record()``, and digests of the browser's secrets, never the secrets. ``account`` is
    the local user signed in to confirm (text: none yet while choosing)."""

    pending_id = ExactCharField(max_length=64, unique=True)
    launch = models.JSONField()
    content_id = models.TextField()
    state = models.CharField(max_length=16)
    may_create = models.BooleanField()
    binding = ExactCharField(max_length=64)
    handover = ExactCharField(max_length=64, blank=True, default="")
    form_token_digest = ExactCharField(max_length=64)
    expires_at = models.FloatField(db_index=True)
    account = ExactCharField(max_length=255, blank=True, default="")
    suggested_username = models.CharField(max_length=255, blank=True, default="")


class LtiPublishedCourse(models.Model):
    """A whole course an admin published (``lti-publish courses publish``, the Django admin): its
    course team may add it to a platform's course by deep linking, and its score there is the
    course grade (lti_xblock.scores), scaled to ``max_score``, sent when ``grade_sync`` is on.
    ``course_id``: Open edX's course key, or the workbench's scenario id."""

    course_id = ExactCharField(max_length=255, unique=True)
    max_score = models.FloatField(default=100.0)
    grade_sync = models.BooleanField(default=True)
    published_by = models.CharField(max_length=255, blank=True, default="")
    published_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.course_id
