from __future__ import annotations

import csv

from rlfleet.impala.config import ImpalaConfig, StopConfig
from rlfleet.impala.loop import train
from rlfleet.impala.plots import CURVE_COLUMNS, LearningCurve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_curve_is_written_as_csv_and_a_valid_png(tmp_path):
    curve = LearningCurve()
    for i in range(1, 6):
        curve.add(
            {
                "training_iteration": i,
                "timesteps_total": 1000 * i,
                "time_total_s": 10.0 * i,
                "episode_reward_mean": -21.0 + 3 * i,
                "entropy": 1.7,
            }
        )
    csv_path, png_path = curve.write(tmp_path, threshold=18.0, title="test")

    with csv_path.open() as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CURVE_COLUMNS and len(rows) == 6
    assert [float(v) for v in rows[-1]] == [5.0, 5000.0, 50.0, -6.0]
    assert LearningCurve.read_csv(csv_path).points == curve.points
    data = png_path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1100, 400)


def test_curve_round_trips_through_its_points():
    curve = LearningCurve([[1, 100, 1.5, float("nan")]])
    curve.add({"training_iteration": 2, "timesteps_total": 200, "time_total_s": 3.0})
    again = LearningCurve(curve.points)
    assert again.points[1][:3] == [2.0, 200.0, 3.0]
    assert len(again.points) == 2


class ArtifactList:
    def __init__(self) -> None:
        self.artifacts: list[tuple[str, str | None]] = []

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        self.artifacts.append((local_path, artifact_path))


def test_training_logs_the_curve_png_and_csv_with_each_checkpoint(tmp_path):
    config = ImpalaConfig.from_dict(
        {
            "num_workers": 0,
            "num_envs_per_worker": 8,
            "sample_batch_size": 10,
            "train_batch_size": 80,
            "min_time_s_per_iteration": 0.0,
        }
    )
    artifacts = ArtifactList()
    train(
        "CartPole-v1",
        config,
        StopConfig(training_iteration=4, episode_reward_mean=400),
        artifact_sink=artifacts,
        checkpoint_dir=tmp_path,
    )
    by_name = {
        path.rsplit("/", 1)[-1]: artifact_path for path, artifact_path in artifacts.artifacts
    }
    assert by_name["checkpoint_000004.pt"] == "checkpoints"
    assert by_name["learning_curve.png"] is None and by_name["learning_curve.csv"] is None
    assert (tmp_path / "learning_curve.png").read_bytes().startswith(PNG_SIGNATURE)
    with (tmp_path / "learning_curve.csv").open() as handle:
        assert len(list(csv.reader(handle))) == 1 + 4
