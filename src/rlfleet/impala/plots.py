"""The learning curve of a run: ``episode_reward_mean`` per iteration, as CSV and as a PNG.

:class:`LearningCurve` collects one point per training iteration; ``write`` draws the reward
against agent steps and against wall time, with the stop threshold as a dashed line.
matplotlib (its Agg canvas, leaving pyplot's backend alone) is imported only when a PNG is drawn; without it only the CSV is written.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

CURVE_COLUMNS = ("training_iteration", "timesteps_total", "time_total_s", "episode_reward_mean")
"""What each point of the curve holds, in this order (also the CSV's header)."""
CSV_NAME, PNG_NAME = "learning_curve.csv", "learning_curve.png"


class LearningCurve:
    """Points ``(training_iteration, timesteps_total, time_total_s, episode_reward_mean)``."""

    def __init__(self, points: Sequence[Sequence[float]] = ()) -> None:
        self.points: list[list[float]] = [[float(v) for v in point] for point in points]

    @classmethod
    def read_csv(cls, path: str | Path) -> LearningCurve:
        """The curve that :meth:`write_csv` wrote."""
        with Path(path).open(newline="") as handle:
            rows = list(csv.reader(handle))
        return cls(rows[1:])

    def add(self, result: Mapping[str, float]) -> None:
        """Append the point of one iteration's metrics."""
        self.points.append([float(result.get(name, math.nan)) for name in CURVE_COLUMNS])

    def write(
        self, directory: str | Path, *, threshold: float | None = None, title: str = ""
    ) -> list[Path]:
        """Write ``learning_curve.csv`` and (when matplotlib is there) ``learning_curve.png``
        into ``directory``; returns the paths written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = [self.write_csv(directory / CSV_NAME)]
        try:
            paths.append(self.write_png(directory / PNG_NAME, threshold=threshold, title=title))
        except ImportError:
            logger.warning("matplotlib is not installed: no %s (the CSV is written)", PNG_NAME)
        return paths

    def write_csv(self, path: Path) -> Path:
        """The points as CSV with a header row."""
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CURVE_COLUMNS)
            writer.writerows(self.points)
        return path

    def write_png(self, path: Path, *, threshold: float | None = None, title: str = "") -> Path:
        """Reward against agent steps (left) and wall time in minutes (right).

        Raises:
            ImportError: matplotlib is not installed.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        steps = [p[1] for p in self.points]
        minutes = [p[2] / 60.0 for p in self.points]
        rewards = [p[3] for p in self.points]
        figure = Figure(figsize=(11, 4), dpi=100)
        FigureCanvasAgg(figure)  # draw with Agg, whatever pyplot's backend is
        axes = figure.subplots(1, 2, sharey=True)
        for axis, x, label in ((axes[0], steps, "agent steps"), (axes[1], minutes, "minutes")):
            axis.plot(x, rewards, color="tab:blue", linewidth=1.5)
            if threshold is not None:
                axis.axhline(threshold, color="grey", linestyle="--", linewidth=1)
                axis.annotate(
                    f"stop at {threshold:g}",
                    (0.01, threshold),
                    xycoords=("axes fraction", "data"),
                    textcoords="offset points",
                    xytext=(0, 3),
                    color="grey",
                    fontsize=8,
                )
            axis.set_xlabel(label)
            axis.grid(alpha=0.3)
        axes[0].set_ylabel("episode_reward_mean (last 100 episodes)")
        if title:
            figure.suptitle(title)
        figure.tight_layout()
        figure.savefig(path)
        return path
