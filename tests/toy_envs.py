"""Small environments that learn in seconds, written into a test's own folder as user code
(``TOY_ENVS_SOURCE``) so that the trainer imports them the way it imports a user's module."""

TOY_ENVS_SOURCE = '''
import gymnasium
import numpy as np
from gymnasium import spaces


class Target(gymnasium.Env):
    """Continuous: say the target. Observation: a target in [-1, 1]; action: Box(-1, 1, (1,));
    reward -(action - target)^2; episodes of ``length`` steps (optimum 0, random about -6)."""

    def __init__(self, length=10):
        self.length = length
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.target = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
        return self.target, {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, np.float32)), action
        reward = -float((np.asarray(action)[0] - self.target[0]) ** 2)
        self.t += 1
        self.target = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
        return self.target, reward, False, self.t >= self.length, {}


class Match(gymnasium.Env):
    """Dict observations, MultiDiscrete actions: name both parts of the observation. Reward:
    the parts named right (0 to 2 a step), episodes of 8 steps (optimum 16, random 5.3)."""

    def __init__(self):
        self.observation_space = spaces.Dict({"a": spaces.Discrete(3), "b": spaces.Discrete(3)})
        self.action_space = spaces.MultiDiscrete([3, 3])

    def _observe(self):
        self.obs = {"a": int(self.np_random.integers(3)), "b": int(self.np_random.integers(3))}
        return self.obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._observe(), {}

    def step(self, action):
        reward = float(action[0] == self.obs["a"]) + float(action[1] == self.obs["b"])
        self.t += 1
        return self._observe(), reward, False, self.t >= 8, {}


def make_target(length=10):
    """A factory (a function, not a class) for Target."""
    return Target(length=length)


class NotAnEnv:
    pass


class TextActions(Target):
    def __init__(self):
        super().__init__()
        self.action_space = spaces.Text(5)


gymnasium.register("Target-v0", entry_point=Target)
'''


def write_toy_envs(folder) -> str:
    """Write the toy environments as ``toyenvs.py`` into ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toyenvs.py").write_text(TOY_ENVS_SOURCE)
    return str(folder)
