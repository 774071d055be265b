"""The in-memory Store: lti_core's store algorithms (``RecordStore``) on tables in dicts, for tests
and benchmarks, and the reference the hosts' stores are checked against."""

from __future__ import annotations

from lti_core.records import MemoryTables, RecordStore


class MemoryStore(RecordStore):
    """Every Store Protocol in memory; one lock makes each call atomic (consume_nonce must be).

    Cached like the hub's store: rows are in memory, but a ``Registration`` is rebuilt from its rows at
    every read, which costs a launch more than the cache does.
    """

    def __init__(self, *, cache_size: int = RecordStore.CACHE_SIZE) -> None:
        super().__init__(MemoryTables(), cache_size=cache_size)
