"""An in-memory Store: the reference implementation of the Store contract, for tests and benchmarks."""

from __future__ import annotations

import threading
from dataclasses import replace

from lti_core.types import Consumer, LaunchContext, OidcState, Registration, ToolKey, UserLink


class MemoryStore:
    """Everything in dicts, guarded by one lock (consume_nonce must be atomic)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registrations: dict[tuple[str, str], Registration] = {}
        self._consumers: dict[str, Consumer] = {}
        self._nonces: dict[tuple[str, str], float] = {}
        self._states: dict[str, OidcState] = {}
        self._keys: list[ToolKey] = []
        self._links: dict[tuple[str, str], UserLink] = {}
        self._contexts: dict[tuple[str, str, str], LaunchContext] = {}

    def get_registration(self, issuer: str, client_id: str) -> Registration | None:
        return self._registrations.get((issuer, client_id))

    def find_registrations(self, issuer: str) -> list[Registration]:
        return [r for (iss, _), r in sorted(self._registrations.items()) if iss == issuer]

    def save_registration(self, registration: Registration) -> None:
        self._registrations[(registration.issuer, registration.client_id)] = registration

    def get_consumer(self, key: str) -> Consumer | None:
        return self._consumers.get(key)

    def save_consumer(self, consumer: Consumer) -> None:
        self._consumers[consumer.key] = consumer

    def consume_nonce(self, scope: str, nonce: str, expires_at: float, now: float) -> bool:
        with self._lock:
            seen = self._nonces.get((scope, nonce))
            if seen is not None and seen > now:
                return False
            self._nonces[(scope, nonce)] = expires_at
            return True

    def save_state(self, state: OidcState) -> None:
        self._states[state.state] = state

    def get_state(self, state: str, now: float) -> OidcState | None:
        found = self._states.get(state)
        return found if found is not None and found.expires_at > now else None

    def delete_state(self, state: str) -> None:
        self._states.pop(state, None)

    def purge_expired(self, now: float) -> int:
        with self._lock:
            states = [s for s, v in self._states.items() if v.expires_at <= now]
            nonces = [n for n, exp in self._nonces.items() if exp <= now]
            for s in states:
                del self._states[s]
            for n in nonces:
                del self._nonces[n]
            return len(states) + len(nonces)

    def list_tool_keys(self) -> list[ToolKey]:
        return list(reversed(self._keys))

    def save_tool_key(self, key: ToolKey) -> None:
        self._keys = [k for k in self._keys if k.kid != key.kid] + [key]

    def set_tool_key_active(self, kid: str, active: bool) -> None:
        self._keys = [replace(k, active=active) if k.kid == kid else k for k in self._keys]

    def get_user_link(self, platform: str, platform_user_id: str) -> UserLink | None:
        return self._links.get((platform, platform_user_id))

    def save_user_link(self, link: UserLink) -> UserLink:
        with self._lock:
            return self._links.setdefault((link.platform, link.platform_user_id), link)

    def find_user_links(self, local_user_id: str) -> list[UserLink]:
        return sorted(
            (link for link in self._links.values() if link.local_user_id == local_user_id),
            key=lambda link: (link.platform, link.platform_user_id),
        )

    def save_launch_context(self, context: LaunchContext) -> None:
        with self._lock:
            # A replaced key keeps its place (a database row keeps its id): ties order the same way.
            self._contexts[(context.platform, context.platform_user_id, context.resource_link_id)] = context

    def get_launch_context(self, platform: str, platform_user_id: str, resource_link_id: str) -> LaunchContext | None:
        return self._contexts.get((platform, platform_user_id, resource_link_id))

    def find_launch_contexts(self, local_user_id: str) -> list[LaunchContext]:
        # Newest first; among equal times, the key saved first last (as the databases' id order).
        found = [c for c in reversed(self._contexts.values()) if c.local_user_id == local_user_id]
        return sorted(found, key=lambda c: -c.updated_at)
