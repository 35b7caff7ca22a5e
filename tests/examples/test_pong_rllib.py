"""The seed's entry script (RLlib through Ray Tune) runs as an rlfleet run and logs into it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rlfleet import RunSpec, RunStatus
from rlfleet.runs.submit import submit

pytest.importorskip("ray.rllib")
pytestmark = pytest.mark.cluster

EXAMPLE = Path(__file__).parents[2] / "examples" / "pong_rllib"
EPISODES = 300
"""CartPole's episodes last about 20 steps while it learns little: several iterations' worth."""


def test_seed_arguments_run_rllib_impala_and_log_to_the_run(warm_workspace):
    seed = yaml.safe_load((EXAMPLE / "pong.yaml").read_text())
    assert seed["script_params"]["--run"] == "IMPALA"
    params = dict(seed["script_params"])
    params["--env"] = "CartPole-v1"  # the seed's job, on an environment that fits a test
    # 2 CPUs here (head + 1 worker node): learn in the main process, one env runner.
    params["--config"] = json.dumps(
        {
            "num_gpus": 0,
            "num_workers": 1,
            "sample_batch_size": 50,
            "num_learners": 0,
            "min_time_s_per_iteration": 1,  # IMPALA's default is 10 s an iteration
        }
    )
    # Episodes, not iterations: the first iterations may end while the env runner is still
    # starting (no episodes), for as long as the machine is busy.
    params["--stop"] = json.dumps({"episodes_total": EPISODES})
    spec = RunSpec(
        source_directory=str(EXAMPLE / "files"),
        entry_script=seed["entry_script"],
        script_params=params,
        compute_target="head",
        worker_configuration={"compute_target": "workers", "node_count": 1},
    )
    run = submit(warm_workspace, spec, experiment="rllib-pong-multi-node")
    status = run.wait_for_completion(timeout_s=400)
    assert status is RunStatus.COMPLETED, run.to_dict()["error"]
    episodes = run.get_metric_history("episodes_total")
    steps = [p.step for p in episodes]  # one point per iteration with episodes in it
    assert len(steps) >= 2 and steps == sorted(set(steps)), steps
    assert episodes[-1].value >= EPISODES and episodes[-1].value > episodes[0].value > 0
    rewards = run.get_metric_history("episode_reward_mean")
    assert rewards and all(8 <= p.value <= 500 for p in rewards)  # CartPole returns
    assert "Algorithm config:" in run.driver_log()
