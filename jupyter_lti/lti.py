"""One hub for both versions: LTI 1.1 consumers and LTI 1.3 platforms launch into the same hub.

``LTIAuthenticator`` is the two single-version authenticators together: it inherits
``LTI13Authenticator`` and ``LTI11Authenticator`` (so each option is defined once, where it was, and
``jupyterhub --help-all`` lists it once), serves both versions' URLs, and hands each launch to the
``authenticate`` of its version. Usernames, links, groups, landing and the store are the shared
base's (``LtiAuthenticator``), so both versions follow one username rule and one table of links; a
platform identity is (issuer, sub) for LTI 1.3 and (consumer key, user_id) for LTI 1.1, and two
identities become one hub user only when the platform moved from 1.1 to 1.3: its verified `lti1p1`
claim, or an admin's `migrated_consumers` entry, says so (``lti_core.linking.find_link``). A consumer
key spelled as an issuer would make the two versions' users one: the hub refuses to start with one.

Config: ``c.LTIAuthenticator`` sections, and also the ``c.LTI11Authenticator`` and
``c.LTI13Authenticator`` sections of an existing config (traitlets applies the sections of a class's
parents), ``c.LTIAuthenticator`` winning where both set an option.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from traitlets import Dict, TraitError, Unicode

from jupyter_lti.handlers import LTI11LaunchHandler
from jupyter_lti.lti11 import LTI11_SPEC, LTI11Authenticator
from jupyter_lti.lti13 import LTI13Authenticator


class LTIAuthenticator(LTI13Authenticator, LTI11Authenticator):
    """JupyterHub as an LTI 1.1 and LTI 1.3 tool at once: `consumers` for LTI 1.1, `issuer` and
    `platforms` (and dynamic registration) for LTI 1.3, in one hub with one set of users."""

    login_service = "LTI"
    lti_versions = ("1.1", "1.3")

    # None allowed, as LTI11Authenticator's (jupyterhub-ltiauthenticator's LTI 1.1 configs set it).
    username_key = Unicode(  # type: ignore[assignment]
        "",
        allow_none=True,
        config=True,
        help=f"""Launch value that becomes the hub username: an LTI 1.1 launch parameter
        ({LTI11_SPEC}#toc-3) or an LTI 1.3 claim (https://www.imsglobal.org/spec/lti/v1p3/), by name;
        `custom_<name>` reads the custom parameter `<name>` in both versions. One key for both, e.g.
        `custom_username` with a custom parameter `username=$User.username` on the links of both.

        Empty (default): a name that cannot collide across platforms, the user's given name plus a hash
        of the platform identity, (consumer key, user_id) in LTI 1.1 and (issuer, sub) in LTI 1.3. An LTI
        1.1 identity and an LTI 1.3 identity are different people, even from the same platform: each is
        linked to its own hub user at its first launch, and a name already linked to someone else (or a
        hub admin's) gets a short hash appended instead of being shared.
        """,
    )

    migrated_consumers = Dict(
        config=True,
        help="""LTI 1.1 consumers whose platform moved to LTI 1.3: `{"consumer key": "issuer"}`.

        A 1.3 launch from that issuer whose user has no link yet signs in the hub user linked to the
        LTI 1.1 user of that consumer with the same user id, and links it for good: for platforms that
        keep their user ids across versions (Moodle does) but send no migration claim. Platforms that
        send the `lti1p1` claim (https://www.imsglobal.org/spec/lti/v1p3/migr) need no entry: its
        signature, checked with the consumer's secret, says who the user was. Applied to the LTI store
        at every start (an entry removed here leaves the consumer as it was).
        """,
    )

    def protocol_handlers(self) -> list[tuple[str, Any]]:
        handlers = LTI13Authenticator.protocol_handlers(self)
        paths = {path for path, _ in handlers}
        return handlers + [(path, h) for path, h in LTI11Authenticator.protocol_handlers(self) if path not in paths]

    def save_configured_platforms(self) -> None:
        LTI13Authenticator.save_configured_platforms(self)
        LTI11Authenticator.save_configured_platforms(self)
        issuers = {r.issuer for r in self.store.list_registrations()}
        for consumer in self.store.list_consumers():
            # Links are keyed by (platform, platform user id): a consumer key spelled as an issuer
            # would make an LTI 1.1 user and an LTI 1.3 user with the same id one hub user.
            if consumer.key in issuers:
                raise TraitError(
                    f"LTI: consumer key {consumer.key!r} is also an LTI 1.3 issuer: give the consumer another key "
                    "(and map it to the issuer with migrated_consumers if the same people use both), so that "
                    "the identities of the two versions cannot be taken for one another"
                )
        for key, issuer in sorted(self.migrated_consumers.items()):
            saved = self.store.get_consumer(str(key))
            if saved is None:
                raise TraitError(f"LTI: migrated_consumers names {key!r}, which is no LTI 1.1 consumer")
            self.store.save_consumer(replace(saved, migrated_to=str(issuer)))

    async def authenticate(self, handler: Any, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """The launch's own version decides: the LTI 1.1 launch URLs verify an LTI 1.1 launch, the
        LTI 1.3 redirect URI an LTI 1.3 one."""
        if isinstance(handler, LTI11LaunchHandler):
            return await LTI11Authenticator.authenticate(self, handler, data)
        return await LTI13Authenticator.authenticate(self, handler, data)


__all__ = ["LTIAuthenticator"]
