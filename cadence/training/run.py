"""The library entry points of training: ``train_bc(cfg)`` and ``train_ppo(cfg)``.

``cfg`` is a composed ``train.yaml`` config (``cadence.configs.compose("train", [...])`` or a Hydra app's
own): ``algo``, ``policy``, ``env``, ``seed``, ``device``, ``dataset``, ``resume``, ``run_dir``. The CLI
(``cadence-train``), the comparison grid, the demo and the benchmarks all call these two functions, so
every path through Cadence trains the same way.

One call: refuse a run directory that would be overwritten (:mod:`.checkpoint`) → build the env and, for
BC, read the demonstrations (:mod:`cadence.datasets`) → let the backbone prepare its config for the task and
from the data (``PolicyConfig.fit_to_task``: the task's memory horizon, e.g. LinOSS's τ_max rule and the
Transformer's context; ``PolicyConfig.fit_to_data``, e.g. the LinOSS data init) → build the policy → the
algorithm's trainer (:mod:`.bc`, :mod:`.ppo`) → ``fit`` (evaluations pick ``checkpoints/best`` by
``EvalResult.score``; in BC on validation episodes, then the last checkpoint is scored on the evaluation
episodes: :mod:`.seeds`) → ``RUN_DIR/eval.json``, written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from gymnasium.spaces import Box
from omegaconf import DictConfig, OmegaConf

from ..configs import check_device, to_dataclass
from ..datasets import LoadedDemonstrations, camera_keys, load_demonstrations, observation_keys
from ..datasets.format import read_info, write_json
from ..envs import IMAGES_PREFIX, EnvConfig, control_period, make_env
from ..evaluation import evaluate
from ..policies import PolicyConfig, SequencePolicy, count_params, make_policy
from .bc import BCConfig, BCTrainer, resolve_batches, validation_loss
from .checkpoint import check_run_dir
from .distributed import Distributed
from .ppo import PPOConfig, PPOTrainer
from .seeds import EVAL_SEED, VALIDATION_SEED

log = logging.getLogger(__name__)


def memory_horizon(env) -> int | None:
    """The task's memory horizon in steps (``env.unwrapped.memory_horizon``), None when it declares none."""
    return getattr(env.unwrapped, "memory_horizon", None)


def build_policy(pcfg: PolicyConfig, observation_space: Box, action_space: Box, control_period: float | None,
                 stats: dict | None = None, image_shape: tuple[int, int, int] | None = None,
                 camera_keys: Sequence[str] = ()) -> SequencePolicy:  # fmt: skip
    """The policy for these spaces at ``control_period`` (seconds per step), with normalization statistics
    ``stats["observation" | "action"]``, observing the frames (C, H, W) of cameras ``camera_keys`` when given."""
    policy = make_policy(pcfg, observation_space, action_space, control_period=control_period,
                         image_shape=image_shape, camera_keys=camera_keys)  # fmt: skip
    if stats is not None:
        policy.obs_norm.set_stats(stats["observation"]["mean"], stats["observation"]["std"])
        policy.action_norm.set_stats(stats["action"]["mean"], stats["action"]["std"])
    return policy


def _finish(cfg: DictConfig, result: dict) -> dict:
    if Distributed.current().is_main:
        write_json(Path(cfg.run_dir) / "eval.json", result)  # atomically: a reader never sees half a record
    return result


def check_config(cfg: DictConfig) -> tuple[BCConfig | PPOConfig, PolicyConfig]:
    """``cfg``'s algorithm and policy configs, after every check that refuses a launch, all made before anything
    is written: the keys, types and values of ``algo`` and ``policy``, the device, BC's dataset, the reference
    returns (:func:`given_reference`), and the run
    directory (:func:`.checkpoint.check_run_dir`: neither overwritten nor resumed with another policy)."""
    if cfg.algo.name not in ALGOS:
        raise ValueError(f"algo {cfg.algo.name!r} is not available; choose algo=bc or algo=ppo")
    if cfg.algo.name == "bc" and cfg.dataset is None:
        raise ValueError("algo=bc needs dataset=DIR, a local LeRobot v3 dataset: one written by "
                         "`cadence-collect env=... expert=... out=DIR`, or your own (docs/own_dataset.md)")  # fmt: skip
    algo = to_dataclass(ALGOS[cfg.algo.name], cfg.algo, "algo")
    pcfg = to_dataclass(PolicyConfig, cfg.policy, "policy")
    check_device(cfg.device)
    given_reference(cfg)
    check_run_dir(Path(cfg.run_dir), cfg.resume, OmegaConf.to_container(cfg.policy, resolve=True))
    return algo, pcfg


def check_cameras(cfg: DictConfig, cameras: list[str]) -> None:
    """Refuse to train on cameras ``cameras`` (the dataset's selected camera features) that the evaluation env
    does not render, naming both and the fixes."""
    env_camera = EnvConfig.load(cfg.env).camera
    rendered = [] if env_camera is None else [env_camera.feature]
    if missing := [k for k in cameras if k not in rendered]:
        raise ValueError(f"{cfg.dataset}'s selected features include the camera(s) {missing}, and env {cfg.env.name} "
                         f"renders {rendered or 'no camera'}, so it could not evaluate the policy: give the env the "
                         f"camera section the dataset was recorded with (env.camera, cadence.envs.CameraConfig: "
                         f"key {missing[0].removeprefix(IMAGES_PREFIX)}; e.g. env=reacher_pixels), or select state "
                         "features only with algo.observation_keys=[KEY,...] (docs/own_dataset.md)")  # fmt: skip


def train_bc(cfg: DictConfig) -> dict:
    """Behavior cloning on ``cfg.dataset``; returns the final evaluation (``score``, ``history``, ...). Without an
    env (``env=null``) the policy is built from the dataset's features (:func:`dataset_spaces`) and ranked by its
    loss on held-out episodes (``algo.validation_fraction``, :func:`.bc.validation_loss`) instead of rollouts."""
    algo, pcfg = check_config(cfg)
    run_dir, env_cfg = Path(cfg.run_dir), cfg.get("env")
    env = None if env_cfg is None else make_env(env_cfg)
    horizon = None if env is None else memory_horizon(env)
    algo = resolve_batches(algo, horizon)  # batches=auto: whole episodes on a long-memory task
    features = read_info(cfg.dataset)["features"]
    cameras = camera_keys(features, observation_keys(cfg.dataset, features, algo.observation_keys))
    if env is not None:
        check_cameras(cfg, cameras)
    if algo.image_aux_key is not None and not cameras:
        raise ValueError(f"algo.image_aux_key={algo.image_aux_key} teaches a policy's image encoder, and the policy "
                         f"observes no camera of {cfg.dataset}: select one with algo.observation_keys, or set "
                         "algo.image_aux_key=null")  # fmt: skip
    demos = load_demonstrations(cfg.dataset, env, algo.observation_keys, algo.image_size, algo.image_cache_gib,
                                algo.image_aux_key, algo.image_aux_dims)  # fmt: skip
    dt = (env is not None and control_period(env)) or 1.0 / demos.fps  # without a dt: the dataset's rate
    pcfg = pcfg.fit_to_task(dt, horizon).fit_to_data(demos.data, dt)
    torch.manual_seed(cfg.seed)
    images = demos.data.images
    spaces = dataset_spaces(demos) if env is None else (env.observation_space, env.action_space)
    policy = build_policy(pcfg, *spaces, dt, demos.stats, None if images is None else tuple(images.shape[1:]),
                          demos.image_keys)  # fmt: skip
    reference = given_reference(cfg) or demos.reference_returns  # reference= wins over the dataset's own
    if env is None:
        held_out = max(1, round(algo.validation_fraction * len(demos.data.ep_from)))
        data, validation_data = demos.data.split(held_out)
        log.info("no env: %d of %d episodes held out; checkpoints are ranked by their loss", held_out,
                 len(demos.data.ep_from))  # fmt: skip

        def evaluate_fn(p: SequencePolicy, base: int | None = None) -> dict:
            return validation_loss(p, validation_data, algo.loss)
    else:
        env.close()
        data = demos.data
        if reference is None:
            log.info("%s records no reference returns: the score is the mean return", cfg.dataset)
        env_fns = [partial(make_env, env_cfg) for _ in range(algo.eval_envs)]

        def evaluate_fn(p: SequencePolicy, base: int = VALIDATION_SEED) -> dict:
            return evaluate(p, env_fns, algo.eval_episodes, seed=base + cfg.seed, asynchronous=algo.asynchronous,
                            reference=reference).to_dict()  # fmt: skip

    run_info = {"env": None if env_cfg is None else OmegaConf.to_container(env_cfg, resolve=True),
                "reference": reference, "dataset": str(cfg.dataset),
                "observation_keys": demos.observation_keys, "params": count_params(policy), "batches": algo.batches}  # fmt: skip
    trainer = BCTrainer(policy, data, algo, run_dir, evaluate_fn, cfg.seed, cfg.device, run_info)
    if not (cfg.resume and trainer.ckpt.exists("init")):
        trainer.ckpt.save_policy("init", policy)  # the "before" of cadence-inspect
    if cfg.resume and not trainer.resume():
        log.info("resume=true but %s has no checkpoint yet; starting fresh", run_dir)
    log.info("training %s (%d parameters) on %s, %d frames", cfg.policy.name, count_params(policy), cfg.dataset,
             len(data))  # fmt: skip
    validation = trainer.fit()
    result = final_evaluation(trainer, partial(evaluate_fn, base=EVAL_SEED), validation)
    seeds = {} if env is None else {"eval_seed": EVAL_SEED + cfg.seed, "validation_seed": VALIDATION_SEED + cfg.seed}
    return _finish(cfg, result | {"params": count_params(policy), "history": trainer.history, "window": trainer.window,
                                  **seeds})


def dataset_spaces(demos: LoadedDemonstrations) -> tuple[Box, Box]:
    """(observation, action) spaces of a dataset trained without an env: the observation unbounded, each action
    dimension within the recorded min and max (widened by 1e-6 where they are equal)."""
    low, high = (demos.stats["action"][s].numpy().astype(np.float32) for s in ("min", "max"))
    high = np.where(high > low, high, low + np.float32(1e-6))
    obs_dim = demos.data.observations.shape[1]
    return Box(-np.inf, np.inf, (obs_dim,), np.float32), Box(low, high, dtype=np.float32)


def final_evaluation(trainer: BCTrainer, evaluate_fn, validation: dict) -> dict:
    """The reported evaluation of a finished BC run: its last checkpoint on the evaluation episodes
    (``evaluate_fn``), with the step and training time of the last validation evaluation ``validation`` and that
    evaluation itself under ``validation``; {} when the run evaluated nothing. Rank 0 evaluates, every rank
    gets the result."""
    result = {}
    if validation and trainer.dist.is_main:
        policy = trainer.eval_policy()
        policy.eval()
        result = evaluate_fn(policy) | {"step": trainer.step, "train_s": trainer.train_s, "warmup_s": trainer.warmup_s,
                                        "validation": validation, "resumed_s": trainer.ckpt.resumed_s}  # fmt: skip
    return trainer.dist.broadcast(result)


def given_reference(cfg: DictConfig) -> tuple[float, float] | None:
    """``cfg.reference=[EXPERT, FLOOR]``, the returns that normalize scores (the clean expert's and the floor
    policy's mean returns), as a pair of floats, or None when not given; anything else, or an expert return not
    above the floor's, raises a ValueError naming the fix."""
    if (reference := cfg.get("reference")) is None:
        return None
    try:
        expert, floor = (float(x) for x in reference)
    except (TypeError, ValueError):
        raise ValueError(f"reference={reference!r} is not [EXPERT_RETURN, FLOOR_RETURN], e.g. reference=[1000,5.2] "
                         "(the clean expert's and the floor policy's mean returns)") from None  # fmt: skip
    if not expert > floor:
        raise ValueError(f"reference={[expert, floor]}: the expert's return must be above the floor's, which scores 0")
    return expert, floor


def train_ppo(cfg: DictConfig) -> dict:
    """Recurrent PPO on ``cfg.env`` (``policy.head=gaussian``); returns the final evaluation, with normalized scores
    when ``cfg.reference`` gives the task's reference returns ``[EXPERT, FLOOR]``."""
    algo, pcfg = check_config(cfg)
    run_dir = Path(cfg.run_dir)
    env = make_env(cfg.env)
    dt = control_period(env)
    pcfg = pcfg.fit_to_task(dt, memory_horizon(env))
    torch.manual_seed(cfg.seed)
    policy = build_policy(pcfg, env.observation_space, env.action_space, dt)
    env.close()
    reference = given_reference(cfg)
    run_info = {"env": OmegaConf.to_container(cfg.env, resolve=True), "params": count_params(policy),
                "reference": reference}  # cadence-eval of its checkpoints normalizes too
    trainer = PPOTrainer(policy, cfg.env, algo, run_dir, cfg.seed, cfg.device, run_info, reference)
    if cfg.resume and not trainer.resume():
        log.info("resume=true but %s has no checkpoint yet; starting fresh", run_dir)
    log.info("training %s (%d parameters) on %s for %d steps", cfg.policy.name, count_params(policy), cfg.env.id,
             algo.steps)  # fmt: skip
    try:
        result = trainer.fit() | {"params": count_params(policy), "history": trainer.history,
                                  "resumed_s": trainer.ckpt.resumed_s}
    finally:
        trainer.close()
    return _finish(cfg, result)


ALGOS = {"bc": BCConfig, "ppo": PPOConfig}
TRAINERS = {"bc": train_bc, "ppo": train_ppo}


def train(cfg: DictConfig) -> dict:
    """``train_bc`` or ``train_ppo`` by ``cfg.algo.name`` (an unknown one is refused by :func:`check_config`)."""
    check_config(cfg)
    return TRAINERS[cfg.algo.name](cfg)
