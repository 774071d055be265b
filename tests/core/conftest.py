"""Shared fixtures for the plain-data tests of lti_core.

The platform side is the project's platform peer, `lti_peer`, built with other code than the tool's:
its keys, its Moodle-shaped claims and its tokens (pyjwt, RSA keys made by ``cryptography``; lti_core
verifies with joserfc); LTI 1.1 launches are signed with oauthlib's client. Here the platform's key set
URL is served in memory (the platform is PlatformKeyCache's transport) and time is a fake clock passed
as ``now=``; nothing sleeps and nothing listens on a socket.

Helpers are reached through fixtures (never imported from this file), so the tests run the same whether
pytest names this package ``core`` or ``tests.core``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from lti_core.errors import LtiError
from lti_core.http import HttpRequest, HttpResponse
from lti_core.lti13.jwks import PlatformKeyCache
from lti_core.lti13.launch import LaunchValidator
from lti_core.lti13.login import OidcLogin
from lti_core.memory import MemoryStore
from lti_core.types import Deployment, OidcState, Registration
from lti_peer import tokens
from lti_peer.claims import ADMIN, AGS_LINEITEM, CLAIM_ALIASES, MoodleActivity, launch_claims, login_initiation_params
from lti_peer.keys import PlatformKey, pool_key

START = 1_760_000_000  # the fake clock's first reading (whole seconds, like a platform's iat)

#: The launch the core tests' platform sends: the site administrator, as the course's teacher, opens
#: the tool's "intro" content; the tool type (id 2) offers line item management only.
ADMIN_LAUNCH = MoodleActivity(custom={"content_id": "intro"}, type_id="2", ags_scopes=(AGS_LINEITEM,))


class Clock:
    """A settable ``now``: ``clock()`` reads it, ``clock.advance(s)`` moves it."""

    def __init__(self, start: float = START) -> None:
        self.t = float(start)

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


_WRITE_METHODS = (
    "save_registration",
    "save_consumer",
    "consume_nonce",
    "save_state",
    "delete_state",
    "purge_expired",
    "save_tool_key",
    "set_tool_key_active",
    "save_user_link",
)


class RecordingStore(MemoryStore):
    """The reference MemoryStore, recording every call that may write: ``writes`` is [(method, args)]."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, tuple[Any, ...]]] = []


def _recorded(name: str) -> Callable[..., Any]:
    original = getattr(MemoryStore, name)

    def method(self: RecordingStore, *args: Any) -> Any:
        self.writes.append((name, args))
        return original(self, *args)

    method.__name__ = name
    return method


for _name in _WRITE_METHODS:
    setattr(RecordingStore, _name, _recorded(_name))


@dataclass
class Platform:
    """A Moodle 4.x LTI 1.3 platform: its registration data, the key set it serves, the tokens it signs."""

    clock: Clock
    key: PlatformKey
    issuer: str = "https://moodle.example"
    client_id: str = "q4Hn0zXbT2kW8eA"
    deployment_id: str = "2"
    #: Keys the key set URL serves; ``key`` signs by default.
    published: list[PlatformKey] = field(default_factory=list)
    cache_control: str = "max-age=3600"
    #: Set to an exception to make the next fetches fail with it, or to an HttpResponse to serve that instead.
    failure: BaseException | HttpResponse | None = None
    fetches: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.published:
            self.published = [self.key]

    @property
    def auth_url(self) -> str:
        return self.issuer + "/mod/lti/auth.php"

    @property
    def token_url(self) -> str:
        return self.issuer + "/mod/lti/token.php"

    @property
    def jwks_url(self) -> str:
        return self.issuer + "/mod/lti/certs.php"

    def registration(self, **changes: Any) -> Registration:
        values: dict[str, Any] = {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "auth_login_url": self.auth_url,
            "auth_token_url": self.token_url,
            "key_set_url": self.jwks_url,
            "deployments": (Deployment(self.deployment_id, "Moodle tool type 2"),),
            "name": "Moodle test site",
        }
        values.update(changes)
        return Registration(**values)

    # -- the key set URL ----------------------------------------------------------------------

    def jwks_body(self) -> bytes:
        return json.dumps({"keys": [k.jwk for k in self.published]}).encode()

    def send(self, request: HttpRequest) -> HttpResponse:
        """What an HTTP GET of the key set URL returns: the platform is PlatformKeyCache's ``Transport``."""
        self.fetches.append(request.url)
        if isinstance(self.failure, BaseException):
            raise self.failure
        if isinstance(self.failure, HttpResponse):
            return self.failure
        assert request.url == self.jwks_url, f"fetched {request.url}, not the key set URL"
        assert (request.method, request.header("Accept")) == ("GET", "application/json")
        return HttpResponse(
            200, (("Content-Type", "application/json"), ("Cache-Control", self.cache_control)), self.jwks_body()
        )

    # -- id_tokens ----------------------------------------------------------------------------

    def claims(self, state: OidcState, *, drop: Iterable[str] = (), **overrides: Any) -> dict[str, Any]:
        """The claims of a Moodle 4.x resource link launch (mod/lti/locallib.php) for the site admin as teacher.

        ``overrides`` replace claims and ``drop`` removes them (short names from CLAIM_ALIASES or claim names).
        """
        body = launch_claims(
            issuer=self.issuer,
            client_id=self.client_id,
            deployment_id=self.deployment_id,
            nonce=state.nonce,
            iat=int(self.clock()),
            target_link_uri=state.target_link_uri,
            user=ADMIN,
            activity=ADMIN_LAUNCH,
        )
        for name, value in overrides.items():
            body[CLAIM_ALIASES.get(name, name)] = value
        for name in drop:
            body.pop(CLAIM_ALIASES.get(name, name), None)
        return body

    def sign(
        self,
        body: dict[str, Any],
        *,
        key: PlatformKey | None = None,
        kid: str | None = None,
        no_kid: bool = False,
        algorithm: str = "RS256",
    ) -> str:
        """``body`` signed with pyjwt; ``kid`` defaults to the signing key's, ``no_kid`` leaves it out."""
        key = key or self.key
        return tokens.sign(body, key.private, kid=None if no_kid else (key.kid if kid is None else kid), alg=algorithm)

    def token(
        self,
        state: OidcState,
        *,
        key: PlatformKey | None = None,
        kid: str | None = None,
        no_kid: bool = False,
        drop: Iterable[str] = (),
        **overrides: Any,
    ) -> str:
        return self.sign(self.claims(state, drop=drop, **overrides), key=key, kid=kid, no_kid=no_kid)


@dataclass(frozen=True)
class Tool:
    """The tool's own addresses."""

    base_url: str = "https://tool.example/lti_publish"

    @property
    def launch_url(self) -> str:
        return self.base_url + "/lti13/launch"

    @property
    def content_url(self) -> str:
        return self.base_url + "/content/block-v1:edX+Demo+2024+type@html+block@intro/"


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    """Three RSA keys of lti_peer's pool, made once per session (key generation is the slow part)."""
    return [pool_key(i) for i in range(3)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tool() -> Tool:
    return Tool()


@pytest.fixture
def platform(clock: Clock, rsa_keys: list[rsa.RSAPrivateKey]) -> Platform:
    return Platform(clock, PlatformKey("moodle-key-1", rsa_keys[0]))


@pytest.fixture
def rogue_key(rsa_keys: list[rsa.RSAPrivateKey]) -> PlatformKey:
    """A key the platform never published, under the platform's own kid."""
    return PlatformKey("moodle-key-1", rsa_keys[1])


@pytest.fixture
def store(platform: Platform) -> RecordingStore:
    """A MemoryStore that knows the platform; ``writes`` starts empty."""
    store = RecordingStore()
    store.save_registration(platform.registration())
    store.writes.clear()
    return store


@pytest.fixture
def key_cache(platform: Platform, clock: Clock) -> PlatformKeyCache:
    return PlatformKeyCache(platform, now=clock)


@pytest.fixture
def validator(store: RecordingStore, key_cache: PlatformKeyCache, tool: Tool, clock: Clock) -> LaunchValidator:
    return LaunchValidator(store, key_cache, tool_base_urls=[tool.base_url], redirect_uri=tool.launch_url, now=clock)


@pytest.fixture
def oidc_login(store: RecordingStore, tool: Tool, clock: Clock) -> OidcLogin:
    return OidcLogin(store, tool_base_urls=[tool.base_url], redirect_uri=tool.launch_url, now=clock)


@pytest.fixture
def login_params(platform: Platform, tool: Tool) -> dict[str, str]:
    """The form Moodle 4.x POSTs to the tool's login initiation URL (mod/lti/auth.php's counterpart)."""
    return login_initiation_params(
        issuer=platform.issuer,
        target_link_uri=tool.content_url,
        login_hint="2",
        message_hint='{"cmid":7,"launchid":"ltilaunch1_1234567890"}',
        client_id=platform.client_id,
        deployment_id=platform.deployment_id,
    )


@pytest.fixture
def state(oidc_login: OidcLogin, login_params: dict[str, str], store: RecordingStore) -> OidcState:
    """The server-side state of a login initiation that just happened; ``store.writes`` is reset after it."""
    redirect = oidc_login.begin(login_params)
    store.writes.clear()
    return redirect.state


@pytest.fixture
def refused() -> Callable[[str, int], Any]:
    """``with refused("kid_missing", 401): ...`` expects an LtiError with exactly that reason and status."""

    @contextmanager
    def expect(reason: str, status: int) -> Iterator[list[LtiError]]:
        caught: list[LtiError] = []
        with pytest.raises(LtiError) as info:
            yield caught
        caught.append(info.value)
        assert (info.value.reason, info.value.status) == (reason, status), info.value

    return expect
