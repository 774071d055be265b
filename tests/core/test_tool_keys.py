"""ToolKeySet: the tool's own keys, generated once, rotated without breaking platforms, published public-only.

Signatures made with the tool's key (joserfc, as lti_core signs) are verified with pyjwt against the
published JWKS, as a platform would.
"""

from __future__ import annotations

import base64
import hashlib
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey

from lti_core.lti13 import tool_keys
from lti_core.lti13.tool_keys import ToolKeySet, generate_tool_key
from lti_core.memory import MemoryStore
from lti_core.types import ToolKey

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture(scope="module")
def made_keys() -> list[ToolKey]:
    """Three real tool keys, generated once for the module."""
    return [generate_tool_key() for _ in range(3)]


@pytest.fixture
def fast_keygen(monkeypatch, made_keys):
    """``generate_tool_key`` hands out the pre-made keys in order and counts calls."""
    calls: list[ToolKey] = []

    def generate(bits: int = 2048) -> ToolKey:
        key = made_keys[len(calls)]
        calls.append(key)
        return key

    monkeypatch.setattr(tool_keys, "generate_tool_key", generate)
    return calls


@pytest.fixture
def keyset(store, fast_keygen) -> ToolKeySet:
    return ToolKeySet(store)


def _b64(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


# -- one key ----------------------------------------------------------------------------------


def test_generated_key_is_consistent_and_its_kid_is_the_rfc7638_thumbprint(made_keys):
    key = made_keys[0]
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    numbers = private.public_key().public_numbers()
    assert private.key_size == 2048
    assert key.public_jwk == {
        "kty": "RSA",
        "n": _b64(numbers.n),
        "e": _b64(numbers.e),
        "kid": key.kid,
        "alg": "RS256",
        "use": "sig",
    }
    canonical = json.dumps({"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}, separators=(",", ":"))
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    assert key.kid == thumbprint
    assert key.active is True
    assert len({k.kid for k in made_keys}) == 3


def test_ensure_key_generates_once(keyset, store, fast_keygen):
    first = keyset.ensure_key()
    second = keyset.ensure_key()
    assert first == second
    assert len(fast_keygen) == 1
    assert [k.kid for k in store.list_tool_keys()] == [first.kid]
    assert [name for name, _ in store.writes] == ["save_tool_key"]


def test_ensure_key_uses_a_stored_key(store, fast_keygen, made_keys):
    store.save_tool_key(made_keys[2])
    assert ToolKeySet(store).ensure_key().kid == made_keys[2].kid
    assert fast_keygen == []


def test_jwks_publishes_public_members_only(keyset):
    key = keyset.ensure_key()
    jwks = keyset.jwks()
    assert jwks == {"keys": [key.public_jwk]}
    for published in jwks["keys"]:
        assert set(published) == {"kty", "n", "e", "kid", "alg", "use"}
        assert not set(published) & PRIVATE_MEMBERS


def test_jwks_never_leaks_private_members_a_store_kept_by_mistake(store, made_keys):
    key = made_keys[0]
    full = RSAKey.import_key(key.private_pem).as_dict(private=True)
    assert {"d", "p", "q", "dp", "dq", "qi"} <= set(full)
    store.save_tool_key(ToolKey(key.kid, key.private_pem, {**full, **key.public_jwk}))
    (published,) = ToolKeySet(store).jwks()["keys"]
    assert not set(published) & PRIVATE_MEMBERS
    assert published == key.public_jwk


def test_empty_store_publishes_an_empty_key_set(store):
    assert ToolKeySet(store).jwks() == {"keys": []}


# -- rotation ---------------------------------------------------------------------------------


def test_rotation_keeps_both_keys_published_and_signs_with_the_new_one(keyset):
    old = keyset.ensure_key()
    new = keyset.rotate()
    assert new.kid != old.kid
    assert [k["kid"] for k in keyset.jwks()["keys"]] == [new.kid, old.kid]  # newest first
    assert keyset.ensure_key().kid == new.kid
    assert keyset.signing_key().kid == new.kid


def test_retire_removes_one_key(keyset, store, refused):
    old = keyset.ensure_key()
    new = keyset.rotate()
    keyset.retire(old.kid)
    assert [k["kid"] for k in keyset.jwks()["keys"]] == [new.kid]
    assert {k.kid: k.active for k in store.list_tool_keys()} == {new.kid: True, old.kid: False}
    with refused("unknown_tool_key", 400):
        keyset.retire(old.kid)  # already retired
    with refused("unknown_tool_key", 400):
        keyset.retire("no-such-kid")


def test_retiring_the_last_key_makes_ensure_key_generate_a_new_one(keyset, fast_keygen):
    old = keyset.ensure_key()
    keyset.retire(old.kid)
    assert keyset.jwks() == {"keys": []}
    new = keyset.ensure_key()
    assert new.kid != old.kid
    assert len(fast_keygen) == 2


# -- signing ----------------------------------------------------------------------------------


def test_signing_key_is_loaded_once_per_kid(keyset, monkeypatch):
    imports: list[object] = []
    original = RSAKey.import_key

    def counting_import(*args, **kwargs):
        imports.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(RSAKey, "import_key", counting_import)
    first = keyset.signing_key()
    assert keyset.signing_key() is first
    assert keyset.signing_key() is first
    assert len(imports) == 1
    assert first.is_private

    keyset.rotate()
    second = keyset.signing_key()
    assert second is not first
    assert keyset.signing_key() is second
    assert len(imports) == 2


def test_retired_key_is_dropped_from_the_loaded_keys(keyset):
    old = keyset.ensure_key()
    loaded_old = keyset.signing_key()
    keyset.rotate()
    new_loaded = keyset.signing_key()
    keyset.retire(keyset.ensure_key().kid)  # retire the new one: the old is the newest active again
    assert keyset.signing_key() is loaded_old
    assert keyset.signing_key().kid == old.kid
    assert new_loaded.kid != old.kid


def test_token_signed_with_the_signing_key_verifies_with_pyjwt_against_the_jwks(keyset):
    keyset.ensure_key()
    keyset.rotate()  # two keys published: pyjwt must pick the right one by kid
    key = keyset.signing_key()
    claims = {
        "iss": "tool-client",
        "sub": "tool-client",
        "aud": "https://moodle.example/mod/lti/token.php",
        "iat": 1_760_000_000,
        "exp": 1_760_000_300,
        "jti": "j-1",
    }
    token = jose_jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)

    jwks = jwt.PyJWKSet.from_dict(json.loads(json.dumps(keyset.jwks())))  # as received over HTTP
    kid = jwt.get_unverified_header(token)["kid"]
    public = next(k for k in jwks.keys if k.key_id == kid)
    decoded = jwt.decode(
        token,
        public.key,
        algorithms=["RS256"],
        audience=claims["aud"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert decoded == claims

    # ...and not against the other published key.
    other = next(k for k in jwks.keys if k.key_id != kid)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            token,
            other.key,
            algorithms=["RS256"],
            audience=claims["aud"],
            options={"verify_exp": False, "verify_iat": False},
        )


def test_store_keeps_keys_newest_first():
    store = MemoryStore()
    for kid in ("a", "b", "c"):
        store.save_tool_key(ToolKey(kid, "pem", {}))
    assert [k.kid for k in store.list_tool_keys()] == ["c", "b", "a"]
