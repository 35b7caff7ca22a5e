from __future__ import annotations

import torch

from rlfleet.impala.checkpoint import load_checkpoint
from rlfleet.impala.config import ImpalaConfig, StopConfig
from rlfleet.impala.loop import ImpalaTrainer, train

TINY = {
    "num_workers": 0,
    "num_envs_per_worker": 8,
    "sample_batch_size": 10,
    "train_batch_size": 80,
    "min_time_s_per_iteration": 0.0,
}


class ArtifactList:
    def __init__(self) -> None:
        self.artifacts: list[tuple[str, str | None]] = []

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        self.artifacts.append((local_path, artifact_path))


def test_checkpoint_round_trip_continues_the_counters(tmp_path):
    config = ImpalaConfig.from_dict(TINY)
    artifacts = ArtifactList()
    result = train(
        "CartPole-v1",
        config,
        StopConfig(training_iteration=3),
        artifact_sink=artifacts,
        checkpoint_dir=tmp_path,
    )
    [(path, artifact_path)] = [a for a in artifacts.artifacts if a[0].endswith(".pt")]
    assert artifact_path == "checkpoints" and path.endswith("checkpoint_000003.pt")

    saved = load_checkpoint(path)  # weights_only=True inside
    assert saved.counters.training_iteration == 3
    assert [point[0] for point in saved.counters.curve] == [1.0, 2.0, 3.0]  # the curve goes on
    assert saved.counters.timesteps_total == result["timesteps_total"] > 0
    assert saved.config == config.to_dict() and saved.env_id == "CartPole-v1"

    trainer = ImpalaTrainer("CartPole-v1", config, restore_from=path)
    try:
        for name, tensor in trainer.learner.model.state_dict().items():
            torch.testing.assert_close(tensor, saved.learner["model"][name])
        assert trainer.learner.version == saved.learner["version"]
        restored_state = trainer.learner.optimizer.state_dict()["state"]
        assert (
            restored_state
            and restored_state[0]["step"] == saved.learner["optimizer"]["state"][0]["step"]
        )
        resumed = trainer.train_iteration()
    finally:
        trainer.close()
    assert resumed["training_iteration"] == 4
    assert [point[0] for point in trainer.curve.points] == [1.0, 2.0, 3.0, 4.0]
    assert resumed["timesteps_total"] > saved.counters.timesteps_total
    assert resumed["episodes_total"] >= saved.counters.episodes_total
    assert resumed["time_total_s"] > saved.counters.time_total_s
