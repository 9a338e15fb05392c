"""Env configs (``cadence/configs/env/<name>.yaml``) and the single and vector envs built from them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import partial

import gymnasium as gym
from omegaconf import DictConfig, OmegaConf

from ..configs import CONFIG_DIR, to_dataclass
from .camera import CameraConfig, CameraFrames
from .partial import FullStateInfo
from .robustness import RobustnessConfig, apply_robustness

ENV_CONFIG_DIR = CONFIG_DIR / "env"


@dataclass
class EnvConfig:
    """One task, as in ``cadence/configs/env/<name>.yaml``."""

    name: str
    """Short name: the YAML file's name, with the memory dial appended for the memory tasks
    (``memory_reacher_d64``, interpolated from the kwargs) so that runs at different horizons get their own
    run directories (``runs/ALGO/ENV_NAME/...``)."""
    id: str
    """Gymnasium id, e.g. ``Cadence/HalfCheetah-P-v5`` or ``HalfCheetah-v5``; a third-party env as
    ``module:EnvId`` (Gymnasium imports ``module``, which registers ``EnvId``)."""
    kwargs: dict = field(default_factory=dict)
    """Passed to ``gymnasium.make``."""
    expert: str | None = None
    """Default expert of ``cadence-collect`` (a name in ``cadence.envs.experts.EXPERTS``)."""
    wrappers: RobustnessConfig = field(default_factory=RobustnessConfig)
    """Robustness stressors, all off by default."""
    demo_noise: float = 0.5
    """DART noise std (action units) the task's demonstrations are collected with by default
    (``cadence-collect``, the comparison grid): as large as the expert still recovers from, so the
    demonstrations show recoveries without failing (docs/tasks.md, "Demonstration noise")."""
    camera: CameraConfig | None = None
    """A camera rendered beside the state (:mod:`.camera`: frames in ``info["observation.images.KEY"]``); None:
    state only."""

    def __post_init__(self):
        self.wrappers = robustness_config(self.wrappers, f"env {self.name} wrappers")
        if self.camera is not None and not isinstance(self.camera, CameraConfig):
            self.camera = to_dataclass(CameraConfig, self.camera, f"env {self.name} camera", drop=())

    @classmethod
    def load(cls, env: EnvConfig | DictConfig | dict | str) -> EnvConfig:
        """From a config node or dict, a config name (``"hopper_p"``) or a gymnasium id, registered or in the
        ``module:EnvId`` form (the module is imported here, as ``gymnasium.make`` would)."""
        if isinstance(env, EnvConfig):
            return env
        if isinstance(env, DictConfig | dict):
            return to_dataclass(cls, env, "env", drop=())
        if (ENV_CONFIG_DIR / f"{env}.yaml").exists():
            return to_dataclass(cls, OmegaConf.load(ENV_CONFIG_DIR / f"{env}.yaml"), f"env {env}", drop=())
        module, _, env_id = env.rpartition(":")
        if module:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as e:
                raise ValueError(f"env {env!r}: {e}; install the package that registers {env_id}, or put its module "
                                 "on PYTHONPATH") from e  # fmt: skip
        if env_id in gym.registry:
            return cls(name=env_id.replace("/", "_").lower(), id=env)
        raise ValueError(f"{env!r} is neither an env config name ({', '.join(env_config_names())}) "
                         "nor a registered gymnasium id (a third-party env: module:EnvId, with the module that "
                         "registers EnvId)")  # fmt: skip


def robustness_config(wrappers: RobustnessConfig | DictConfig | dict, section: str = "wrappers") -> RobustnessConfig:
    """A :class:`RobustnessConfig` from a config node; an unknown key raises a ValueError listing the valid ones."""
    if isinstance(wrappers, RobustnessConfig):
        return wrappers
    return to_dataclass(RobustnessConfig, wrappers, section, drop=())


def env_config_names() -> list[str]:
    """The names of the env configs shipped in ``cadence/configs/env/``."""
    return sorted(p.stem for p in ENV_CONFIG_DIR.glob("*.yaml"))


def make_env(env_cfg: EnvConfig | DictConfig | dict | str, render_mode: str | None = None,
             wrappers: RobustnessConfig | dict | None = None) -> gym.Env:  # fmt: skip
    """The task of ``env_cfg`` with ``info["full_state"]`` on every reset and step (and its camera's frames with a
    ``camera`` section), wrapped in the stressors of ``wrappers`` (default: the config's own ``wrappers``
    section). ``render_mode`` reaches the env's constructor only when rendering is asked for, so envs whose
    constructor takes no ``render_mode`` run too."""
    cfg = EnvConfig.load(env_cfg)
    kwargs = cfg.kwargs if render_mode is None else cfg.kwargs | {"render_mode": render_mode}
    if cfg.camera is not None:
        kwargs = kwargs | cfg.camera.env_kwargs()
    try:
        env = FullStateInfo(gym.make(cfg.id, **kwargs))
        if cfg.camera is not None:
            env = CameraFrames(env, cfg.camera)
    except (gym.error.UnregisteredEnv, ModuleNotFoundError) as e:
        raise ValueError(f"env.id={cfg.id} cannot be made ({e}); use a registered Gymnasium id, or a third-party env "
                         "as module:EnvId with the module that registers EnvId") from e  # fmt: skip
    except TypeError as e:
        if cfg.camera is None:
            raise
        raise ValueError(f"env.id={cfg.id} takes no camera settings ({e}), so it is not a MuJoCo env and Cadence "
                         f"cannot render its camera: remove env {cfg.name}'s camera section, or use a MuJoCo "
                         "task") from e  # fmt: skip
    return apply_robustness(env, cfg.wrappers if wrappers is None else robustness_config(wrappers))


def control_period(env: gym.Env) -> float | None:
    """Seconds per step of ``env``: ``env.unwrapped.dt`` (every MuJoCo and Cadence task); None for an env that
    does not declare it."""
    dt = getattr(env.unwrapped, "dt", None)
    return float(dt) if dt else None


def make_vector_env(env_cfg: EnvConfig | DictConfig | dict | str, num_envs: int, asynchronous: bool = False,
                    seed: int | None = None, wrappers: RobustnessConfig | dict | None = None,
                    autoreset_mode: gym.vector.AutoresetMode = gym.vector.AutoresetMode.NEXT_STEP) -> gym.vector.VectorEnv:  # fmt: skip
    """``num_envs`` copies of :func:`make_env` in a Sync- or AsyncVectorEnv (sub-envs in worker processes).

    With ``seed``, the vector env is reset once here with sub-env i seeded ``seed + i`` and the action
    space is seeded, so later unseeded resets and ``action_space.sample()`` continue reproducible streams.
    """
    cfg = EnvConfig.load(env_cfg)
    cls = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
    envs = cls([partial(make_env, cfg, wrappers=wrappers) for _ in range(num_envs)], autoreset_mode=autoreset_mode)
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
    return envs
