"""Real protocol peers the tests launch the tool from: an LTI 1.3 platform and an LTI 1.1 consumer.

They behave like Moodle 4.x does on the wire, and are built with other libraries than the tool
(pyjwt and oauthlib's client side), so the tests catch misreadings of the specifications that a
tool testing against itself would share.
"""

from __future__ import annotations


class _Delete:
    """Sentinel: an override with this value removes the claim or parameter."""

    _instance: _Delete | None = None

    def __new__(cls) -> _Delete:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()


def apply_overrides(base: dict, overrides: dict) -> dict:
    """``base`` updated with ``overrides``; keys whose override is ``DELETE`` are removed."""
    result = dict(base)
    for key, value in overrides.items():
        if value is DELETE:
            result.pop(key, None)
        else:
            result[key] = value
    return result


__all__ = ["DELETE", "apply_overrides"]
