"""Which Ray token reaches which cluster.

Clusters rlfleet starts (``local`` targets) use the workspace's own token. An existing cluster
(a ``ray`` target) has a token of its own: the target records the file that holds it, taken from
``--token-file`` or from the caller's Ray auth settings when the target is made (Ray's order:
``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``). A token given by value is
copied into the workspace (``.rlfleet/tokens/NAME``, readable by its owner only), so the target
keeps working in processes started later with other settings (a run's supervisor). Tokens are
passed on as file paths, never as values on command lines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rlfleet.compute.cluster import ray_auth_env
from rlfleet.compute.target import ComputeKind, ComputeTarget
from rlfleet.errors import ClusterError, ComputeTargetError

if TYPE_CHECKING:
    from rlfleet.workspace import Workspace

DEFAULT_TOKEN_PATH = Path("~/.ray/auth_token")
"""Where Ray looks for its token when neither variable is set."""


def token_file_for(workspace: Workspace, name: str, token_file: str | None) -> str | None:
    """The token file a new ``ray`` target ``name`` records: ``token_file`` if given (it must
    exist and hold a token), else the caller's Ray auth settings; ``None`` when there are none.

    Raises:
        ComputeTargetError: ``token_file`` cannot be read or is empty.
    """
    if token_file:
        path = Path(token_file).expanduser().resolve()
        try:
            text = path.read_text().strip()
        except OSError as err:
            raise ComputeTargetError(
                f"cannot read --token-file {token_file}: {err.strerror or err}."
            ) from None
        if not text:
            raise ComputeTargetError(f"--token-file {token_file} is empty; it must hold the token.")
        return str(path)
    if os.environ.get("RAY_AUTH_TOKEN"):
        return str(_save_token(workspace, name, os.environ["RAY_AUTH_TOKEN"].strip()))
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return token_file_for(workspace, name, os.environ["RAY_AUTH_TOKEN_PATH"])
    default = DEFAULT_TOKEN_PATH.expanduser()
    return str(default) if default.is_file() else None


def _save_token(workspace: Workspace, name: str, token: str) -> Path:
    from rlfleet.workspace.workspace import write_secret

    folder = workspace.state_dir / "tokens"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_secret(folder / name, token)
    return folder / name


def target_auth_env(workspace: Workspace, target: ComputeTarget) -> dict[str, str]:
    """Ray's auth variables for a client of ``target``'s cluster."""
    if target.kind is ComputeKind.LOCAL:
        return ray_auth_env(workspace)
    if target.token_file:
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": target.token_file}
    return {}


def is_auth_error(err: BaseException) -> bool:
    """Whether ``err`` (from a Ray client call) says the cluster refused this client's token."""
    text = f"{type(err).__name__}: {err}"
    return any(
        marker in text
        for marker in (
            "InvalidAuthToken",
            "UNAUTHENTICATED",
            "Unauthenticated",
            "Authentication failed",
            "Invalid authentication token",
            "401",
            "403",
        )
    )


def auth_refused(target: ComputeTarget) -> ClusterError:
    """The one-line error for a cluster that refused the target's token (or asked for one)."""
    given = f"the token in {target.token_file}" if target.token_file else "no token"
    return ClusterError(
        f"the Ray cluster at {target.address} refused {given} (authentication failed); give "
        f"the cluster's token: rlfleet compute create {target.name} --kind ray --address "
        f"{target.address} --token-file PATH (after rlfleet compute delete {target.name})."
    )
