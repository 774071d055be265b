"""Key rotation end to end, on the Django host's live server with the Moodle-like platform peer.

The tool's token client (its RFC 7523 client assertions) against the peer's token endpoint, which
verifies them with pyjwt against the tool's JWKS fetched over HTTP (cached for its max-age, refetched
for an unknown kid): before a rotation, during the overlap (both keys published; an assertion signed
with the old key still accepted) and after it (the old key gone from the JWKS, its assertions
refused). Launches from the peer keep validating throughout, also when the peer rotates its own keys.
And the keys at rest: the tables hold no PEM and no consumer secret, and a wrong encryption key is a
reason code, never a traceback.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import requests
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from joserfc.jwk import RSAKey

from lti_core.errors import LtiError
from lti_core.lti13.token import AccessToken, build_client_assertion, build_token_request, parse_token_response
from lti_core.sealing import PREFIX, FernetSealer, derive_fernet_key
from lti_core.types import Consumer, ToolKey
from lti_peer.platform import PlatformPeer
from lti_peer.token import TokenEndpoint, token_endpoint
from lti_xblock import models as m
from lti_xblock.http import UrllibTransport
from tests.conftest import Tool, registration_of
from tests.test_host_lti13 import assert_lands_signed_in, full_launch

HOUR = 3600.0
SCOPES = ("https://purl.imsglobal.org/spec/lti-ags/scope/score",)


class OneKey:
    """A worker that has not seen the rotation yet: it still signs with the key it loaded."""

    def __init__(self, key: ToolKey) -> None:
        self._loaded = RSAKey.import_key(key.private_pem, {"kid": key.kid, "alg": "RS256", "use": "sig"})

    def signing_key(self, now: float | None = None) -> RSAKey:
        return self._loaded


@pytest.fixture
def endpoint(tool: Tool, platform: PlatformPeer) -> TokenEndpoint:
    endpoint = token_endpoint(platform)
    endpoint.tool_jwks_url = tool.details.lti13_jwks_url
    return endpoint


def ask_token(platform: PlatformPeer, assertion: str) -> AccessToken:
    request = build_token_request(registration_of(platform), SCOPES, assertion)
    return parse_token_response(UrllibTransport().send(request))


def launches(tool: Tool, platform: PlatformPeer) -> None:
    with requests.Session() as browser:
        assert_lands_signed_in(browser, tool, full_launch(browser, tool, platform), "Sam Student")


def published(browser: requests.Session, tool: Tool) -> list[str]:
    response = browser.get(tool.details.lti13_jwks_url)
    assert response.status_code == 200 and "max-age=3600" in response.headers["Cache-Control"]
    return [key["kid"] for key in response.json()["keys"]]


def test_service_calls_and_launches_before_during_and_after_a_rotation(browser, tool, platform, endpoint):
    from lti_xblock.views import store, tool_keys

    def assertion(keys: object = tool_keys, now: float | None = None) -> str:
        at = time.time() if now is None else now
        return build_client_assertion(keys, platform.client_id, platform.token_url, at)  # type: ignore[arg-type]

    # Before: the peer fetches the tool's JWKS once and grants a token.
    granted = ask_token(platform, assertion())
    assert granted.scopes == SCOPES and granted.expires_at > time.time() + 3000
    old = tool_keys.ensure_key()
    assert endpoint.tool_keys.fetches == 1 and published(browser, tool) == [old.kid]
    launches(tool, platform)

    # A rotation, as the admin runs it: the new key signs, the old one stays published for 72 hours.
    assert "older keys leave in 72 hours" in run("lti_keys", "rotate")
    new = tool_keys.ensure_key()
    assert new.kid != old.kid and published(browser, tool) == [new.kid, old.kid]
    ask_token(platform, assertion())  # a kid the peer does not know: it fetches the JWKS again, once
    assert endpoint.tool_keys.fetches == 2
    ask_token(platform, assertion(OneKey(old)))  # signed with the old key during the overlap: still fine
    ask_token(platform, assertion())
    assert endpoint.tool_keys.fetches == 2
    launches(tool, platform)

    # 72 hours later (the overlap is over) the JWKS is served without the old key, which is retired.
    later = time.time() + 72 * HOUR + 60
    store.save_tool_key(replace(store.list_tool_keys()[1], retires_at=time.time()))
    assert published(browser, tool) == [new.kid]
    assert {k.kid: k.active for k in store.list_tool_keys()} == {new.kid: True, old.kid: False}
    endpoint.clock = lambda: later  # the peer's cached JWKS (max-age 3600) is long expired too
    with pytest.raises(Exception) as refused:
        ask_token(platform, assertion(OneKey(old), later))
    assert getattr(refused.value, "reason", "") == "token_request_refused"
    assert "invalid_client" in refused.value.detail  # type: ignore[attr-defined]
    assert endpoint.log[-1] == "invalid_client" and endpoint.tool_keys.fetches == 3
    ask_token(platform, assertion(now=later))  # the new key: fine
    launches(tool, platform)


def test_launches_keep_validating_when_the_platform_rotates_its_keys(tool, platform):
    launches(tool, platform)
    fetched = platform.jwks_fetches
    platform.rotate_key(keep_old=False)  # a kid the tool has not seen: it refetches the JWKS once
    launches(tool, platform)
    launches(tool, platform)
    assert platform.jwks_fetches == fetched + 1


def test_replayed_or_misaddressed_assertions_are_refused(tool, platform, endpoint):
    from lti_xblock.views import tool_keys

    now = time.time()
    once = build_client_assertion(tool_keys, platform.client_id, platform.token_url, now)
    ask_token(platform, once)
    for bad in (
        once,  # the same jti again
        build_client_assertion(tool_keys, platform.client_id, platform.issuer + "/other", now),
        build_client_assertion(tool_keys, "someone-else", platform.token_url, now),
        build_client_assertion(tool_keys, platform.client_id, platform.token_url, now - 3600),  # expired
    ):
        with pytest.raises(Exception, match="token_request_refused"):
            ask_token(platform, bad)
    assert endpoint.log == ["ok", *["invalid_client"] * 4]


def run(command: str, *args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_tables_hold_no_private_key_and_no_secret(browser, tool):
    from lti_xblock.views import store

    published(browser, tool)  # the first key is made
    pems = list(m.LtiToolKey.objects.values_list("private_pem", flat=True))
    secrets = list(m.LtiConsumer.objects.values_list("secret", flat=True))
    assert pems and all(p.startswith(PREFIX) and "PRIVATE KEY" not in p for p in pems)
    assert secrets and all(s.startswith(PREFIX) and tool.consumer.secret not in s for s in secrets)
    assert store.get_consumer(tool.consumer.key) == tool.consumer


def test_a_wrong_encryption_key_is_a_reason_code_never_a_traceback(browser, tool, monkeypatch, settings):
    from lti_xblock.views import store

    published(browser, tool)
    monkeypatch.setattr(store, "sealer", FernetSealer([Fernet.generate_key()]))
    response = browser.get(tool.details.lti13_jwks_url)
    assert (response.status_code, response.json()) == (500, {"error": "store_key_mismatch"})
    assert "Traceback" not in response.text and "PRIVATE" not in response.text
    settings.LTI_PUBLISH = {**settings.LTI_PUBLISH, "ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    with pytest.raises(CommandError) as caught:
        run("lti_keys", "list")  # the admin's command: one line with the reason
    assert "store_key_mismatch" in str(caught.value) and "\n" not in str(caught.value)


def test_encryption_keys_come_from_settings_and_secret_key_fallbacks_still_open(transactional_db, settings):
    from lti_xblock.store import DjangoStore

    settings.SECRET_KEY = "the-old-secret-key-of-this-site-0123456789"
    DjangoStore().save_consumer(Consumer("k", "s3cret-value"))
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-0123456789", [settings.SECRET_KEY]
    assert DjangoStore().get_consumer("k") == Consumer("k", "s3cret-value")
    configured = Fernet.generate_key().decode()
    settings.LTI_PUBLISH = {
        "ENCRYPTION_KEYS": [configured, derive_fernet_key("the-old-secret-key-of-this-site-0123456789")]
    }
    assert DjangoStore().get_consumer("k") == Consumer("k", "s3cret-value")
    DjangoStore().save_consumer(Consumer("k", "s3cret-value"))
    settings.LTI_PUBLISH = {"ENCRYPTION_KEYS": [configured]}
    assert DjangoStore().get_consumer("k") == Consumer("k", "s3cret-value")
    settings.LTI_PUBLISH = {}
    with pytest.raises(LtiError) as caught:
        DjangoStore().get_consumer("k")  # the derived key of SECRET_KEY does not open it
    assert caught.value.reason == "store_key_mismatch" and "s3cret" not in str(caught.value)


def test_hub_store_is_encrypted_with_jupyterhub_crypt_key(monkeypatch, caplog):
    import sqlalchemy

    from jupyter_lti.lti13 import LTI13Authenticator

    hub_keys = [Fernet.generate_key().decode(), bytes(range(32)).hex()]
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", ";".join(hub_keys))
    authenticator = LTI13Authenticator(store_url="sqlite://")
    assert authenticator.store_encryption_keys == hub_keys
    authenticator.store.save_consumer(Consumer("hub-key", "hub-secret-0123456789"))
    with authenticator.store.engine.connect() as connection:
        (stored,) = connection.execute(sqlalchemy.text("SELECT secret FROM lti_publish_consumers")).scalars()
    assert stored.startswith(PREFIX) and "hub-secret" not in stored
    assert authenticator.store.get_consumer("hub-key") == Consumer("hub-key", "hub-secret-0123456789")

    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY")
    plain = LTI13Authenticator(store_url="sqlite://")
    with caplog.at_level("WARNING"):
        assert plain.store.sealer is None
    assert [r.message for r in caplog.records].count(
        "LTI: no store_encryption_keys (nor JUPYTERHUB_CRYPT_KEY): the tool's private keys and consumer secrets "
        "are stored unencrypted"
    ) == 1
    with pytest.raises(Exception, match="store_encryption_keys: an encryption key must be 32 bytes"):
        LTI13Authenticator(store_encryption_keys=["not-a-key"])
