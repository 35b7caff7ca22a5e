"""An entry script that needs a package installed through pip_packages."""

import rlfleet_testpkg

from rlfleet import Run

print("package value", rlfleet_testpkg.VALUE, flush=True)
Run.get_context().log("package_value", rlfleet_testpkg.VALUE)
