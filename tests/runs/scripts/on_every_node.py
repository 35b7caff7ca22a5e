"""Runs one task on every node of the cluster, logging from each and saying where they ran;
then logs a count every half second, --points times (a run that takes a while)."""

import argparse
import time

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rlfleet import Run

parser = argparse.ArgumentParser()
parser.add_argument("--points", type=int, default=0)
count = parser.parse_args().points
ray.init()
run = Run.get_context()
nodes = sorted((n for n in ray.nodes() if n["Alive"]), key=lambda n: n["NodeManagerAddress"])


@ray.remote(num_cpus=0)
def where(index: int) -> str:
    Run.get_context().log("task_index", float(index), step=index)
    Run.get_context().flush()
    return ray.util.get_node_ip_address()


strategy = [NodeAffinitySchedulingStrategy(n["NodeID"], soft=False) for n in nodes]
addresses = ray.get(
    [where.options(scheduling_strategy=s).remote(i) for i, s in enumerate(strategy)]
)
print("tasks ran on", " ".join(sorted(addresses)), flush=True)
run.log("nodes", float(len(set(addresses))))
for i in range(count):
    run.log("count", float(i), step=i)
    time.sleep(0.5)
print("counted", count, flush=True)
