"""Ray on the user's own hosts (``ssh`` targets), with Ray's own cluster launcher.

rlfleet writes a cluster config for Ray's launcher (the ``local`` provider: fixed hosts reached
over SSH) and runs ``ray up`` / ``ray down``; Ray's launcher starts the head over SSH and its
autoscaler (v1: v2 does not support the ``local`` provider, ray issue #57153), running on the
head, starts and stops worker nodes between the target's ``min_nodes`` and ``max_nodes``, one per
worker host, as work asks for them. What rlfleet adds on top:

* the config, from the target: hosts, user and key; node shape (CPUs, GPUs, memory) and Ray
  labels as for local nodes (``rlfleet/role``, ``rlfleet/compute``); the head's GCS, dashboard
  and Jobs API bound to the head host's address;
* Ray's token authentication: the workspace's token goes to every host as a file (the
  launcher's ``file_mounts``, over SSH, mode 0600), never on a command line;
* where the cluster is: ``.rlfleet/clusters/ssh-NAME/`` holds the config and the launcher's
  logs; the cluster is then used as an existing one (a ``ray`` target's view of it), runs are
  supervised on it (runs/remote.py);
* ``rlfleet cluster up/down NAME`` and ``compute show NAME`` (nodes desired and up, per host).

Every host needs Ray (the same version) and rlfleet on its ``PATH`` for a login shell (Ray's
launcher runs ``bash --login``), an sshd accepting the key, and ``rsync``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rlfleet.compute.target import ComputeKind, ComputeTarget
from rlfleet.errors import ClusterError
from rlfleet.telemetry import telemetry_env

if TYPE_CHECKING:
    from rlfleet.workspace import Workspace

logger = logging.getLogger(__name__)

GCS_PORT = 6379
DASHBOARD_PORT = 8265
REMOTE_TOKEN = "~/.rlfleet_ray_auth_token"
"""Where the workspace's Ray token lies on every host."""
UP_TIMEOUT_S = 600.0
HEAD_CONFIG = "~/ray_bootstrap_config.yaml"
"""The launcher's copy of the cluster config on the head (``ray down`` there stops the head)."""
HEAD_KEY = "~/ray_bootstrap_key.pem"
"""The launcher's copy of the SSH key on the head (its autoscaler reaches the workers with it)."""
NODE_HEALTH_CHECKS = 10
"""Failed health checks (Ray checks a node every 3 s, each with a 10 s timeout) before the head
takes a node for dead; Ray's default, 5, drops a worker host whose network is out for 30 s (it
does not answer the checks until TCP retries, well after the network is back) and the
autoscaler then starts its node again. With 10, an outage of a minute or so keeps the node
(and its actors); a host that is gone for good is dropped after about two minutes."""


def stop_from_head_command(target: ComputeTarget) -> str:
    """What the head runs to stop its own cluster when the run it was started for has ended."""
    return f"{stop_workers_command(target, HEAD_KEY)}; ray down -y {HEAD_CONFIG}"


def cluster_dir(workspace: Workspace, target: ComputeTarget) -> Path:
    path = workspace.clusters_dir / f"ssh-{target.name}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cluster_name(workspace: Workspace, target: ComputeTarget) -> str:
    """The launcher's name of the cluster: the target's, made unique to the workspace."""
    import hashlib

    digest = hashlib.sha1(str(workspace.root).encode()).hexdigest()[:6]
    return f"rlfleet-{target.name}-{digest}"


def as_ray_target(workspace: Workspace, target: ComputeTarget) -> ComputeTarget:
    """The ``ray`` view of an ``ssh`` target's cluster: its head's GCS and dashboard, with the
    workspace's token."""
    assert target.kind is ComputeKind.SSH and target.head_host
    return replace(
        target,
        kind=ComputeKind.RAY,
        address=f"{target.head_host}:{GCS_PORT}",
        dashboard_address=f"{target.head_host}:{DASHBOARD_PORT}",
        token_file=str(workspace.ray_token_path),
        head_host=None,
        hosts=(),
        ssh_user=None,
        ssh_key=None,
    )


def _ray_start_options(target: ComputeTarget, role: str) -> str:
    options = [f"--num-cpus={target.cpus}", f"--num-gpus={target.gpus}"]
    if target.memory_bytes:
        options.append(f"--memory={target.memory_bytes}")
    labels = f"rlfleet/role={role},rlfleet/compute={target.name}"
    options.append(f"--labels={labels}")
    options.append(f"--resources='{{\"{target.name}\": {target.cpus}}}'")
    return " ".join(options)


def cluster_config(workspace: Workspace, target: ComputeTarget) -> dict[str, Any]:
    """The launcher's config (Ray's cluster YAML) for ``target``."""
    assert target.kind is ComputeKind.SSH and target.head_host and target.ssh_key
    auth_env = " ".join(
        f"{key}={value}"
        for key, value in {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": REMOTE_TOKEN,
            **telemetry_env(),
            "RAY_USAGE_STATS_ENABLED": "0",
        }.items()
    )
    head = target.head_host
    return {
        "cluster_name": cluster_name(workspace, target),
        "provider": {"type": "local", "head_ip": head, "worker_ips": list(target.hosts)},
        "auth": {
            "ssh_user": target.ssh_user,
            "ssh_private_key": str(Path(target.ssh_key).expanduser()),
        },
        "min_workers": target.min_nodes,
        "max_workers": target.max_nodes,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": target.idle_timeout_minutes,
        "file_mounts": {REMOTE_TOKEN: str(workspace.ray_token_path)},
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [
            "ray stop",
            f"chmod 600 {REMOTE_TOKEN} && RAY_enable_autoscaler_v2=0 "
            f"RAY_health_check_failure_threshold={NODE_HEALTH_CHECKS} {auth_env} ray start "
            f"--head --port={GCS_PORT} --node-ip-address={head} --dashboard-host={head} "
            f"--dashboard-port={DASHBOARD_PORT} --autoscaling-config={HEAD_CONFIG} "
            f"{_ray_start_options(target, 'head')}",
        ],
        "worker_start_ray_commands": [
            f"pkill -f '{WATCHDOG[:-1]}[{WATCHDOG[-1]}]'; ray stop",
            f"chmod 600 {REMOTE_TOKEN} && {auth_env} ray start --address=$RAY_HEAD_IP:{GCS_PORT} "
            f"{_ray_start_options(target, 'worker')} && {_watchdog()}",
        ],
    }


WATCHDOG = "rlfleet-node-watchdog"


def _watchdog() -> str:
    """A process left on a worker host that stops the rest of the node (``ray stop``) once its
    raylet has gone. The autoscaler scales a ``local`` cluster down by draining the raylet,
    which leaves the node's other processes (log monitor, agents) on the host for good; a
    blocking ``ray start`` does not stop them either (a drained raylet exits 0, which it takes
    for a graceful exit). The next start on the host ends an old watchdog first."""
    loop = (
        'r=$(pgrep -n -x raylet); while [ -n "$r" ] && kill -0 "$r" 2>/dev/null; do sleep 2; '
        "done; ray stop --force"
    )
    return f"(setsid nohup sh -c '{loop}' {WATCHDOG} > /dev/null 2>&1 < /dev/null &)"


def write_config(workspace: Workspace, target: ComputeTarget) -> Path:
    path = cluster_dir(workspace, target) / "cluster.yaml"
    path.write_text(yaml.safe_dump(cluster_config(workspace, target), sort_keys=False))
    return path


def _launcher(workspace: Workspace, args: list[str], log: Path, timeout_s: float) -> int:
    """Run ``ray ARGS`` (the launcher) with the workspace's token, output to ``log``."""
    ray = shutil.which(
        "ray", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    )
    if ray is None:
        raise ClusterError("Ray's `ray` command is not installed here; run scripts/setup.")
    from rlfleet.compute.cluster import ray_auth_env

    env = {**os.environ, **ray_auth_env(workspace), "RAY_USAGE_STATS_ENABLED": "0"}
    with open(log, "ab") as handle:
        handle.write(f"\n$ ray {' '.join(args)}\n".encode())
        handle.flush()
        try:
            return subprocess.run(
                [ray, *args], stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                env=env, timeout=timeout_s,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            return -1


def is_up(workspace: Workspace, target: ComputeTarget) -> bool:
    """Whether the head of ``target``'s cluster answers (its Jobs API, with the token)."""
    from rlfleet.compute.jobs import jobs_client

    try:
        jobs_client(workspace, as_ray_target(workspace, target))
    except ClusterError:
        return False
    return True


def cluster_up(
    workspace: Workspace, target: ComputeTarget, timeout_s: float = UP_TIMEOUT_S
) -> bool:
    """Start Ray on ``target``'s head host (its autoscaler starts the workers), unless it is up
    already; returns whether this call started it.

    Raises:
        ClusterError: the launcher failed (the last lines of its log say why).
    """
    if is_up(workspace, target):
        return False
    config = write_config(workspace, target)
    log = cluster_dir(workspace, target) / "launcher.log"
    code = _launcher(workspace, ["up", "-y", "--no-config-cache", str(config)], log, timeout_s)
    if code != 0 or not _wait_up(workspace, target, 60):
        tail = " | ".join(
            line.strip()
            for line in log.read_text(errors="replace").splitlines()[-4:]
            if line.strip()
        )
        raise ClusterError(
            f"could not start Ray on the hosts of compute target {target.name!r} (ray up "
            f"{'timed out' if code == -1 else f'exit code {code}'}): {tail}; see {log}."
        )
    return True


def _wait_up(workspace: Workspace, target: ComputeTarget, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not is_up(workspace, target):
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def stop_workers_command(target: ComputeTarget, key: str) -> str:
    """A shell command that stops Ray on every worker host of ``target`` over SSH (with
    ``key``). ``ray down`` stops the head; with the ``local`` provider it only forgets the
    worker hosts, whose Ray would run on (until it noticed the head is gone)."""
    import shlex

    options = (
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes "
        "-o ConnectTimeout=10"
    )
    stops = [
        f"ssh -i {shlex.quote(key)} {options} {shlex.quote(f'{target.ssh_user}@{host}')} "
        "\"bash --login -c 'ray stop --force'\" >/dev/null 2>&1"
        for host in target.hosts
    ]
    return "; ".join([*stops, "true"])


def cluster_down(workspace: Workspace, target: ComputeTarget, timeout_s: float = 300) -> bool:
    """Stop Ray on every host of ``target``: the workers over SSH, then ``ray down``; returns
    False (doing nothing) if its head does not answer.

    Raises:
        ClusterError: the launcher failed.
    """
    if not is_up(workspace, target):
        return False
    config = write_config(workspace, target)
    log = cluster_dir(workspace, target) / "launcher.log"
    assert target.ssh_key is not None
    with open(log, "ab") as handle:
        subprocess.run(
            ["bash", "-c", stop_workers_command(target, str(Path(target.ssh_key).expanduser()))],
            stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout_s,
        )  # fmt: skip
    code = _launcher(workspace, ["down", "-y", str(config)], log, timeout_s)
    if code != 0:
        raise ClusterError(
            f"could not stop Ray on the hosts of compute target {target.name!r} (ray down exit "
            f"code {code}); see {log}."
        )
    return True
