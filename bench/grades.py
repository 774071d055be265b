"""Grade delivery throughput: N learners' scores to a loopback AGS gradebook that adds 20 ms per request.

    PYTHONPATH=. .venv/bin/python bench/grades.py [N] [concurrency]

The platform peer (``lti_peer``, Moodle-shaped AGS, ``delay_ms=20``) runs in a child process, so its
HTTP server does not share this process's GIL. Measured here, in the same run against the same peer:

* lti_core's ``GradeWorker`` (thread pool of ``concurrency``): the outbox filled with N scores, then
  ``deliver_due`` until all are delivered; one token for all (``TokenCache``). The driver is the
  Django host's ``PooledTransport`` (keep-alive ``http.client`` connections, pooled across the
  threads), what its grade delivery uses; ``UrllibTransport`` (one connection per request) is also
  measured, on a sample.
  The store is lti_core's ``MemoryStore`` (its rows found by their unique key, conditions or not).
* pylti1p3 2.0: ``AssignmentsGradesService.put_grade`` built directly on its ``ServiceConnector``
  (requests.Session, so keep-alive too; the token fetched once and cached by the connector), called
  in a loop, one score after another, as its API is used: per score it builds the ``Grade`` JSON,
  POSTs it to ``<lineitem>/scores`` and waits for the answer. Run on a sample and extrapolated to N
  (labelled so).
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from typing import Any

from lti_core.grades import GradeWorker, enqueue_grade
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.memory import MemoryStore
from lti_core.outbox import OutboxState
from lti_core.types import AgsEndpoint, Deployment, LaunchContext, LaunchServices, Registration
from lti_peer.tool_jwks import serve_tool_jwks
from lti_xblock.http import PooledTransport, UrllibTransport

DELAY_MS = 20


# -- the peer, in a child process ------------------------------------------------------------------


def _serve_peer(conn: Any, tool_jwks_url: str) -> None:
    from lti_peer.ags import gradebook
    from lti_peer.platform import PlatformPeer
    from lti_peer.token import token_endpoint

    with PlatformPeer() as peer:
        token_endpoint(peer).tool_jwks_url = tool_jwks_url
        book = gradebook(peer)
        book.delay_ms = DELAY_MS
        conn.send((peer.issuer, peer.client_id, peer.token_url, peer.auth_url, peer.jwks_url))
        while True:
            message = conn.recv()
            if message == "stop":
                return
            if message[0] == "lineitem":
                conn.send(book.add_lineitem(message[1], 10))
            elif message[0] == "count":
                with book._lock:  # noqa: SLF001 - the bench's own peer
                    conn.send(
                        sum(
                            1
                            for (number, _), s in book.scores.items()
                            if book.item_url(book.items[number]) == message[1]
                        )
                    )
                book.log.clear()


# -- the tool's side -------------------------------------------------------------------------------


def run_worker(
    registration: Registration, keys: ToolKeySet, lineitem: str, n: int, concurrency: int, transport: Any
) -> float:
    store = MemoryStore()
    store.save_registration(registration)
    now = time.time()
    for user in range(n):
        context = LaunchContext(
            registration.issuer,
            f"learner-{user}",
            f"u{user}",
            "rl-1",
            client_id=registration.client_id,
            services=LaunchServices(ags=AgsEndpoint(lineitem_url=lineitem)),
        )
        enqueue_grade(store, context, user % 11, 10, True, now)
    started = time.perf_counter()
    with GradeWorker(store, transport, keys, allow_private=True, concurrency=concurrency, lease=120) as worker:
        while True:
            summary = worker.deliver_due(limit=concurrency * 64)
            if summary.claimed == 0:
                break
    elapsed = time.perf_counter() - started
    counts = store.outbox_counts()
    assert counts[OutboxState.DELIVERED] == n, counts
    return elapsed


def run_pylti1p3(registration: Registration, keys: ToolKeySet, lineitem: str, n: int) -> float:
    from pylti1p3.assignments_grades import AssignmentsGradesService
    from pylti1p3.grade import Grade
    from pylti1p3.registration import Registration as PyltiRegistration
    from pylti1p3.service_connector import ServiceConnector

    tool_key = keys.ensure_key()
    reg = PyltiRegistration()
    reg.set_issuer(registration.issuer).set_client_id(registration.client_id)
    reg.set_auth_token_url(registration.auth_token_url).set_tool_private_key(tool_key.private_pem)
    reg.get_kid = lambda: tool_key.kid  # type: ignore[method-assign] # the kid our JWKS publishes
    connector = ServiceConnector(reg)
    service = AssignmentsGradesService(
        connector, {"scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"], "lineitem": lineitem}
    )
    started = time.perf_counter()
    for user in range(n):
        grade = (
            Grade()
            .set_score_given(user % 11)
            .set_score_maximum(10)
            .set_timestamp(time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()))
            .set_activity_progress("Completed")
            .set_grading_progress("FullyGraded")
            .set_user_id(f"learner-{user}")
        )
        service.put_grade(grade)
    return time.perf_counter() - started


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    keys = ToolKeySet(MemoryStore())
    keys.ensure_key()
    with serve_tool_jwks(keys.jwks) as jwks_url:
        rows = measure(keys, jwks_url, n, concurrency)
    report(rows, n)


def measure(keys: ToolKeySet, jwks_url: str, n: int, concurrency: int) -> list[tuple[str, int, float, bool, int]]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve_peer, args=(child, jwks_url), daemon=True)
    process.start()
    issuer, client_id, token_url, auth_url, peer_jwks = parent.recv()
    registration = Registration(issuer, client_id, auth_url, token_url, peer_jwks, (Deployment("2"),))

    def lineitem(label: str) -> str:
        parent.send(("lineitem", label))
        return str(parent.recv())

    def kept(url: str) -> int:
        parent.send(("count", url))
        return int(parent.recv())

    rows: list[tuple[str, int, float, bool, int]] = []
    item = lineitem("GradeWorker PooledTransport")
    with PooledTransport(max_idle=concurrency) as pooled:
        elapsed = run_worker(registration, keys, item, n, concurrency, pooled)
    rows.append((f"lti_core GradeWorker, {concurrency} threads, PooledTransport", n, elapsed, False, kept(item)))
    sample = min(n, 2_000)
    item = lineitem("GradeWorker urllib")
    elapsed = run_worker(registration, keys, item, sample, concurrency, UrllibTransport())
    rows.append((f"lti_core GradeWorker, {concurrency} threads, UrllibTransport", sample, elapsed, False, kept(item)))
    pylti_sample = min(n, 300)
    item = lineitem("pylti1p3")
    elapsed = run_pylti1p3(registration, keys, item, pylti_sample)
    rows.append(("pylti1p3 put_grade loop (requests.Session)", pylti_sample, elapsed, True, kept(item)))
    parent.send("stop")
    process.join(5)
    return rows


def report(rows: list[tuple[str, int, float, bool, int]], n: int) -> None:
    print(f"\n{n} scores, AGS peer adding {DELAY_MS} ms per request (peer in a child process)\n")
    print(f"{'implementation':<58} {'scores run':>10} {'seconds':>9} {'scores/s':>9} {'kept':>6} {'time for N':>11}")
    for name, count, seconds, _extrapolated, stored in rows:
        rate = count / seconds
        label = f"{n / rate:.1f} s" + ("" if count == n else " (extrap.)")
        print(f"{name:<58} {count:>10} {seconds:>9.2f} {rate:>9.0f} {stored:>6} {label:>11}")
    ours = rows[0][1] / rows[0][2]
    theirs = rows[-1][1] / rows[-1][2]
    print(f"\nGradeWorker (PooledTransport) / pylti1p3 put_grade loop: {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
