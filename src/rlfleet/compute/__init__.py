"""Compute targets (named node shapes) and the local Ray clusters rlfleet starts from them."""

from rlfleet.compute.target import ComputeKind, ComputeTarget

__all__ = ["ComputeKind", "ComputeTarget"]
