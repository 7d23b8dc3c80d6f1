"""Load: 50 clients for 60 s mixing points, matrix, neighbours and live inference on the real
server (`qkatlas serve`), while a separate process asks /healthz every 20 ms.

    python bench/load.py                              # MiniLM atlas (real weights from shared/models)
    python bench/load.py --duration 20 --clients 20   # shorter, on a busy machine
    python bench/load.py --model tiny-gpt2 --limit 24 # random-init tiny model: no shared weights needed
    python bench/load.py --server-path /tmp/old/backend   # the same load on another source tree

Bounded: a fixed duration (requests still open GRACE_S after it are cancelled and counted),
loopback only (the server listens on 127.0.0.1 and nothing else is contacted). Prints one
JSON object: per endpoint the status counts and p50/p99 (all answers, and 200s), the 5xx and
429 totals, /healthz p50/p99 idle and during the flood (client-observed, from a process of its
own), and the server's RSS before and after. Client and server share the machine: at 50
clients the client's own CPU use (httpx) is part of every client-observed figure, /healthz's
included; "server" is the server's own time to the response headers (its Server-Timing).
Before the flood every head's points and neighbours and the matrix are asked for once, as the
first page views would: the flood measures a warm server, not its first reads from disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from api import event_loop_run, free_port, real_atlas  # bench/api.py
from machine import recorded  # bench/machine.py
from qkatlas.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]
GRACE_S = 30
PROBE_EVERY_S = 0.02
SENTENCE = "The bank raised interest rates after the river flooded the low fields near the old mill. "
TEXTS = [SENTENCE[:50], SENTENCE * 3, SENTENCE * 8, SENTENCE * 11]  # ~12 to ~200 tokens
WEIGHTS = {"points": 3, "matrix": 1, "neighbours": 3, "live": 3}


# ---------------------------------------------------------------------------------------
# the server


def start_server(data_dir: Path, port: int, source: Path | None, log: Path) -> subprocess.Popen:
    import httpx

    env = {**os.environ, "QKATLAS_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    if source:
        env["PYTHONPATH"] = str(source)
    cmd = [sys.executable, "-m", "qkatlas", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=out)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if r.status_code == 200 and not r.json().get("warming"):
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


# ---------------------------------------------------------------------------------------
# /healthz from a process of its own


def probe(base: str, seconds: float, out) -> None:
    import httpx

    latencies, failures = [], 0
    deadline = time.perf_counter() + seconds
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                ok = http.get("/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            failures += not ok
            time.sleep(PROBE_EVERY_S)
    out.send((latencies, failures))


def start_probe(base: str, seconds: float):
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=probe, args=(base, seconds, send))
    proc.start()
    return proc, receive


def percentiles(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1)}


def health_summary(receive) -> dict:
    latencies, failures = receive.recv()
    return {**percentiles(latencies), "not_200": failures}


# ---------------------------------------------------------------------------------------
# the flood


def requests_for(atlas: Path):
    m = read_manifest(atlas)
    prefix = f"/api/atlases/{atlas.name}"

    def make(kind: str, rng: random.Random) -> tuple[str, str, dict | None]:
        layer, head = rng.randrange(m.layers), rng.randrange(m.heads)
        if kind == "points":
            return "GET", f"{prefix}/heads/{layer}/{head}/points?method=pca&dim=2", None
        if kind == "matrix":
            return "GET", f"{prefix}/matrix?method=pca&dim=2&max_points=2000", None
        if kind == "neighbours":
            return "GET", f"{prefix}/heads/{layer}/{head}/neighbours?token={rng.randrange(m.tokens)}&k=10", None
        return "POST", "/api/attention", {"atlas": atlas.name, "text": rng.choice(TEXTS), "layer": layer,
                                          "head": head, "scope": "layer"}

    return make


def warm_up(base: str, atlas: Path) -> float:
    """Every head's points and neighbours and the matrix, once: what the first page views read from disk."""
    import httpx

    m = read_manifest(atlas)
    prefix = f"/api/atlases/{atlas.name}"
    t0 = time.perf_counter()
    with httpx.Client(base_url=base, timeout=120) as http:
        http.get(f"{prefix}/matrix?method=pca&dim=2&max_points=2000").raise_for_status()
        for layer in range(m.layers):
            for head in range(m.heads):
                http.get(f"{prefix}/heads/{layer}/{head}/points?method=pca&dim=2").raise_for_status()
                http.get(f"{prefix}/heads/{layer}/{head}/neighbours?token=0&k=10").raise_for_status()
    return round(time.perf_counter() - t0, 1)


async def flood(base: str, make, clients: int, duration: float) -> dict:
    import httpx

    statuses: dict[str, Counter] = defaultdict(Counter)
    latencies: dict[str, list[float]] = defaultdict(list)
    ok_latencies: dict[str, list[float]] = defaultdict(list)
    server_latencies: dict[str, list[float]] = defaultdict(list)  # Server-Timing: the server's own time
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=GRACE_S + duration) as http:
        async def worker(seed: int):
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                kind = rng.choices(kinds, weights)[0]
                method, url, body = make(kind, rng)
                t0 = time.perf_counter()
                try:
                    r = await http.request(method, url, json=body)
                    await r.aread()
                    status = r.status_code
                    if "server-timing" in r.headers:
                        server_latencies[kind].append(float(r.headers["server-timing"].partition("dur=")[2]) / 1000)
                except httpx.HTTPError as e:
                    status = type(e).__name__
                seconds = time.perf_counter() - t0
                statuses[kind][status] += 1
                latencies[kind].append(seconds)
                if status == 200:
                    ok_latencies[kind].append(seconds)

        tasks = [asyncio.create_task(worker(i)) for i in range(clients)]
        done, pending = await asyncio.wait(tasks, timeout=duration + GRACE_S)
        for task in pending:
            task.cancel()
    out = {kind: {"statuses": {str(k): v for k, v in sorted(statuses[kind].items(), key=str)},
                  "all": percentiles(latencies[kind]), "ok": percentiles(ok_latencies[kind]),
                  "server": percentiles(server_latencies[kind])}
           for kind in kinds}
    every = Counter()
    for kind in kinds:
        every.update(statuses[kind])
    out["totals"] = {"requests": sum(every.values()), "5xx": sum(v for k, v in every.items()
                                                                 if isinstance(k, int) and k >= 500),
                     "429": every[429], "client_errors_or_timeouts": sum(v for k, v in every.items()
                                                                         if not isinstance(k, int)),
                     "cancelled_at_the_end": len(pending)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT / ".cache" / "bench-load-atlases")
    p.add_argument("--model", default="minilm", help="catalog model of the atlas (built once, PCA)")
    p.add_argument("--limit", type=int, default=120, help="sentences of the default corpus")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of flood")
    p.add_argument("--idle", type=float, default=3.0, help="seconds of /healthz alone before the flood")
    p.add_argument("--server-path", type=Path, help="serve from this source tree (its backend/ folder) instead")
    args = p.parse_args()

    atlas = real_atlas(args.data_dir / args.model, args.model, args.limit)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = args.data_dir / "server.log"
    server = start_server(atlas.parent, port, args.server_path, log)
    result: dict = {"atlas": atlas.name, "clients": args.clients, "duration_s": args.duration, "mix": WEIGHTS,
                    "server": str(args.server_path or "this checkout"), "server_log": str(log)}
    machine: dict = {}
    try:
        with recorded(machine):
            proc, receive = start_probe(base, args.idle)
            result["healthz_idle"] = health_summary(receive)
            proc.join()
            result["server_rss_mb_before"] = rss_mb(server.pid)
            result["warm_up_seconds"] = warm_up(base, atlas)
            proc, receive = start_probe(base, args.duration)
            result["flood"] = event_loop_run(flood(base, requests_for(atlas), args.clients, args.duration))
            result["healthz_during_flood"] = health_summary(receive)
            proc.join()
            result["server_rss_mb_after"] = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    result |= machine
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
