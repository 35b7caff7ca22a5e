"""Samplers: where rollouts come from, in the driver process or from Ray actors.

Both samplers offer the same three calls: ``set_weights`` (after each learner update),
``next_rollout`` and ``close``. :class:`RaySampler` keeps ``num_data_loader_buffers`` sample
requests in flight per actor, so actors keep stepping while the learner learns; weights travel
through the object store once per update (``ray.put``), and rollouts come back as numpy arrays
(zero-copy reads from the object store).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from rlfleet.impala.config import ImpalaConfig
from rlfleet.impala.sampling import EnvSpec, Rollout, RolloutWorker, Weights

logger = logging.getLogger(__name__)

ACTOR_START_TIMEOUT_S = 600.0
"""How long to wait for the first rollout actor (it may wait for a node to start)."""

WORKER_LABEL = {"rlfleet/role": "worker"}
"""Ray node label of worker nodes started by the platform; actors go there when any exist."""


class Sampler(Protocol):
    """A source of rollouts that follows the learner's weights."""

    spec: EnvSpec

    def set_weights(self, weights: Weights, version: int) -> None: ...

    def next_rollout(self) -> Rollout: ...

    def close(self) -> None: ...


class LocalSampler:
    """Samples in the calling process (``num_workers`` 0): no Ray, for debugging and small hosts."""

    def __init__(self, env_id: str, config: ImpalaConfig) -> None:
        self.worker = RolloutWorker(env_id, config.to_dict(), worker_index=0, torch_threads=None)
        self.spec = self.worker.spec

    def set_weights(self, weights: Weights, version: int) -> None:
        self.worker.set_weights(weights, version)

    def next_rollout(self) -> Rollout:
        return self.worker.sample()

    def close(self) -> None:
        self.worker.close()


class RaySampler:
    """``num_workers`` RolloutWorker actors, on worker-labelled nodes when the cluster has any."""

    def __init__(self, env_id: str, config: ImpalaConfig) -> None:
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
        remote_worker = ray.remote(RolloutWorker).options(**options)
        config_dict = config.to_dict()
        self.actors = [
            remote_worker.remote(env_id, config_dict, worker_index=i + 1)
            for i in range(config.num_workers)
        ]
        self._requests_per_actor = max(1, config.num_data_loader_buffers)
        self._weights_ref: Any = None
        self._version = -1
        self._pending: dict[Any, Any] = {}
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
        if not self._pending:
            for actor in self.actors:
                for _ in range(self._requests_per_actor):
                    self._submit(actor)

    def next_rollout(self) -> Rollout:
        import ray

        [ready], _ = ray.wait(list(self._pending), num_returns=1)
        actor = self._pending.pop(ready)
        self._submit(actor)
        return ray.get(ready)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self._pending.clear()

    def _submit(self, actor: Any) -> None:
        self._pending[actor.sample.remote(self._weights_ref, self._version)] = actor


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


def make_sampler(env_id: str, config: ImpalaConfig) -> Sampler:
    """LocalSampler when ``num_workers`` is 0, else RaySampler (Ray must be initialised)."""
    if config.num_workers == 0:
        return LocalSampler(env_id, config)
    return RaySampler(env_id, config)
