"""Compute targets persisted in the workspace, one YAML file each."""

from __future__ import annotations

from pathlib import Path

import yaml

from rlfleet.compute.target import ComputeTarget
from rlfleet.errors import ComputeTargetError, ComputeTargetNotFoundError


class ComputeStore:
    """CRUD over ``.rlfleet/compute/NAME.yaml``; writes are atomic renames."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.yaml"

    def check_free(self, name: str) -> None:
        """Raises ComputeTargetError if a target ``name`` exists."""
        if self._path(name).exists():
            raise ComputeTargetError(
                f"compute target {name!r} already exists; delete it first "
                f"(`rlfleet compute delete {name}`) or pick another name."
            )

    def create(self, target: ComputeTarget) -> ComputeTarget:
        self.check_free(target.name)
        path = self._path(target.name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(target.to_dict(), sort_keys=False))
        tmp.replace(path)
        return target

    def get(self, name: str) -> ComputeTarget:
        path = self._path(name)
        if "/" in name or not path.is_file():
            known = ", ".join(t.name for t in self.list()) or "none yet"
            raise ComputeTargetNotFoundError(
                f"no compute target named {name!r} in this workspace (known: {known}); "
                "create it with `rlfleet compute create NAME`."
            )
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            raise ComputeTargetError(
                f"{path} is not valid YAML; delete it and create the target again."
            ) from None
        return ComputeTarget.from_dict(data)

    def list(self) -> list[ComputeTarget]:
        return [self.get(path.stem) for path in sorted(self.directory.glob("*.yaml"))]

    def delete(self, name: str) -> ComputeTarget:
        """Forget the target (and the copy of its token the workspace made, if any)."""
        target = self.get(name)
        self._path(name).unlink()
        if target.token_file and Path(target.token_file).parent == self.directory.parent / "tokens":
            Path(target.token_file).unlink(missing_ok=True)
        return target
