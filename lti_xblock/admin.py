"""Django admin pages for the tool's records (Open edX's /admin, the demo's): LTI 1.3 registrations
with their deployments, LTI 1.1 consumers, the courses published whole, and, read-only, the tool's
keys, user links (which an admin may remove), launch contexts and the grade outbox (whose failed
scores an admin may send again).

What an admin types is checked by lti_core's rules (``lti_core.admin``): issuers and URLs normalised,
identifiers checked. Secrets never reach a page: a consumer's secret is only ever replaced (a new one
typed in a password field that renders empty), and a tool key's private key is not a field at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.functional import lazy

from lti_core.admin import (
    normalise_issuer,
    normalise_url,
    validate_client_id,
    validate_consumer_key,
    validate_deployment_id,
)
from lti_core.errors import LtiError
from lti_core.i18n import N_
from lti_core.outbox import OutboxKey, OutboxState, excerpt, split_ags_target
from lti_core.types import Consumer, RegistrationStatus
from lti_xblock import compat
from lti_xblock import models as m
from lti_xblock.i18n import gettext

_lazy = lazy(gettext, str)

STATUS_CHOICES = [(status.value, status.value) for status in RegistrationStatus]
NEW_SECRET_LABEL = N_("New shared secret")
NEW_SECRET_HELP = N_(
    "The secret is never shown. Type a new one to replace it (then give it to the platform); leave it empty "
    "to keep the current one."
)
SECRET_REQUIRED = N_("A new consumer needs a shared secret.")
SECRET_TOO_SHORT = N_("A shared secret needs at least 20 characters.")
SECRET_SET = N_("set (never shown)")
MIN_SECRET_LENGTH = 20


def _checked(rule: Callable[[str], str], value: str) -> str:
    """``rule(value)``, its refusal as a form error in the reader's language."""
    try:
        return rule(value)
    except LtiError as error:
        raise forms.ValidationError(error.text(gettext), code=error.reason) from error


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else "-"


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Records the tool writes itself: an admin may look, not add, change or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# -- LTI 1.3 registrations ----------------------------------------------------------------------


class RegistrationForm(forms.ModelForm):  # type: ignore[type-arg]
    status = forms.ChoiceField(choices=STATUS_CHOICES)

    class Meta:
        model = m.LtiRegistration
        fields = (
            "issuer",
            "client_id",
            "name",
            "status",
            "any_deployment",
            "auth_login_url",
            "auth_token_url",
            "key_set_url",
        )

    def clean_issuer(self) -> str:
        return _checked(normalise_issuer, self.cleaned_data["issuer"])

    def clean_client_id(self) -> str:
        return _checked(validate_client_id, self.cleaned_data["client_id"])

    def clean_auth_login_url(self) -> str:
        return _checked(normalise_url, self.cleaned_data["auth_login_url"])

    def clean_auth_token_url(self) -> str:
        return _checked(normalise_url, self.cleaned_data["auth_token_url"])

    def clean_key_set_url(self) -> str:
        return _checked(normalise_url, self.cleaned_data["key_set_url"])


class DeploymentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = m.LtiDeployment
        fields = ("deployment_id", "label")

    def clean_deployment_id(self) -> str:
        return _checked(validate_deployment_id, self.cleaned_data["deployment_id"])


class DeploymentInline(admin.TabularInline):  # type: ignore[type-arg]
    model = m.LtiDeployment
    form = DeploymentForm
    extra = 1


@admin.register(m.LtiRegistration)
class RegistrationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = RegistrationForm
    inlines = (DeploymentInline,)
    list_display = ("issuer", "client_id", "name", "status", "any_deployment", "deployment_ids", "created")
    list_filter = ("status", "any_deployment")
    search_fields = ("issuer", "client_id", "name", "deployments__deployment_id")

    @admin.display(description=_lazy(N_("Deployment IDs")))
    def deployment_ids(self, obj: m.LtiRegistration) -> str:
        return ", ".join(obj.deployments.values_list("deployment_id", flat=True))


# -- LTI 1.1 consumers ----------------------------------------------------------------------------


class ConsumerForm(forms.ModelForm):  # type: ignore[type-arg]
    """The key, name and state; the secret only as a replacement, never shown (nor sent back)."""

    new_secret = forms.CharField(
        label=_lazy(NEW_SECRET_LABEL),
        help_text=_lazy(NEW_SECRET_HELP),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = m.LtiConsumer
        fields = ("key", "name", "enabled", "migrated_to")
        labels = {"migrated_to": _lazy(N_("Moved to the LTI 1.3 issuer"))}
        help_texts = {
            "migrated_to": _lazy(
                N_(
                    "When this platform moved to LTI 1.3 without sending the LTI 1.1 user ids: its issuer. A 1.3 "
                    "launch from it then signs in the user this consumer's same user id is linked to."
                )
            )
        }

    def clean_key(self) -> str:
        return _checked(validate_consumer_key, self.cleaned_data["key"])

    def clean_migrated_to(self) -> str:
        issuer: str = self.cleaned_data.get("migrated_to", "").strip()
        return _checked(normalise_issuer, issuer) if issuer else ""

    def clean_new_secret(self) -> str:
        secret: str = self.cleaned_data.get("new_secret", "")
        if not secret and self.instance.pk is None:
            raise forms.ValidationError(gettext(SECRET_REQUIRED), code="secret_required")
        if secret and len(secret) < MIN_SECRET_LENGTH:
            raise forms.ValidationError(gettext(SECRET_TOO_SHORT), code="secret_too_short")
        return secret


@admin.register(m.LtiConsumer)
class ConsumerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = ConsumerForm
    list_display = ("key", "name", "enabled", "migrated_to", "secret_state", "created")
    list_filter = ("enabled",)
    search_fields = ("key", "name", "migrated_to")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A consumer's key is what its platform signs with: it is not renamed, a new one is issued.
        return ("key",) if obj is not None else ()

    @admin.display(description=_lazy(N_("Shared secret")))
    def secret_state(self, obj: m.LtiConsumer) -> str:
        return gettext(SECRET_SET)

    def save_model(self, request: HttpRequest, obj: m.LtiConsumer, form: Any, change: bool) -> None:
        # Through the store, as every other write of a consumer (it keeps the secret as it must).
        from lti_xblock.views import store

        new_secret: str = form.cleaned_data.get("new_secret", "")
        existing = store.get_consumer(obj.key) if change else None
        if existing is not None:
            consumer = replace(
                existing,
                name=obj.name,
                enabled=obj.enabled,
                secret=new_secret or existing.secret,
                migrated_to=obj.migrated_to,
            )
        else:
            consumer = Consumer(obj.key, new_secret, obj.name, obj.enabled, obj.migrated_to)
        store.save_consumer(consumer)
        saved = m.LtiConsumer.objects.get(key=obj.key)
        obj.pk = saved.pk
        obj.refresh_from_db()


# -- whole courses published -----------------------------------------------------------------------


class PublishedCourseForm(forms.ModelForm):  # type: ignore[type-arg]
    """A course of the host (``compat.course_to_publish``) and a maximum score above 0."""

    class Meta:
        model = m.LtiPublishedCourse
        fields = ("course_id", "max_score", "grade_sync")
        labels = {"course_id": _lazy(N_("Course ID")), "max_score": _lazy(N_("Maximum score"))}
        help_texts = {
            "course_id": _lazy(N_("The course's id, e.g. course-v1:Org+Course+Run (in the workbench: a scenario id).")),
            "grade_sync": _lazy(N_("Send the course grade to the platforms' gradebooks.")),
        }

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        course_id = cleaned.get("course_id", self.instance.course_id or "")
        max_score = cleaned.get("max_score")
        if max_score is not None and course_id:
            try:
                cleaned["course_id"] = compat.course_to_publish(course_id, float(max_score))
            except LtiError as error:
                field = "max_score" if error.reason == "bad_max_score" else "course_id"
                self.add_error(field, forms.ValidationError(error.text(gettext), code=error.reason))
        return cleaned


@admin.register(m.LtiPublishedCourse)
class PublishedCourseAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The courses published whole: their course teams may add them by deep linking; their score is the
    course grade. Removing one unpublishes it (its created links are refused from then on)."""

    form = PublishedCourseForm
    list_display = ("course_id", "title", "max_score", "grade_sync", "published_by", "published_at")
    list_filter = ("grade_sync",)
    search_fields = ("course_id", "published_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # The created links name the course: it is unpublished and another published, not renamed.
        return ("course_id",) if obj is not None else ()

    @admin.display(description=_lazy(N_("Title")))
    def title(self, obj: m.LtiPublishedCourse) -> str:
        return compat.host().course_title(obj.course_id) or "-"

    def save_model(self, request: HttpRequest, obj: m.LtiPublishedCourse, form: Any, change: bool) -> None:
        if not change:
            obj.published_by = request.user.get_username()
        super().save_model(request, obj, form, change)


# -- read-only: the tool's keys, user links, launch contexts ---------------------------------------


@admin.register(m.LtiToolKey)
class ToolKeyAdmin(ReadOnlyAdmin):
    """The tool's signing keys: kid, dates and state; never the private key (not even a field)."""

    list_display = ("kid", "state", "made", "retires", "created")
    fields = ("kid", "state", "made", "retires", "public_jwk")
    readonly_fields = fields

    @admin.display(description=_lazy(N_("State")))
    def state(self, obj: m.LtiToolKey) -> str:
        if not obj.active:
            return gettext(N_("retired"))
        return gettext(N_("retiring")) if obj.retires_at else gettext(N_("active"))

    @admin.display(description=_lazy(N_("Made")))
    def made(self, obj: m.LtiToolKey) -> str:
        return _when(obj.created_at)

    @admin.display(description=_lazy(N_("Leaves the key set")))
    def retires(self, obj: m.LtiToolKey) -> str:
        return _when(obj.retires_at)

    def get_queryset(self, request: HttpRequest) -> Any:
        # The private key is never read for these pages.
        return super().get_queryset(request).defer("private_pem")


@admin.register(m.LtiUserLink)
class UserLinkAdmin(ReadOnlyAdmin):
    """Links are written by launches only; an admin may remove one (its next launch is a first one)."""

    list_display = ("platform", "platform_user_id", "user", "created")
    list_filter = ("platform",)
    search_fields = ("platform", "platform_user_id", "user__username")
    fields = ("platform", "platform_user_id", "user", "created")
    readonly_fields = fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("lti_xblock.delete_ltiuserlink"))


@admin.register(m.LtiLaunchContext)
class LaunchContextAdmin(ReadOnlyAdmin):
    list_display = ("platform", "platform_user_id", "resource_link_id", "user", "lti_version", "role", "updated")
    list_filter = ("lti_version", "role")
    search_fields = ("platform", "platform_user_id", "resource_link_id", "context_id", "user__username")
    fields = (
        "platform",
        "platform_user_id",
        "resource_link_id",
        "user",
        "context_id",
        "deployment_id",
        "client_id",
        "lti_version",
        "role",
        "roles",
        "message_type",
        "services",
        "updated",
    )
    readonly_fields = fields

    @admin.display(description=_lazy(N_("Updated")))
    def updated(self, obj: m.LtiLaunchContext) -> str:
        return _when(obj.updated_at)


# -- the grade outbox: read-only, with "retry now" -------------------------------------------------

OUTBOX_STATE_LABELS = {
    OutboxState.PENDING: N_("pending"),
    OutboxState.IN_FLIGHT: N_("being sent"),
    OutboxState.DELIVERED: N_("delivered"),
    OutboxState.RETRYING: N_("retrying"),
    OutboxState.FAILED: N_("failed"),
}
RETRIED = N_("%(count)d scores will be sent again now.")
NOT_RETRIED = N_("%(count)d scores were not failed or retrying: left as they are.")
EXCERPT = 80


class OutboxStateFilter(admin.SimpleListFilter):
    """The states, each with how many entries are in it (``outbox_counts``)."""

    title = _lazy(N_("State"))
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        from lti_xblock.views import store

        counts = store.outbox_counts()
        return [
            (state.value, f"{gettext(label)} ({counts.get(state, 0)})") for state, label in OUTBOX_STATE_LABELS.items()
        ]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(state=self.value()) if self.value() else queryset


@admin.register(m.LtiGradeOutbox)
class GradeOutboxAdmin(ReadOnlyAdmin):
    """Scores on their way to the platforms: where each stands and the platform's last answer. An admin
    may send failed or retrying ones again now (through the store: the outbox's state table decides)."""

    list_display = (
        "learner",
        "target_excerpt",
        "state_label",
        "score",
        "attempts",
        "next_attempt",
        "last_status",
        "last_error_excerpt",
    )
    list_filter = (OutboxStateFilter,)
    search_fields = ("platform_user_id",)
    ordering = ("-updated_at",)
    fields = (
        "platform",
        "platform_user_id",
        "target",
        "kind",
        "state_label",
        "score",
        "score_time",
        "version",
        "attempts",
        "next_attempt",
        "last_status",
        "last_error",
        "delivered",
    )
    readonly_fields = fields
    actions = ("retry_now",)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # Changing what is sent is not allowed (read-only); sending it again is a change-level right.
        return bool(request.user.has_perm("lti_xblock.change_ltigradeoutbox"))

    @admin.action(description=_lazy(N_("Retry now")), permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: Any) -> None:
        from lti_xblock.views import store

        now = time.time()
        retried = sum(
            store.retry_now(OutboxKey(row.platform, row.platform_user_id, row.target), now) for row in queryset
        )
        if retried:
            self.message_user(request, gettext(RETRIED) % {"count": retried}, messages.SUCCESS)
        if len(queryset) > retried:
            self.message_user(request, gettext(NOT_RETRIED) % {"count": len(queryset) - retried}, messages.WARNING)

    @admin.display(description=_lazy(N_("Learner")), ordering="platform_user_id")
    def learner(self, obj: m.LtiGradeOutbox) -> str:
        return f"{obj.platform_user_id} @ {obj.platform}"

    @admin.display(description=_lazy(N_("Sent to")))
    def target_excerpt(self, obj: m.LtiGradeOutbox) -> str:
        return excerpt(split_ags_target(obj.target)[0], EXCERPT)  # the service URL, of either kind of target

    @admin.display(description=_lazy(N_("State")), ordering="state")
    def state_label(self, obj: m.LtiGradeOutbox) -> str:
        label = OUTBOX_STATE_LABELS.get(OutboxState(obj.state)) if obj.state in set(OutboxState) else None
        return gettext(label) if label else obj.state

    @admin.display(description=_lazy(N_("Score")))
    def score(self, obj: m.LtiGradeOutbox) -> str:
        if obj.score_given is None or obj.score_maximum is None:
            return "-"
        return f"{obj.score_given:g} / {obj.score_maximum:g}"

    @admin.display(description=_lazy(N_("Given at")))
    def score_time(self, obj: m.LtiGradeOutbox) -> str:
        return _when(obj.score_timestamp)

    @admin.display(description=_lazy(N_("Next attempt")), ordering="next_attempt_at")
    def next_attempt(self, obj: m.LtiGradeOutbox) -> str:
        if obj.state not in (OutboxState.PENDING, OutboxState.RETRYING, OutboxState.IN_FLIGHT):
            return "-"
        return _when(obj.next_attempt_at)

    @admin.display(description=_lazy(N_("Platform's last answer")))
    def last_error_excerpt(self, obj: m.LtiGradeOutbox) -> str:
        return excerpt(obj.last_error, EXCERPT) or "-"

    @admin.display(description=_lazy(N_("Delivered")))
    def delivered(self, obj: m.LtiGradeOutbox) -> str:
        return _when(obj.delivered_at)
