"""TensorBoard event files of a run, written from its MLflow metric history.

Uses TensorBoard's own event writer and protos (no torch, no TensorFlow), so the supervisor can
write a run's event file at its end cheaply, and ``rlfleet tensorboard`` can refresh live runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlfleet.runs.run import Run


def write_events(run: Run, logdir: str | Path) -> Path:
    """Write every metric point of ``run`` to a fresh event file in ``logdir``; returns it."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob("events.out.tfevents.*"):
        old.unlink()
    writer = EventFileWriter(str(logdir), filename_suffix=".rlfleet")
    try:
        for name in sorted(run.store.get_run(run.id).data.metrics):
            for point in run.get_metric_history(name):
                value = Summary.Value(tag=name, simple_value=point.value)
                writer.add_event(
                    Event(
                        wall_time=point.timestamp / 1000,
                        step=point.step,
                        summary=Summary(value=[value]),
                    )
                )
    finally:
        writer.close()
    return next(logdir.glob("events.out.tfevents.*"))
