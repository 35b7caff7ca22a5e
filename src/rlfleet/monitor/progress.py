"""Progress against stop criteria, from metric histories: pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rlfleet.tracking.store import MetricPoint

SPARK = "▁▂▃▄▅▆▇█"
RATE_WINDOW = 10  # points used to estimate how fast a metric moves


@dataclass(frozen=True)
class Criterion:
    """One stop criterion: where the run is, how far along, and an estimate of time left."""

    name: str
    target: float
    current: float | None
    progress: float | None
    """0..1 from the first value seen to the target; None before any value."""
    seconds_left: float | None
    """At the recent rate; None when the metric is not moving towards the target."""


def criteria(
    stop: Mapping[str, float],
    histories: Mapping[str, Sequence[MetricPoint]],
    *,
    elapsed_s: float,
    max_duration_s: float | None = None,
) -> list[Criterion]:
    """Each stop criterion's progress. ``time_total_s`` falls back to the run's elapsed time;
    ``max_run_duration_seconds`` counts as a criterion too."""
    found = []
    for name, target in stop.items():
        points = list(histories.get(name, ()))
        if not points and name == "time_total_s":
            found.append(_time_criterion(name, float(target), elapsed_s))
            continue
        found.append(_metric_criterion(name, float(target), points))
    if max_duration_s is not None:
        found.append(_time_criterion("max_run_duration_seconds", max_duration_s, elapsed_s))
    return found


def _time_criterion(name: str, target: float, elapsed_s: float) -> Criterion:
    return Criterion(
        name,
        target,
        elapsed_s,
        min(1.0, elapsed_s / target) if target > 0 else 1.0,
        max(0.0, target - elapsed_s),
    )


def _metric_criterion(name: str, target: float, points: Sequence[MetricPoint]) -> Criterion:
    # A trainer logs NaN before its first episode ends: progress counts from the first value.
    points = [p for p in points if math.isfinite(p.value)]
    if not points:
        return Criterion(name, target, None, None, None)
    first, last = points[0].value, points[-1].value
    span = target - first
    progress = 1.0 if span == 0 else (last - first) / span
    progress = min(1.0, max(0.0, progress))
    return Criterion(name, target, last, progress, _seconds_left(points, target))


def _seconds_left(points: Sequence[MetricPoint], target: float) -> float | None:
    recent = points[-RATE_WINDOW:]
    if len(recent) < 2:
        return None
    dt = (recent[-1].timestamp - recent[0].timestamp) / 1000
    dv = recent[-1].value - recent[0].value
    if dt <= 0 or dv == 0:
        return None
    remaining = target - recent[-1].value
    if remaining == 0:
        return 0.0
    rate = dv / dt
    if (remaining > 0) != (rate > 0):
        return None  # moving away from the target
    return remaining / rate


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """The values (resampled to at most ``width`` buckets) as a row of block characters."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return ""
    if len(finite) > width:
        size = len(finite) / width
        finite = [finite[min(len(finite) - 1, int((i + 1) * size) - 1)] for i in range(width)]
    low, high = min(finite), max(finite)
    if high == low:
        return SPARK[0] * len(finite)
    scale = (len(SPARK) - 1) / (high - low)
    return "".join(SPARK[round((v - low) * scale)] for v in finite)


def figure(value: float) -> str:
    """A metric's value as a person reads it: ``40.3``, ``17.5``, ``1,234,567``, ``0.00123``
    (whole numbers without decimals, at most one decimal from 1 up, three figures below)."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.3g}"


def duration(seconds: float | None) -> str:
    """``1h 02m``, ``12m 31s``, ``45s``."""
    if seconds is None or math.isnan(seconds):
        return "-"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
