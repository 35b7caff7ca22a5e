from __future__ import annotations

import math

import pytest
import torch

from rlfleet.impala.config import ImpalaConfig, StopConfig
from rlfleet.impala.cpu import denormals_flushed, flush_denormals
from rlfleet.impala.loop import train
from rlfleet.impala.presets import CARTPOLE


def test_flush_denormals_turns_subnormal_results_into_zero():
    tiny, small = torch.tensor([1e-30]), torch.tensor([1e-10])
    try:
        torch.set_flush_denormal(False)
        assert (tiny * small).item() > 0  # 1e-40 is a subnormal float32
        assert not denormals_flushed()
        assert flush_denormals()
        assert (tiny * small).item() == 0.0 and denormals_flushed()
        assert (tiny * torch.tensor([1e-5])).item() > 0  # normal floats are untouched
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.parametrize("before", [False, True])
def test_training_in_the_callers_thread_leaves_its_float_settings_as_they_were(before):
    """The learner flushes subnormals in the thread it runs in; a caller training in-process
    (a notebook, a test) gets its own setting back (hypothesis, run later in the same process,
    failed its own assertion on the smallest subnormal float while the flag was left on)."""
    try:
        torch.set_flush_denormal(before)
        config = ImpalaConfig.from_dict({**CARTPOLE, "num_workers": 0})
        train("CartPole-v1", config, StopConfig(training_iteration=1))
        assert denormals_flushed() is before
        if not before:
            assert math.ulp(0.0) > 0 and (torch.tensor(1e-30) * 1e-10).item() > 0
    finally:
        torch.set_flush_denormal(False)
