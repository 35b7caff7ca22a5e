"""Samplers: where rollouts come from, in the driver process or from Ray actors.

Both samplers offer the same three calls: ``set_weights`` (after each learner update),
``next_rollout`` and ``close``. For IMPALA and APPO, :class:`RaySampler` keeps
``num_data_loader_buffers`` sample requests in flight per actor, so actors keep stepping while
the learner learns; weights travel through the object store once per update (``ray.put``), and
rollouts come back as numpy arrays (zero-copy reads from the object store). For PPO it is
synchronous: each ``set_weights`` asks for exactly one train batch of rollouts, all with those
weights, spread over the actors, and the actors wait while the learner learns.

Lost actors: rollout actors are restartable (``max_restarts=-1``). When one dies with its node,
its requests fail; training goes on with the other actors while Ray restarts the lost one on a
worker node with room (at once if one has, else when a node joins). A probe call tells when it
is back, and it gets sample requests again. ``healthy_workers`` and ``worker_failures`` say
where things stand; ``fewest_healthy_workers()`` the low point since it was last asked, so that
an outage shorter than an iteration still shows in the iteration's metrics.

Stalled actors: an actor whose node is cut off from the cluster (a network partition) is not
lost for Ray until its health checks have failed for about a minute; its requests just wait.
An actor that has delivered before and now has delivered nothing for :data:`STALL_MIN_S` (or 3
times the slowest rollout seen, if longer) counts as not healthy until it delivers again:
training goes on with the others, and the metrics and the log say so. A stalled actor is
probed too (a call of its own, every :data:`PROBE_INTERVAL_S`, one at a time): the rollout of a
request that was under way when the link went may never arrive, and nothing else would ever be
sent to that actor. A probe that fails makes the actor lost (above); one that returns while
the rollout asked before it has still not come means that rollout was lost with the link (the
actor runs its calls in order): the request is made again. (Seen on a 30 s cut with an
environment whose steps take milliseconds: without the probe the actor was never heard from
again.)
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from rlfleet.impala.config import PPOConfig, TrainerConfig
from rlfleet.impala.sampling import EnvSpec, Rollout, RolloutWorker, Weights

logger = logging.getLogger(__name__)

ACTOR_START_TIMEOUT_S = 600.0
"""How long to wait for the first rollout actor (it may wait for a node to start)."""

WORKER_LABEL = {"rlfleet/role": "worker"}
"""Ray node label of worker nodes started by the platform; actors go there when any exist."""

NO_ROLLOUT_TIMEOUT_S = 600.0
"""Training fails when no actor has delivered a rollout for this long (all lost, none back)."""

PROBE_INTERVAL_S = 1.0
"""How often a lost actor is asked whether it is back (and stalled actors looked for)."""

STALL_MIN_S = 10.0
"""An actor that delivered before and now delivers nothing for this long counts as stalled."""


def _lost_actor_errors() -> tuple[type[Exception], ...]:
    import ray

    # RaySystemError: Ray 2.60 sometimes cannot deserialise the error of an actor that died
    # with its node (``assert ray_error_info.HasField("actor_died_error")`` in
    # ``_deserialize_actor_died_error``) and raises this instead of ActorDiedError; seen here
    # once in five raylet kills, and it ended the training.
    return (ray.exceptions.RayActorError, ray.exceptions.RaySystemError)


class Sampler(Protocol):
    """A source of rollouts that follows the learner's weights."""

    spec: EnvSpec
    healthy_workers: int
    worker_failures: int

    def set_weights(self, weights: Weights, version: int) -> None: ...

    def next_rollout(self) -> Rollout: ...

    def fewest_healthy_workers(self) -> int:
        """The fewest actors sampling at any moment since the last call (then from now on)."""
        ...

    def close(self) -> None: ...


class LocalSampler:
    """Samples in the calling process (``num_workers`` 0): no Ray, for debugging and small hosts."""

    def __init__(self, env_id: str, config: TrainerConfig) -> None:
        self.worker = RolloutWorker(
            env_id, config.algorithm, config.to_dict(), worker_index=0, torch_threads=None
        )
        self.spec = self.worker.spec
        self.healthy_workers = 1
        self.worker_failures = 0

    def set_weights(self, weights: Weights, version: int) -> None:
        self.worker.set_weights(weights, version)

    def next_rollout(self) -> Rollout:
        return self.worker.sample()

    def fewest_healthy_workers(self) -> int:
        return 1

    def close(self) -> None:
        self.worker.close()


class RaySampler:
    """``num_workers`` RolloutWorker actors, on worker-labelled nodes when the cluster has any."""

    def __init__(self, env_id: str, config: TrainerConfig) -> None:
        import ray

        options: dict[str, Any] = {"num_cpus": config.num_cpus_per_worker}
        worker_cpus = worker_node_cpus()
        if worker_cpus is not None:
            options["label_selector"] = WORKER_LABEL
        available = (
            worker_cpus if worker_cpus is not None else ray.cluster_resources().get("CPU", 0)
        )
        needed = config.num_workers * config.num_cpus_per_worker
        if needed > available:
            logger.warning(
                "num_workers %d x num_cpus_per_worker %g needs %g CPUs but the %s have %g: "
                "some actors will wait for resources (lower num_cpus_per_worker, e.g. 0.5)",
                config.num_workers,
                config.num_cpus_per_worker,
                needed,
                "worker nodes" if worker_cpus is not None else "cluster's nodes",
                available,
            )
        remote_worker = ray.remote(RolloutWorker).options(
            **options, max_restarts=-1, max_task_retries=0
        )
        config_dict = config.to_dict()
        self.actors = [
            remote_worker.remote(env_id, config.algorithm, config_dict, worker_index=i + 1)
            for i in range(config.num_workers)
        ]
        self.synchronous = isinstance(config, PPOConfig)
        self._rollouts_per_batch = config.rollouts_per_batch()
        self._to_submit = 0  # synchronous: requests still to make with the current weights
        self._requests_per_actor = 1 if self.synchronous else max(1, config.num_data_loader_buffers)
        self._weights_ref: Any = None
        self._version = -1
        self._pending: dict[Any, Any] = {}  # sample request -> actor
        self._lost: set[Any] = set()
        self._probes: dict[Any, Any] = {}  # probe call -> lost or stalled actor
        self._probed_at: dict[Any, float] = {}  # lost or stalled actor -> when last probed
        self._waiting_since: dict[Any, float] = {}  # actor with requests out -> since when
        self._delivered: set[Any] = set()  # actors that delivered a rollout
        self._stalled: set[Any] = set()
        self._slowest = 0.0  # the longest wait for a rollout of an actor that had delivered
        self._next_stall_check = 0.0
        self.worker_failures = 0
        self._fewest_healthy = len(self.actors)
        try:
            self.spec: EnvSpec = ray.get(
                self.actors[0].get_spec.remote(), timeout=ACTOR_START_TIMEOUT_S
            )
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise RuntimeError(
                f"no rollout actor started within {ACTOR_START_TIMEOUT_S:.0f}s; "
                f"the cluster may lack the {needed:g} CPUs asked for ({options})"
            ) from None
        logger.info("started %d rollout actors with %s", len(self.actors), options)

    def set_weights(self, weights: Weights, version: int) -> None:
        import ray

        self._weights_ref = ray.put(weights)
        self._version = version
        if self.synchronous:
            self._to_submit = self._rollouts_per_batch
            self._fill()
        elif not self._pending:
            for actor in self.actors:
                for _ in range(self._requests_per_actor):
                    self._submit(actor)

    @property
    def healthy_workers(self) -> int:
        return len(self.actors) - len(self._lost | self._stalled)

    def fewest_healthy_workers(self) -> int:
        fewest, self._fewest_healthy = self._fewest_healthy, self.healthy_workers
        return fewest

    def next_rollout(self) -> Rollout:
        """The next rollout from any actor; lost actors are set aside and probed until back."""
        import ray

        deadline = time.monotonic() + NO_ROLLOUT_TIMEOUT_S
        while True:
            self._find_stalled()
            self._send_probes()
            waiting = [*self._pending, *self._probes]
            timeout = PROBE_INTERVAL_S
            if waiting:
                ready, _ = ray.wait(waiting, num_returns=1, timeout=timeout)
            else:  # every actor lost, and each was just probed
                ready = []
                time.sleep(PROBE_INTERVAL_S)
            if not ready:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"no rollout for {NO_ROLLOUT_TIMEOUT_S:.0f}s: all {len(self.actors)} "
                        "rollout actors are lost and none came back (are the worker nodes up?)"
                    )
                continue
            [ref] = ready
            if ref in self._probes:
                self._probed(ref)
                continue
            actor = self._pending.pop(ref)
            try:
                rollout = ray.get(ref)
            except _lost_actor_errors() as error:
                if self.synchronous:  # asked again of another actor, with the same weights
                    self._to_submit += 1
                self._lose(actor, error)
                continue
            self._on_delivery(actor)
            if self.synchronous:
                self._fill()
            else:
                self._submit(actor)
            return rollout

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self._pending.clear()
        self._probes.clear()
        self._probed_at.clear()

    def _submit(self, actor: Any) -> None:
        self._waiting_since.setdefault(actor, time.monotonic())
        self._pending[actor.sample.remote(self._weights_ref, self._version)] = actor

    def _on_delivery(self, actor: Any) -> None:
        now = time.monotonic()
        since = self._waiting_since.pop(actor, now)
        if actor in self._delivered and actor not in self._stalled:
            self._slowest = max(self._slowest, now - since)
        self._delivered.add(actor)
        if actor in self._pending.values():
            self._waiting_since[actor] = now
        if actor in self._stalled:
            self._stalled.discard(actor)
            self._probed_at.pop(actor, None)
            logger.warning(
                "rollout actor %d delivers again after %.0f s; %d of %d actors sampling",
                self.actors.index(actor) + 1,
                now - since,
                self.healthy_workers,
                len(self.actors),
            )

    def _find_stalled(self) -> None:
        """Mark as stalled the actors that delivered before and whose requests have waited
        too long (not merely waiting here to be taken: none of them is ready)."""
        import ray

        now = time.monotonic()
        if now < self._next_stall_check:
            return
        self._next_stall_check = now + PROBE_INTERVAL_S
        limit = max(STALL_MIN_S, 3 * self._slowest)
        for actor, since in self._waiting_since.items():
            if (
                actor not in self._delivered
                or actor in self._stalled
                or actor in self._lost
                or now - since <= limit
            ):
                continue
            refs = [ref for ref, owner in self._pending.items() if owner is actor]
            if not refs or ray.wait(refs, num_returns=1, timeout=0)[0]:
                continue
            self._stalled.add(actor)
            self._fewest_healthy = min(self._fewest_healthy, self.healthy_workers)
            logger.warning(
                "rollout actor %d has delivered nothing for %.0f s (is its node cut off?); "
                "going on with %d of %d actors",
                self.actors.index(actor) + 1,
                now - since,
                self.healthy_workers,
                len(self.actors),
            )

    def _fill(self) -> None:
        """Synchronous: give each idle healthy actor one of the requests still to make."""
        busy = set(self._pending.values())
        for actor in self.actors:
            if self._to_submit == 0:
                return
            if actor not in busy and actor not in self._lost:
                self._submit(actor)
                self._to_submit -= 1

    def _lose(self, actor: Any, error: Exception) -> None:
        if actor in self._lost:
            return
        self.worker_failures += 1
        self._lost.add(actor)
        self._probed_at.pop(actor, None)  # probed at once
        self._stalled.discard(actor)
        self._waiting_since.pop(actor, None)
        self._fewest_healthy = min(self._fewest_healthy, self.healthy_workers)
        for ref in [ref for ref, owner in self._pending.items() if owner is actor]:
            del self._pending[ref]
            if self.synchronous:  # asked again of another actor, with the same weights
                self._to_submit += 1
        if self.synchronous:
            self._fill()
        index = self.actors.index(actor) + 1
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        logger.warning(
            "rollout actor %d lost (%s: %s); going on with %d of %d actors until Ray restarts it",
            index,
            type(error).__name__,
            first_line[:200],
            self.healthy_workers,
            len(self.actors),
        )

    def _send_probes(self) -> None:
        """Probe each lost or stalled actor (one call at a time, every PROBE_INTERVAL_S)."""
        now = time.monotonic()
        probing = set(self._probes.values())
        for actor in self._lost | self._stalled:
            if actor not in probing and now - self._probed_at.get(actor, 0.0) >= PROBE_INTERVAL_S:
                self._probed_at[actor] = now
                self._probes[actor.get_spec.remote()] = actor

    def _probed(self, ref: Any) -> None:
        import ray

        actor = self._probes.pop(ref)
        if actor not in self._lost:
            self._stall_answered(actor, ref)
            return
        try:
            ray.get(ref)
        except _lost_actor_errors():
            return  # still restarting; probed again later
        self._lost.discard(actor)
        self._probed_at.pop(actor, None)
        logger.warning(
            "rollout actor %d is back; %d of %d actors sampling",
            self.actors.index(actor) + 1,
            self.healthy_workers,
            len(self.actors),
        )
        if self.synchronous:
            self._fill()
            return
        for _ in range(self._requests_per_actor):
            self._submit(actor)

    def _stall_answered(self, actor: Any, ref: Any) -> None:
        """A stalled actor's probe came back: lost if it failed; its requests made again if
        their rollouts are not on their way (they were lost with the link)."""
        import ray

        try:
            ray.get(ref)
        except _lost_actor_errors() as error:
            self._lose(actor, error)
            return
        if actor not in self._stalled:
            return  # it delivered meanwhile
        asked = [r for r, owner in self._pending.items() if owner is actor]
        if asked and ray.wait(asked, num_returns=1, timeout=0, fetch_local=False)[0]:
            return  # a rollout is done and on its way here
        for r in asked:
            del self._pending[r]
        self._waiting_since.pop(actor, None)
        logger.warning(
            "rollout actor %d answers but its rollout never came (lost with the link?); "
            "asking again",
            self.actors.index(actor) + 1,
        )
        if self.synchronous:
            self._to_submit += len(asked)
            self._fill()
        else:
            for _ in range(self._requests_per_actor):
                self._submit(actor)


def worker_node_cpus() -> float | None:
    """CPUs of the live ``rlfleet/role=worker`` nodes of the connected cluster; None if none."""
    import ray

    key, value = next(iter(WORKER_LABEL.items()))
    nodes = [
        node
        for node in ray.nodes()
        if node.get("Alive") and node.get("Labels", {}).get(key) == value
    ]
    if not nodes:
        return None
    return sum(node.get("Resources", {}).get("CPU", 0.0) for node in nodes)


def cluster_has_worker_nodes() -> bool:
    """Whether any live node of the connected Ray cluster carries ``rlfleet/role=worker``."""
    return worker_node_cpus() is not None


def make_sampler(env_id: str, config: TrainerConfig) -> Sampler:
    """LocalSampler when ``num_workers`` is 0, else RaySampler (Ray must be initialised)."""
    if config.num_workers == 0:
        return LocalSampler(env_id, config)
    return RaySampler(env_id, config)
