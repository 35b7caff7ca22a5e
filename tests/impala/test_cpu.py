from __future__ import annotations

import torch

from rlfleet.impala.cpu import flush_denormals


def test_flush_denormals_turns_subnormal_results_into_zero():
    tiny, small = torch.tensor([1e-30]), torch.tensor([1e-10])
    try:
        torch.set_flush_denormal(False)  # a Learner made by an earlier test turned it on
        assert (tiny * small).item() > 0  # 1e-40 is a subnormal float32
        assert flush_denormals()
        assert (tiny * small).item() == 0.0
        assert (tiny * torch.tensor([1e-5])).item() > 0  # normal floats are untouched
    finally:
        torch.set_flush_denormal(False)
