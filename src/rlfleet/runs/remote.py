"""Runs on an existing cluster (a ``ray`` target) are supervised on that cluster.

The client may be a laptop that closes, on another host than the cluster, and a Ray driver
needs a Ray node on its own host: so for a ``ray`` target the run's supervisor is not a process
on the submitting machine but a Ray job on the cluster (a driver on its head node, 0 CPUs), sent
through the cluster's Jobs API over HTTP. Everything it needs travels as that job's working
directory, a small workspace of its own:

* ``rlfleet.yaml``: the client workspace's tracking store (and server user), so status, metrics
  and logs go where the client reads them;
* ``.rlfleet/compute/``: the run's targets (without the client's token path: on the cluster the
  job runs with the node's own token);
* ``.rlfleet/runs/RUN/spec.yaml``: the spec, its ``source_directory`` now ``source/``, a copy of
  the entry script's folder next to it;
* ``.rlfleet/tracking_password``: the tracking server's password, if it has one (Ray keeps the
  working directory as a package in the cluster's GCS, readable by holders of the cluster's
  token, who can run code on it anyway; it is never in the job's environment or entrypoint,
  which Ray's job listings show).

From there on the client only reads the store: ``runs show/wait/logs`` from any client with the
workspace's config and credentials, ``runs cancel`` through the run's cancel tag, which the
supervisor polls. The store must be one the cluster can reach: a SQLite file only when the
cluster runs on this machine.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import socket
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from rlfleet.compute.jobs import jobs_api_error
from rlfleet.errors import RunSpecError
from rlfleet.telemetry import telemetry_env
from rlfleet.workspace import CONFIG_FILE_NAME
from rlfleet.workspace.workspace import SERVER_SCHEMES, STATE_DIR_NAME, write_secret

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

    from rlfleet.compute.target import ComputeTarget
    from rlfleet.runs.spec import ResolvedSpec
    from rlfleet.workspace import Workspace

logger = logging.getLogger(__name__)

SOURCE = "source"
"""The entry script's folder, inside the supervisor job's working directory."""
SUPERVISOR_JOB_PREFIX = "rlfleet-supervisor-"
SUPERVISOR_ENV = {
    "PYTHONUNBUFFERED": "1",
    # MLflow's client retries a request to a server that is down with a backoff: 0, 2, 4, 8,
    # 16, 32, 64 s here (about 2 minutes in all): the supervisor's writes ride out an outage.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def supervisor_job_id(run_id: str) -> str:
    return f"{SUPERVISOR_JOB_PREFIX}{run_id}"


def check_store_reachable(workspace: Workspace, head: ComputeTarget) -> None:
    """A store the cluster cannot open is refused before anything is recorded.

    Raises:
        RunSpecError: the store is a file on this machine and the cluster is on another host.
    """
    uri = workspace.tracking_uri
    if uri.startswith(SERVER_SCHEMES) or not uri.startswith("sqlite:"):
        return
    assert head.address is not None
    host = head.address.rsplit(":", 1)[0]
    if _on_this_machine(host):
        return
    raise RunSpecError(
        f"compute target {head.name!r} is a cluster on another host ({host}), which cannot "
        "open this workspace's SQLite store; serve the store where the cluster can reach it "
        "(`rlfleet server --host ADDRESS` here, then a workspace made with `rlfleet init "
        "--tracking-uri http://ADDRESS:5000 --tracking-username rlfleet "
        "--tracking-password-file FILE`) or use PostgreSQL."
    )


def _on_this_machine(host: str) -> bool:
    import psutil

    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return False
    if address.is_loopback:
        return True
    local = {
        a.address for addresses in psutil.net_if_addrs().values() for a in addresses if a.address
    }
    return str(address) in local


def start_supervisor_job(
    client: JobSubmissionClient,
    workspace: Workspace,
    run_id: str,
    resolved: ResolvedSpec,
    *,
    stop_cluster_after: str | None = None,
) -> str:
    """Send the run's supervisor to the cluster of ``resolved.head`` as a Ray job; returns the
    job's submission id. ``stop_cluster_after``: the command that stops a cluster started for
    this run, which the supervisor runs on the head when the run has ended.

    Raises:
        ClusterError: the Jobs API failed.
    """
    with tempfile.TemporaryDirectory(prefix="rlfleet-supervisor-") as folder:
        bundle = Path(folder)
        _write_bundle(workspace, run_id, resolved, bundle)
        if stop_cluster_after:
            from rlfleet.runs.supervisor import STOP_CLUSTER_AFTER

            run_dir = bundle / STATE_DIR_NAME / "runs" / run_id
            (run_dir / STOP_CLUSTER_AFTER).write_text(stop_cluster_after)
        job_id = supervisor_job_id(run_id)
        try:
            client.submit_job(
                entrypoint=f"python -m rlfleet.runs.supervisor --workspace . --run-id {run_id}",
                submission_id=job_id,
                runtime_env={
                    "working_dir": str(bundle),
                    "env_vars": {**SUPERVISOR_ENV, **telemetry_env()},
                },
                entrypoint_num_cpus=0,
                metadata={"rlfleet_run_id": run_id, "rlfleet_role": "supervisor"},
            )
        except Exception as err:
            raise jobs_api_error(resolved.head, err) from None
    logger.info("supervisor of run %s sent to %s as job %s", run_id, resolved.head.name, job_id)
    return job_id


def _write_bundle(workspace: Workspace, run_id: str, resolved: ResolvedSpec, bundle: Path) -> None:
    """The supervisor job's working directory: see the module docstring."""
    config = workspace.config.to_dict()
    config["tracking_uri"] = workspace.tracking_uri
    credentials = workspace.tracking_credentials()
    if credentials is not None:
        config["tracking_username"] = credentials[0]
    (bundle / CONFIG_FILE_NAME).write_text(yaml.safe_dump(config, sort_keys=False))
    state = bundle / STATE_DIR_NAME
    (state / "compute").mkdir(parents=True)
    for target in filter(None, (resolved.head, resolved.workers)):
        data = replace(target, token_file=None).to_dict()
        (state / "compute" / f"{target.name}.yaml").write_text(yaml.safe_dump(data))
    if credentials is not None:
        write_secret(state / "tracking_password", credentials[1])
    spec = replace(resolved.spec, source_directory=SOURCE)
    (state / "runs" / run_id).mkdir(parents=True)
    (state / "runs" / run_id / "spec.yaml").write_text(spec.to_yaml())
    shutil.copytree(resolved.spec.source_directory, bundle / SOURCE)
