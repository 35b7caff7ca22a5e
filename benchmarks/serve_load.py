"""Load on the serving endpoint: many concurrent clients on loopback, bounded in time.

    .venv/bin/python benchmarks/serve_load.py                       # CartPole, ~1.5 min
    .venv/bin/python benchmarks/serve_load.py --clients 64 --seconds 20 --batch 64

Trains a small CartPole policy in this process (no Ray), deploys its checkpoint the way
``rlfleet deploy`` does (a local Ray head with Ray Serve on 127.0.0.1, a throwaway workspace),
then for each phase runs ``--clients`` threads, each with its own keep-alive HTTP session,
posting to ``/act`` back to back for ``--seconds``:

* single: ``{"observation": [...]}`` per request;
* batched: ``{"observations": [[...] x --batch]}`` per request.

Prints requests/s, observations/s and p50/p99 latency per phase, and a JSON line at the end.
Client and server share this machine's cores, so the figures are a floor for a remote client.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

from rlfleet import Workspace
from rlfleet.deploy.deployment import Deployment
from rlfleet.impala.config import ImpalaConfig, StopConfig
from rlfleet.impala.loop import train
from rlfleet.impala.presets import CARTPOLE


def train_checkpoint(directory: Path) -> Path:
    config = ImpalaConfig.from_dict({**CARTPOLE, "num_workers": 0})
    train("CartPole-v1", config, StopConfig(training_iteration=3), checkpoint_dir=directory)
    return sorted(directory.glob("checkpoint_*.pt"))[-1]


def load(url: str, body: bytes, clients: int, seconds: float) -> list[float]:
    """Latencies (s) of every request answered 200 during ``seconds``; raises on any other."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def client(index: int) -> None:
        session = requests.Session()
        headers = {"Content-Type": "application/json"}
        start.wait()
        while time.perf_counter() < deadline[0]:
            sent = time.perf_counter()
            response = session.post(f"{url}/act", data=body, headers=headers, timeout=30)
            if response.status_code != 200:
                errors.append(f"{response.status_code}: {response.text[:200]}")
                return
            latencies[index].append(time.perf_counter() - sent)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    deadline.append(time.perf_counter() + seconds)
    start.wait()
    for thread in threads:
        thread.join(seconds + 60)
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return [value for per_client in latencies for value in per_client]


def report(name: str, latencies: list[float], seconds: float, per_request: int) -> dict:
    ordered = sorted(latencies)
    result = {
        "phase": name,
        "requests": len(ordered),
        "requests_per_s": round(len(ordered) / seconds, 1),
        "observations_per_s": round(len(ordered) * per_request / seconds, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
    }
    print(
        f"{name:8s} {result['requests_per_s']:8.1f} req/s  {result['observations_per_s']:9.1f} "
        f"obs/s  p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=32, help="observations per batched request")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="rlfleet-serve-load-") as tmp:
        root = Path(tmp)
        checkpoint = train_checkpoint(root / "checkpoints")
        workspace = Workspace.init(root / "ws")
        deployment = Deployment(workspace, replicas=args.replicas, host="127.0.0.1", port=args.port)
        url = deployment.start(checkpoint, run_id=None, token=None)
        try:
            single = json.dumps({"observation": rng.normal(size=4).tolist()}).encode()
            batched = json.dumps({"observations": rng.normal(size=(args.batch, 4)).tolist()})
            load(url, single, args.clients, 3.0)  # warm-up: replicas, connections, batching
            results = [
                report("single", load(url, single, args.clients, args.seconds), args.seconds, 1),
                report(
                    "batched",
                    load(url, batched.encode(), args.clients, args.seconds),
                    args.seconds,
                    args.batch,
                ),
            ]
        finally:
            deployment.stop()
    print(json.dumps({"clients": args.clients, "replicas": args.replicas, "results": results}))


if __name__ == "__main__":
    main()
