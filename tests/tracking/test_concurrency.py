"""Eight processes log at once into one workspace's embedded SQLite store: nothing lost, nothing
doubled, no "database is locked"."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from support import wait_until

from rlfleet import Workspace

PROCESSES = 8
STEPS = 60  # two metrics: 120 points per process, in 90 writes
# Each process makes its own run (``Run.get_context()`` outside a submitted run), waits for the
# start signal so that all of them write at the same moment, then writes once per step.
LOGGER = """
import sys, time
from pathlib import Path
from rlfleet import Run

index, steps, go = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
run = Run.get_context()
print(run.id, flush=True)
(go.parent / f"ready-{index}").touch()
while not go.exists():
    time.sleep(0.01)
for step in range(steps):
    if step % 2:
        run.log("value", index * 100_000 + step, step=step)
        run.log("negated", -step, step=step)
    else:
        run.log_metrics({"value": index * 100_000 + step, "negated": -step}, step=step)
run.flush()
"""


def _start_loggers(workspace: Workspace, go: Path) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", LOGGER, str(i), str(STEPS), str(go)],
            cwd=workspace.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]


def test_eight_processes_log_at_once_into_sqlite(workspace, tmp_path):
    """The store is created by the first of eight processes starting together (as after an SDK
    ``Workspace.init``), then all eight log 60 steps of two metrics (``log`` and ``log_metrics``
    in turn: 90 writes of 120 points each)."""
    go = tmp_path / "go"
    procs = _start_loggers(workspace, go)
    all_ready = wait_until(
        lambda: (
            len(list(tmp_path.glob("ready-*"))) == PROCESSES
            or any(proc.poll() is not None for proc in procs)
        ),
        timeout=120,
    )
    go.touch()
    started = time.monotonic()
    results = [proc.communicate(timeout=180) for proc in procs]
    took = time.monotonic() - started

    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err[-3000:]
        assert "locked" not in err and "Traceback" not in err, err[-3000:]
    assert all_ready
    run_ids = [out.strip() for out, _err in results]
    assert len(set(run_ids)) == PROCESSES
    store = workspace.tracking
    for index, run_id in enumerate(run_ids):
        values = [(p.step, p.value) for p in store.metric_history(run_id, "value")]
        assert values == [(s, float(index * 100_000 + s)) for s in range(STEPS)], index
        negated = [(p.step, p.value) for p in store.metric_history(run_id, "negated")]
        assert negated == [(s, float(-s)) for s in range(STEPS)], index
        assert store.get_run(run_id).data.tags["rlfleet.status"] == "COMPLETED"
    print(f"{PROCESSES} processes x {2 * STEPS} points logged in {took:.1f} s")
