"""``rlfleet runs watch``: a live terminal view of a run, redrawn until the run ends."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

from rlfleet.monitor.progress import duration, figure, sparkline
from rlfleet.monitor.snapshot import REWARD, RunObserver, Snapshot

if TYPE_CHECKING:
    from rlfleet.runs.run import Run
    from rlfleet.runs.status import RunStatus

CLEAR = "\x1b[H\x1b[2J"
BAR = 24


def render(snap: Snapshot, *, width: int = 100) -> list[str]:
    """The view as lines of text (no colours, so it reads the same in a log file)."""
    title = f"run {snap.run_id}"
    if snap.name:
        title += f" ({snap.name})"
    lines = [
        f"{title}  experiment {snap.experiment}",
        f"status  {snap.status.value}"
        + (f" ({snap.reason})" if snap.reason else "")
        + f"   elapsed {duration(snap.elapsed_s)}   nodes up {snap.nodes_up}/{snap.nodes_total}",
    ]
    if snap.children:
        roles = ", ".join(f"{c['role']} {c['status']}" for c in snap.children)
        lines.append(f"children {roles}")
    if snap.rewards:
        spark = sparkline(snap.rewards, width=min(48, width - 40))
        lines.append(f"reward  {spark}  {snap.rewards[0]:.2f} -> {snap.rewards[-1]:.2f} ({REWARD})")
    figures = []
    if snap.steps_per_s is not None:
        figures.append(f"{snap.steps_per_s:,.0f} steps/s")
    for name in ("timesteps_total", "episodes_total", "training_iteration"):
        if name in snap.metrics:
            figures.append(f"{name} {snap.metrics[name]:,.0f}")
    if figures:
        lines.append("speed   " + "   ".join(figures))
    ended = snap.status.is_terminal()  # no time-left estimate for a run that has ended
    for index, crit in enumerate(snap.criteria):
        label = "stop    " if index == 0 else "        "
        current = "-" if crit.current is None else figure(crit.current)
        filled = round((crit.progress or 0) * BAR)
        bar = "[" + "#" * filled + "." * (BAR - filled) + "]"
        percent = "  -" if crit.progress is None else f"{crit.progress:4.0%}"
        left = (
            "" if crit.seconds_left is None or ended else f"  ~{duration(crit.seconds_left)} left"
        )
        lines.append(f"{label}{crit.name} {current} / {figure(crit.target)}  {bar} {percent}{left}")
    if snap.log_tail:
        lines.append("-" * min(width, 40) + " driver log " + "-" * 8)
        lines.extend(line[:width] for line in snap.log_tail)
    return lines


def watch(run: Run, *, out: TextIO, interval_s: float = 2.0, tty: bool | None = None) -> RunStatus:
    """Redraw the view every ``interval_s`` until the run ends; then print the final view.

    On a terminal the view is redrawn in place; otherwise a new view is printed whenever the
    run's status, reward or step count changed.
    """
    tty = out.isatty() if tty is None else tty
    observer = RunObserver(run)
    last_key = None
    while True:
        snap = observer.snapshot()
        key = (
            snap.status,
            snap.rewards[-1:] if snap.rewards else None,
            snap.metrics.get("timesteps_total"),
        )
        if tty or key != last_key or snap.status.is_terminal():
            text = "\n".join(render(snap)) + "\n"
            out.write((CLEAR + text) if tty else text + "\n")
            out.flush()
            last_key = key
        if snap.status.is_terminal():
            return snap.status
        time.sleep(interval_s)
