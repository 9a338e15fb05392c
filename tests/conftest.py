"""Shared test fixtures."""

from pathlib import Path

import pytest
import torch

VECTORS_DIR = Path(__file__).parent / "data" / "linoss_vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The official LinOSS / D-LinOSS code's reference vectors (``tests/data/linoss_vectors/README.md``)."""
    return VECTORS_DIR


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def swimmer_dataset(tmp_path_factory) -> Path:
    """Two clean episodes of the Swimmer CPG expert (0.6 Hz travelling wave, 25 Hz control): ~5 s to write.

    Clean (noise=0): the expert's own gait, so joint-angle zero crossings measure it; with DART noise the
    joint angles drift by more than the wave's amplitude and zero crossings miss cycles (docs/spectrum.md).
    """
    from cadence.datasets import collect_dataset

    root = tmp_path_factory.mktemp("swimmer") / "cpg"
    collect_dataset("swimmer", "cpg", episodes=2, root=root, noise=0.0, seed=0, reference_episodes=1)
    return root


@pytest.fixture(scope="session")
def write_lerobot_dataset(tmp_path_factory):
    """``write(env_id, observe=..., ...) -> root``: a dataset recorded the way a LeRobot user records one, with
    LeRobot's own writer (``LeRobotDataset.create`` / ``add_frame`` / ``save_episode``): no ``meta/cadence.json``,
    no full state, nothing Cadence-specific.

    ``observe`` maps each observation feature to its slice of the env's observation (default: all of it as
    ``observation.state``); the recorded ``action`` (left out with ``action=False``) is ``controller(obs)``
    (default: Cadence's LQR expert, which balances InvertedPendulum-v5); ``fps`` defaults to the env's rate.
    Episodes are cut after ``steps`` frames, the last one marked ``next.done``.
    """
    import gymnasium as gym
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.utils.utils import SuppressProgressBars

    from cadence.envs import make_expert

    def vector(n: int) -> dict:
        return {"dtype": "float32", "shape": (n,), "names": None}

    def write(env_id: str = "InvertedPendulum-v5", observe: dict[str, slice] | None = None, episodes: int = 2,
              steps: int = 50, fps: int | None = None, action: bool = True, controller=None) -> Path:  # fmt: skip
        observe = observe or {"observation.state": slice(None)}
        env = gym.make(env_id)
        controller = controller or make_expert("lqr", env)
        obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
        features = {k: vector(len(range(obs_dim)[s])) for k, s in observe.items()}
        features |= {"action": vector(act_dim)} if action else {}
        features |= {"next.reward": vector(1), "next.done": {"dtype": "bool", "shape": (1,), "names": None}}
        root = tmp_path_factory.mktemp("lerobot") / "dataset"
        ds = LeRobotDataset.create(repo_id="user/recording", root=root, fps=fps or round(1 / env.unwrapped.dt),
                                   features=features, use_videos=False, video_backend="pyav")  # fmt: skip
        try:
            for e in range(episodes):
                obs, _ = env.reset(seed=e)
                for t in range(steps):
                    a = np.asarray(controller(obs), np.float32)
                    next_obs, reward, terminated, truncated, _ = env.step(a)
                    done = terminated or truncated or t == steps - 1
                    frame = {k: np.asarray(obs[s], np.float32) for k, s in observe.items()}
                    frame |= {"action": a} if action else {}
                    ds.add_frame(frame | {"next.reward": np.array([reward], np.float32), "next.done": np.array([done]),
                                          "task": "balance the pole"})  # fmt: skip
                    obs = next_obs
                    if done:
                        break
                with SuppressProgressBars():
                    ds.save_episode()
        finally:
            ds.finalize()
            env.close()
        return root

    return write


@pytest.fixture(scope="session")
def record_camera_dataset():
    """``record(root, video, episodes=4, steps=25, size=32, privileged=False) -> root``: a camera dataset written
    with LeRobot's own writer at InvertedPendulum-v5's rate and spaces (25 fps, a (4,) state of noise, a (1,)
    action), camera ``observation.images.cam`` (size × size) showing frames of uniform random brightness. The
    action is the brightness in [-1, 1], visible only in the image; with ``privileged`` the action is noise and the
    brightness is recorded in ``observation.environment_state`` (beside a constant 3), which the policy does not
    observe."""
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.utils.utils import SuppressProgressBars

    def record(root, video: bool, episodes: int = 4, steps: int = 25, size: int = 32, privileged: bool = False):
        vector = lambda n: {"dtype": "float32", "shape": (n,), "names": None}  # noqa: E731
        features = {"observation.state": vector(4), "action": vector(1),
                    "observation.images.cam": {"dtype": "video" if video else "image", "shape": (size, size, 3),
                                               "names": ["height", "width", "channels"]}}  # fmt: skip
        features |= {"observation.environment_state": vector(2)} if privileged else {}
        ds = LeRobotDataset.create(repo_id="user/camera", root=root, fps=25, features=features, use_videos=video,
                                   video_backend="pyav")  # fmt: skip
        rng = np.random.default_rng(0)
        try:
            for _ in range(episodes):
                for _ in range(steps):
                    level = int(rng.integers(0, 256))
                    seen = np.array([level / 127.5 - 1], np.float32)
                    frame = {"observation.state": rng.normal(size=4).astype(np.float32),
                             "observation.images.cam": np.full((size, size, 3), level, np.uint8), "task": "look"}
                    if privileged:
                        frame |= {"action": rng.normal(size=1).astype(np.float32),
                                  "observation.environment_state": np.array([seen[0], 3.0], np.float32)}
                    ds.add_frame(frame | ({} if privileged else {"action": seen}))
                with SuppressProgressBars():
                    ds.save_episode()
        finally:
            ds.finalize()
        return root

    return record
