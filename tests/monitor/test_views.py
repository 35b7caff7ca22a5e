"""The live views of a real run: terminal view, notebook panel (kept updated while the run goes
on), learning-curve plot, TensorBoard event file."""

from __future__ import annotations

import io
import struct

import pytest
from support import run_cli, write_spec

from rlfleet import Run, RunDetails, RunStatus
from rlfleet.monitor.watch import watch
from rlfleet.runs.spec import RunSpec
from rlfleet.runs.submit import submit

pytestmark = pytest.mark.cluster

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def finished_run(warm_workspace, tmp_path_factory) -> Run:
    spec = write_spec(
        tmp_path_factory.mktemp("views") / "run.yaml",
        entry_script="tasks_on_workers.py",
        script_params={"--tasks": 2, "--stop": '{"episode_reward_mean": -10, "time_total_s": 600}'},
        worker_configuration={"compute_target": "workers", "node_count": 1},
    )
    run = submit(warm_workspace, RunSpec.from_yaml(spec))
    assert run.wait_for_completion(timeout_s=180) is RunStatus.COMPLETED
    return run


def test_terminal_view_shows_the_end_of_a_run(finished_run, warm_workspace):
    out = io.StringIO()
    assert watch(finished_run, out=out, interval_s=0.1, tty=False) is RunStatus.COMPLETED
    text = out.getvalue()
    assert f"run {finished_run.id}" in text
    assert "status  COMPLETED" in text
    assert "children head COMPLETED, worker COMPLETED" in text
    assert "reward  " in text and "-21.00 -> -9.00 (episode_reward_mean)" in text
    assert "stop    episode_reward_mean -9 / -10" in text and "100%" in text
    assert "time_total_s" in text
    assert " left" not in text  # no time-left estimate for a run that has ended
    assert "done" in text  # the driver log's last lines
    cli = run_cli("runs", "watch", finished_run.id, cwd=warm_workspace.root)
    assert cli.code == 0 and "status  COMPLETED" in cli.out


def test_plot_and_tensorboard_files(finished_run, warm_workspace, tmp_path):
    out = tmp_path / "curves.png"
    result = run_cli(
        "runs",
        "plot",
        finished_run.id,
        "-o",
        str(out),
        "--threshold",
        "-10",
        cwd=warm_workspace.root,
    )
    assert result.code == 0, result.err
    assert out.read_bytes().startswith(PNG)
    width, height = struct.unpack(">II", out.read_bytes()[16:24])
    assert (width, height) == (1200, 450)
    events = [p for p in finished_run.store.list_artifacts(finished_run.id, "tensorboard")]
    assert len(events) == 1 and "tfevents" in events[0]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    local = finished_run.store.download_artifacts(finished_run.id, events[0], tmp_path)
    board = EventAccumulator(str(local))
    board.Reload()
    rewards = [(e.step, e.value) for e in board.Scalars("episode_reward_mean")]
    assert rewards == [(0, -21.0), (10, -18.0), (20, -15.0), (30, -12.0), (40, -9.0)]


def test_notebook_panel_updates_while_the_run_goes_on(warm_workspace, tmp_path):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    spec = write_spec(tmp_path / "slow.yaml", entry_script="sleeps.py", max_run_duration_seconds=4)
    run = submit(warm_workspace, RunSpec.from_yaml(spec))
    with capture_output() as captured:
        details = RunDetails(run, interval_s=0.5)
        details.show()
        assert details.thread is not None
        details.thread.join(timeout=120)
    panels = [o.data["text/html"] for o in captured.outputs if "text/html" in o.data]
    assert len(panels) >= 2, "the panel was never updated"
    assert "CANCELED" in panels[-1] and "CANCELED" not in panels[0]
    assert "<svg" in panels[-1] and "child" in panels[-1]
    assert "CANCELED" in run._repr_html_()
