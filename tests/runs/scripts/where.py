"""Logs one metric and says which Ray cluster it ran on (its GCS address)."""

import ray

from rlfleet import Run

ray.init()
Run.get_context().log("answer", 42.0)
print("ran on", ray.get_runtime_context().gcs_address, flush=True)
