"""Progress against stop criteria, sparklines, durations: pure functions."""

from __future__ import annotations

from math import nan

import pytest

from rlfleet.monitor.progress import criteria, duration, figure, sparkline
from rlfleet.tracking.store import MetricPoint


def points(name: str, values: list[float], every_s: float = 10.0) -> list[MetricPoint]:
    return [MetricPoint(name, v, int(i * every_s * 1000), i) for i, v in enumerate(values)]


def test_reward_criterion_progress_and_time_left():
    history = {"episode_reward_mean": points("episode_reward_mean", [-21, -19, -17, -15])}
    (crit,) = criteria({"episode_reward_mean": 18}, history, elapsed_s=40)
    assert crit.current == -15
    assert crit.progress == pytest.approx(6 / 39)
    # 2 points per 10 s, 33 to go: 165 s at the recent rate
    assert crit.seconds_left == pytest.approx(165)


def test_reward_progress_counts_from_the_first_episode_not_the_nans_before_it():
    history = {"episode_reward_mean": points("episode_reward_mean", [nan, nan, -20, -2])}
    (crit,) = criteria({"episode_reward_mean": 18}, history, elapsed_s=40)
    assert crit.current == -2
    assert crit.progress == pytest.approx(18 / 38)
    assert crit.seconds_left == pytest.approx(20 / 1.8)  # 18 per 10 s, 20 to go
    (none_yet,) = criteria({"episode_reward_mean": 18}, {"episode_reward_mean": points(
        "episode_reward_mean", [nan, nan])}, elapsed_s=20)  # fmt: skip
    assert none_yet.current is None and none_yet.progress is None


def test_time_criteria_use_elapsed_time_and_the_run_limit():
    crits = criteria({"time_total_s": 3600}, {}, elapsed_s=900, max_duration_s=1800)
    assert [(c.name, c.progress, c.seconds_left) for c in crits] == [
        ("time_total_s", 0.25, 2700),
        ("max_run_duration_seconds", 0.5, 900),
    ]


def test_no_estimate_when_moving_away_or_without_data():
    history = {"episode_reward_mean": points("episode_reward_mean", [-15, -17, -19])}
    (away,) = criteria({"episode_reward_mean": 18}, history, elapsed_s=30)
    assert away.seconds_left is None and away.progress == 0.0
    (empty,) = criteria({"timesteps_total": 5e6}, {}, elapsed_s=30)
    assert empty.current is None and empty.progress is None and empty.seconds_left is None


def test_sparkline_and_duration():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([3, 3, 3]) == "▁▁▁"
    assert len(sparkline(list(range(1000)), width=40)) == 40
    assert sparkline([]) == ""
    assert duration(45) == "45s"
    assert duration(751) == "12m 31s"
    assert duration(3725) == "1h 02m"
    assert duration(None) == "-"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (40.3122, "40.3"),
        (40.0, "40"),
        (-20.46, "-20.5"),
        (17.96, "18.0"),
        (150.27, "150"),
        (1234567.0, "1,234,567"),
        (0.0012345, "0.00123"),
        (0.0, "0"),
        (nan, "nan"),
    ],
)
def test_figures_are_rounded_as_a_person_reads_them(value, shown):
    assert figure(value) == shown
