"""Launch validation throughput: lti_core against pylti1p3, jupyterhub-ltiauthenticator and oauthlib.

Run from the repository root::

    PYTHONPATH=. python bench/launch.py [--seconds 2] [--json]

Every timed loop runs in this process, on one thread, so "validations/s" is per core. All
implementations validate the same pre-signed tokens (pyjwt, RS256) and the same pre-signed LTI 1.1
forms (oauthlib's Client), each with its own state and nonce; each implementation keeps its own
state/nonce store, so it sees every token once. Signing is never timed (it runs on all cores before
the loops). What each row measures, and why that is the fair comparison, is in ``bench/peers.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fixtures as fx  # noqa: E402
from bench import (
    machine,  # noqa: E402
    peers,  # noqa: E402
)
from bench.jwks_server import JwksServer  # noqa: E402

WARMUP = 300  # launches per implementation before its first timed round (tokens of their own)
POOL_MARGIN = 1.3  # tokens signed per round = fastest warm-up rate x round length x this ...
LTI13_SIGN_BUDGET = 10.0  # ... but at most what signs in this many seconds over the whole run
LTI11_SIGN_BUDGET = 4.0
MIN_ROUND_OPS = 20  # a round with fewer validations than this does not count towards "best"
RSA_VERIFY = "cryptography RSA verify alone"
STRICT_FLOOR = "RSA verify + lti_core's strict base64url and JSON decoding"
JOSERFC_DECODE = "joserfc deserialize_compact + json.loads"
PYJWT_DECODE = "PyJWT jwt.decode alone"
PYJWT_SEGMENTS = "PyJWT base64url segment decoding alone"

_T0 = time.perf_counter()


def progress(message: str) -> None:
    """Progress on stderr, so that stdout is only the report."""
    print(f"[{time.perf_counter() - _T0:5.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Series:
    """The timed rounds of one implementation.

    Its rate counts CPU time of this process, not wall time, and is the best round's (as timeit
    reports the fastest run): on a shared machine, wall time and slower rounds also measure the
    other processes. ``wall_rate`` is kept, since waiting on a blocking fetch is a real cost.
    """

    section: str
    name: str
    rounds: list[tuple[int, float, float]] = field(default_factory=list)
    exhausted: int = 0
    ratio: float | None = None

    def add(self, n: int, elapsed: float, cpu: float, pool: int) -> None:
        self.rounds.append((n, elapsed, cpu))
        self.exhausted += n == pool

    @property
    def count(self) -> int:
        return sum(r[0] for r in self.rounds)

    @property
    def seconds(self) -> float:
        return sum(r[1] for r in self.rounds)

    @property
    def cpu_seconds(self) -> float:
        return sum(r[2] for r in self.rounds)

    def _rates(self, by_cpu: bool) -> list[float]:
        rates = [(n, n / (c if by_cpu else e)) for n, e, c in self.rounds if (c if by_cpu else e) > 0]
        return [r for n, r in rates if n >= MIN_ROUND_OPS] or [r for _, r in rates] or [0.0]

    @property
    def rate(self) -> float:
        """Validations per CPU-second of this process, best round: what one core does when it is ours."""
        return max(self._rates(by_cpu=True))

    @property
    def wall_rate(self) -> float:
        """Validations per wall-clock second, best round: includes waiting on I/O and on other processes."""
        return max(self._rates(by_cpu=False))

    @property
    def us_per_op(self) -> float:
        return 1e6 / self.rate if self.rate else 0.0

    @property
    def note(self) -> str:
        notes = []
        if self.exhausted:
            notes.append(f"{self.exhausted} of {len(self.rounds)} rounds used up the round's tokens before the time")
        if self.seconds and self.cpu_seconds / self.seconds < 0.9:
            share = 100 * self.cpu_seconds / self.seconds
            notes.append(f"this process was on the CPU for {share:.0f}% of the wall time")
        return "; ".join(notes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "rate_per_cpu_second": round(self.rate, 1),
            "rate_per_wall_second": round(self.wall_rate, 1),
            "rate_per_cpu_second_median_round": round(statistics.median(self._rates(by_cpu=True)), 1),
            "us_per_op": round(self.us_per_op, 2),
            "ratio": round(self.ratio, 3) if self.ratio is not None else None,
            "count": self.count,
            "seconds": round(self.seconds, 4),
            "cpu_seconds": round(self.cpu_seconds, 4),
            "rounds": [{"count": n, "seconds": round(e, 4), "cpu_seconds": round(c, 4)} for n, e, c in self.rounds],
            "note": self.note,
        }


def timed_loop(call: Callable[[Any], Any], items: Sequence[Any], seconds: float) -> tuple[int, float, float]:
    """Call ``call`` on successive items until ``seconds`` have passed or the items run out."""
    gc.collect()
    clock = time.perf_counter
    n = 0
    total = len(items)
    cpu0 = time.process_time()
    start = clock()
    deadline = start + seconds
    while n < total:
        call(items[n])
        n += 1
        if clock() >= deadline:
            break
    elapsed = clock() - start
    return n, elapsed, time.process_time() - cpu0


def cycled_loop(call: Callable[[Any], Any], items: Sequence[Any], seconds: float) -> tuple[int, float, float]:
    """For stateless parts: cycle through ``items`` for ``seconds``."""
    gc.collect()
    clock = time.perf_counter
    n = 0
    total = len(items)
    cpu0 = time.process_time()
    start = clock()
    deadline = start + seconds
    while True:
        call(items[n % total])
        n += 1
        if clock() >= deadline:
            break
    elapsed = clock() - start
    return n, elapsed, time.process_time() - cpu0


def warm_rate(call: Callable[[Any], Any], items: Sequence[Any]) -> float:
    """Run all ``items`` untimed; the rate of the second half (the first half pays for first calls)."""
    half = len(items) // 2
    timed_loop(call, items[:half], float("inf"))
    n, elapsed, _ = timed_loop(call, items[half:], float("inf"))
    return n / elapsed


def interleaved(
    runners: Sequence[Any],
    series: dict[str, Series],
    rounds: int,
    round_seconds: float,
    new_items: Callable[[int], Sequence[Any]],
) -> None:
    """``rounds`` rounds; in each, fresh items (the same for every runner) and every runner in turn,
    starting one further each round, so a busy spell on the machine is spread over all of them."""
    for r in range(rounds):
        items = new_items(r)
        k = r % len(runners)
        for runner in [*runners[k:], *runners[:k]]:
            progress(f"round {r + 1}/{rounds}: {runner.name}")
            stateless = getattr(runner, "stateless", False)
            with runner if hasattr(runner, "__enter__") else nullcontext():
                prepared = [runner.prepare(item) for item in items]
                loop = cycled_loop if stateless else timed_loop
                n, elapsed, cpu = loop(runner.call, prepared, round_seconds)
            series[runner.name].add(n, elapsed, cpu, -1 if stateless else len(prepared))


@dataclass
class Part:
    """A stateless piece of lti_core's path, timed alone over the same tokens."""

    name: str
    prepare: Callable[[str], Any]
    call: Callable[[Any], Any]
    stateless: bool = True


def check_accepts(runner: Any, item: Any) -> None:
    """The runner accepts a good launch and returns the right user."""
    result = runner.call(runner.prepare(item))
    assert runner.user(result) == "20417", f"{runner.name}: unexpected user {runner.user(result)!r}"


def check_refuses_forgery(runner: Any, launch: fx.SignedLaunch) -> None:
    """The runner refuses the same launch with one signature character changed (it really verifies)."""
    head, body, sig = launch.id_token.split(".")
    forged_sig = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    forged = fx.SignedLaunch(f"{head}.{body}.{forged_sig}", launch.state, launch.nonce, launch.nonce_state, launch.iat)
    try:
        runner.call(runner.prepare(forged))
    except Exception:  # noqa: BLE001 - each library raises its own error type
        return
    raise AssertionError(f"{runner.name} accepted a token with a forged signature")


def run_lti13(args: argparse.Namespace, series: dict[str, Series], info: dict[str, Any]) -> None:
    key = fx.make_platform_key()
    jwks = json.dumps(key.jwks).encode()
    server = JwksServer(jwks, mode=args.jwks_server)
    try:
        lti_core = peers.LtiCore13(jwks)
        runners: list[Any] = [
            lti_core,
            peers.Pylti1p3(jwks),
            peers.LtiAuthenticator13(server.url),
            peers.LtiAuthenticator13(server.url, cached_jwks=True),
        ]
        for runner in runners:
            series[runner.name] = Series("lti13", runner.name)

        # Check every runner, and warm it up on tokens of its own; that also sizes the rounds' pools.
        t0 = time.perf_counter()
        first = fx.sign_launches(key, WARMUP + 2 * len(runners))
        sign_rate = len(first) / (time.perf_counter() - t0)
        fastest = 0.0
        for i, runner in enumerate(runners):
            with runner if hasattr(runner, "__enter__") else nullcontext():
                check_accepts(runner, first[WARMUP + 2 * i])
                check_refuses_forgery(runner, first[WARMUP + 2 * i + 1])
                fastest = max(fastest, warm_rate(runner.call, [runner.prepare(x) for x in first[:WARMUP]]))
        round_seconds = args.seconds / args.rounds
        per_round = min(
            int(fastest * round_seconds * POOL_MARGIN) + 50,
            int(sign_rate * LTI13_SIGN_BUDGET / args.rounds),
        )
        progress(f"LTI 1.3: fastest warm-up {fastest:,.0f}/s, signing {sign_rate:,.0f}/s; {per_round:,} tokens a round")
        signing = [0.0]

        def new_tokens(_: int) -> list[fx.SignedLaunch]:
            t = time.perf_counter()
            launches = fx.sign_launches(key, per_round)
            signing[0] += time.perf_counter() - t
            return launches

        interleaved(runners, series, args.rounds, round_seconds, new_tokens)
        info["lti13_token_bytes"] = len(first[0].id_token)
        info["lti13_claims_json_bytes"] = len(json.dumps(fx.launch_claims("0" * 64, 0), separators=(",", ":")))
        info["lti13_tokens_per_round"] = per_round
        info["lti13_sign_seconds"] = round(signing[0], 2)
        info["lti_core_jwks_fetches"] = lti_core.fetches

        # Where lti_core's time goes: the parts alone, then lti_core's own steps one by one.
        tokens = [launch.id_token for launch in fx.sign_launches(key, WARMUP)]  # fresh: PyJWT checks exp
        parts = []
        for name, factory in (
            (RSA_VERIFY, peers.bare_rsa_verify),
            (STRICT_FLOOR, peers.strict_decode_floor),
            (JOSERFC_DECODE, peers.joserfc_decode),
            (PYJWT_DECODE, peers.pyjwt_decode),
            (PYJWT_SEGMENTS, peers.pyjwt_segment_checks),
        ):
            try:
                parts.append(Part(name, *factory(key.public_jwk)))
            except LookupError:
                continue
        for part in parts:
            series[part.name] = Series("lti13_parts", part.name)
            cycled_loop(part.call, [part.prepare(t) for t in tokens], 0.1)
        interleaved(parts, series, args.rounds, min(round_seconds, 0.5), lambda _: tokens)
        progress("LTI 1.3: lti_core step by step")
        info["lti_core_steps_us"] = lti_core_steps(jwks, fx.sign_launches(key, WARMUP + 2000))
    finally:
        server.close()


def lti_core_steps(jwks: bytes, launches: Sequence[fx.SignedLaunch]) -> dict[str, float]:
    """µs of each step of LaunchValidator.validate, calling its public steps in validate's order.

    check then commit: the state, the registration, the signature (and the claims' decoding), the
    claims, the browser binding, the Launch, then the nonce and the state's deletion. Each step's
    figure is its median over a chunk of launches, the lowest of four chunks (a busy spell on the
    machine lifts one chunk, not all). Returns {} if lti_core's steps are no longer the ones this
    mirrors.
    """
    runner = peers.LtiCore13(jwks)
    v = runner.validator
    module = sys.modules[type(v).__module__]
    steps = (
        "load_state",
        "registration",
        "verify_signature",
        "validate_claims",
        "check_binding",
        "build_launch",
        "consume_nonce",
        "delete_state",
    )
    methods = ("load_state", "registration", "verify_signature", "validate_claims", "consume_nonce")
    if not all(hasattr(v, s) for s in methods) or not all(
        hasattr(module, f) for f in ("build_launch", "check_binding", "origin_of")
    ):
        return {}
    build_launch, check_binding = module.build_launch, module.check_binding
    prepared = [runner.prepare(item) for item in launches]
    samples: dict[str, list[float]] = {name: [] for name in steps}
    clock = time.perf_counter
    gc.collect()
    for i, (id_token, state, browser) in enumerate(prepared):
        t0 = clock()
        now = time.time()
        oidc_state = v.load_state(state, now)
        t1 = clock()
        registration = v.registration(oidc_state)
        t2 = clock()
        body = v.verify_signature(id_token, registration)
        t3 = clock()
        v.validate_claims(body, oidc_state, registration, now)
        t4 = clock()
        # The platform's origin (for the check page; a cached lookup in validate) is left out.
        check_binding(oidc_state, browser, id_token=id_token, launch_url="", platform_origin="")
        t5 = clock()
        build_launch(body, registration)
        t6 = clock()
        v.consume_nonce(body, now)
        t7 = clock()
        runner.store.delete_state(oidc_state.state)
        t8 = clock()
        if i >= WARMUP:
            for name, dt in zip(
                steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t8 - t7), strict=True
            ):
                samples[name].append(dt)
    chunk = max(1, len(samples[steps[0]]) // 4)
    return {
        name: round(1e6 * min(statistics.median(values[i : i + chunk]) for i in range(0, len(values), chunk)), 2)
        for name, values in samples.items()
    }


def run_lti11(args: argparse.Namespace, series: dict[str, Series], info: dict[str, Any]) -> None:
    runners: list[Any] = [peers.LtiCore11(), peers.OauthlibSignatureOnly()]
    for runner in runners:
        series[runner.name] = Series("lti11", runner.name)
    t0 = time.perf_counter()
    first = fx.sign_lti11_launches(WARMUP + len(runners))
    sign_rate = len(first) / (time.perf_counter() - t0)
    fastest = 0.0
    for i, runner in enumerate(runners):
        check_accepts(runner, first[WARMUP + i])
        fastest = max(fastest, warm_rate(runner.call, [runner.prepare(f) for f in first[:WARMUP]]))
    round_seconds = args.seconds / args.rounds
    per_round = min(
        int(fastest * round_seconds * POOL_MARGIN) + 50,
        int(sign_rate * LTI11_SIGN_BUDGET / args.rounds),
    )
    progress(f"LTI 1.1: fastest warm-up {fastest:,.0f}/s, signing {sign_rate:,.0f}/s; {per_round:,} forms a round")
    info["lti11_params"] = len(fx.lti11_params())
    info["lti11_body_bytes"] = len(first[0].body)
    info["lti11_forms_per_round"] = per_round
    interleaved(runners, series, args.rounds, round_seconds, lambda _: fx.sign_lti11_launches(per_round))


def _versions() -> dict[str, str]:
    return machine.versions(
        "joserfc", "cryptography", "PyJWT", "PyLTI1p3", "jwcrypto", "jupyterhub-ltiauthenticator", "oauthlib"
    )


def _table(title: str, rows: list[Series], baseline: str) -> list[str]:
    width = max(len(r.name) for r in rows) + 2
    base = next((r for r in rows if r.name == baseline), None)
    short = baseline.split()[0]
    lines = [
        title,
        f"{'implementation':<{width}}{'validations/s':>13}  {'µs each':>8}  {'vs ' + short:>13}  {'wall-clock/s':>12}",
    ]
    for r in rows:
        r.ratio = r.rate / base.rate if base and base.rate else None
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(f"{r.name:<{width}}{r.rate:>13,.0f}  {r.us_per_op:>8.1f}  {ratio:>13}  {r.wall_rate:>12,.0f}")
        if r.note:
            lines.append(f"{'':<{width}}  ({r.note})")
    return lines


def _breakdown(core: Series, parts: dict[str, Series], steps: dict[str, float]) -> list[str]:
    total = core.us_per_op
    rsa, jose, pyjwt = parts.get(RSA_VERIFY), parts.get(JOSERFC_DECODE), parts.get(PYJWT_DECODE)
    segments = parts.get(PYJWT_SEGMENTS)
    lines = [f"Where lti_core's {total:.1f} µs per launch goes (each part timed alone, same tokens)"]

    def row(label: str, us: float) -> None:
        lines.append(f"  {label:<62}{us:>7.1f} µs {100 * us / total:>6.1f}%")

    if rsa:
        row("RSA-2048 PKCS#1 v1.5 verify, cryptography, key loaded once", rsa.us_per_op)
        lines.append(f"  the whole launch runs at {100 * rsa.us_per_op / total:.0f}% of the bare verify rate")
    floor = parts.get(STRICT_FLOOR)
    if rsa and floor:
        row("floor: the verify + lti_core's strict decoding, nothing else", floor.us_per_op)
        lines.append(
            f"    (no launch can beat {100 * rsa.us_per_op / floor.us_per_op:.0f}% of the verify rate while it "
            "decodes strictly with the standard library: base64 and JSON alone cost "
            f"{floor.us_per_op - rsa.us_per_op:.1f} µs)"
        )
    if jose:
        row("joserfc decode alone (deserialize_compact + json.loads)", jose.us_per_op)
        rest = total - jose.us_per_op
        row("remainder: state, registration, claims, nonce, Launch", rest)
        if rest < 0:
            lines[-1] += "  (below zero: machine noise between separately timed loops)"
    if steps:
        lines.append("  lti_core's own steps, timed one by one (µs, median of 500 launches, best of 4 such chunks):")
        lines.append("    " + ", ".join(f"{name} {us:.1f}" for name, us in steps.items()))
        store = [name for name in ("load_state", "registration", "consume_nonce", "delete_state") if name in steps]
        lines.append(
            f"    ({', '.join(store)}: mostly the store's calls, {sum(steps[n] for n in store):.1f} µs of "
            f"the {sum(steps.values()):.1f} µs these steps add up to)"
        )
        if rsa and "verify_signature" in steps:
            extra = steps["verify_signature"] - rsa.us_per_op
            lines.append(f"    (verify_signature = RSA verify + {extra:.1f} µs of splitting, base64 and JSON decoding")
            if jose:
                lines.append(
                    f"     where joserfc decode alone adds {jose.us_per_op - rsa.us_per_op:.1f} µs to the RSA verify)"
                )
            else:
                lines[-1] += ")"
    if pyjwt:
        share = 100 * pyjwt.us_per_op / total
        lines.append(
            f"  for reference, PyJWT jwt.decode alone (key loaded once), under both peers: {pyjwt.us_per_op:.1f} µs "
            f"({share:.0f}% of lti_core's whole launch)"
        )
        if segments:
            lines.append(
                f"    of which {segments.us_per_op:.1f} µs is PyJWT's base64url decoding of the three segments "
                "(this PyJWT tests every character against the alphabet, in Python)"
            )
    return lines


def report(results: list[Series], info: dict[str, Any]) -> str:
    lti13 = [r for r in results if r.section == "lti13"]
    lti11 = [r for r in results if r.section == "lti11"]
    versions = info["versions"]
    lines = [
        f"Python {versions['python']} on {info['cpu']}; one thread; each implementation timed {info['seconds']:g} s "
        f"in {info['rounds']} interleaved rounds",
        "validations/s: per CPU-second of this process (one core), best round; wall-clock/s: per elapsed second,",
        "best round, which adds time spent waiting (a blocking fetch, or other processes on a busy machine)",
        "  " + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "python"),
        "",
    ]
    if lti13:
        lines += _table(
            f"LTI 1.3 id_token validation ({info['lti13_token_bytes'] / 1000:.1f} KB token, "
            f"{info['lti13_claims_json_bytes'] / 1000:.1f} KB claims JSON, RS256 2048-bit), single core",
            lti13,
            peers.Pylti1p3.name,
        )
        lines.append(
            f"  ltiauthenticator fetches the JWKS from 127.0.0.1 (server in a {info['jwks_server']}) on every launch; "
            f"lti_core fetched it {info['lti_core_jwks_fetches']} time(s) in the whole run"
        )
        lines.append("")
        core = next(r for r in lti13 if r.name == peers.LtiCore13.name)
        parts = {r.name: r for r in results if r.section == "lti13_parts"}
        lines += _breakdown(core, parts, info.get("lti_core_steps_us") or {})
        lines.append("")
    if lti11:
        lines += _table(
            f"LTI 1.1 launch verification (HMAC-SHA1, {info['lti11_params']} Moodle parameters, "
            f"{info['lti11_body_bytes']} B body), single core",
            lti11,
            peers.OauthlibSignatureOnly.name,
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per implementation (default 2)")
    parser.add_argument(
        "--rounds", type=int, default=4, help="interleaved rounds those seconds are split into (default 4)"
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON, on the last line")
    parser.add_argument("--only", choices=("lti13", "lti11"), help="run one section only")
    parser.add_argument(
        "--hub",
        action="store_true",
        help="afterwards, also run bench/hub.py (launches through two real JupyterHubs) with its defaults; "
        "with --json, its JSON line comes last",
    )
    parser.add_argument(
        "--jwks-server",
        choices=("process", "thread"),
        default="process",
        help="where ltiauthenticator's JWKS endpoint runs (default: a child process, so its CPU is not ours)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or not 0 < args.seconds / args.rounds <= 5:
        parser.error("need --rounds >= 1 and 0 < --seconds/--rounds <= 5 (the id_tokens live 60 s)")

    info: dict[str, Any] = {
        "versions": _versions(),
        "cpu": machine.cpu_model(),
        "seconds": args.seconds,
        "rounds": args.rounds,
        "jwks_server": args.jwks_server,
    }
    series: dict[str, Series] = {}
    if args.only in (None, "lti13"):
        run_lti13(args, series, info)
    if args.only in (None, "lti11"):
        run_lti11(args, series, info)
    info["total_seconds"] = round(time.perf_counter() - _T0, 1)
    progress("done")

    results = list(series.values())
    print(report(results, info))
    if args.json:
        doc = {"info": info, "results": [r.as_dict() for r in results]}
        print()
        print(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))  # one line, the last: `tail -n1 | jq`
    if args.hub:
        from bench import hub  # only now: it needs the jupyterhub extra and configurable-http-proxy

        print(flush=True)
        return hub.main(["--json"] if args.json else [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
