"""What tracking costs the trainer: IMPALA on Pong with and without rlfleet's tracking.

On one warm local cluster (head + 1 worker node), alternately:
- tracked: `rlfleet train` — a platform run: its supervisor, the tracker actor, metrics into
  MLflow each iteration, logs uploaded every few seconds, checkpoints as artifacts;
- untracked: the same trainer and config submitted straight to Ray's Job API, metrics to a CSV
  file, no rlfleet run at all.
Each trainer measures its own sampling throughput (agent steps/s) per iteration; the figure is
the mean over the iterations after the first. Goal: tracking costs at most 2 %.

    .venv/bin/python benchmarks/tracking_overhead.py [--seconds 90] [--rounds 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from rlfleet import ComputeTarget, RunStatus, Workspace
from rlfleet.compute.cluster import LocalCluster
from rlfleet.compute.warm import cluster_down, cluster_up
from rlfleet.impala.presets import PONG_2CPU
from rlfleet.train import submit_training

ENV = "PongNoFrameskip-v4"
UNTRACKED = """\
import json, sys
import ray
from rlfleet.impala.config import ImpalaConfig, StopConfig
from rlfleet.impala.loop import train
from rlfleet.impala.sinks import CsvMetricSink

config, stop = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ray.init()
train({env!r}, ImpalaConfig.from_dict(config), StopConfig.from_dict(stop),
      metric_sink=CsvMetricSink("metrics.csv"), checkpoint_dir="checkpoints")
print("THROUGHPUT_CSV", __import__("pathlib").Path("metrics.csv").read_text(), flush=True)
"""


def tracked(ws: Workspace, stop: dict) -> list[float]:
    run = submit_training(ws, env=ENV, config=json.dumps(PONG_2CPU), stop=json.dumps(stop))
    assert run.wait_for_completion(timeout_s=stop["time_total_s"] + 300) is RunStatus.COMPLETED
    return [p.value for p in run.get_metric_history("sample_throughput")]


def untracked(cluster: LocalCluster, source: Path, stop: dict) -> list[float]:
    from ray.job_submission import JobSubmissionClient

    os.environ.update(cluster.auth_env)
    client = JobSubmissionClient(cluster.dashboard_url)
    job = client.submit_job(
        entrypoint=f"python untracked.py '{json.dumps(PONG_2CPU)}' '{json.dumps(stop)}'",
        runtime_env={"working_dir": str(source)},
    )
    while not client.get_job_status(job).is_terminal():
        time.sleep(1)
    logs = client.get_job_logs(job)
    assert "THROUGHPUT_CSV" in logs, logs[-2000:]
    rows = csv.DictReader(logs.split("THROUGHPUT_CSV", 1)[1].strip().splitlines())
    return [float(row["sample_throughput"]) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90, help="training time of each run")
    parser.add_argument("--rounds", type=int, default=2, help="untracked/tracked pairs")
    args = parser.parse_args()
    stop = {"time_total_s": args.seconds}
    figures: dict[str, list[float]] = {"untracked": [], "tracked": []}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        ws.compute.create(ComputeTarget("head", cpus=1))
        ws.compute.create(ComputeTarget("workers", cpus=2, min_nodes=1, max_nodes=1))
        source = Path(tmp) / "untracked"
        source.mkdir()
        (source / "untracked.py").write_text(UNTRACKED.format(env=ENV))
        cluster = cluster_up(ws, "head", worker="workers", nodes=1)
        try:
            for round_index in range(args.rounds):
                for kind in ("untracked", "tracked"):
                    values = (
                        tracked(ws, stop) if kind == "tracked" else untracked(cluster, source, stop)
                    )
                    mean = statistics.mean(values[1:]) if len(values) > 1 else float("nan")
                    figures[kind].append(mean)
                    print(
                        f"round {round_index + 1} {kind:9s}: {mean:,.0f} agent steps/s ({len(values)} iterations)"
                    )
        finally:
            cluster_down(ws)
    off, on = statistics.mean(figures["untracked"]), statistics.mean(figures["tracked"])
    print(
        f"untracked {off:,.0f} steps/s, tracked {on:,.0f} steps/s: tracking costs {100 * (off - on) / off:.1f} % (goal <= 2 %)"
    )


if __name__ == "__main__":
    main()
