"""The summary of a run that ``rlfleet runs show`` prints (and ``--json`` gives whole)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rlfleet.runs import record
from rlfleet.runs.reconcile import reconcile

if TYPE_CHECKING:
    from rlfleet.runs.run import Run


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def run_summary(run: Run) -> dict[str, Any]:
    status = reconcile(run.store, run.store.get_run(run.id), run.workspace)
    data = run.store.get_run(run.id)
    tags, info = data.data.tags, data.info
    children = []
    for child in run.store.children(data):
        child_tags = child.data.tags
        children.append(
            {
                "id": child.info.run_id,
                "role": child_tags.get(record.ROLE),
                "status": child_tags.get(record.STATUS, status.value),
                "logs": sorted(run.store.list_artifacts(child.info.run_id)),
            }
        )
    children.sort(key=lambda c: record.ROLES.index(c["role"]) if c["role"] in record.ROLES else 9)
    duration = None
    if info.start_time:
        end = info.end_time if status.is_terminal() and info.end_time else None
        duration = round(((end or _now_ms()) - info.start_time) / 1000, 1)
    return {
        "id": info.run_id,
        "name": info.run_name,
        "experiment": run.store.experiment_name(info.experiment_id),
        "status": status.value,
        "status_reason": tags.get(record.STATUS_REASON),
        "error": tags.get(record.ERROR),
        "created": _iso(info.start_time),
        "ended": _iso(info.end_time) if status.is_terminal() else None,
        "duration_s": duration,
        "compute": {
            "head": tags.get(record.HEAD_TARGET),
            "worker": tags.get(record.WORKER_TARGET),
            "node_count": int(tags.get(record.NODE_COUNT, 0)),
            "cluster": tags.get(record.CLUSTER),
        },
        "ray_job": tags.get(record.RAY_JOB),
        "metrics": dict(sorted(data.data.metrics.items())),
        "params": dict(sorted(data.data.params.items())),
        "children": children,
    }


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
