"""ToolKeySet: the tool's own keys, generated once, rotated without breaking platforms, published public-only.

Signatures made with the tool's key (joserfc, as lti_core signs) are verified with pyjwt against the
published JWKS, as a platform would.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import fields, replace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey

from lti_core.lti13 import tool_keys
from lti_core.lti13.tool_keys import DEFAULT_OVERLAP, ToolKeyInfo, ToolKeySet, generate_tool_key
from lti_core.memory import MemoryStore
from lti_core.types import ToolKey

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture(scope="module")
def made_keys() -> list[ToolKey]:
    """Three real tool keys, generated once for the module."""
    return [generate_tool_key(now=T + i) for i in range(3)]


@pytest.fixture
def fast_keygen(monkeypatch, made_keys):
    """``generate_tool_key`` hands out the pre-made keys in order and counts calls."""
    calls: list[ToolKey] = []

    def generate(bits: int = 2048, *, now: float | None = None) -> ToolKey:
        key = replace(made_keys[len(calls)], created_at=0.0 if now is None else now)
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


def test_the_last_key_is_never_retired(keyset, store, fast_keygen, refused):
    only = keyset.ensure_key()
    with refused("last_tool_key", 400):
        keyset.retire(only.kid)  # the tool would be left without a signing key
    assert [k["kid"] for k in keyset.jwks()["keys"]] == [only.kid]
    assert store.list_tool_keys()[0].active and len(fast_keygen) == 1


T = 1_760_000_000.0  # the tests' "now" (epoch seconds)
HOUR = 3600.0


def test_generated_key_carries_its_creation_time(made_keys):
    assert [key.created_at for key in made_keys] == [T, T + 1, T + 2]
    assert [key.retires_at for key in made_keys] == [0, 0, 0]


def test_rotation_keeps_older_keys_published_through_the_overlap_then_retire_due_drops_them(keyset, store):
    old = keyset.ensure_key(T)
    assert old.created_at == T and old.retires_at == 0
    new = keyset.rotate(T + 10, overlap=HOUR)
    assert new.created_at == T + 10
    kept = {k.kid: k for k in store.list_tool_keys()}
    assert kept[old.kid].retires_at == T + 10 + HOUR and kept[new.kid].retires_at == 0
    # During the overlap: both published, the new one signs.
    assert [k["kid"] for k in keyset.jwks(T + HOUR)["keys"]] == [new.kid, old.kid]
    assert keyset.signing_key(T + HOUR).kid == new.kid
    assert keyset.retire_due(T + HOUR) == []
    # Once it is over: the old key is out of the JWKS at once, and deactivated by retire_due.
    after = T + 10 + HOUR
    assert [k["kid"] for k in keyset.jwks(after)["keys"]] == [new.kid]
    assert keyset.retire_due(after) == [old.kid]
    assert {k.kid: k.active for k in store.list_tool_keys()} == {new.kid: True, old.kid: False}
    assert keyset.retire_due(after + HOUR) == []


def test_default_overlap_is_72_hours_and_an_earlier_retirement_stays(keyset, store):
    first = keyset.ensure_key(T)
    second = keyset.rotate(T)
    assert DEFAULT_OVERLAP == 72 * HOUR
    assert {k.kid: k.retires_at for k in store.list_tool_keys()} == {second.kid: 0, first.kid: T + 72 * HOUR}
    third = keyset.rotate(T + HOUR)
    retires = {k.kid: k.retires_at for k in store.list_tool_keys()}
    assert retires == {third.kid: 0, second.kid: T + 73 * HOUR, first.kid: T + 72 * HOUR}
    assert [k["kid"] for k in keyset.jwks(T + 72 * HOUR - 1)["keys"]] == [third.kid, second.kid, first.kid]
    assert [k["kid"] for k in keyset.jwks(T + 72 * HOUR)["keys"]] == [third.kid, second.kid]


def test_rotation_without_overlap_retires_older_keys_at_once(keyset, store):
    old = keyset.ensure_key(T)
    new = keyset.rotate(T, overlap=0)
    assert [k["kid"] for k in keyset.jwks(T)["keys"]] == [new.kid]
    assert {k.kid: k.active for k in store.list_tool_keys()} == {new.kid: True, old.kid: False}


def test_retire_due_keeps_a_key_to_sign_with(keyset, store, made_keys):
    store.save_tool_key(replace(made_keys[0], retires_at=T - 1))  # only due keys: e.g. one retired by hand
    store.save_tool_key(replace(made_keys[1], retires_at=T - 2))
    assert keyset.retire_due(T) == [made_keys[0].kid]
    assert [k.kid for k in store.list_tool_keys() if k.active] == [made_keys[1].kid]


def test_retiring_the_new_key_during_an_overlap_makes_the_old_one_sign_for_good(keyset, store):
    old = keyset.ensure_key(T)
    new = keyset.rotate(T, overlap=HOUR)
    keyset.retire(new.kid, T + 1)  # the new key leaked, say: back to the old one, which no longer leaves
    assert keyset.ensure_key(T + 10 * HOUR).kid == old.kid
    assert {k.kid: k.retires_at for k in store.list_tool_keys()}[old.kid] == 0
    assert keyset.retire_due(T + 10 * HOUR) == []


def test_list_shows_kids_times_and_states_never_the_private_key(keyset):
    assert keyset.list(T) == []
    old = keyset.ensure_key(T)
    new = keyset.rotate(T + 5, overlap=HOUR)
    assert keyset.list(T + 6) == [
        ToolKeyInfo(new.kid, T + 5, 0.0, "signing"),
        ToolKeyInfo(old.kid, T, T + 5 + HOUR, "published"),
    ]
    keyset.retire_due(T + 2 * HOUR)
    assert [(i.kid, i.state) for i in keyset.list(T + 2 * HOUR)] == [(new.kid, "signing"), (old.kid, "retired")]
    assert [f.name for f in fields(ToolKeyInfo)] == ["kid", "created_at", "retires_at", "state"]


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
