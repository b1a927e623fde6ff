"""Gateway overhead: the same 1 KB JSON GET direct, through the Tongban gateway, through nginx.

    .venv/bin/python bench/gateway/run.py            # ~2 min at defaults
    .venv/bin/python bench/gateway/run.py --duration 5 --connections 64

One invocation starts the service (``service.py``, one uvicorn worker), the gateway (one uvicorn
worker, as the node launcher starts it, with token checks, a rate limit, tracing, metrics and
the JSON access log all on) and nginx (one worker, a plain reverse proxy with upstream
keep-alive), then loads each path with wrk (``-t1``, keep-alive connections) and prints:

* throughput direct, through the gateway and through nginx; R = gateway ÷ direct (target
  ≥ 0.75) and gateway ÷ nginx (target ≥ 0.75);
* added latency at half of direct saturation (wrk's ``delay()`` paces the requests): p50 and
  p99 through the gateway minus direct (targets ≤ 1 ms and ≤ 5 ms);
* for every run, the CPU time (user + system, ``psutil``) the serving process spent per
  request, and the load average: on a shared machine the number to optimise, since the
  wall-clock ratios move with everyone else's load. ``--cpu-only`` measures just the gateway's.

wrk and nginx are Debian packages (``apt-get install wrk nginx-light``). Without wrk the script
says so and stops; without nginx it skips that comparison. The exit code is 0 when every target
measured was met.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.infra import free_port

HERE = Path(__file__).resolve().parent
PATH = "/v1/records/91440300MA5FXXXX0X"

NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream service {{ server 127.0.0.1:{service_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://service;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

ROUTES = """
rate_limits:
  bench: {{rate_per_s: 1000000, burst: 1000000}}
upstreams:
  - name: bench
    url: http://127.0.0.1:{service_port}
    rate_limit: bench
"""

PACED = """
-- {connections} connections, each waiting {delay_ms} ms between requests: about {rate}/s.
function delay()
  return {delay_ms}
end
"""


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_us: float = 0.0  # CPU time of the server process (user + system) per request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="saturation runs per path (best)")
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="only the gateway's CPU per request (a paced run at --rate), for quick iteration",
    )
    parser.add_argument(
        "--rate", type=float, default=1000, help="requests/s for --cpu-only (0: saturated)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (Debian), then run again.")
        return 2
    nginx = shutil.which("nginx")
    if nginx is None and not args.cpu_only:
        print("nginx is not installed (apt-get install nginx-light): skipping that comparison.")

    with tempfile.TemporaryDirectory(prefix="tongban-bench-gw-") as tmp_dir:
        tmp = Path(tmp_dir)
        with contextlib.ExitStack() as stack:
            issuer = stack.enter_context(LocalIssuer())
            token = issuer.mint(sub="bench-person", exp=int(time.time()) + 3600)
            service_port = free_port()
            service = f"http://127.0.0.1:{service_port}"
            servers = {"direct": (service + PATH, stack.enter_context(_service(service_port, tmp)))}
            gateway, pid = stack.enter_context(_gateway(service_port, issuer, tmp))
            servers["gateway"] = (gateway + "/api/bench" + PATH, pid)
            if args.cpu_only:
                _check(servers["gateway"][0], token)
                return _cpu_only(servers["gateway"], token, args, tmp)
            bare, pid = stack.enter_context(_bare(service, tmp))
            servers["bare"] = (bare + PATH, pid)
            if nginx:
                url, pid = stack.enter_context(_nginx(nginx, service_port, tmp))
                servers["nginx"] = (url + PATH, pid)
            for url, _ in servers.values():
                _check(url, token)

            print(f"wrk -t1 -c{args.connections} -d{args.duration}s, best of {args.rounds}")
            print("  (CPU: the proxy's own process, or the service's for direct, per request)")
            saturated: dict[str, Load] = {}
            for _ in range(args.rounds):
                for name, (url, pid) in servers.items():
                    load = _wrk(url, token, args.duration, args.connections, pid=pid)
                    _print(name, load)
                    if name not in saturated or load.rps > saturated[name].rps:
                        saturated[name] = load

            half = saturated["direct"].rps / 2
            print(f"paced at {half:.0f} req/s (half of direct saturation)")
            paced = {}
            for name in ("direct", "gateway"):
                url, pid = servers[name]
                paced[name] = _wrk(
                    url, token, args.duration, args.connections, rate=half, tmp=tmp, pid=pid
                )
                _print(name, paced[name])

    return _report(saturated, paced)


def _print(name: str, load: Load) -> None:
    print(
        f"  {name:8} {load.rps:8.0f} req/s  p50 {load.p50_ms:6.2f} ms  "
        f"p99 {load.p99_ms:6.2f} ms  errors {load.errors}  CPU {load.cpu_us:5.0f} µs/req  "
        f"load {os.getloadavg()[0]:.1f}"
    )


def _cpu_only(server: tuple[str, int], token: str, args: argparse.Namespace, tmp: Path) -> int:
    """The gateway's CPU per request at a paced rate, a few runs: the number to optimise on a
    shared machine, where wall-clock rates move with everyone else's load."""
    url, pid = server
    pace = f"paced at {args.rate:.0f}/s" if args.rate > 0 else "saturated"
    print(f"gateway CPU per proxied request, {pace}, {args.duration} s runs")
    for _ in range(args.rounds):
        rate = args.rate if args.rate > 0 else None
        load = _wrk(url, token, args.duration, args.connections, rate=rate, tmp=tmp, pid=pid)
        _print("gateway", load)
    return 0


def _report(saturated: dict[str, Load], paced: dict[str, Load]) -> int:
    r = saturated["gateway"].rps / saturated["direct"].rps
    added_p50 = paced["gateway"].p50_ms - paced["direct"].p50_ms
    added_p99 = paced["gateway"].p99_ms - paced["direct"].p99_ms
    results = [("R = gateway / direct", r, r >= 0.75, "≥ 0.75")]
    bare = saturated["gateway"].rps / saturated["bare"].rps
    results.append(("gateway / bare proxy", bare, True, "(info)"))
    if "nginx" in saturated:
        vs = saturated["gateway"].rps / saturated["nginx"].rps
        results.append(("gateway / nginx", vs, vs >= 0.75, "≥ 0.75"))
    results.append(("added p50 (ms)", added_p50, added_p50 <= 1.0, "≤ 1 ms"))
    results.append(("added p99 (ms)", added_p99, added_p99 <= 5.0, "≤ 5 ms"))
    print()
    print("results")
    for label, value, met, target in results:
        print(f"  {label:22} {value:7.2f}   target {target:7}  {'met' if met else 'NOT met'}")
    for name, load_ in saturated.items():
        print(f"  CPU per request, {name:8} {load_.cpu_us:5.0f} µs (at saturation)")
    for name, load_ in paced.items():
        print(f"  CPU per request, {name:8} {load_.cpu_us:5.0f} µs (paced)")
    load = os.getloadavg()
    print(
        f"  machine: {os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"Python {platform.python_version()}, {platform.platform()}"
    )
    print(
        "  gateway features on: edge token check (ES256, verified-token cache), rate limit "
        "(in-process buckets), request id + traceparent, metrics, JSON access log"
    )
    return 0 if all(met for _, _, met, _ in results) else 1


def _wrk(
    url: str,
    token: str,
    duration: int,
    connections: int,
    *,
    rate: float | None = None,
    tmp: Path | None = None,
    pid: int,
) -> Load:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    command += ["-H", f"Authorization: Bearer {token}"]
    if rate is not None:
        assert tmp is not None
        delay_ms = max(1, round(connections * 1000 / rate))
        script = tmp / "paced.lua"
        script.write_text(PACED.format(connections=connections, delay_ms=delay_ms, rate=int(rate)))
        command += ["-s", str(script)]
    before = _cpu_s(pid)
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    cpu_s = _cpu_s(pid) - before
    requests = int(re.search(r"(\d+) requests in", output)[1])  # type: ignore[index]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non2xx[1]) if non2xx else 0
    p50, p99 = _percentile(output, "50%"), _percentile(output, "99%")
    return Load(rps, p50, p99, errors, requests, cpu_s * 1e6 / max(requests, 1))


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of the process and its children (nginx's worker)."""
    process = psutil.Process(pid)
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        times = each.cpu_times()
        total += times.user + times.system
    return total


def _percentile(output: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no {label} latency in wrk's output:\n{output}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]
    return float(match[1]) * scale


def _check(url: str, token: str) -> None:
    response = httpx.get(url, headers={"authorization": f"Bearer {token}"}, timeout=5)
    if response.status_code != 200 or len(response.content) < 1000:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str], log: Path, ready: str) -> Iterator[int]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(ready, timeout=1).status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[:4]} did not start; see {log}")
                time.sleep(0.2)
            yield process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def _service(port: int, tmp: Path) -> contextlib.AbstractContextManager[int]:
    command = [sys.executable, "-m", "uvicorn", "service:app", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning", "--app-dir", str(HERE)]
    ready = f"http://127.0.0.1:{port}{PATH}"
    return _process(command, dict(os.environ), tmp / "service.log", ready)


@contextlib.contextmanager
def _gateway(service_port: int, issuer: LocalIssuer, tmp: Path) -> Iterator[tuple[str, int]]:
    routes = tmp / "routes.yaml"
    routes.write_text(ROUTES.format(service_port=service_port))
    port = free_port()
    env = {
        **os.environ,
        "TONGBAN_TOKEN_ISSUER": issuer.issuer,
        "TONGBAN_TOKEN_AUDIENCE": issuer.audience,
        "TONGBAN_JWKS_URL": issuer.jwks_url,
        "TONGBAN_LOG_FORMAT": "json",
        "TONGBAN_LOG_LEVEL": "INFO",  # one access line per request, to the log file
        "TONGBAN_GATEWAY_ROUTES_FILE": str(routes),
    }
    command = [sys.executable, "-m", "uvicorn", "tongban_gateway.main:create_app", "--factory"]
    command += ["--port", str(port), "--no-access-log", "--no-server-header"]
    with _process(command, env, tmp / "gateway.log", f"http://127.0.0.1:{port}/readyz") as pid:
        yield f"http://127.0.0.1:{port}", pid


@contextlib.contextmanager
def _bare(service: str, tmp: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bare_proxy:app", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning", "--app-dir", str(HERE)]
    env = {**os.environ, "BARE_UPSTREAM": service}
    with _process(command, env, tmp / "bare.log", f"http://127.0.0.1:{port}{PATH}") as pid:
        yield f"http://127.0.0.1:{port}", pid


@contextlib.contextmanager
def _nginx(nginx: str, service_port: int, tmp: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, service_port=service_port, port=port))
    command = [nginx, "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"]
    ready = f"http://127.0.0.1:{port}{PATH}"
    with _process(command, dict(os.environ), tmp / "nginx.log", ready) as pid:
        yield f"http://127.0.0.1:{port}", pid


if __name__ == "__main__":
    sys.exit(main())
