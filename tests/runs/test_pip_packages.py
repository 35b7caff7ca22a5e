"""``pip_packages``: a package absent from the base environment is importable in the run."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import zipfile
from pathlib import Path

import pytest
from support import write_spec

from rlfleet import RunStatus
from rlfleet.runs.spec import RunSpec
from rlfleet.runs.submit import submit

pytestmark = pytest.mark.cluster

NAME, VERSION = "rlfleet_testpkg", "0.1.0"


def build_wheel(directory: Path, value: int) -> Path:
    """A minimal pure-Python wheel, written by hand (a wheel is a zip with metadata)."""
    files = {
        f"{NAME}/__init__.py": f"VALUE = {value}\n",
        f"{NAME}-{VERSION}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
        ),
        f"{NAME}-{VERSION}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: rlfleet-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = f"{NAME}-{VERSION}.dist-info/RECORD"
    lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        lines.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    lines.append(f"{record},,")
    files[record] = "\n".join(lines) + "\n"
    wheel = directory / f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def test_pip_packages_are_importable_in_the_entry_script(warm_workspace, tmp_path):
    assert importlib.util.find_spec(NAME) is None  # not in the base environment
    wheel = build_wheel(tmp_path, value=1234)
    spec = write_spec(
        tmp_path / "pip.yaml", entry_script="uses_package.py", pip_packages=[str(wheel)]
    )
    run = submit(warm_workspace, RunSpec.from_yaml(spec))
    status = run.wait_for_completion(timeout_s=240)
    assert status is RunStatus.COMPLETED, run.to_dict()["error"]
    assert run.get_metrics("package_value") == {"package_value": [1234.0]}
    assert "package value 1234" in run.driver_log()
