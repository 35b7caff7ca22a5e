"""Fixtures of the trainer's tests."""

from __future__ import annotations

import pytest
import ray


@pytest.fixture
def local_ray(monkeypatch):
    """A private 2-CPU Ray instance whose only node is labelled as a platform worker node."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, labels={"rlfleet/role": "worker"}
    )
    yield
    ray.shutdown()
