"""A slow LTI store never stalls the hub: its calls run in the authenticator's threads, off the event loop.

A real hub (tests/hub.py) whose SqlAlchemyStore sleeps one second in every call (the hub's config is
Python, run in the hub's process: it wraps the store's methods). While an LTI 1.3 launch waits on it
for several seconds, the hub keeps answering other requests at once, and the launch still succeeds.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from lti_peer.platform import PlatformPeer
from tests.hub import HubProcess
from tests.test_hub_lti import LTIAUTHENTICATOR_13_CONFIG, launch13, new_user_id, user_names

pytestmark = pytest.mark.slow

DELAY = 1.0  # seconds, in every call of the store
# Well under DELAY: a request that had to wait for a store call on the loop would take up to DELAY.
PROMPT = 0.3

#: Wraps every Store method of the hub's store in the hub's process: sleep, note the call, then run it.
SLOW_STORE_CONFIG = """
import functools as _functools
import time as _time

import jupyter_lti.store as _lti_store
from lti_core.store import Store as _Store


def _slow(_name, _method):
    @_functools.wraps(_method)
    def _slowly(*args, **kwargs):
        with open({calls!r}, "a") as _log:
            _log.write(_name + "\\n")
        _time.sleep({delay!r})
        return _method(*args, **kwargs)

    return _slowly


for _name in dir(_Store):
    if not _name.startswith("_") and callable(getattr(_Store, _name)):
        setattr(_lti_store.SqlAlchemyStore, _name, _slow(_name, getattr(_lti_store.SqlAlchemyStore, _name)))
"""


@pytest.fixture(scope="module")
def platform() -> Iterator[PlatformPeer]:
    peer = PlatformPeer(client_id="moodle-client")
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def slow_hub(tmp_path_factory: pytest.TempPathFactory, platform: PlatformPeer) -> Iterator[HubProcess]:
    workdir = tmp_path_factory.mktemp("slowhub")
    config = SLOW_STORE_CONFIG.format(calls=str(workdir / "store-calls.log"), delay=DELAY)
    config += LTIAUTHENTICATOR_13_CONFIG.format(
        authenticator_class="jupyter_lti.lti13.LTI13Authenticator", issuer=platform.issuer, client_id=platform.client_id
    )
    hub = HubProcess(workdir, config)
    with hub.start():
        platform.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        yield hub


def store_calls(hub: HubProcess) -> list[str]:
    path = Path(hub.workdir) / "store-calls.log"
    return path.read_text().split() if path.exists() else []


def test_a_launch_waiting_on_a_slow_store_does_not_block_the_hub(slow_hub, platform):
    platform.user_id = new_user_id()
    before = user_names(slow_hub)
    calls_before = len(store_calls(slow_hub))
    waits: list[float] = []
    with requests.Session() as browser, concurrent.futures.ThreadPoolExecutor(1) as pool:
        launching = pool.submit(launch13, browser, slow_hub, platform)
        while len(store_calls(slow_hub)) == calls_before:  # the login initiation is in the store now
            assert not launching.done(), launching.result().text[:2000]
            time.sleep(0.02)
        while not launching.done():
            started = time.monotonic()
            answer = requests.get(slow_hub.hub_url + "api/", timeout=30)
            waits.append(time.monotonic() - started)
            assert answer.status_code == 200
            time.sleep(0.05)
        response = launching.result()
    calls = store_calls(slow_hub)[calls_before:]
    # The launch spent seconds in the store, and the hub answered all along, each time at once.
    assert len(calls) >= 5, calls
    assert max(waits) < PROMPT, f"/hub/api/ answered after {[round(w, 2) for w in waits]} s: the store blocked the loop"
    assert len(waits) >= 10, waits
    assert response.status_code == 302, response.text[:2000]
    (name,) = user_names(slow_hub) - before
    assert name.startswith("sam_")
