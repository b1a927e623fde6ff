"""Access-token verification inside a service, JWKS cached: verifications per second on one core.

Baseline in the same run: PyJWT decoding the same token with the key already in hand (the
signature check and claim parsing every verifier pays). The kit adds the header checks, the
cache look-up and the claims model on top; the ratio says what that costs.

    .venv/bin/python bench/token_verify.py [--seconds 5]

Target (identity issue): >= 5,000 verifications/s on one core, judged by CPU time per
verification (the wall-clock rate is printed too; it is lower on a shared, loaded machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time

import httpx
import jwt

from tongban_kit.auth import JwksCache, verify_access_token
from tongban_kit.auth.testing import LocalIssuer


def _rate(label: str, seconds: float, step) -> float:  # type: ignore[no-untyped-def]
    """Wall-clock rate, and the rate the CPU time says one free core would reach (on a
    shared machine the process gets only part of its core; the CPU time is what it used)."""
    count, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for _ in range(100):
            step()
        count += 100
    rate = count / (time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu_started) * 1e6 / count
    print(
        f"  {label:<44} {rate:>10,.0f} /s wall   {cpu_us:6.1f} µs CPU each "
        f"= {1e6 / cpu_us:,.0f}/s on a free core"
    )
    return 1e6 / cpu_us


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says

    with LocalIssuer() as issuer:
        async with httpx.AsyncClient() as http:
            jwks = JwksCache(issuer.jwks_url, http)
            token = issuer.mint(scope="registration:apply", acr="substantial")
            await verify_access_token(
                token, jwks=jwks, issuer=issuer.issuer, audience=issuer.audience
            )  # warms the cache: one fetch
            public_key = issuer.key.private_key.public_key()
            print(f"token: {len(token)} bytes, ES256, JWKS fetched {issuer.requests} time(s)")
            print(f"machine: {platform.python_version()}, pinned to 1 of {os.cpu_count()} cores")

            def baseline() -> None:
                jwt.decode(
                    token,
                    public_key,
                    algorithms=["ES256"],
                    audience=issuer.audience,
                    issuer=issuer.issuer,
                )

            def kit() -> None:
                _drive(
                    verify_access_token(
                        token, jwks=jwks, issuer=issuer.issuer, audience=issuer.audience
                    )
                )

            base = _rate("baseline: PyJWT decode, key in hand", args.seconds, baseline)
            ours = _rate("kit: verify_access_token, JWKS cached", args.seconds, kit)
            load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"\nratio kit / baseline (CPU): {ours / base:.2f}; load average {load}")
            print(
                f"target >= 5,000/s on one core (by CPU time): {'PASS' if ours >= 5000 else 'FAIL'}"
            )
            print(f"JWKS requests during the run: {issuer.requests}")


def _drive(coro) -> None:  # type: ignore[no-untyped-def]
    """Run a coroutine that never awaits real I/O (the cache is warm) without a loop hop."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("verification awaited I/O: the JWKS cache was not warm")


if __name__ == "__main__":
    asyncio.run(main())
