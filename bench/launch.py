"""Launch validation throughput: lti_core against pylti1p3, jupyterhub-ltiauthenticator and oauthlib.

Run from the repository root::

    PYTHONPATH=. python bench/launch.py [--seconds 2] [--json]

Everything runs in this one process, on one thread, on the same tokens, so "validations/s" is per
core. Signing is never timed: every timed loop draws from a pool of pre-signed tokens (pyjwt, RS256)
or pre-signed LTI 1.1 forms (oauthlib's Client), each with its own nonce, and each implementation
keeps its own state/nonce store, so every implementation validates every token exactly once.

What each row measures, and why that is the fair comparison, is in ``bench/peers.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from bench import fixtures as fx  # noqa: E402
from bench import peers  # noqa: E402
from bench.jwks_server import JwksServer  # noqa: E402

WARMUP = 200  # launches per implementation before the clock starts (a slice of their own, never reused)
TOKEN_EXPIRY_MARGIN = 8.0  # seconds a token must still have left when its loop ends (peers use no leeway)


_T0 = time.perf_counter()


def progress(message: str) -> None:
    """Progress on stderr, so stdout stays the report."""
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


class TokenPool:
    """Pre-signed id_tokens: a warm-up slice, then the timed pool; re-signed if they would expire mid-loop."""

    def __init__(self, key: fx.PlatformKey) -> None:
        self.key = key
        self.warmup: list[fx.SignedLaunch] = []
        self.timed: list[fx.SignedLaunch] = []
        self.resigned = 0
        self.sign_seconds = 0.0

    def sign(self, timed_count: int) -> None:
        t0 = time.perf_counter()
        launches = fx.sign_launches(self.key, WARMUP + timed_count)
        self.sign_seconds += time.perf_counter() - t0
        self.warmup, self.timed = launches[:WARMUP], launches[WARMUP:]

    def age(self) -> float:
        return time.time() - self.warmup[0].iat if self.warmup else float("inf")

    def ensure_fresh(self, seconds: float) -> None:
        """Tokens live 60 s (exp = iat + 60, as Moodle signs them): re-sign if this loop could outlive them."""
        if self.age() + seconds + 2.0 > fx.TOKEN_LIFETIME - TOKEN_EXPIRY_MARGIN:
            self.resigned += 1
            self.sign(len(self.timed))


def check_launch(runner: Any, launch: Any) -> None:
    """The runner accepts a good launch (and returns the right user) and refuses a forged signature."""
    result = runner.call(runner.prepare(launch))
    assert runner.user(result) == "20417", f"{runner.name}: unexpected user {runner.user(result)!r}"


def check_forgery_refused(runner: Any, launch: fx.SignedLaunch) -> None:
    head, body, sig = launch.id_token.split(".")
    forged_sig = ("A" if sig[10] != "A" else "B").join((sig[:10], sig[11:]))
    forged = fx.SignedLaunch(".".join((head, body, forged_sig)), launch.state, launch.nonce, launch.nonce_state, launch.iat)
    try:
        runner.call(runner.prepare(forged))
    except Exception:  # noqa: BLE001 - each library raises its own error type
        return
    raise AssertionError(f"{runner.name} accepted a token with a forged signature")


def run_lti13(args: argparse.Namespace, results: list[Result], info: dict[str, Any]) -> None:
    key = fx.make_platform_key()
    jwks = json.dumps(key.jwks).encode()
    server = JwksServer(jwks, mode=args.jwks_server)
    try:
        lti_core = peers.LtiCore13(jwks)
        pylti = peers.Pylti1p3(jwks)
        ltiauth = peers.LtiAuthenticator13(server.url)
        ltiauth_cached = peers.LtiAuthenticator13(server.url, cached_jwks=True)
        runners: list[Any] = [lti_core, pylti, ltiauth, ltiauth_cached]

        # Warm up on a small first pool, which also sizes the timed pool from the fastest runner.
        pool = TokenPool(key)
        pool.sign(len(runners) * 3)
        fastest = 0.0
        for runner in runners:
            with runner if isinstance(runner, peers.LtiAuthenticator13) else _nullcontext():
                check_launch(runner, pool.timed[runners.index(runner)])
                check_forgery_refused(runner, pool.timed[len(runners) + runners.index(runner)])
                prepared = [runner.prepare(item) for item in pool.warmup]
                n, elapsed, _ = timed_loop(runner.call, prepared, float("inf"))
                fastest = max(fastest, n / elapsed)
        progress(f"LTI 1.3: fastest warm-up {fastest:,.0f}/s; signing the token pool")
        pool.sign(int(fastest * args.seconds * 1.5) + 100)
        progress(f"LTI 1.3: signed {len(pool.timed)} tokens in {pool.sign_seconds:.1f} s")
        token = pool.timed[0].id_token
        info["lti13_token_bytes"] = len(token)
        info["lti13_payload_json_bytes"] = len(json.dumps(fx.launch_claims("0" * 64, 0), separators=(",", ":")))
        info["lti13_pool_size"] = len(pool.timed)

        for runner in runners:
            pool.ensure_fresh(args.seconds)
            progress(f"LTI 1.3: {runner.name}")
            with runner if isinstance(runner, peers.LtiAuthenticator13) else _nullcontext():
                timed_loop(runner.call, [runner.prepare(item) for item in pool.warmup], float("inf"))
                prepared = [runner.prepare(item) for item in pool.timed]
                n, elapsed, cpu = timed_loop(runner.call, prepared, args.seconds)
            note = "token pool ran out before the time did" if n == len(prepared) else ""
            results.append(Result("lti13", runner.name, n, elapsed, cpu, note=note))
        info["lti13_tokens_resigned"] = pool.resigned
        info["lti13_sign_seconds"] = round(pool.sign_seconds, 2)
        info["lti_core_jwks_fetches"] = lti_core.fetches

        # Where lti_core's time goes: the bare RSA verify, joserfc's decode, and the rest.
        tokens = [launch.id_token for launch in pool.timed[:2000]]
        for label, factory in (
            ("cryptography RSA verify alone", peers.bare_rsa_verify),
            ("joserfc deserialize_compact + json.loads", peers.joserfc_decode),
        ):
            progress(f"LTI 1.3: {label}")
            prepare, call = factory(key.public_jwk)
            items = [prepare(t) for t in tokens]
            cycled_loop(call, items[:WARMUP], 0.2)
            n, elapsed, cpu = cycled_loop(call, items, args.seconds)
            results.append(Result("lti13_breakdown", label, n, elapsed, cpu))
        progress("LTI 1.3: lti_core step by step")
        info["lti_core_steps_us"] = lti_core_steps(key, jwks, min(3000, len(pool.timed)), args)
    finally:
        server.close()


def lti_core_steps(key: fx.PlatformKey, jwks: bytes, count: int, args: argparse.Namespace) -> dict[str, float]:
    """Mean µs of each step of LaunchValidator.validate, by calling its steps in the same order."""
    runner = peers.LtiCore13(jwks)
    v = runner.validator
    steps = ("load_state", "registration", "verify_signature", "validate_claims", "build_launch", "consume_nonce")
    if not all(hasattr(v, s) for s in steps if s != "build_launch"):
        return {}
    if not hasattr(sys.modules[type(v).__module__], "build_launch"):
        return {}
    build_launch = sys.modules[type(v).__module__].build_launch
    launches = fx.sign_launches(key, WARMUP + count)
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
    return {name: round(1e6 * total / count, 2) for name, total in totals.items()}


def run_lti11(args: argparse.Namespace, results: list[Result], info: dict[str, Any]) -> None:
    runners: list[Any] = [peers.LtiCore11(), peers.OauthlibSignatureOnly()]
    warm = fx.sign_lti11_launches(WARMUP + len(runners))
    fastest = 0.0
    for i, runner in enumerate(runners):
        check_launch(runner, warm[WARMUP + i])
        n, elapsed, _ = timed_loop(runner.call, [runner.prepare(f) for f in warm[:WARMUP]], float("inf"))
        fastest = max(fastest, n / elapsed)
    progress(f"LTI 1.1: fastest warm-up {fastest:,.0f}/s; signing the form pool")
    t0 = time.perf_counter()
    forms = fx.sign_lti11_launches(int(fastest * args.seconds * 1.5) + 100)
    info["lti11_sign_seconds"] = round(time.perf_counter() - t0, 2)
    info["lti11_params"] = len(fx.lti11_params())
    info["lti11_body_bytes"] = len(forms[0].body)
    info["lti11_pool_size"] = len(forms)
    for runner in runners:
        progress(f"LTI 1.1: {runner.name}")
        n, elapsed, cpu = timed_loop(runner.call, [runner.prepare(f) for f in forms], args.seconds)
        note = "form pool ran out before the time did" if n == len(forms) else ""
        results.append(Result("lti11", runner.name, n, elapsed, cpu, note=note))


class _nullcontext:  # noqa: N801 - contextlib.nullcontext, typed loosely for the runners
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


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


def _table(title: str, rows: list[Result], baseline: str, width: int = 46) -> list[str]:
    base = next((r for r in rows if r.name == baseline), None)
    lines = [title, f"{'implementation':<{width}} {'validations/s':>13}  {'µs each':>8}  {'vs ' + baseline.split()[0]:>14}"]
    for r in rows:
        r.ratio = r.rate / base.rate if base and base.rate else None
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(f"{r.name:<{width}} {r.rate:>13,.0f}  {r.us_per_op:>8.1f}  {ratio:>14}")
        if r.note:
            lines.append(f"{'':<{width}}   ({r.note})")
    return lines


def report(results: list[Result], info: dict[str, Any]) -> str:
    lti13 = [r for r in results if r.section == "lti13"]
    lti11 = [r for r in results if r.section == "lti11"]
    parts = info["versions"]
    lines = [
        f"Python {parts['python']} on {info['cpu']}; one thread; {info['seconds']:g} s per timed loop",
        "  " + ", ".join(f"{k} {v}" for k, v in parts.items() if k != "python"),
        "",
    ]
    if lti13:
        size = info["lti13_token_bytes"] / 1000
        payload = info["lti13_payload_json_bytes"] / 1000
        lines += _table(
            f"LTI 1.3 id_token validation ({size:.1f} KB token, {payload:.1f} KB claims JSON, RS256 2048), single core",
            lti13,
            peers.Pylti1p3.name,
        )
        lines.append(f"  JWKS for ltiauthenticator served from 127.0.0.1 ({info['jwks_server']}); lti_core fetched it "
                     f"{info['lti_core_jwks_fetches']} time(s) in the whole run")
        lines.append("")
        core = next(r for r in lti13 if r.name == peers.LtiCore13.name)
        breakdown = {r.name: r for r in results if r.section == "lti13_breakdown"}
        rsa = breakdown.get("cryptography RSA verify alone")
        jose = breakdown.get("joserfc deserialize_compact + json.loads")
        if rsa and jose:
            total = core.us_per_op
            lines.append(f"Where lti_core's {total:.1f} µs per launch goes")
            lines.append(f"  {'RSA-2048 verify (cryptography, key loaded once)':<52} {rsa.us_per_op:>7.1f} µs  "
                         f"{100 * rsa.us_per_op / total:>5.1f}%")
            jose_only = jose.us_per_op - rsa.us_per_op
            lines.append(f"  {'joserfc compact parse + base64 + json.loads, on top':<52} {jose_only:>7.1f} µs  "
                         f"{100 * jose_only / total:>5.1f}%")
            rest = total - jose.us_per_op
            lines.append(f"  {'the rest: state, key cache, claims, nonce, Launch':<52} {rest:>7.1f} µs  "
                         f"{100 * rest / total:>5.1f}%")
            steps = info.get("lti_core_steps_us") or {}
            if steps:
                lines.append("  lti_core's own steps, timed one by one (µs each): "
                             + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()))
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each timed loop (default 2)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--only", choices=("lti13", "lti11"), help="run one section")
    parser.add_argument(
        "--jwks-server",
        choices=("process", "thread"),
        default="process",
        help="where ltiauthenticator's JWKS endpoint runs (default: a child process, so its CPU is not ours)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 10:
        parser.error("--seconds must be in (0, 10]: the tokens live 60 s")

    info: dict[str, Any] = {
        "versions": _versions(),
        "cpu": _cpu_model(),
        "seconds": args.seconds,
        "jwks_server": args.jwks_server,
    }
    results: list[Result] = []
    started = time.perf_counter()
    if args.only in (None, "lti13"):
        run_lti13(args, results, info)
    if args.only in (None, "lti11"):
        run_lti11(args, results, info)
    info["total_seconds"] = round(time.perf_counter() - started, 1)

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
