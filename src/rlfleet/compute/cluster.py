"""Local Ray clusters: real ``ray start`` nodes on this machine, bound to 127.0.0.1.

A cluster is one head node plus worker nodes, each a ``ray start --block`` command in a session
of its own (see :mod:`rlfleet.compute.processes`). Its record, a JSON file in the workspace's
``.rlfleet/clusters/``, lists the nodes and their processes, so any rlfleet process can find,
inspect and stop it. Every cluster uses Ray's token authentication with the workspace's token:
Ray turns 127.0.0.1 into this machine's address and some of its ports listen on all interfaces.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rlfleet.compute.processes import (
    free_ports,
    port_open,
    session_alive,
    session_processes,
    stop_sessions,
)
from rlfleet.errors import ClusterError

if TYPE_CHECKING:
    from rlfleet.compute.target import ComputeTarget
    from rlfleet.workspace import Workspace

logger = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"
DEFAULT_OBJECT_STORE_BYTES = 1024**3
MIN_OBJECT_STORE_BYTES = 100 * 1024**2
# Ray gives a node 30 s (hard-coded, ray/_private/node.py) to register with its GCS and exits
# with this message past it: on a busy machine that happens to a node that would have come up.
RAY_STARTUP_TIMEOUT = "timed out during startup"
STARTUP_TRIES = 3


def ray_auth_env(workspace: Workspace) -> dict[str, str]:
    """Environment that makes Ray (servers and clients) use the workspace's token."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(workspace.ray_token_path)}


def use_workspace_token(workspace: Workspace) -> None:
    """Make this process a client of the workspace's clusters (sets the Ray auth env vars)."""
    use_ray_auth(ray_auth_env(workspace))


def use_ray_auth(env: dict[str, str]) -> None:
    """Make this process's Ray client authenticate as ``env`` says (Ray's auth variables:
    ``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN_PATH``). A token given by value in ``RAY_AUTH_TOKEN``
    would win over the file, so it is dropped when ``env`` names a file."""
    drop = "RAY_AUTH_TOKEN" if "RAY_AUTH_TOKEN_PATH" in env else None
    if all(os.environ.get(k) == v for k, v in env.items()) and not (drop and drop in os.environ):
        return
    if drop:
        os.environ.pop(drop, None)
    os.environ.update(env)
    if "ray._raylet" in sys.modules:  # Ray read its auth settings already: make it read again
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


@dataclass
class NodeRecord:
    """One node of a local cluster."""

    name: str
    role: str
    target: str
    pid: int
    temp_dir: str
    log_path: str
    owner: str

    def alive(self) -> bool:
        return session_alive(self.pid)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(line.strip() for line in tail)


@dataclass
class LocalCluster:
    """A local Ray cluster and the record that lets any process find and stop it."""

    cluster_id: str
    record_path: str
    temp_root: str
    token_path: str
    gcs_port: int
    dashboard_port: int
    head_target: str
    owner: str
    nodes: list[NodeRecord] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # How this process started each node, to start it again if Ray gave up on it (not part
        # of the record: another process that loads the record cannot start it again).
        self._starts: dict[str, tuple[Callable[[], NodeRecord], int]] = {}

    # -- addresses ------------------------------------------------------------------------------

    @property
    def gcs_address(self) -> str:
        return f"{LOCAL_HOST}:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{LOCAL_HOST}:{self.dashboard_port}"

    @property
    def auth_env(self) -> dict[str, str]:
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": self.token_path}

    # -- records --------------------------------------------------------------------------------

    def save(self) -> None:
        path = Path(self.record_path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LocalCluster:
        data = json.loads(path.read_text())
        data["nodes"] = [NodeRecord(**node) for node in data["nodes"]]
        return cls(**data)

    @classmethod
    def all(cls, workspace: Workspace) -> list[LocalCluster]:
        clusters = []
        for path in sorted(workspace.clusters_dir.glob("*.json")):
            try:
                clusters.append(cls.load(path))
            except (OSError, ValueError, TypeError):
                logger.warning("ignoring unreadable cluster record %s", path)
        return clusters

    @classmethod
    def prune(cls, workspace: Workspace) -> list[LocalCluster]:
        """Forget the records of clusters none of whose nodes is alive; returns the others."""
        alive = []
        for cluster in cls.all(workspace):
            if any(node.alive() for node in cluster.nodes):
                alive.append(cluster)
            else:
                cluster.stop()
        return alive

    @classmethod
    def warm_for(cls, workspace: Workspace, head_target: str) -> LocalCluster | None:
        """The warm cluster (started by ``rlfleet cluster up``) whose head is ``head_target``."""
        for cluster in cls.all(workspace):
            if cluster.owner == "warm" and cluster.head_target == head_target:
                head = cluster.node("head")
                if head is not None and head.alive():
                    return cluster
        return None

    def node(self, name: str) -> NodeRecord | None:
        return next((n for n in self.nodes if n.name == name), None)

    # -- starting -------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        workspace: Workspace,
        head: ComputeTarget,
        *,
        owner: str,
        use_gpu: bool = False,
        object_store_bytes: int | None = None,
    ) -> LocalCluster:
        """Start the head node (returns once its process runs; see :meth:`wait_for_nodes`)."""
        cluster_id = uuid.uuid4().hex[:10]
        # Ray's socket paths must stay under ~107 characters: keep the temp root short.
        temp_root = Path(tempfile.gettempdir()) / "rlfleet" / cluster_id
        temp_root.mkdir(parents=True)
        gcs_port, dashboard_port = free_ports(2)
        cluster = cls(
            cluster_id=cluster_id,
            record_path=str(workspace.clusters_dir / f"{cluster_id}.json"),
            temp_root=str(temp_root),
            token_path=str(workspace.ray_token_path),
            gcs_port=gcs_port,
            dashboard_port=dashboard_port,
            head_target=head.name,
            owner=owner,
        )
        cluster.save()
        client_port, *_ = free_ports(1)
        cluster._start_node(
            "head",
            "head",
            head,
            owner=owner,
            use_gpu=use_gpu,
            object_store_bytes=object_store_bytes,
            extra=[
                "--head",
                f"--port={gcs_port}",
                "--include-dashboard=true",
                f"--dashboard-host={LOCAL_HOST}",
                f"--dashboard-port={dashboard_port}",
                f"--ray-client-server-port={client_port}",
            ],
        )
        return cluster

    def add_workers(
        self,
        target: ComputeTarget,
        count: int,
        *,
        owner: str,
        use_gpu: bool = False,
        object_store_bytes: int | None = None,
    ) -> list[NodeRecord]:
        """Start ``count`` worker nodes of ``target`` that join this cluster's head."""
        taken = {n.name for n in self.nodes}
        added = []
        index = 0
        while len(added) < count:
            name = f"worker-{index}"
            index += 1
            if name in taken:
                continue
            added.append(
                self._start_node(
                    name,
                    "worker",
                    target,
                    owner=owner,
                    use_gpu=use_gpu,
                    object_store_bytes=object_store_bytes,
                    extra=[f"--address={self.gcs_address}"],
                )
            )
        return added

    def restart_worker(
        self,
        node: NodeRecord,
        target: ComputeTarget,
        *,
        use_gpu: bool = False,
        object_store_bytes: int | None = None,
    ) -> NodeRecord:
        """Replace a dead (or dying) worker node by a new one of the same name, role and owner.

        What is left of the old node is stopped; the new one gets its own temp dir (the old
        one is removed in the background) and joins this cluster's head.
        """
        self._forget(node)
        return self._start_node(
            node.name,
            "worker",
            target,
            owner=node.owner,
            use_gpu=use_gpu,
            object_store_bytes=object_store_bytes,
            extra=[f"--address={self.gcs_address}"],
            temp_name=f"{node.name}.{uuid.uuid4().hex[:4]}",
        )

    def _start_node(
        self,
        name: str,
        role: str,
        target: ComputeTarget,
        *,
        owner: str,
        use_gpu: bool,
        object_store_bytes: int | None,
        extra: list[str],
        temp_name: str | None = None,
    ) -> NodeRecord:
        temp_dir = Path(self.temp_root) / (temp_name or name)
        temp_dir.mkdir(parents=True, exist_ok=True)
        log_path = Path(self.temp_root) / f"{temp_name or name}.out"
        agent_port, agent_grpc_port, metrics_port, runtime_env_port = free_ports(4)
        labels = {
            "rlfleet/cluster": self.cluster_id,
            "rlfleet/node": name,
            "rlfleet/role": role,
            "rlfleet/compute": target.name,
        }
        store_bytes = object_store_bytes or _default_object_store(target)
        command = [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--block",
            f"--node-ip-address={LOCAL_HOST}",
            f"--node-name={name}",
            f"--temp-dir={temp_dir}",
            f"--num-cpus={target.cpus}",
            f"--num-gpus={target.gpus if use_gpu else 0}",
            f"--object-store-memory={max(store_bytes, MIN_OBJECT_STORE_BYTES)}",
            f"--resources={json.dumps({target.name: float(target.cpus)})}",
            f"--labels={','.join(f'{k}={v}' for k, v in labels.items())}",
            f"--dashboard-agent-listen-port={agent_port}",
            f"--dashboard-agent-grpc-port={agent_grpc_port}",
            f"--metrics-export-port={metrics_port}",
            f"--runtime-env-agent-port={runtime_env_port}",
            "--disable-usage-stats",
            "--log-style=record",
            *extra,
        ]
        if target.memory_bytes:
            command.append(f"--memory={target.memory_bytes}")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._node_env(),
                start_new_session=True,
            )
        node = NodeRecord(
            name=name,
            role=role,
            target=target.name,
            pid=proc.pid,
            temp_dir=str(temp_dir),
            log_path=str(log_path),
            owner=owner,
        )
        self.nodes.append(node)
        self.save()
        logger.info("started %s node %s (target %s, pid %d)", role, name, target.name, proc.pid)
        if name not in self._starts:

            def again() -> NodeRecord:
                return self._start_node(
                    name, role, target, owner=owner, use_gpu=use_gpu,
                    object_store_bytes=object_store_bytes, extra=extra,
                    temp_name=f"{name}.{uuid.uuid4().hex[:4]}",
                )  # fmt: skip

            self._starts[name] = (again, STARTUP_TRIES - 1)
        return node

    def _forget(self, node: NodeRecord) -> None:
        """Stop what is left of ``node`` and drop it from the record (its temp folder is
        removed in the background)."""
        stop_sessions([node.pid])
        remove_in_background(node.temp_dir)
        self.nodes = [n for n in self.nodes if n is not node]

    def _start_again(self, node: NodeRecord) -> bool:
        """Start ``node`` again if Ray gave up on it while it was starting (its 30 s limit) and
        tries are left; returns whether it did."""
        again, left = self._starts.get(node.name, (None, 0))
        if again is None or left <= 0 or RAY_STARTUP_TIMEOUT not in node.log_tail():
            return False
        logger.warning(
            "node %s did not register within Ray's 30 s (a busy machine): starting it again",
            node.name,
        )
        self._forget(node)
        self._starts[node.name] = (again, left - 1)
        again()
        return True

    def _node_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(self.auth_env)
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        # Jobs run `python ...`: make that this environment's interpreter.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    # -- waiting --------------------------------------------------------------------------------

    def wait_for_nodes(
        self,
        names: list[str],
        *,
        timeout_s: float,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Wait until the named nodes have joined and the Jobs API answers.

        Raises:
            ClusterError: a node exited, or ``timeout_s`` passed; the message names the nodes
                still missing.
        """
        deadline = time.monotonic() + timeout_s
        joined: set[str] = set()
        while True:
            for name in names:
                node = self.node(name)
                if node is not None and not node.alive():
                    if self._start_again(node):
                        continue
                    tail = node.log_tail()
                    raise ClusterError(
                        f"node {name!r} (target {node.target!r}) exited while starting"
                        + (f": {tail}" if tail else "")
                    )
            if port_open(self.gcs_port) and port_open(self.dashboard_port):
                try:
                    states = alive_nodes(self.gcs_address, timeout=5)
                    joined = {s.labels.get("rlfleet/node", "") for s in states}
                except Exception as err:  # the dashboard is still starting
                    if "InvalidAuthToken" in str(err):
                        raise ClusterError(
                            f"cluster {self.cluster_id} refused this process's Ray token; "
                            f"check RAY_AUTH_TOKEN_PATH ({self.token_path})."
                        ) from err
                    logger.debug("cluster %s not ready yet: %s", self.cluster_id, err)
            missing = [name for name in names if name not in joined]
            if not missing:
                return
            if should_stop():
                raise ClusterError("stopped while waiting for the cluster to come up")
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"the cluster did not come up within {timeout_s:g} s "
                    f"(cluster_coordination_timeout_seconds): {self._describe(missing)} "
                    "had not joined; raise the timeout or check `rlfleet compute show`."
                )
            time.sleep(0.25)

    def _describe(self, missing: list[str]) -> str:
        parts = []
        for name in missing:
            node = self.node(name)
            target = f" (target {node.target!r})" if node else ""
            parts.append(f"{name}{target}")
        noun = "node" if len(parts) == 1 else "nodes"
        return f"{noun} {', '.join(parts)}"

    # -- stopping -------------------------------------------------------------------------------

    def stop_nodes(self, nodes: list[NodeRecord]) -> int:
        """Stop these nodes (all their processes); returns how many processes were left."""
        left = stop_sessions([n.pid for n in nodes])
        names = {n.name for n in nodes}
        for node in nodes:
            remove_in_background(node.temp_dir)
        self.nodes = [n for n in self.nodes if n.name not in names]
        if self.nodes:
            self.save()
        return left

    def stop(self) -> int:
        """Stop every node, delete the temp files and the record; returns processes left."""
        left = stop_sessions([n.pid for n in self.nodes])
        remove_in_background(self.temp_root)
        Path(self.record_path).unlink(missing_ok=True)
        self.nodes = []
        return left

    def processes(self) -> list[int]:
        """PIDs of every process of this cluster still alive."""
        return [p.pid for p in session_processes(n.pid for n in self.nodes)]


def alive_nodes(address: str, timeout: float) -> list:
    """The alive nodes of the cluster at ``address`` (Ray's state API). Ray counts a filter's
    dropped rows as "missing output" and raises by default: once a node has died, asking for
    the alive ones alone would fail for good."""
    from ray.util.state import list_nodes

    return list_nodes(
        address=address,
        filters=[("state", "=", "ALIVE")],
        timeout=timeout,
        raise_on_missing_output=False,
    )


def remove_in_background(path: str) -> None:
    """Delete a stopped node's temp folder without waiting: with a pip runtime env it holds a
    whole virtualenv (over a GiB, tens of thousands of files)."""
    if not Path(path).exists():
        return
    doomed = f"{path}.deleting-{uuid.uuid4().hex[:6]}"
    try:
        os.rename(path, doomed)  # gone from its place at once
    except OSError:
        doomed = path
    subprocess.Popen(
        ["rm", "-rf", doomed],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _default_object_store(target: ComputeTarget) -> int:
    if target.memory_bytes:
        return int(target.memory_bytes * 0.3)
    return DEFAULT_OBJECT_STORE_BYTES
