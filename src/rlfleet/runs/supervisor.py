"""The run supervisor: one process per run that takes it from QUEUED to its end.

It brings the cluster up (or finds the warm one), waits for every node, submits the entry script
through Ray's Job API, streams the driver log and uploads each role's logs while the run goes on,
enforces ``max_run_duration_seconds`` and cancel requests, and at the end stops whatever the run
started. It is the only writer of the run's status after submission.

Started by :func:`rlfleet.runs.submit.submit` as ``python -m rlfleet.runs.supervisor``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from rlfleet.errors import ClusterError, RlfleetError
from rlfleet.runs import record
from rlfleet.runs.context import RUN_ID_ENV, TRACKER_ENV, TRACKING_URI_ENV
from rlfleet.runs.lease import ClusterLease, acquire
from rlfleet.runs.logs import DriverLogStream, node_log
from rlfleet.runs.polling import poll_interval
from rlfleet.runs.run import DRIVER_LOG
from rlfleet.runs.spec import ResolvedSpec, RunSpec
from rlfleet.runs.status import RunStatus
from rlfleet.telemetry import telemetry_env
from rlfleet.tracking.tracker import NAMESPACE, ensure_tracker, tracker_name
from rlfleet.workspace import Workspace

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

logger = logging.getLogger("rlfleet.supervisor")

POLL_S, SLOW_POLL_S = 0.25, 1.0
"""How often the job's status is asked for: first, then for the rest of the run
(:func:`rlfleet.runs.polling.poll_interval`)."""
CANCEL_TAG_POLL_S, SLOW_CANCEL_TAG_POLL_S = 1.0, 3.0
"""The same for the cancel tag (a cancel from this machine also comes at once as SIGTERM)."""
LOG_UPLOAD_S = 3.0
"""The driver's log (streamed here as it is written) is uploaded this often when it changed."""
NODE_LOG_UPLOAD_S = 15.0
"""Worker nodes' logs are fetched through Ray's state API (whole files): this often."""
ERROR_TAIL_LINES = 25
HEARTBEAT_S = 10.0
"""How often the supervisor writes the time to the run (``rlfleet.supervisor.heartbeat``): a
client that can reach neither the run's cluster nor this word from it for long ends the run
(runs/reconcile.py)."""
FINAL_FLUSH_S = 300.0
"""How long the end of a run waits for the store to take its last metrics."""


@dataclass
class Outcome:
    status: RunStatus
    reason: str | None = None
    error: str | None = None


class Supervisor:
    """Drives one run; see the module docstring."""

    def __init__(self, workspace: Workspace, run_id: str) -> None:
        self.workspace = workspace
        self.run_id = run_id
        self.store = workspace.tracking
        self.run_dir = workspace.runs_dir / run_id
        self.submission_id = f"rlfleet-{run_id}"
        self.cancel_reason: str | None = None
        self.lease: ClusterLease | None = None
        self.client: JobSubmissionClient | None = None
        self.tracker: Any = None
        self.driver_log: DriverLogStream | None = None
        self.children: dict[str, str] = {}
        self._uploaded: dict[str, str] = {}
        self._job_hex: str | None = None
        self._alive_nodes: set[str] = set()
        self.cluster_lost = False
        self._events: list[str] = []

    # -- signals --------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.cancel_reason = self.cancel_reason or "canceled by user"
        logger.info("signal %d: canceling", signum)

    def _should_stop(self) -> bool:
        return self.cancel_reason is not None

    # -- the whole run --------------------------------------------------------------------------

    def _catch_signals(self) -> None:
        """SIGTERM/SIGINT ask for a cancel (``ray.init`` installs handlers of its own: call
        this again after it)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def run(self) -> RunStatus:
        self._catch_signals()
        outcome = Outcome(RunStatus.FAILED, error="the supervisor stopped unexpectedly")
        try:
            resolved = RunSpec.from_dict(
                _load_yaml(self.run_dir / "spec.yaml"), source="spec.yaml"
            ).resolve(self.workspace)
            self._start(resolved)
            outcome = self._watch(resolved.spec.max_run_duration_seconds)
        except ClusterError as err:
            if self.cancel_reason:
                outcome = Outcome(RunStatus.CANCELED, reason=self.cancel_reason)
            else:
                outcome = Outcome(RunStatus.FAILED, reason=str(err), error=str(err))
        except RlfleetError as err:
            outcome = Outcome(RunStatus.FAILED, reason=str(err), error=str(err))
        except Exception as err:
            logger.exception("supervisor error")
            message = f"rlfleet supervisor error: {type(err).__name__}: {err}"
            outcome = Outcome(RunStatus.FAILED, reason=message, error=traceback.format_exc())
        finally:
            self._finish(outcome)
        return outcome.status

    def _start(self, resolved: ResolvedSpec) -> None:
        spec = resolved.spec
        self.lease = acquire(self.workspace, resolved, owner=f"run:{self.run_id}")
        if self.lease.started_nodes:  # nodes take seconds: show that the run is starting
            self._mark(RunStatus.STARTING)
        logger.info("waiting for nodes %s", self.lease.node_names or self.lease.gcs_address)
        self.lease.wait(spec.cluster_coordination_timeout_seconds, self._should_stop)
        # The entry script goes first; the bookkeeping below runs while its driver starts, at
        # a lower priority so that it takes no CPU from the run on a small machine.
        self._submit(spec, self.lease.dashboard_url())
        self._connect()
        os.nice(5)
        self._mark(RunStatus.STARTING)
        self._make_children(resolved)
        self._mark(RunStatus.RUNNING)

    def _connect(self) -> None:
        """Connect to the cluster as a driver and get (or start) its tracker actor."""
        import ray

        assert self.lease is not None
        if not ray.is_initialized():  # (a lease on an existing cluster may have connected)
            ray.init(
                address=self.lease.gcs_address,
                namespace=NAMESPACE,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        self._catch_signals()
        self.tracker = ensure_tracker(
            self.store.tracking_uri,
            self.lease.label_selector,
            self.workspace.tracking_credentials(),
        )

    def _submit(self, spec: RunSpec, dashboard_url: str) -> None:
        from ray.job_submission import JobSubmissionClient

        env = {
            **spec.environment_variables,
            RUN_ID_ENV: self.run_id,
            TRACKING_URI_ENV: self.store.tracking_uri,
            TRACKER_ENV: tracker_name(self.store.tracking_uri),
            "PYTHONUNBUFFERED": "1",
            **telemetry_env(),
        }
        runtime_env: dict[str, Any] = {"working_dir": spec.source_directory, "env_vars": env}
        packages = spec.all_pip_packages()
        if packages:
            runtime_env["pip"] = {"packages": packages, "pip_check": False}
        self.client = JobSubmissionClient(dashboard_url)
        self.client.submit_job(
            entrypoint=spec.entrypoint(),
            submission_id=self.submission_id,
            runtime_env=runtime_env,
            metadata={"rlfleet_run_id": self.run_id},
        )
        logger.info("submitted %s: %s", self.submission_id, spec.entrypoint())
        self.driver_log = DriverLogStream(
            self.client, self.submission_id, self.run_dir / DRIVER_LOG
        ).start()

    # -- watching -------------------------------------------------------------------------------

    def _watch(self, max_duration_s: float | None) -> Outcome:
        from ray.job_submission import JobStatus

        assert self.client is not None
        started = time.monotonic()
        next_tag_check = next_upload = next_node_upload = next_heartbeat = 0.0
        while True:
            now = time.monotonic()
            if now >= next_heartbeat and self.lease is not None and self.lease.remote is not None:
                next_heartbeat = now + HEARTBEAT_S  # (read only for runs supervised on a cluster)
                self._heartbeat()
            if now >= next_tag_check:
                next_tag_check = now + poll_interval(
                    now - started, CANCEL_TAG_POLL_S, SLOW_CANCEL_TAG_POLL_S
                )
                try:
                    tags = self.store.get_run(self.run_id).data.tags
                except Exception as err:  # the store may be briefly unreachable; the run goes on
                    logger.warning("could not read the run's tags: %s", err)
                    tags = {}
                if tags.get(record.CANCEL_REQUESTED) and not self.cancel_reason:
                    self.cancel_reason = tags[record.CANCEL_REQUESTED]
            if (
                max_duration_s is not None
                and now - started > max_duration_s
                and not self.cancel_reason
            ):
                self.cancel_reason = f"max_run_duration_seconds ({max_duration_s:g} s) exceeded"
            if self.cancel_reason:
                self._stop_job()
                return Outcome(RunStatus.CANCELED, reason=self.cancel_reason)
            self._check_nodes()
            try:
                status = self.client.get_job_status(self.submission_id)
            except Exception as err:
                self.cluster_lost = True
                raise ClusterError(f"lost the cluster while the run was going: {err}") from err
            if status.is_terminal():
                return self._outcome_of(status == JobStatus.SUCCEEDED, status == JobStatus.STOPPED)
            if now >= next_upload:
                next_upload = now + LOG_UPLOAD_S
                nodes = now >= next_node_upload
                if nodes:
                    next_node_upload = now + NODE_LOG_UPLOAD_S
                self._upload_logs(nodes=nodes)
            time.sleep(poll_interval(now - started, POLL_S, SLOW_POLL_S))

    def _heartbeat(self) -> None:
        try:
            self.store.set_tags(self.run_id, {record.SUPERVISOR_HEARTBEAT: f"{time.time():.0f}"})
        except Exception as err:  # the store may be briefly unreachable; the run goes on
            logger.warning("could not write the heartbeat: %s", err)

    def _check_nodes(self) -> None:
        """Fail at once if the head node died; record worker nodes that die or come back, and
        start again the worker nodes this run started that died."""
        local = self.lease.local if self.lease else None
        if local is None:
            return
        alive = {n.name for n in local.nodes if n.name in self.lease.node_names and n.alive()}
        if "head" not in alive:
            head = local.node("head")
            tail = head.log_tail() if head else ""
            self.cluster_lost = True
            raise ClusterError("the head node died" + (f": {tail}" if tail else ""))
        if alive != self._alive_nodes:
            lost = sorted(set(self.lease.node_names) - alive)
            event = f"nodes up: {len(alive)}/{len(self.lease.node_names)}" + (
                f" (down: {', '.join(lost)})" if lost else ""
            )
            self._record_event(event)
            self._alive_nodes = alive
            if lost:
                restarted = self.lease.restart_lost_workers()
                if restarted:
                    self._record_event(f"restarting worker nodes: {', '.join(restarted)}")

    def _record_event(self, event: str) -> None:
        """A node event: in the supervisor's log, the run's ``rlfleet.nodes`` tag and
        ``events.txt`` artifact."""
        logger.warning("run %s: %s", self.run_id, event)
        self._events.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {event}")
        try:
            self.store.set_tags(self.run_id, {record.NODES_EVENT: event})
            self.store.log_text(self.run_id, "\n".join(self._events) + "\n", "events.txt")
        except Exception as err:
            logger.warning("could not record the event: %s", err)

    def _outcome_of(self, succeeded: bool, stopped: bool) -> Outcome:
        if succeeded:
            return Outcome(RunStatus.COMPLETED)
        if stopped:
            return Outcome(RunStatus.CANCELED, reason="the Ray job was stopped outside rlfleet")
        assert self.client is not None
        info = self.client.get_job_info(self.submission_id)
        if self.driver_log is not None:
            self.driver_log.finish()
        tail = _tail(self.run_dir / DRIVER_LOG, ERROR_TAIL_LINES)
        code = (
            f" with exit code {info.driver_exit_code}" if info.driver_exit_code is not None else ""
        )
        reason = f"the entry script failed{code}"
        if info.driver_exit_code is None and info.message:
            reason = info.message.splitlines()[0]
        return Outcome(RunStatus.FAILED, reason=reason, error=f"{reason}\n{tail}".strip())

    def _stop_job(self) -> None:
        """Stop the entry script. On a cluster of its own the teardown does it faster."""
        if self.client is None or (self.lease is not None and self.lease.owns_cluster):
            return
        try:
            self.client.stop_job(self.submission_id)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if self.client.get_job_status(self.submission_id).is_terminal():
                    return
                time.sleep(0.2)
        except Exception as err:
            logger.warning("could not stop job %s: %s", self.submission_id, err)

    # -- records and logs -----------------------------------------------------------------------

    def _mark(self, status: RunStatus, **kwargs: str | None) -> None:
        if status is RunStatus.STARTING:
            self.store.set_tags(
                self.run_id,
                {
                    record.SUPERVISOR_PID: str(os.getpid()),
                    record.SUPERVISOR_HOST: socket.gethostname(),
                    record.CLUSTER: self.lease.cluster_id if self.lease else "",
                },
            )
        if record.set_status(self.store, self.run_id, status, **kwargs):
            logger.info("run %s is %s", self.run_id, status.value)

    def _make_children(self, resolved: ResolvedSpec) -> None:
        experiment_id = self.store.get_run(self.run_id).info.experiment_id
        roles = ["head"] + (["worker"] if resolved.node_count else [])
        for role in roles:
            self.children[role] = self.store.create_run(
                experiment_id,
                name=role,
                parent_id=self.run_id,
                tags={record.ROLE: role, record.STATUS: RunStatus.RUNNING.value},
            )
            self.store.set_mlflow_status(self.children[role], "RUNNING", end=False)

    def _upload_logs(self, *, final: bool = False, nodes: bool = True) -> None:
        """Upload each role's logs (the worker nodes' only with ``nodes``); at the end, with the
        cluster gone, only what is here."""
        try:
            if "head" in self.children and self.driver_log is not None:
                if final and not self.cluster_lost:
                    # a canceled job's stream does not end by itself: do not wait for it
                    self.driver_log.finish(timeout_s=0.1 if self.cancel_reason else 2.0)
                self._upload(self.children["head"], self.driver_log.path, DRIVER_LOG)
            if (
                nodes
                and "worker" in self.children
                and self.lease is not None
                and not self.cluster_lost
            ):
                job_hex = self._ray_job_hex()
                for node_id, name in self.lease.worker_nodes().items():
                    path = self.run_dir / f"{name}_log.txt"
                    path.write_text(node_log(self.lease.gcs_address, node_id, name, job_hex))
                    self._upload(self.children["worker"], path, path.name)
        except Exception as err:  # logs are best effort while the run goes on
            logger.warning("log upload failed: %s", err)

    def _upload(self, run_id: str, path: Path, name: str) -> None:
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        if self._uploaded.get(name) != digest:
            self.store.log_artifact(run_id, path)
            self._uploaded[name] = digest

    def _ray_job_hex(self) -> str | None:
        if self._job_hex is None and self.client is not None:
            self._job_hex = self.client.get_job_info(self.submission_id).job_id
            if self._job_hex:
                self.store.set_tags(self.run_id, {record.RAY_JOB: self._job_hex})
        return self._job_hex

    # -- the end --------------------------------------------------------------------------------

    def _finish(self, outcome: Outcome) -> None:
        self._upload_logs(final=True)
        if self.tracker is not None and not self.cluster_lost:
            self._flush_tracker()
        if self.lease is not None:
            self.lease.withdraw_request()
        self._disconnect()
        if self.lease is not None:
            left = self.lease.release()
            if left:
                logger.error("%d processes of the run's nodes were still alive", left)
        for child in self.children.values():
            record.set_status(self.store, child, outcome.status)
        self._mark(outcome.status, reason=outcome.reason, error=outcome.error)
        self._save_tensorboard_events()
        stop_after = self.run_dir / STOP_CLUSTER_AFTER
        if stop_after.exists():  # a cluster on the user's hosts started for this run
            stop_cluster_later(stop_after.read_text().strip())

    def _flush_tracker(self) -> None:
        """Wait until the tracker has written every point: a store that is down for a while
        (a tracking server restarting) is waited for, up to FINAL_FLUSH_S."""
        import ray

        deadline = time.monotonic() + FINAL_FLUSH_S
        while True:
            try:
                ray.get(self.tracker.flush.remote(), timeout=30)
                return
            except Exception as err:
                if time.monotonic() > deadline:
                    logger.error("could not write the run's last metrics: %s", err)
                    return
                logger.warning("waiting for the store to write the last metrics: %s", err)
                time.sleep(2)

    def _save_tensorboard_events(self) -> None:
        """The run's metrics as a TensorBoard event file, attached to the run."""
        from rlfleet.monitor.tensorboard import write_events
        from rlfleet.runs.run import Run

        try:
            path = write_events(Run(self.run_id, store=self.store), self.run_dir / "tensorboard")
            self.store.log_artifact(self.run_id, path, "tensorboard")
        except Exception as err:
            logger.warning("could not write the TensorBoard events: %s", err)

    def _disconnect(self) -> None:
        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                ray.shutdown()


STOP_CLUSTER_AFTER = "stop_cluster_after"
"""In the run's folder of a supervisor on its cluster: the command that stops a cluster started
for the run (runs/submit.py), which the supervisor runs when it has ended the run."""


def stop_cluster_later(command: str) -> None:
    """Run ``command`` (it stops the cluster this process runs on) in a session of its own: it
    outlives the Ray processes it stops, this one included. Its output: ~/rlfleet-stop.log."""
    import subprocess

    logger.info("stopping the run's cluster: %s", command)
    with open(Path("~/rlfleet-stop.log").expanduser(), "ab") as log:
        subprocess.Popen(
            ["bash", "--login", "-c", f"sleep 2; {command}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _load_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--run-id", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    workspace = Workspace.from_config(args.workspace)
    status = Supervisor(workspace, args.run_id).run()
    return 0 if status is RunStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
