"""CartPole-v1 at a simulator's pace: every step takes ``step_s`` of wall time (sleeping, not
computing), so that a run's actors leave the CPU to the rest of the machine."""

import time

import gymnasium


class PacedCartPole(gymnasium.Wrapper):
    def __init__(self, step_s: float = 0.002):
        super().__init__(gymnasium.make("CartPole-v1"))
        self.step_s = step_s

    def step(self, action):
        time.sleep(self.step_s)
        return self.env.step(action)
