"""rlfleet: train and deploy reinforcement-learning agents on a Ray cluster, every run tracked.

The SDK mirrors the seed's workflow::

    from rlfleet import Experiment, RunSpec, WorkerConfiguration, Workspace

    ws = Workspace.from_config()
    exp = Experiment(ws, "rllib-pong-multi-node")
    run = exp.submit(RunSpec(source_directory="files", entry_script="pong_rllib.py",
                             compute_target="head", worker_configuration=WorkerConfiguration(
                                 compute_target="workers", node_count=2)))
    run.wait_for_completion(show_output=True)

the built-in trainer on an environment of your own (``envs/corridor.py`` defines
``CorridorEnv``)::

    run = exp.train(env="corridor:CorridorEnv", source_directory="envs", run="PPO",
                    stop={"episode_reward_mean": 0.8})

and inside an entry script::

    from rlfleet import Run
    Run.get_context().log("episode_reward_mean", 18.0)
"""

import rlfleet.telemetry  # noqa: F401 - first: nothing is sent out by default (see there)
from rlfleet.compute.target import ComputeKind, ComputeTarget
from rlfleet.errors import RlfleetError
from rlfleet.experiment import Experiment
from rlfleet.monitor.notebook import RunDetails
from rlfleet.runs.run import Run
from rlfleet.runs.spec import RunSpec, WorkerConfiguration
from rlfleet.runs.status import RunStatus
from rlfleet.train import load_training_spec, submit_training
from rlfleet.workspace import Workspace

ReinforcementLearningEstimator = RunSpec
"""The seed's name for a run specification."""

__version__ = "0.1.0"

__all__ = [
    "ComputeKind",
    "ComputeTarget",
    "Experiment",
    "ReinforcementLearningEstimator",
    "RlfleetError",
    "Run",
    "RunDetails",
    "RunSpec",
    "RunStatus",
    "WorkerConfiguration",
    "Workspace",
    "load_training_spec",
    "submit_training",
]
