"""Secrets at rest: the tool's private keys and LTI 1.1 consumer secrets are sealed in the store's
rows (read here straight from the tables), opened on read, and a wrong key fails with a reason code."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from lti_core.errors import LtiError
from lti_core.lti13.tool_keys import ToolKeySet, generate_tool_key
from lti_core.records import MemoryTables, RecordStore
from lti_core.sealing import PREFIX, FernetSealer, StoreKeyMismatch, derive_fernet_key, fernet_key
from lti_core.types import Consumer, ToolKey

KEY_A, KEY_B = Fernet.generate_key(), Fernet.generate_key()
SECRET = "moodle-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def tool_key() -> ToolKey:
    return generate_tool_key(now=1_760_000_000)


def stored(tables: MemoryTables, table: str) -> list[dict[str, object]]:
    return tables.rows(table).select({})


def test_sealed_values_carry_the_prefix_and_open_again():
    sealer = FernetSealer([KEY_A])
    sealed = sealer.seal("text é")
    assert sealed.startswith(PREFIX) and "text" not in sealed
    assert sealer.open(sealed) == "text é"
    assert sealer.seal("text é") != sealed  # a fresh IV each time


def test_first_key_seals_every_key_opens():
    old = FernetSealer([KEY_A]).seal("old")
    rotated = FernetSealer([KEY_B, KEY_A])
    assert rotated.open(old) == "old"
    new = rotated.seal("new")
    assert FernetSealer([KEY_B]).open(new) == "new"
    with pytest.raises(StoreKeyMismatch):
        FernetSealer([KEY_A]).open(new)


def test_a_value_written_before_encryption_opens_as_itself():
    assert FernetSealer([KEY_A]).open("plain-secret") == "plain-secret"


def test_wrong_key_is_store_key_mismatch_with_no_value_in_the_message():
    sealed = FernetSealer([KEY_A]).seal(SECRET)
    with pytest.raises(LtiError) as caught:
        FernetSealer([KEY_B]).open(sealed)
    assert caught.value.reason == "store_key_mismatch" and caught.value.status == 500
    assert SECRET not in str(caught.value) and sealed not in str(caught.value)
    with pytest.raises(LtiError, match="store_key_mismatch"):
        FernetSealer([KEY_A]).open(PREFIX + "garbage")


def test_keys_in_the_spellings_jupyterhub_accepts():
    raw = bytes(range(32))
    fernet = fernet_key(raw)
    assert fernet_key(raw.hex()) == fernet == fernet_key(fernet.decode()) == fernet_key(fernet)
    for bad in ("", "short", "x" * 64, raw.hex()[:-2]):
        with pytest.raises(ValueError) as caught:
            fernet_key(bad)
        assert bad not in str(caught.value) or not bad
    FernetSealer([raw.hex()]).open(FernetSealer([fernet]).seal("same key"))


def test_derived_key_is_stable_and_depends_on_the_secret():
    assert derive_fernet_key("django-secret") == derive_fernet_key(b"django-secret")
    assert derive_fernet_key("django-secret") != derive_fernet_key("other-secret")
    FernetSealer([derive_fernet_key("django-secret")])  # a valid Fernet key


def test_store_seals_private_keys_and_secrets_in_its_rows(tool_key):
    tables = MemoryTables()
    store = RecordStore(tables, sealer=FernetSealer([KEY_A]))
    store.save_tool_key(tool_key)
    store.save_consumer(Consumer("moodle", SECRET, "Moodle"))
    (key_row,) = stored(tables, "tool_keys")
    (consumer_row,) = stored(tables, "consumers")
    assert str(key_row["private_pem"]).startswith(PREFIX) and "PRIVATE KEY" not in str(key_row)
    assert str(consumer_row["secret"]).startswith(PREFIX) and SECRET not in str(consumer_row)
    assert store.list_tool_keys() == [tool_key]
    assert store.get_consumer("moodle") == Consumer("moodle", SECRET, "Moodle")
    assert store.list_consumers() == [Consumer("moodle", SECRET, "Moodle")]
    # The public half is what it is: published anyway.
    assert key_row["public_jwk"] == tool_key.public_jwk


def test_values_written_before_encryption_are_read_and_sealed_at_their_next_save(tool_key):
    tables = MemoryTables()
    RecordStore(tables).save_consumer(Consumer("moodle", SECRET))
    RecordStore(tables).save_tool_key(tool_key)
    assert stored(tables, "consumers")[0]["secret"] == SECRET  # no sealer: as before
    store = RecordStore(tables, sealer=FernetSealer([KEY_A]))
    assert store.get_consumer("moodle") == Consumer("moodle", SECRET)
    keys = ToolKeySet(store)
    assert keys.signing_key().kid == tool_key.kid
    keys.rotate(overlap=3600)  # saves the old key again, with its retirement: sealed now
    assert all(str(row["private_pem"]).startswith(PREFIX) for row in stored(tables, "tool_keys"))
    store.save_consumer(Consumer("moodle", SECRET))
    assert str(stored(tables, "consumers")[0]["secret"]).startswith(PREFIX)


def test_a_store_opened_with_the_wrong_key_or_none_fails_clearly(tool_key, refused):
    tables = MemoryTables()
    RecordStore(tables, sealer=FernetSealer([KEY_A])).save_tool_key(tool_key)
    RecordStore(tables, sealer=FernetSealer([KEY_A])).save_consumer(Consumer("moodle", SECRET))
    for store in (RecordStore(tables, sealer=FernetSealer([KEY_B])), RecordStore(tables)):
        with refused("store_key_mismatch", 500):
            ToolKeySet(store).jwks()
        with refused("store_key_mismatch", 500):
            store.get_consumer("moodle")
