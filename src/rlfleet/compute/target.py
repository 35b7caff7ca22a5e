"""A compute target: a named kind of node that runs ask for, like the seed's ``AmlCompute``."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from rlfleet.errors import ComputeTargetError

_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")


class ComputeKind(StrEnum):
    """Where the nodes of a target come from."""

    LOCAL = "local"
    """Real Ray nodes started on this machine, bound to 127.0.0.1, for the time a run needs them."""
    RAY = "ray"
    """An existing Ray cluster, reached by its address; rlfleet starts and stops nothing there."""
    SSH = "ssh"
    """The user's own hosts, reached over SSH: rlfleet starts Ray there with Ray's cluster
    launcher (a head host and worker hosts, workers autoscaled between min and max nodes)."""


@dataclass(frozen=True)
class ComputeTarget:
    """A named node shape. Every node started for it carries its name as a Ray label
    (``rlfleet/compute=NAME``) and as a custom resource (``NAME``: one unit per CPU), so work can
    be placed on it."""

    name: str
    """Unique name in the workspace; letters, digits, '-' and '_'."""
    kind: ComputeKind = ComputeKind.LOCAL
    """``local``, ``ray`` or ``ssh``."""
    cpus: int = 1
    """CPUs each node offers to Ray."""
    gpus: int = 0
    """GPUs each node offers to Ray (used by runs with ``use_gpu``)."""
    memory_gb: float | None = None
    """Memory each node offers to Ray, in GiB; ``None`` lets Ray decide."""
    min_nodes: int = 0
    """Nodes kept up by ``rlfleet cluster up`` when no run needs more."""
    max_nodes: int = 4
    """The most nodes a run may ask of this target."""
    address: str | None = None
    """For ``ray`` targets: the address of the cluster's GCS (``host:6379``)."""
    dashboard_address: str | None = None
    """For ``ray`` targets: ``HOST:PORT`` of the cluster's dashboard (its Jobs API); ``None``
    means the GCS host on Ray's default port, 8265."""
    head_host: str | None = None
    """For ``ssh`` targets: the host (address or name) of the head node."""
    hosts: tuple[str, ...] = ()
    """For ``ssh`` targets: the hosts that worker nodes start on (at most one each)."""
    ssh_user: str | None = None
    """For ``ssh`` targets: the user rlfleet (Ray's launcher) logs in as on every host."""
    ssh_key: str | None = None
    """For ``ssh`` targets: the private key of that user, on this machine."""
    idle_timeout_minutes: float = 5.0
    """For ``ssh`` targets: worker nodes idle this long go away (down to ``min_nodes``)."""
    token_file: str | None = None
    """For ``ray`` targets: the file with that cluster's Ray auth token (the caller's Ray auth
    settings when the target was made, or ``--token-file``); ``None``: a cluster without token
    authentication."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ComputeKind(self.kind))
        if isinstance(self.hosts, str):
            raise ComputeTargetError("hosts must be a list of host names or addresses.")
        object.__setattr__(self, "hosts", tuple(self.hosts))
        if not _NAME.match(self.name):
            raise ComputeTargetError(
                f"compute target name {self.name!r} is not allowed; use letters, digits, '-' and "
                "'_' (at most 63), starting with a letter and ending with a letter or digit."
            )
        if isinstance(self.cpus, bool) or not isinstance(self.cpus, int) or self.cpus < 1:
            raise ComputeTargetError(
                f"--cpus must be a whole number of at least 1, not {self.cpus}."
            )
        if self.gpus < 0:
            raise ComputeTargetError(f"--gpus must be 0 or more, not {self.gpus}.")
        if self.memory_gb is not None and not self.memory_gb > 0:
            raise ComputeTargetError(f"--memory must be more than 0 GiB, not {self.memory_gb}.")
        if self.max_nodes < 1:
            raise ComputeTargetError(f"--max-nodes must be at least 1, not {self.max_nodes}.")
        if not 0 <= self.min_nodes <= self.max_nodes:
            raise ComputeTargetError(
                f"--min-nodes must be between 0 and --max-nodes ({self.max_nodes}), "
                f"not {self.min_nodes}."
            )
        if self.kind is ComputeKind.RAY and not self.address:
            raise ComputeTargetError(
                f"compute target {self.name!r} of kind 'ray' needs --address HOST:PORT of an "
                "existing Ray cluster."
            )
        if self.kind is ComputeKind.LOCAL and self.address:
            raise ComputeTargetError(
                "--address is for targets of kind 'ray'; local targets start their own nodes."
            )
        ssh_fields = (self.head_host, self.hosts, self.ssh_user, self.ssh_key)
        if self.kind is ComputeKind.SSH:
            self._check_ssh()
        elif any(ssh_fields):
            raise ComputeTargetError(
                "--head-host, --hosts, --ssh-user and --ssh-key are for targets of kind 'ssh'."
            )
        if self.kind is ComputeKind.LOCAL and self.dashboard_address:
            raise ComputeTargetError(
                "--dashboard-address is for targets of kind 'ray'; local targets start their "
                "own nodes."
            )
        if self.kind is ComputeKind.LOCAL and self.token_file:
            raise ComputeTargetError(
                "--token-file is for targets of kind 'ray'; local targets use the workspace's "
                "own token."
            )

    def _check_ssh(self) -> None:
        missing = [
            flag
            for flag, value in (
                ("--head-host", self.head_host),
                ("--ssh-user", self.ssh_user),
                ("--ssh-key", self.ssh_key),
            )
            if not value
        ]
        if missing:
            raise ComputeTargetError(
                f"compute target {self.name!r} of kind 'ssh' needs {', '.join(missing)}."
            )
        if self.address or self.token_file or self.dashboard_address:
            raise ComputeTargetError(
                "--address, --dashboard-address and --token-file are for targets of kind 'ray'; "
                "an 'ssh' target's cluster is made by rlfleet, with the workspace's token."
            )
        if self.max_nodes > len(self.hosts):
            raise ComputeTargetError(
                f"--max-nodes is {self.max_nodes} but --hosts lists {len(self.hosts)} worker "
                "host(s): one worker node per host; list more hosts or lower --max-nodes."
            )
        if not self.idle_timeout_minutes > 0:
            raise ComputeTargetError(
                f"--idle-timeout must be more than 0 minutes, not {self.idle_timeout_minutes}."
            )

    @property
    def dashboard_url(self) -> str | None:
        """For ``ray`` targets: the URL of the cluster's Jobs API."""
        if self.kind is not ComputeKind.RAY or not self.address:
            return None
        address = self.dashboard_address or f"{self.address.rsplit(':', 1)[0]}:8265"
        return address if "://" in address else f"http://{address}"

    @property
    def memory_bytes(self) -> int | None:
        return None if self.memory_gb is None else int(self.memory_gb * 1024**3)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["hosts"] = list(self.hosts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComputeTarget:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ComputeTargetError(f"unknown compute target setting {unknown[0]!r}.")
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ComputeTargetError(f"invalid compute target: {err}.") from None
