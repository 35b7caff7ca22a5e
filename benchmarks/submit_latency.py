"""Submit-to-first-metric latency on a warm local cluster, and cancel latency.

Starts a warm cluster (head + 1 worker node) in a throw-away workspace, then submits small runs
whose entry script connects to the cluster and logs one metric, and measures the time from the
``submit()`` call to that metric being readable from the tracking store. Goal: at most 3 s.
Then, with the warm cluster down, runs that sleep on a cluster started for them are canceled
with ``rlfleet runs cancel``: the time from the command to its return (the run CANCELED, its
cluster stopped). Goal: at most 10 s. (tests/runs/test_lifecycle.py checks that a cancel does
all of that promptly; on a quiet machine, this is the figure.)

    .venv/bin/python benchmarks/submit_latency.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlfleet import ComputeTarget, Experiment, RunSpec, RunStatus, Workspace
from rlfleet.compute.warm import cluster_down, cluster_up

ENTRY = """\
import ray
from rlfleet import Run

ray.init()
Run.get_context().log("first_metric", 1.0)
"""


SLEEPS = """\
import time

import ray
from rlfleet import Run

ray.init()
Run.get_context().log("started", 1.0)
time.sleep(600)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs (after one warm-up)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        ws.compute.create(ComputeTarget("head", cpus=1))
        ws.compute.create(ComputeTarget("workers", cpus=1, max_nodes=1))
        source = Path(tmp) / "src"
        source.mkdir()
        (source / "first_metric.py").write_text(ENTRY)
        spec = RunSpec(
            source_directory=str(source),
            entry_script="first_metric.py",
            compute_target="head",
            worker_configuration={"compute_target": "workers", "node_count": 1},
        )
        started = time.monotonic()
        cluster_up(ws, "head", worker="workers", nodes=1)
        print(f"warm cluster up in {time.monotonic() - started:.1f} s")
        client = ws.tracking.client
        experiment = Experiment(ws, "latency")
        latencies = []
        try:
            for index in range(args.runs + 1):
                t0 = time.monotonic()
                run = experiment.submit(spec)
                returned = time.monotonic() - t0
                while not client.get_run(run.id).data.metrics:
                    time.sleep(0.01)
                latency = time.monotonic() - t0
                status = run.wait_for_completion(timeout_s=120)
                assert status is RunStatus.COMPLETED, run.to_dict()
                label = "warm-up" if index == 0 else f"run {index}"
                print(
                    f"{label}: submit() returned in {returned:.2f} s, first metric at {latency:.2f} s"
                )
                if index:
                    latencies.append(latency)
        finally:
            cluster_down(ws)
        (source / "sleeps.py").write_text(SLEEPS)
        sleeper = RunSpec(
            source_directory=str(source), entry_script="sleeps.py", compute_target="head"
        )
        cancels = []
        for index in range(3):
            run = experiment.submit(sleeper)
            while "started" not in client.get_run(run.id).data.metrics:
                time.sleep(0.05)
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "rlfleet.cli.main", "runs", "cancel", run.id],
                           cwd=ws.root, check=True, capture_output=True)  # fmt: skip
            cancels.append(time.monotonic() - t0)
            assert run.status is RunStatus.CANCELED, run.to_dict()
            print(f"cancel {index + 1}: `rlfleet runs cancel` returned in {cancels[-1]:.2f} s")
    print(
        f"submit-to-first-metric over {len(latencies)} runs: median {statistics.median(latencies):.2f} s, "
        f"min {min(latencies):.2f} s, max {max(latencies):.2f} s (goal <= 3 s)"
    )
    print(
        f"cancel over {len(cancels)} runs: median {statistics.median(cancels):.2f} s, "
        f"max {max(cancels):.2f} s (goal <= 10 s)"
    )


if __name__ == "__main__":
    main()
