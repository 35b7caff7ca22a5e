"""``Run.get_context()``: inside a submitted run (through the tracker) and outside any run."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import write_spec

from rlfleet import Run, RunStatus
from rlfleet.runs.spec import RunSpec
from rlfleet.runs.submit import submit


@pytest.mark.cluster
def test_no_point_is_lost_from_the_driver_or_tasks(warm_workspace, tmp_path):
    spec = write_spec(tmp_path / "many.yaml", entry_script="many_points.py")
    run = submit(warm_workspace, RunSpec.from_yaml(spec))
    assert run.wait_for_completion(timeout_s=180) is RunStatus.COMPLETED, run.to_dict()["error"]
    driver = run.get_metric_history("driver_value")
    assert [(p.step, p.value) for p in driver] == [(i, i * 0.5) for i in range(2000)]
    for worker in range(3):
        points = run.get_metric_history(f"task_{worker}")
        assert [(p.step, p.value) for p in points] == [(i, float(i)) for i in range(500)]


def test_outside_a_submitted_run_logs_to_a_fresh_local_run(workspace):
    script = (
        "from rlfleet import Run\n"
        "run = Run.get_context()\n"
        "for i in range(3):\n"
        "    run.log('reward', i * 2.0)\n"
        "print(run.id)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workspace.root)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=workspace.root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    run = Run(out.stdout.strip(), workspace=workspace)
    assert run.status is RunStatus.COMPLETED
    assert [(p.step, p.value) for p in run.get_metric_history("reward")] == [
        (0, 0.0),
        (1, 2.0),
        (2, 4.0),
    ]
