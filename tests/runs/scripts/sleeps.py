"""An entry script that logs once, then sleeps (for cancel and time-limit tests)."""

import time

import ray

from rlfleet import Run

ray.init()
Run.get_context().log("started", 1.0)
print("sleeping", flush=True)
time.sleep(600)
