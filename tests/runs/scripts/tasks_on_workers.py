"""Entry script of the integration test: tasks on the worker nodes, metrics with steps."""

import argparse
import time

import ray

from rlfleet import Run

parser = argparse.ArgumentParser()
parser.add_argument("--tasks", type=int, default=4)
parser.add_argument("--config", default="{}")
parser.add_argument(
    "--stop", default="{}", help="shown by the watch view; this script stops by itself"
)
args = parser.parse_args()

ray.init()
run = Run.get_context()


@ray.remote(num_cpus=1, label_selector={"rlfleet/role": "worker"}, scheduling_strategy="SPREAD")
def work(index: int) -> tuple[int, str, str]:
    labels = ray.get_runtime_context().get_node_labels()
    node = labels["rlfleet/node"]
    print(f"task {index} ran on {node} (role {labels['rlfleet/role']})", flush=True)
    Run.get_context().log("task_index", index, step=index)
    time.sleep(0.5)
    return index, node, labels["rlfleet/role"]


results = ray.get([work.remote(i) for i in range(args.tasks)])
for index, node, role in results:
    print(f"result: task {index} on {node} ({role})")
on_workers = sum(role == "worker" for _, _, role in results)
run.log("tasks_on_worker_nodes", on_workers)
for step in range(5):
    run.log("episode_reward_mean", -21.0 + 3 * step, step=step * 10)
run.log("episodes_total", 42)
print("done", flush=True)
