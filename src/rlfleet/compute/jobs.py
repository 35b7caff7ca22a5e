"""The Jobs API of a Ray cluster (its dashboard, over HTTP): how rlfleet reaches a cluster on
another host, where a Ray driver would need a Ray node of its own."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rlfleet.compute.auth import auth_refused, is_auth_error, target_auth_env
from rlfleet.compute.cluster import use_ray_auth
from rlfleet.errors import ClusterError

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

    from rlfleet.compute.target import ComputeTarget
    from rlfleet.workspace import Workspace


def jobs_client(workspace: Workspace, head: ComputeTarget) -> JobSubmissionClient:
    """A client of the cluster's Jobs API, with the target's token (it asks the cluster for its
    version: a cluster out of reach or refusing the token is an error here, before anything is
    recorded).

    Raises:
        ClusterError: the Jobs API cannot be reached or refuses the token.
    """
    from ray.job_submission import JobSubmissionClient

    url = head.dashboard_url
    assert url is not None
    use_ray_auth(target_auth_env(workspace, head))
    # Ray's SDK logs each upload at INFO on the user's terminal; rlfleet says what happens.
    logging.getLogger("ray.dashboard.modules.dashboard_sdk").setLevel(logging.WARNING)
    try:
        return JobSubmissionClient(url)
    except Exception as err:
        raise jobs_api_error(head, err) from None


def jobs_api_error(head: ComputeTarget, err: Exception) -> ClusterError:
    if is_auth_error(err):
        return auth_refused(head)
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ClusterError(
        f"could not reach the Jobs API of compute target {head.name!r} at "
        f"{head.dashboard_url}: {first}; check that the cluster is up and its dashboard "
        "address (--dashboard-address; the head needs --dashboard-host set to an address you "
        "reach)."
    )
