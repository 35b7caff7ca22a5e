"""An entry script that fails after logging something."""

from rlfleet import Run

Run.get_context().log("before_failure", 1.0)
print("about to fail", flush=True)
raise ValueError("boom: the reward exploded")
