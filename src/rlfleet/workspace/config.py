"""The workspace config file (``rlfleet.yaml``), as the seed's ``config.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from rlfleet.errors import WorkspaceConfigError

CONFIG_FILE_NAME = "rlfleet.yaml"

_HEADER = """\
# rlfleet workspace. The tracking store is MLflow: by default an embedded SQLite database in
# .rlfleet/ next to this file. Set tracking_uri to use an MLflow server (http://host:5000) or a
# database (postgresql://user@host/db) instead.
"""


@dataclass(frozen=True)
class WorkspaceConfig:
    """What ``rlfleet.yaml`` holds."""

    name: str
    """A name for the workspace, shown in listings."""
    tracking_uri: str | None = None
    """MLflow tracking URI; ``None`` means the embedded SQLite store in ``.rlfleet/``."""
    tracking_username: str | None = None
    """The user of an MLflow server that asks for one (``rlfleet server``'s is ``rlfleet``);
    the password is kept in ``.rlfleet/tracking_password``, readable by its owner only."""
    artifact_location: str | None = None
    """Where run artifacts go; ``None`` means ``.rlfleet/artifacts`` (or an MLflow server's own)."""
    default_experiment: str = "default"
    """The experiment that runs go to when none is named."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: Path) -> WorkspaceConfig:
        if not isinstance(data, dict):
            raise WorkspaceConfigError(
                f"{source} is not a mapping of settings; fix it or run `rlfleet init` again."
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WorkspaceConfigError(
                f"{source}: unknown setting {unknown[0]!r}; known settings are "
                f"{', '.join(sorted(known))}."
            )
        if not isinstance(data.get("name"), str) or not data["name"]:
            raise WorkspaceConfigError(f"{source}: 'name' must be a non-empty string.")
        for key in ("tracking_uri", "tracking_username", "artifact_location"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise WorkspaceConfigError(f"{source}: {key!r} must be a string or null.")
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> WorkspaceConfig:
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise WorkspaceConfigError(
                f"{path} is not valid YAML{where}; fix it or run `rlfleet init` again."
            ) from None
        except OSError as err:
            raise WorkspaceConfigError(f"cannot read {path}: {err.strerror}.") from None
        return cls.from_dict(data, path)

    def save(self, path: Path) -> None:
        body = yaml.safe_dump(self.to_dict(), sort_keys=False)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(_HEADER + body)
        tmp.replace(path)
