"""``rlfleet runs plot``: learning curves of one or more runs on one chart (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rlfleet.errors import RlfleetError

if TYPE_CHECKING:
    from rlfleet.runs.run import Run

STEPS = "timesteps_total"


def curve(run: Run, metric: str) -> tuple[list[float], list[float], list[float]]:
    """``(agent steps, minutes since the run started, values)`` of ``metric``; agent steps come
    from ``timesteps_total`` at the same step, or are the metric's own steps without it."""
    points = run.get_metric_history(metric)
    steps_at = {p.step: p.value for p in run.get_metric_history(STEPS)}
    start = run.store.get_run(run.id).info.start_time
    xs_steps = [steps_at.get(p.step, float(p.step)) for p in points]
    xs_minutes = [(p.timestamp - start) / 60000 for p in points]
    return xs_steps, xs_minutes, [p.value for p in points]


def plot_runs(
    runs: list[Run],
    path: str | Path,
    *,
    metric: str = "episode_reward_mean",
    threshold: float | None = None,
) -> Path:
    """Write a PNG with ``metric`` against agent steps and against wall time for each run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_steps, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    plotted = 0
    for run in runs:
        xs_steps, xs_minutes, values = curve(run, metric)
        if not values:
            continue
        label = f"{run.id[:8]} {run.store.get_run(run.id).info.run_name or ''}".strip()
        by_steps.plot(xs_steps, values, label=label)
        by_time.plot(xs_minutes, values, label=label)
        plotted += 1
    if not plotted:
        plt.close(fig)
        ids = ", ".join(r.id for r in runs)
        raise RlfleetError(f"no run among {ids} has logged {metric!r}; pick another --metric.")
    for axes, xlabel in ((by_steps, "agent steps"), (by_time, "minutes")):
        if threshold is not None:
            axes.axhline(threshold, color="grey", linestyle="--", label=f"stop at {threshold:g}")
        axes.set_xlabel(xlabel)
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
    by_steps.legend(loc="best", fontsize="small")
    fig.suptitle(f"{metric}: {plotted} run{'s' if plotted > 1 else ''}")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
