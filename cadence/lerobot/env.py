"""LeRobot env config ``cadence``: the Cadence Gymnasium tasks under ``lerobot-eval`` (and lerobot-train's
in-loop evaluation).

``--env.type=cadence --env.task=invertedpendulum_p`` builds the task as Cadence does
(:func:`cadence.envs.make_env`: a ``cadence/configs/env/<name>.yaml`` config or a Gymnasium id, with
its robustness wrappers) and adapts it to what LeRobot's rollout reads: the observation (O,) as
``{"agent_pos": (O,)}`` (→ ``observation.state``), actions clipped to the action space, RGB frames from
``render()`` for the eval videos, ``info["is_success"]``, and ``task``/``task_description``.

Success: ``success="task"`` passes the task's own ``info["is_success"]`` (False if it reports none);
``success="survive"`` counts an episode that reaches the time limit without terminating, the success of
balancing tasks (InvertedPendulum: the pole stayed up for the whole episode).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial

import gymnasium as gym
from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs import EnvConfig
from lerobot.envs.utils import freeze_after_episode_end
from lerobot.utils.constants import ACTION, OBS_STATE

from ..envs import EnvConfig as TaskConfig
from ..envs import make_env

SUCCESS_RULES = ("task", "survive")


class LeRobotTask(gym.Wrapper):
    """A Cadence task as LeRobot's rollout reads it (module docstring). Observation (O,) -> {"agent_pos": (O,)}."""

    def __init__(self, env: gym.Env, success: str, max_episode_steps: int):
        super().__init__(gym.wrappers.ClipAction(env))
        self.success = success
        self.observation_space = gym.spaces.Dict({"agent_pos": env.observation_space})
        self._max_episode_steps = max_episode_steps  # read by lerobot-eval through env.call
        self.task = self.task_description = env.spec.id if env.spec is not None else type(env.unwrapped).__name__

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return {"agent_pos": obs}, info | {"is_success": False}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.success == "survive":
            info["is_success"] = bool(truncated and not terminated)
        else:
            info["is_success"] = bool(info.get("is_success", False))
        return {"agent_pos": obs}, reward, terminated, truncated, info


def make_lerobot_task(task: TaskConfig, success: str, max_episode_steps: int) -> gym.Env:
    """One sub-env of the vector env (module level so that AsyncVectorEnv workers can unpickle it)."""
    return LeRobotTask(make_env(task, render_mode="rgb_array"), success, max_episode_steps)


@EnvConfig.register_subclass("cadence")
@dataclass
class CadenceEnvConfig(EnvConfig):
    """A Cadence task for LeRobot (module docstring).

    Args:
        task: A Cadence env config name (``cadence/configs/env/*.yaml``, e.g. "invertedpendulum_p") or
            a registered Gymnasium id (e.g. "Cadence/Hopper-P-v5").
        episode_length: Time limit in steps; None keeps the task's own.
        success: "task" or "survive" (module docstring).
        render_size: Height and width of the eval videos' frames (MuJoCo tasks); None keeps the task's.
        fps: Set from the task (1 / its control period); a value passed here is replaced.
        features, features_map: Set from the task's spaces: ``agent_pos`` → ``observation.state``.
    """

    task: str | None = "invertedpendulum_p"
    episode_length: int | None = None
    success: str = "task"
    render_size: int | None = 128
    features: dict[str, PolicyFeature] = field(default_factory=dict)
    features_map: dict[str, str] = field(default_factory=lambda: {ACTION: ACTION, "agent_pos": OBS_STATE})

    def __post_init__(self):
        if self.success not in SUCCESS_RULES:
            raise ValueError(f"env.success={self.success!r} is not one of {SUCCESS_RULES}")
        probe = make_env(self.task_config())
        try:
            self._max_steps = self.episode_length or _time_limit(probe)
            if self._max_steps is None:
                raise ValueError(f"task {self.task!r} has no time limit; set --env.episode_length=STEPS")
            self.fps = round(1.0 / probe.unwrapped.dt)
            obs_space, act_space = probe.observation_space, probe.action_space
        finally:
            probe.close()
        for name, space in (("observation", obs_space), ("action", act_space)):
            if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
                raise ValueError(f"task {self.task!r} has a {name} space {space}; the cadence env needs 1-D Boxes")
        self.features = {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=act_space.shape),
                         "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=obs_space.shape)}  # fmt: skip

    def task_config(self) -> TaskConfig:
        """The Cadence task config with this config's time limit and frame size in its ``gym.make`` kwargs."""
        cfg = TaskConfig.load(self.task)
        extra = {"max_episode_steps": self.episode_length} if self.episode_length else {}
        if self.render_size:
            extra |= {"width": self.render_size, "height": self.render_size}
        return dataclasses.replace(cfg, kwargs=cfg.kwargs | extra)

    @property
    def gym_kwargs(self) -> dict:
        return self.task_config().kwargs

    def create_envs(self, n_envs: int, use_async_envs: bool = False) -> dict[str, dict[int, gym.vector.VectorEnv]]:
        """``{"cadence": {0: VectorEnv of n_envs sub-envs}}``; a finished sub-env is frozen until the rollout ends."""
        make_one = freeze_after_episode_end(partial(make_lerobot_task, self.task_config(), self.success,
                                                    self._max_steps))  # fmt: skip
        if use_async_envs and n_envs > 1:
            vec = gym.vector.AsyncVectorEnv([make_one] * n_envs, context="forkserver",
                                            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)  # fmt: skip
        else:
            vec = gym.vector.SyncVectorEnv([make_one] * n_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        return {self.type: {0: vec}}


def _time_limit(env: gym.Env) -> int | None:
    """The episode limit of ``env``: its TimeLimit's, else a ``horizon`` the task truncates itself at."""
    if env.spec is not None and env.spec.max_episode_steps:
        return env.spec.max_episode_steps
    return getattr(env.unwrapped, "horizon", None)
