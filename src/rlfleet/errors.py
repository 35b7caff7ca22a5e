"""Errors that reach the user.

Every error rlfleet raises on purpose is an :class:`RlfleetError`: its message is one line that
says what is wrong and what to do. The CLI prints it as is and exits non-zero; nothing in the
workspace is changed by the failing command.
"""

from __future__ import annotations


class RlfleetError(Exception):
    """A user-facing error with a one-line message."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class WorkspaceNotFoundError(RlfleetError):
    """No workspace config file in this folder or any parent."""


class WorkspaceConfigError(RlfleetError):
    """The workspace config file cannot be read."""


class ComputeTargetNotFoundError(RlfleetError):
    """A compute target name that the workspace does not have."""


class ComputeTargetError(RlfleetError):
    """A compute target definition that cannot work."""


class RunSpecError(RlfleetError):
    """A run specification that cannot be submitted."""


class RunNotFoundError(RlfleetError):
    """A run id that the tracking store does not have."""


class ExperimentNotFoundError(RlfleetError):
    """An experiment name that the tracking store does not have."""


class ClusterError(RlfleetError):
    """A cluster that could not be started, reached or stopped."""

    exit_code = 1


class RunTimeoutError(RlfleetError):
    """Waiting for a run took longer than the caller allowed."""

    exit_code = 1
