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
import platform
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fixtures as fx  # noqa: E402
from bench import peers  # noqa: E402
from bench.jwks_server import JwksServer  # noqa: E402

WARMUP = 300  # launches per implementation before its clock starts (a slice of their own)
POOL_MARGIN = 1.4  # timed pool = fastest warm-up rate x seconds x this
TOKEN_EXPIRY_MARGIN = 8.0  # seconds a token must have left when its loop ends (the peers use no leeway)
RSA_VERIFY = "cryptography RSA verify alone"
JOSERFC_DECODE = "joserfc deserialize_compact + json.loads"
PYJWT_DECODE = "PyJWT jwt.decode alone"

_T0 = time.perf_counter()


def progress(message: str) -> None:
    """Progress on stderr, so that stdout is only the report."""
    print(f"[{time.perf_counter() - _T0:5.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Result:
    section: str
    name: str
    count: int
    seconds: float
    cpu_seconds: float
    ratio: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def us_per_op(self) -> float:
        return 1e6 * self.seconds / self.count if self.count else 0.0

    @property
    def cpu_share(self) -> float:
        return self.cpu_seconds / self.seconds if self.seconds else 0.0


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
    """For stateless steps: cycle through ``items`` for ``seconds``."""
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


class TokenPool:
    """The id_tokens: a warm-up slice, then the timed pool; re-signed if they could expire mid-loop."""

    def __init__(self, key: fx.PlatformKey, signer: fx.Signer) -> None:
        self.key = key
        self.signer = signer
        self.warmup: list[fx.SignedLaunch] = []
        self.timed: list[fx.SignedLaunch] = []
        self.resigned = 0
        self.sign_seconds = 0.0

    def sign(self, timed_count: int) -> None:
        t0 = time.perf_counter()
        launches = self.signer.launches(self.key, WARMUP + timed_count)
        self.sign_seconds += time.perf_counter() - t0
        self.warmup, self.timed = launches[:WARMUP], launches[WARMUP:]

    def ensure_fresh(self, seconds: float) -> None:
        """Tokens live 60 s (exp = iat + 60, as Moodle signs them): re-sign if this loop could outlive them."""
        age = time.time() - self.warmup[0].iat
        if age + seconds + 2.0 > fx.TOKEN_LIFETIME - TOKEN_EXPIRY_MARGIN:
            self.resigned += 1
            progress("LTI 1.3: re-signing the pool, its tokens would expire during the next loop")
            self.sign(len(self.timed))


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


def run_lti13(args: argparse.Namespace, signer: fx.Signer, results: list[Result], info: dict[str, Any]) -> None:
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

        def scope(runner: Any) -> Any:
            return runner if isinstance(runner, peers.LtiAuthenticator13) else nullcontext()

        # Check and warm up every runner on a first small pool, which also sizes the timed pool.
        pool = TokenPool(key, signer)
        pool.sign(2 * len(runners))
        fastest = 0.0
        for i, runner in enumerate(runners):
            with scope(runner):
                check_accepts(runner, pool.timed[2 * i])
                check_refuses_forgery(runner, pool.timed[2 * i + 1])
                fastest = max(fastest, warm_rate(runner.call, [runner.prepare(item) for item in pool.warmup]))
        wanted = int(fastest * args.seconds * POOL_MARGIN) + 100
        progress(f"LTI 1.3: fastest warm-up {fastest:,.0f}/s; signing {WARMUP + wanted:,} tokens")
        pool.sign(wanted)
        progress(f"LTI 1.3: signed in {pool.sign_seconds:.1f} s")
        info["lti13_token_bytes"] = len(pool.timed[0].id_token)
        info["lti13_claims_json_bytes"] = len(json.dumps(fx.launch_claims("0" * 64, 0), separators=(",", ":")))
        info["lti13_pool_size"] = len(pool.timed)

        for runner in runners:
            pool.ensure_fresh(args.seconds)
            progress(f"LTI 1.3: {runner.name}")
            with scope(runner):
                timed_loop(runner.call, [runner.prepare(item) for item in pool.warmup], float("inf"))
                prepared = [runner.prepare(item) for item in pool.timed]
                n, elapsed, cpu = timed_loop(runner.call, prepared, args.seconds)
            results.append(Result("lti13", runner.name, n, elapsed, cpu, note=_note(n, len(prepared), elapsed, cpu)))
        info["lti13_tokens_resigned"] = pool.resigned
        info["lti13_sign_seconds"] = round(pool.sign_seconds, 2)
        info["lti_core_jwks_fetches"] = lti_core.fetches

        # Where lti_core's time goes: the parts alone, then lti_core's own steps one by one.
        tokens = [launch.id_token for launch in pool.timed[:2000]]
        for label, factory in (
            (RSA_VERIFY, peers.bare_rsa_verify),
            (JOSERFC_DECODE, peers.joserfc_decode),
            (PYJWT_DECODE, peers.pyjwt_decode),
        ):
            progress(f"LTI 1.3: {label}")
            prepare, call = factory(key.public_jwk)
            items = [prepare(t) for t in tokens]
            cycled_loop(call, items[:WARMUP], 0.2)
            n, elapsed, cpu = cycled_loop(call, items, min(args.seconds, 1.0))
            results.append(Result("lti13_parts", label, n, elapsed, cpu))
        progress("LTI 1.3: lti_core step by step")
        pool.ensure_fresh(2.0)
        info["lti_core_steps_us"] = lti_core_steps(jwks, pool.warmup + pool.timed[:3000])
    finally:
        server.close()


def lti_core_steps(jwks: bytes, launches: Sequence[fx.SignedLaunch]) -> dict[str, float]:
    """Mean µs of each step of LaunchValidator.validate, calling its public steps in validate's order.

    Returns {} if lti_core's steps are no longer the ones this mirrors.
    """
    runner = peers.LtiCore13(jwks)
    v = runner.validator
    module = sys.modules[type(v).__module__]
    steps = ("load_state", "registration", "verify_signature", "validate_claims", "build_launch", "consume_nonce")
    if not all(hasattr(v, s) for s in steps if s != "build_launch") or not hasattr(module, "build_launch"):
        return {}
    build_launch = module.build_launch
    prepared = [runner.prepare(item) for item in launches]
    totals = dict.fromkeys(steps, 0.0)
    clock = time.perf_counter
    gc.collect()
    for i, (id_token, state, browser_states) in enumerate(prepared):
        t0 = clock()
        now = time.time()
        oidc_state = v.load_state(state, browser_states, now)
        t1 = clock()
        registration = v.registration(oidc_state)
        t2 = clock()
        body = v.verify_signature(id_token, registration)
        t3 = clock()
        v.validate_claims(body, oidc_state, registration, now)
        t4 = clock()
        build_launch(body, registration)
        t5 = clock()
        v.consume_nonce(body, now)
        t6 = clock()
        if i >= WARMUP:
            for name, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
                totals[name] += dt
    count = len(prepared) - WARMUP
    return {name: round(1e6 * total / count, 2) for name, total in totals.items()}


def run_lti11(args: argparse.Namespace, signer: fx.Signer, results: list[Result], info: dict[str, Any]) -> None:
    runners: list[Any] = [peers.LtiCore11(), peers.OauthlibSignatureOnly()]
    warm = signer.forms(WARMUP + len(runners))
    fastest = 0.0
    for i, runner in enumerate(runners):
        check_accepts(runner, warm[WARMUP + i])
        fastest = max(fastest, warm_rate(runner.call, [runner.prepare(f) for f in warm[:WARMUP]]))
    wanted = int(fastest * args.seconds * POOL_MARGIN) + 100
    progress(f"LTI 1.1: fastest warm-up {fastest:,.0f}/s; signing {wanted:,} forms")
    t0 = time.perf_counter()
    forms = signer.forms(wanted)
    info["lti11_sign_seconds"] = round(time.perf_counter() - t0, 2)
    info["lti11_params"] = len(fx.lti11_params())
    info["lti11_body_bytes"] = len(forms[0].body)
    info["lti11_pool_size"] = len(forms)
    for runner in runners:
        progress(f"LTI 1.1: {runner.name}")
        n, elapsed, cpu = timed_loop(runner.call, [runner.prepare(f) for f in forms], args.seconds)
        results.append(Result("lti11", runner.name, n, elapsed, cpu, note=_note(n, len(forms), elapsed, cpu)))


def _note(n: int, pool: int, elapsed: float, cpu: float) -> str:
    notes = []
    if n == pool:
        notes.append("the pool ran out before the time did; rate is over the whole pool")
    if elapsed and cpu / elapsed < 0.9:
        notes.append(f"on CPU only {100 * cpu / elapsed:.0f}% of the time")
    return "; ".join(notes)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("joserfc", "cryptography", "PyJWT", "PyLTI1p3", "jwcrypto", "jupyterhub-ltiauthenticator", "oauthlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _table(title: str, rows: list[Result], baseline: str) -> list[str]:
    width = max(len(r.name) for r in rows) + 2
    base = next((r for r in rows if r.name == baseline), None)
    short = baseline.split()[0]
    lines = [title, f"{'implementation':<{width}}{'validations/s':>13}  {'µs each':>8}  {'vs ' + short:>13}"]
    for r in rows:
        r.ratio = r.rate / base.rate if base and base.rate else None
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(f"{r.name:<{width}}{r.rate:>13,.0f}  {r.us_per_op:>8.1f}  {ratio:>13}")
        if r.note:
            lines.append(f"{'':<{width}}  ({r.note})")
    return lines


def _breakdown(core: Result, parts: dict[str, Result], steps: dict[str, float]) -> list[str]:
    total = core.us_per_op
    rsa, jose, pyjwt = parts.get(RSA_VERIFY), parts.get(JOSERFC_DECODE), parts.get(PYJWT_DECODE)
    lines = [f"Where lti_core's {total:.1f} µs per launch goes (each part timed alone, same tokens)"]

    def row(label: str, us: float) -> None:
        lines.append(f"  {label:<62}{us:>7.1f} µs {100 * us / total:>6.1f}%")

    if rsa:
        row("RSA-2048 PKCS#1 v1.5 verify, cryptography, key loaded once", rsa.us_per_op)
    if jose:
        row("joserfc decode alone (deserialize_compact + json.loads)", jose.us_per_op)
        row("remainder: state, registration, claims, nonce, Launch", total - jose.us_per_op)
    if steps:
        lines.append("  lti_core's own steps, timed one by one in one pass (µs):")
        lines.append("    " + ", ".join(f"{name} {us:.1f}" for name, us in steps.items()))
        if rsa and "verify_signature" in steps:
            lines.append(f"    (verify_signature = RSA verify + {steps['verify_signature'] - rsa.us_per_op:.1f} µs of splitting, "
                         "base64 and JSON decoding)")
    if pyjwt:
        lines.append(f"  for reference, PyJWT jwt.decode alone (key loaded once), under both peers: {pyjwt.us_per_op:.1f} µs")
    return lines


def report(results: list[Result], info: dict[str, Any]) -> str:
    lti13 = [r for r in results if r.section == "lti13"]
    lti11 = [r for r in results if r.section == "lti11"]
    versions = info["versions"]
    lines = [
        f"Python {versions['python']} on {info['cpu']}; one thread; {info['seconds']:g} s per timed loop",
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
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each timed loop (default 2)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON, after the tables")
    parser.add_argument("--only", choices=("lti13", "lti11"), help="run one section only")
    parser.add_argument(
        "--jwks-server",
        choices=("process", "thread"),
        default="process",
        help="where ltiauthenticator's JWKS endpoint runs (default: a child process, so its CPU is not ours)",
    )
    parser.add_argument("--sign-workers", type=int, default=None, help="processes that sign tokens (default: all cores)")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 10:
        parser.error("--seconds must be in (0, 10]: the id_tokens live 60 s")

    info: dict[str, Any] = {
        "versions": _versions(),
        "cpu": _cpu_model(),
        "seconds": args.seconds,
        "jwks_server": args.jwks_server,
    }
    results: list[Result] = []
    with fx.Signer(args.sign_workers) as signer:
        if args.only in (None, "lti13"):
            run_lti13(args, signer, results, info)
        if args.only in (None, "lti11"):
            run_lti11(args, signer, results, info)
    info["total_seconds"] = round(time.perf_counter() - _T0, 1)
    progress("done")

    print(report(results, info))
    if args.json:
        doc = {
            "info": info,
            "results": [
                {**asdict(r), "rate": round(r.rate, 1), "us_per_op": round(r.us_per_op, 2)} for r in results
            ],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
