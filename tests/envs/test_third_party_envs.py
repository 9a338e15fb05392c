"""A third-party Gymnasium env as Cadence's evaluation env: named ``module:EnvId`` (Gymnasium imports the module,
which registers the id), built although its constructor takes no ``render_mode``, and trained on at the dataset's
rate when it declares no control period; an id that cannot be made is one clear error."""

import numpy as np
import pytest

from cadence.configs import compose
from cadence.envs import EnvConfig, control_period, make_env, make_vector_env
from cadence.policies import SequencePolicy
from cadence.training import train_bc

DRIFT = '''
import gymnasium as gym
import numpy as np


class Drift(gym.Env):
    """A point the action pushes; written before Gymnasium's render API: no render_mode, no dt."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, gain=0.5):
        self.gain = gain

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
        return self.x.copy(), {}

    def step(self, action):
        self.x = (self.x + self.gain * np.asarray(action, np.float32)).astype(np.float32)
        return self.x.copy(), -float(abs(self.x[0])), False, False, {}


gym.register("ThirdParty/Drift-v0", entry_point=Drift, max_episode_steps=20)
'''
DRIFT_ID = "drift_env:ThirdParty/Drift-v0"


@pytest.fixture
def drift(tmp_path, monkeypatch) -> str:
    """The id of ``Drift``, whose module is importable but not imported."""
    (tmp_path / "drift_env.py").write_text(DRIFT)
    monkeypatch.syspath_prepend(tmp_path)
    return DRIFT_ID


def test_a_module_env_id_builds_an_env_whose_constructor_takes_no_render_mode(drift):
    cfg = EnvConfig.load(drift)
    assert (cfg.name, cfg.id) == ("thirdparty_drift-v0", drift)
    env = make_env(cfg)
    obs, info = env.reset(seed=0)
    obs, reward, *_ = env.step(np.array([0.5], np.float32))
    assert obs.shape == (1,) and reward <= 0 and control_period(env) is None
    env.close()
    envs = make_vector_env(cfg, num_envs=2, seed=0)
    assert envs.step(np.zeros((2, 1), np.float32))[0].shape == (2, 1)
    envs.close()


def test_an_env_id_that_cannot_be_made_names_it_and_the_fix():
    with pytest.raises(ValueError, match=r"env 'no_such_module:Robot-v0': No module named 'no_such_module'; install"):
        EnvConfig.load("no_such_module:Robot-v0")
    with pytest.raises(ValueError, match=r"env\.id=no_such_module:Robot-v0 cannot be made .*module:EnvId"):
        make_env(EnvConfig(name="robot", id="no_such_module:Robot-v0"))
    with pytest.raises(ValueError, match=r"env\.id=InvertedPendulum-v9 cannot be made \(Environment version `v9`"):
        make_env(EnvConfig(name="pendulum", id="InvertedPendulum-v9"))


def test_an_env_without_a_control_period_trains_at_the_datasets_rate(drift, write_lerobot_dataset, tmp_path):
    root = write_lerobot_dataset(drift, fps=10, episodes=2, steps=20, controller=lambda x: np.clip(-x, -1, 1))
    cfg = compose("train", [f"env.id={drift}", "env.name=drift", f"dataset={root}", f"run_dir={tmp_path / 'run'}",
                            "policy=linoss", "policy.d_model=8", "policy.backbone_kwargs.n_layers=1", "algo.steps=2",
                            "algo.batch_size=4", "algo.window=8", "algo.eval_episodes=2",
                            "algo.eval_envs=1"])  # fmt: skip
    result = train_bc(cfg)
    assert result["normalized_score"] is None and result["score"] == result["mean_return"]
    policy = SequencePolicy.from_pretrained(tmp_path / "run" / "checkpoints" / "last")
    assert policy.control_period == pytest.approx(0.1)
