"""Each implementation under test, driven the way its host drives it for one launch.

Every runner has ``prepare(item)`` (untimed: what the login step or the web framework did before the
launch reached the validator: saved state, session, cookies, parsed request) and ``call(prepared)``
(timed: one launch validation, returning what the host goes on with). Each runner keeps its own
state/nonce store, so all runners validate the very same tokens, and none sees a token twice.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl

from bench import fixtures as fx

# -- LTI 1.3 ------------------------------------------------------------------------------------------


class LtiCore13:
    """lti_core's LaunchValidator with the in-memory store and a key cache filled by one (counted) fetch."""

    name = "lti_core LaunchValidator"

    def __init__(self, jwks: bytes) -> None:
        from lti_core.http import HttpRequest, HttpResponse
        from lti_core.lti13.jwks import PlatformKeyCache
        from lti_core.lti13.launch import LaunchValidator
        from lti_core.memory import MemoryStore
        from lti_core.types import Deployment, Registration

        self.fetches = 0

        peer = self

        class Platform:  # the cache's Transport: serves the key set, counting requests
            def send(self, request: HttpRequest) -> HttpResponse:
                peer.fetches += 1
                return HttpResponse(status=200, headers=(("Cache-Control", "max-age=300"),), body=jwks)

        self.store = MemoryStore()
        self.store.save_registration(
            Registration(
                issuer=fx.ISSUER,
                client_id=fx.CLIENT_ID,
                auth_login_url=fx.AUTH_LOGIN_URL,
                auth_token_url=fx.AUTH_TOKEN_URL,
                key_set_url=fx.KEY_SET_URL,
                deployments=(Deployment(fx.DEPLOYMENT_ID),),
            )
        )
        self.keys = PlatformKeyCache(Platform())
        self.validator = LaunchValidator(self.store, self.keys, tool_base_urls=fx.TOOL_BASE_URL)

    def prepare(self, launch: fx.SignedLaunch) -> tuple[str, str, Any]:
        from lti_core.types import OidcState

        # What the login initiation saved; the state cookie comes back with the launch.
        self.store.save_state(
            OidcState(launch.state, launch.nonce, fx.ISSUER, fx.CLIENT_ID, fx.TARGET_LINK_URI, time.time() + 600)
        )
        from lti_core.lti13.binding import BrowserEvidence

        return launch.id_token, launch.state, BrowserEvidence(cookie_states=frozenset({launch.state}))

    def call(self, prepared: tuple[str, str, Any]) -> Any:
        id_token, state, browser = prepared
        return self.validator.validate(id_token, state, browser)

    @staticmethod
    def user(result: Any) -> str:
        return result.platform_user_id


class _PyltiRequest:
    """pylti1p3's Request: POST params, cookies and the server-side session of one browser."""

    def __init__(self, params: dict[str, str], cookies: dict[str, str], session: dict[str, Any]) -> None:
        self.params = params
        self.cookies = cookies
        self._session = session

    @property
    def session(self) -> dict[str, Any]:
        return self._session

    def is_secure(self) -> bool:
        return False

    def get_param(self, key: str) -> str:
        return self.params.get(key, "")

    def get_cookie(self, name: str) -> str | None:
        return self.cookies.get(name)


class Pylti1p3:
    """pylti1p3 2.0 MessageLaunch.validate(), constructed per launch as its Flask/Django adapters do.

    The JWKS is given as ``key_set`` in ToolConfDict, so no HTTP fetch happens; per launch the library
    still converts the JWK to PEM (jwcrypto) and pyjwt loads that PEM, which is its real cost.
    """

    name = "pylti1p3 MessageLaunch.validate()"

    def __init__(self, jwks: bytes) -> None:
        from pylti1p3.cookie import CookieService
        from pylti1p3.message_launch import MessageLaunch
        from pylti1p3.session import SessionService
        from pylti1p3.tool_config import ToolConfDict

        class BenchCookieService(CookieService):
            def __init__(self, request: _PyltiRequest) -> None:
                self._request = request

            def get_cookie(self, name: str) -> str | None:
                return self._request.get_cookie(self._cookie_prefix + "-" + name)

            def set_cookie(self, name: str, value: str | int, exp: int | None = 3600) -> None:
                pass

        class BenchMessageLaunch(MessageLaunch):
            def _get_request_param(self, key: str) -> str:
                return self._request.get_param(key)

        self._cookie_service = BenchCookieService
        self._session_service = SessionService
        self._launch_cls = BenchMessageLaunch
        self.tool_conf = ToolConfDict(
            {
                fx.ISSUER: {
                    "default": True,
                    "client_id": fx.CLIENT_ID,
                    "auth_login_url": fx.AUTH_LOGIN_URL,
                    "auth_token_url": fx.AUTH_TOKEN_URL,
                    "key_set_url": fx.KEY_SET_URL,
                    "key_set": json.loads(jwks),
                    "deployment_ids": [fx.DEPLOYMENT_ID],
                }
            }
        )

    def prepare(self, launch: fx.SignedLaunch) -> _PyltiRequest:
        # OIDCLogin saved the nonce in the session and the state in a cookie (lti1p3-<state>).
        return _PyltiRequest(
            params={"id_token": launch.id_token, "state": launch.state},
            cookies={"lti1p3-" + launch.state: launch.state},
            session={"lti1p3-nonce-" + launch.nonce: True},
        )

    def call(self, request: _PyltiRequest) -> Any:
        launch = self._launch_cls(
            request,
            self.tool_conf,
            session_service=self._session_service(request),
            cookie_service=self._cookie_service(request),
        )
        launch.validate()
        return launch

    @staticmethod
    def user(result: Any) -> str:
        return result.get_launch_data()["sub"]


class LtiAuthenticator13:
    """jupyterhub-ltiauthenticator 1.6: what LTI13CallbackHandler.decode_and_validate_launch_request does.

    Per launch it builds an LTI13LaunchValidator, checks the auth response args and the state cookie,
    then ``verify_and_decode_jwt`` makes a *new* ``jwt.PyJWKClient(jwks_endpoint)`` and so fetches the
    JWKS over HTTP (blocking urllib) on every launch, then pyjwt decodes; then ``validate_id_token``,
    ``validate_azp_claim`` and the nonce check against the signed nonce-state cookie. Tornado's own
    request parsing and JupyterHub's ``login_user`` are left out, as the host's work is for lti_core.

    With ``cached_jwks=True`` the same steps run, but every ``PyJWKClient`` is one shared client whose
    JWK-set cache (which holds the parsed keys) is warm: what a launch would cost if the authenticator
    kept its client between launches. The main row is the authenticator as shipped.
    """

    cookie_secret = b"3f1c0e5a9b7d4e2f8a6c1b0d9e7f5a3c2b1d0e9f8a7c6b5d4e3f2a1b0c9d8e7f"

    def __init__(self, jwks_url: str, cached_jwks: bool = False) -> None:
        import jwt
        from ltiauthenticator.lti13 import handlers
        from ltiauthenticator.lti13.validator import LTI13LaunchValidator
        from ltiauthenticator.utils import convert_request_to_dict
        from tornado.web import HTTPError, create_signed_value, decode_signed_value

        self.name = (
            "ltiauthenticator, PyJWKClient reused (no GET)" if cached_jwks else "ltiauthenticator LTI13LaunchValidator"
        )
        self.jwks_url = jwks_url
        self.cached_jwks = cached_jwks
        self._validator_cls = LTI13LaunchValidator
        self._to_dict = convert_request_to_dict
        self._sign = create_signed_value
        self._unsign = decode_signed_value
        self._http_error = HTTPError
        self._get_nonce = handlers.get_nonce
        self._state_cookie = handlers.STATE_COOKIE_NAME
        self._nonce_cookie = handlers.NONCE_STATE_COOKIE_NAME
        self.client_id = {fx.CLIENT_ID}  # the authenticator's client_id trait is a Set
        self._shared_client = jwt.PyJWKClient(jwks_url)
        self._shared_client.get_jwk_set()  # warm the cache once
        self._patch = mock.patch.object(jwt, "PyJWKClient", lambda *args, **kwargs: self._shared_client)

    def __enter__(self) -> LtiAuthenticator13:
        if self.cached_jwks:
            self._patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cached_jwks:
            self._patch.stop()

    def prepare(self, launch: fx.SignedLaunch) -> tuple[dict[str, list[bytes]], bytes, bytes]:
        # tornado's request.arguments, and the two signed cookies LTI13LoginInitHandler set.
        arguments = {"id_token": [launch.id_token.encode()], "state": [launch.state.encode()]}
        state_cookie = self._sign(self.cookie_secret, self._state_cookie, launch.state)
        nonce_cookie = self._sign(self.cookie_secret, self._nonce_cookie, launch.nonce_state)
        return arguments, state_cookie, nonce_cookie

    def call(self, prepared: tuple[dict[str, list[bytes]], bytes, bytes]) -> Any:
        arguments, state_cookie, nonce_cookie = prepared
        validator = self._validator_cls()
        args = self._to_dict(arguments)
        validator.validate_auth_response(args)
        # check_state: the signed state cookie must equal the state argument.
        cookie_state = (self._unsign(self.cookie_secret, self._state_cookie, state_cookie) or b"").decode()
        if not cookie_state or cookie_state != args["state"]:
            raise self._http_error(400, "OAuth state mismatch")
        id_token = validator.verify_and_decode_jwt(
            encoded_jwt=args.get("id_token"),
            issuer=fx.ISSUER,
            audience=self.client_id,
            jwks_endpoint=self.jwks_url,
            jwks_algorithms=["RS256"],
        )
        validator.validate_id_token(id_token)
        validator.validate_azp_claim(id_token, self.client_id)
        # check_nonce: the nonce is sha256 of the signed nonce-state cookie.
        nonce_state = (self._unsign(self.cookie_secret, self._nonce_cookie, nonce_cookie) or b"").decode()
        if not nonce_state or self._get_nonce(nonce_state) != id_token.get("nonce"):
            raise self._http_error(400, "OAuth nonce mismatch")
        return id_token

    @staticmethod
    def user(result: Any) -> str:
        return result["sub"]


# -- LTI 1.1 ------------------------------------------------------------------------------------------


class LtiCore11:
    """lti_core's Lti11LaunchVerifier; parsing the form body is timed too (oauthlib does it itself)."""

    name = "lti_core Lti11LaunchVerifier"

    def __init__(self) -> None:
        from lti_core.lti11.launch import Lti11LaunchVerifier
        from lti_core.memory import MemoryStore
        from lti_core.types import Consumer

        self.store = MemoryStore()
        self.store.save_consumer(Consumer(fx.CONSUMER_KEY, fx.CONSUMER_SECRET))
        self.verifier = Lti11LaunchVerifier(self.store)
        # The host hands over the form; headers only if this version of verify() takes them.
        self._takes_headers = "headers" in inspect.signature(self.verifier.verify).parameters

    def prepare(self, form: fx.SignedForm) -> fx.SignedForm:
        return form

    def call(self, form: fx.SignedForm) -> Any:
        params = parse_qsl(form.body, keep_blank_values=True)
        if self._takes_headers:
            return self.verifier.verify(method="POST", url=fx.LTI11_LAUNCH_URL, params=params, headers=form.headers)
        return self.verifier.verify(method="POST", url=fx.LTI11_LAUNCH_URL, params=params)

    @staticmethod
    def user(result: Any) -> str:
        return result.platform_user_id


class OauthlibSignatureOnly:
    """oauthlib's SignatureOnlyEndpoint with an in-memory RequestValidator (consumer, timestamp, nonce)."""

    name = "oauthlib SignatureOnlyEndpoint"

    def __init__(self) -> None:
        from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint

        consumers = {fx.CONSUMER_KEY: fx.CONSUMER_SECRET}
        seen: dict[tuple[str, str], int] = {}

        class MemoryValidator(RequestValidator):
            # LTI consumer keys and nonces do not follow oauthlib's default 20-30 alphanumerics.
            enforce_ssl = False
            client_key_length = (3, 100)
            nonce_length = (16, 100)
            safe_characters = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
            dummy_client = "dummy-consumer"

            def validate_client_key(self, client_key: str, request: Any) -> bool:
                return client_key in consumers

            def get_client_secret(self, client_key: str, request: Any) -> str:
                return consumers.get(client_key, "dummy-secret")

            def validate_timestamp_and_nonce(
                self, client_key: str, timestamp: str, nonce: str, request: Any, **kwargs: Any
            ) -> bool:
                ts = int(timestamp)
                if abs(time.time() - ts) > 300:
                    return False
                if (client_key, nonce) in seen:
                    return False
                seen[(client_key, nonce)] = ts
                return True

        self.endpoint = SignatureOnlyEndpoint(MemoryValidator())

    def prepare(self, form: fx.SignedForm) -> fx.SignedForm:
        return form

    def call(self, form: fx.SignedForm) -> Any:
        valid, request = self.endpoint.validate_request(fx.LTI11_LAUNCH_URL, "POST", form.body, form.headers)
        if not valid:
            raise ValueError("oauthlib refused the launch")
        return request

    @staticmethod
    def user(result: Any) -> str:
        return dict(result.decoded_body)["user_id"]


# -- the parts of lti_core's path, for "where the time goes" -----------------------------------------------


def bare_rsa_verify(public_jwk: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[Any], None]]:
    """cryptography's RSA PKCS#1 v1.5 SHA-256 verify alone, key loaded once, token split outside the clock."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    def b64int(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    key = rsa.RSAPublicNumbers(b64int(public_jwk["e"]), b64int(public_jwk["n"])).public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def prepare(token: str) -> tuple[bytes, bytes]:
        signing_input, _, sig = token.rpartition(".")
        return signing_input.encode(), base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))

    def call(prepared: tuple[bytes, bytes]) -> None:
        signing_input, sig = prepared
        key.verify(sig, signing_input, pkcs1, sha256)

    return prepare, call


def strict_decode_floor(public_jwk: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[Any], None]]:
    """The RSA verify plus lti_core's strict decoding of the same token (lti_core.lti13.jws: canonical
    base64url, JSON with unique member names, bounded depth, finite numbers), and nothing else: the
    least any launch can cost with the security issue's parsing in place, before a single claim is read."""
    from lti_core.lti13 import jws

    prepare_verify, verify = bare_rsa_verify(public_jwk)

    def call(token: str) -> None:
        parsed = jws.parse_compact(token)
        verify((parsed.signing_input, parsed.signature))
        jws.parse_json_object(parsed.payload)

    return (lambda token: token), call


def joserfc_decode(public_jwk: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[Any], None]]:
    """joserfc's jws.deserialize_compact + json.loads, the key imported once (as lti_core's cache holds it)."""
    from joserfc import jws
    from joserfc.jwk import RSAKey

    key = RSAKey.import_key({k: public_jwk[k] for k in ("kty", "n", "e", "kid")})
    algorithms = ["RS256"]

    def prepare(token: str) -> str:
        return token

    def call(token: str) -> None:
        json.loads(jws.deserialize_compact(token, key, algorithms=algorithms).payload)

    return prepare, call


def pyjwt_decode(public_jwk: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[Any], None]]:
    """PyJWT's jwt.decode alone, key loaded once: the floor under both pylti1p3 and ltiauthenticator."""
    import jwt

    key = jwt.PyJWK(dict(public_jwk)).key
    audience = fx.CLIENT_ID

    def prepare(token: str) -> str:
        return token

    def call(token: str) -> None:
        jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=fx.ISSUER)

    return prepare, call


def pyjwt_segment_checks(public_jwk: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[Any], None]]:
    """PyJWT's own base64url decoding of the three segments (recent PyJWT re-encodes each segment to
    check it is canonical, and tests every character against the alphabet in a Python loop)."""
    from jwt.api_jws import PyJWS

    decode = getattr(PyJWS, "_decode_base64url_segment", None)
    if decode is None:  # an older PyJWT: plain base64 decoding, which the other parts already cover
        raise LookupError("this PyJWT has no _decode_base64url_segment")

    def prepare(token: str) -> list[bytes]:
        return [segment.encode() for segment in token.split(".")]

    def call(segments: list[bytes]) -> None:
        for segment in segments:
            decode(segment, "segment")

    return prepare, call
