"""Where the trainer's metrics and files go: tiny protocols and composable sinks.

The trainer knows only these protocols; the platform (or ``__main__``) decides what stands
behind them (a tracked run, a CSV file, the terminal).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)


class MetricSink(Protocol):
    """Receives one dict of scalar metrics per training iteration."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...


class ArtifactSink(Protocol):
    """Receives files (checkpoints) worth keeping with the run."""

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None: ...


class FanOutMetricSink:
    """Forwards metrics to several sinks, in order."""

    def __init__(self, sinks: Sequence[MetricSink]) -> None:
        self.sinks = list(sinks)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for sink in self.sinks:
            sink.log_metrics(metrics, step)


class CsvMetricSink:
    """Appends one row per call to a CSV file; the first call fixes the columns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._columns: list[str] | None = None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._columns is None:
            self._columns = ["step", *metrics]
            with self.path.open("w", newline="") as handle:
                csv.writer(handle).writerow(self._columns)
        row = [step, *(metrics.get(name, math.nan) for name in self._columns[1:])]
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow(row)


class LocalArtifactSink:
    """Keeps artifacts where they are and logs their paths (when no tracking is available)."""

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        logger.info("artifact %s (%s)", local_path, artifact_path or ".")
