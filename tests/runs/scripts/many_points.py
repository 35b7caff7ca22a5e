"""Logs many points from the driver and from tasks, to check that none is lost."""

import ray

from rlfleet import Run

ray.init()
run = Run.get_context()


@ray.remote(num_cpus=0)
def log_from_task(worker: int, count: int) -> int:
    task_run = Run.get_context()
    for i in range(count):
        task_run.log_metrics({f"task_{worker}": float(i)}, step=i)
    task_run.flush()
    return count


sent = ray.get([log_from_task.remote(w, 500) for w in range(3)])
for i in range(2000):
    run.log("driver_value", i * 0.5, step=i)
print("sent", sum(sent) + 2000, flush=True)
