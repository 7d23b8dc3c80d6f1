"""API latency and throughput: points, matrix and neighbours on the real server, against
baselines measured in the same run, so the figures read as ratios.

    python bench/api.py                               # synthetic 12x12-head atlas, 20k points per head
    python bench/api.py --tokens 2000 --duration 1    # quicker
    python bench/api.py --model minilm --limit 537    # a real MiniLM atlas (capture + PCA, ~1 min)

Starts `uvicorn qkatlas.api.app:create_app --factory` in a subprocess on a free loopback port
and calls it from httpx.AsyncClient workers (1, 10 and 50 at once), each scenario bounded in
time and in requests; nothing but 127.0.0.1 is contacted. Client and server share the
machine, so at 10 and 50 clients the figures include the client's own CPU use (httpx spends
more CPU per request than the server): server_p50_ms/server_p99_ms are the server's own time
to the response headers, from its Server-Timing header. Baselines:
  points     the same array as JSON (format=json): what a JSON-only API sends;
  matrix     the matrix as a browser without it would get it: every head's points as JSON
             (warm is also timed with a raw-socket client reading 4 MiB at a time, since
             httpx reads a 23 MB body 64 KiB at a time in Python);
  neighbours the naive computation in-process with the head already in memory as float32
             (as the server holds it): score every key, full argsort; no HTTP at all, so the
             ratio understates what the server's top-k saves over a naive service.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from qkatlas.manifest import read_manifest
from machine import recorded  # bench/machine.py
from synthetic import synthetic_atlas  # bench/synthetic.py

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------
# the atlas


def real_atlas(data_dir: Path, model: str, limit: int) -> Path:
    from qkatlas.build import build
    from qkatlas.settings import Settings

    return build(Settings(data_dir=data_dir), model, "default", limit=limit, methods=["pca"], dims=[2, 3])


# ---------------------------------------------------------------------------------------
# the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "QKATLAS_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "uvicorn", "qkatlas.api.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


# ---------------------------------------------------------------------------------------
# load generation


def stats(latencies: list[float], seconds: float, server_ms: list[float] | None = None) -> dict:
    """Client-observed p50/p99 and requests/s; with server_ms, the server's own p50/p99 (Server-Timing)."""
    ms = np.asarray(latencies) * 1000
    out = {"requests": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 2),
           "p99_ms": round(float(np.percentile(ms, 99)), 2), "rps": round(len(ms) / seconds, 1)}
    if server_ms:
        out |= {"server_p50_ms": round(float(np.percentile(server_ms, 50)), 2),
                "server_p99_ms": round(float(np.percentile(server_ms, 99)), 2)}
    return out


def server_time(response) -> float:
    """The `app;dur=` of the Server-Timing header, in ms."""
    return float(response.headers["server-timing"].partition("dur=")[2])


async def load(base: str, make_url, clients: int, duration: float, max_requests: int) -> dict:
    """`clients` workers, each sending one request at a time until the time or the count runs out."""
    import httpx

    latencies: list[float] = []
    server_ms: list[float] = []
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        async def worker(seed: int):
            rng = random.Random(seed)
            while time.perf_counter() < deadline and len(latencies) < max_requests:
                t0 = time.perf_counter()
                r = await http.get(make_url(rng))
                await r.aread()
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{r.url}: {r.status_code} {r.text[:200]}")
                server_ms.append(server_time(r))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        return stats(latencies, time.perf_counter() - t0, server_ms)


async def raw_socket_gets(port: int, path: str, repeat: int) -> dict:
    """Time to the last byte of `repeat` GETs on one keep-alive connection, read in 4 MiB chunks:
    what a fast client (a browser) sees for a large body, without httpx's 64 KiB reads in Python."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n\r\n".encode()
    latencies = []
    t_all = time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        writer.write(request)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = int(head.split("content-length:")[1].split("\r\n")[0])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - t0)
    writer.close()
    return stats(latencies, time.perf_counter() - t_all)


def head_in_memory(atlas: Path, layer: int, head: int) -> tuple[np.ndarray, np.ndarray]:
    """(q, k) of one head as float32 (tokens, head_dim), loaded once: the naive baseline's state."""
    q = np.load(atlas / "vectors" / f"q_L{layer:02d}.npy")[:, head].astype(np.float32)
    q += np.load(atlas / "vectors" / f"qmean_L{layer:02d}.npy")[head]
    k = np.load(atlas / "vectors" / f"k_L{layer:02d}.npy")[:, head].astype(np.float32)
    return q, k + np.load(atlas / "vectors" / f"kmean_L{layer:02d}.npy")[head]


def naive_neighbours(q: np.ndarray, keys: np.ndarray, token: int, k: int = 10) -> list[int]:
    return np.argsort(-(keys @ q[token]))[:k].tolist()


def timed_loop(fn, duration: float, max_calls: int) -> dict:
    latencies = []
    deadline = time.perf_counter() + duration
    t0 = time.perf_counter()
    while time.perf_counter() < deadline and len(latencies) < max_calls:
        t = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - t)
    return stats(latencies, time.perf_counter() - t0)


async def run(args, atlas: Path, base: str) -> dict:
    import httpx

    m = read_manifest(atlas)
    L, H, n = m.layers, m.heads, m.tokens
    prefix = f"/api/atlases/{atlas.name}"
    out: dict = {"atlas": {"id": atlas.name, "layers": L, "heads": H, "tokens": n, "points_per_head": 2 * n,
                           "head_dim": m.head_dim}}
    conc = [int(c) for c in args.clients.split(",")]

    # matrix: the first call after start is cold (files read, array assembled), then warm
    matrix_url = f"{prefix}/matrix?method=pca&dim=2&max_points={args.matrix_points}"
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        t0 = time.perf_counter()
        r = await http.get(matrix_url)
        cold = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        out["matrix"] = {"max_points": args.matrix_points, "points": int(r.headers["x-points"]),
                         "bytes": len(r.content), "cold_ms": round(cold * 1000, 1),
                         "cold_server_ms": round(server_time(r), 1)}
    out["matrix"]["warm"] = await load(base, lambda _rng: matrix_url, 1, args.duration, 200)
    out["matrix"]["warm_raw_socket_client"] = await raw_socket_gets(int(base.rsplit(":", 1)[1]), matrix_url, 20)

    # baseline: every head's points as JSON, 10 requests at a time
    heads_json = [f"{prefix}/heads/{l}/{h}/points?format=json" for l in range(L) for h in range(H)]
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(10)

        async def one(url):
            async with sem:
                return len((await http.get(url)).content)

        sizes = await asyncio.gather(*(one(u) for u in heads_json))
        baseline = time.perf_counter() - t0
    out["matrix"]["baseline_every_head_json_ms"] = round(baseline * 1000, 1)
    out["matrix"]["baseline_bytes"] = int(sum(sizes))

    # points of a random head, binary vs JSON
    points = lambda rng: f"{prefix}/heads/{rng.randrange(L)}/{rng.randrange(H)}/points"
    points_json = lambda rng: points(rng) + "?format=json"
    out["points"] = {f"c{c}": await load(base, points, c, args.duration, args.max_requests) for c in conc}
    out["points_json_baseline"] = {f"c{c}": await load(base, points_json, c, args.duration, args.max_requests)
                                   for c in conc}

    # neighbours by attention on a few heads, warmed first (the first call converts the head to float32)
    heads = [(layer % L, (3 * layer + 1) % H) for layer in range(args.neighbour_heads)]
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        t0 = time.perf_counter()
        await http.get(f"{prefix}/heads/{heads[0][0]}/{heads[0][1]}/neighbours?token=0&k=10&by=attention")
        out["neighbours_first_call_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        for layer, head in heads[1:]:
            await http.get(f"{prefix}/heads/{layer}/{head}/neighbours?token=0&k=10&by=attention")

    def neighbour_url(rng):
        layer, head = rng.choice(heads)
        return f"{prefix}/heads/{layer}/{head}/neighbours?token={rng.randrange(n)}&side=query&k=10&by=attention"

    out["neighbours"] = {f"c{c}": await load(base, neighbour_url, c, args.duration, args.max_requests) for c in conc}
    rng = random.Random(0)
    in_memory = {(layer, head): head_in_memory(atlas, layer, head) for layer, head in heads}
    out["neighbours_naive_inprocess_baseline"] = timed_loop(
        lambda: naive_neighbours(*in_memory[rng.choice(heads)], rng.randrange(n)), args.duration, 2000)

    c10 = lambda section: out[section].get("c10", next(iter(out[section].values())))
    out["ratios"] = {
        "points_json_over_binary_p50_c10": round(c10("points_json_baseline")["p50_ms"] / c10("points")["p50_ms"], 1),
        "matrix_baseline_over_warm_p50": round(out["matrix"]["baseline_every_head_json_ms"]
                                               / out["matrix"]["warm"]["p50_ms"], 1),
        "matrix_baseline_over_cold": round(out["matrix"]["baseline_every_head_json_ms"] / out["matrix"]["cold_ms"], 1),
        "neighbours_naive_over_api_p50_c1": round(out["neighbours_naive_inprocess_baseline"]["p50_ms"]
                                                  / out["neighbours"][f"c{conc[0]}"]["p50_ms"], 2),
    }
    out["targets"] = {
        "matrix_cold_ms<1000": out["matrix"]["cold_ms"] < 1000,
        "matrix_warm_p50_ms<100": out["matrix"]["warm"]["p50_ms"] < 100,
        "matrix_warm_p50_ms<100_raw_socket_client": out["matrix"]["warm_raw_socket_client"]["p50_ms"] < 100,
        "points_p99_ms<20_at_c10": c10("points")["p99_ms"] < 20,
        "neighbours_p99_ms<30_at_c10": c10("neighbours")["p99_ms"] < 30,
        "points_server_p99_ms<20_at_c10": c10("points")["server_p99_ms"] < 20,
        "neighbours_server_p99_ms<30_at_c10": c10("neighbours")["server_p99_ms"] < 30,
    }
    return out


def event_loop_run(coroutine):
    """uvloop when installed (uvicorn[standard] brings it): the client's own overhead is smaller."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT / ".cache" / "bench-atlases")
    p.add_argument("--model", help="build a real atlas of this catalog model instead of a synthetic one")
    p.add_argument("--limit", type=int, default=537, help="sentences of the default corpus (with --model)")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--tokens", type=int, default=10_000, help="tokens per head (points are twice as many)")
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--matrix-points", type=int, default=20_000)
    p.add_argument("--clients", default="1,10,50")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per scenario")
    p.add_argument("--max-requests", type=int, default=5000, help="requests per scenario at most")
    p.add_argument("--neighbour-heads", type=int, default=4)
    args = p.parse_args()

    t0 = time.perf_counter()
    if args.model:
        atlas = real_atlas(args.data_dir, args.model, args.limit)
    else:
        name = f"synthetic-L{args.layers}H{args.heads}-t{args.tokens}-d{args.head_dim}"
        atlas = synthetic_atlas(args.data_dir / name, args.layers, args.heads, args.tokens, args.head_dim)
    prepare = time.perf_counter() - t0
    port = free_port()
    server = start_server(args.data_dir, port)
    machine: dict = {}
    try:
        with recorded(machine):  # other work on the machine skews the client-side figures
            result = event_loop_run(run(args, atlas, f"http://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait(10)
    result |= machine
    result["atlas"]["prepare_seconds"] = round(prepare, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
