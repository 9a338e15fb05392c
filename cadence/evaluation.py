"""Roll a policy out in a Gymnasium vector env in its recurrent stepping mode and measure it.

The policy runs exactly as it would be deployed: ``reset(num_envs)`` once, then one ``act(obs)`` per
step; when a sub-env's episode ends its recurrent state is zeroed (``reset_where``) while the others
keep theirs. Vector envs use ``AutoresetMode.SAME_STEP``, so the observation returned with a done
flag is already the first observation of that sub-env's next episode.

Metrics: mean / median / std return, normalized score 100·(R − R_random)/(R_expert − R_random) when
reference returns are given, success rate when the task reports ``info["is_success"]``, episode
lengths, and the policy's per-call latency (p50 / p99, one call = one step of all sub-envs).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from .atomic import atomic_path, write_text
from .configs import check_device
from .envs.camera import IMAGES_PREFIX
from .policies.image_encoder import assemble_frames

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """What one evaluation measured; ``summary()`` gives the one-line form."""

    returns: list[float]
    lengths: list[int]
    successes: list[bool] | None
    latency_ms_p50: float
    latency_ms_p99: float
    num_envs: int
    normalized_score: float | None = None
    videos: list[str] = field(default_factory=list)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def score(self) -> float:
        """The one number checkpoints are ranked by: the normalized score when reference returns were given,
        else the mean return (BC, PPO and the comparison all pick ``best`` by it)."""
        return self.normalized_score if self.normalized_score is not None else self.mean_return

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(score=self.score, mean_return=self.mean_return, median_return=float(np.median(self.returns)),
                 std_return=float(np.std(self.returns)), episodes=len(self.returns),
                 success_rate=None if self.successes is None else float(np.mean(self.successes)))  # fmt: skip
        return d

    def summary(self) -> str:
        parts = [f"return {self.mean_return:.1f} ± {np.std(self.returns):.1f} over {len(self.returns)} episodes"]
        if self.normalized_score is not None:
            parts.append(f"normalized score {self.normalized_score:.1f}")
        else:
            parts.append("score = mean return (no reference returns)")
        if self.successes is not None:
            parts.append(f"success {100 * np.mean(self.successes):.0f}%")
        parts.append(f"latency p50 {self.latency_ms_p50:.3f} ms / p99 {self.latency_ms_p99:.3f} ms per step (batch {self.num_envs})")
        return ", ".join(parts)


def normalized_score(ret: float, expert: float, random: float) -> float:
    """100·(R − R_random)/(R_expert − R_random)."""
    if expert == random:
        raise ValueError(f"expert and random returns are equal ({expert}); the normalized score is undefined")
    return 100.0 * (ret - random) / (expert - random)


def make_eval_vector_env(env_fns, asynchronous: bool = False) -> gym.vector.VectorEnv:
    """A vector env whose done sub-envs restart within the same step (see the module docstring)."""
    cls = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
    return cls(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


@torch.no_grad()
def evaluate(
    policy,
    env_fns,
    episodes: int,
    seed: int = 0,
    asynchronous: bool = False,
    reference: tuple[float, float] | None = None,
    video_dir: str | os.PathLike | None = None,
    video_fn=None,
) -> EvalResult:
    """Run ``episodes`` episodes of ``policy`` over the sub-envs built by ``env_fns``.

    Each sub-env runs an equal share of episodes (the first ``episodes`` to finish in sub-env
    order are kept, so the set does not depend on timing). ``reference`` = (expert, random) returns
    for the normalized score. ``video_fn`` builds an env with ``render_mode="rgb_array"`` whose
    first episode is rolled out separately and written to ``video_dir`` as MP4.
    """
    num_envs = len(env_fns)
    if episodes < 1 or num_envs < 1:
        raise ValueError(f"an evaluation needs episodes >= 1 and num_envs >= 1, got episodes={episodes} and "
                         f"num_envs={num_envs}; pass episodes=N and num_envs=N with N >= 1")  # fmt: skip
    quota = -(-episodes // num_envs)
    returns, lengths, successes, latencies = _rollouts(policy, make_eval_vector_env(env_fns, asynchronous), quota, seed)
    flat_succ = _interleave(successes, episodes)
    result = EvalResult(
        returns=_interleave(returns, episodes),
        lengths=_interleave(lengths, episodes),
        successes=None if any(s is None for s in flat_succ) else flat_succ,
        latency_ms_p50=1e3 * float(np.percentile(latencies, 50)),
        latency_ms_p99=1e3 * float(np.percentile(latencies, 99)),
        num_envs=num_envs,
    )
    if reference is not None:
        result.normalized_score = normalized_score(result.mean_return, *reference)
    if video_dir is not None and video_fn is not None:
        result.videos.append(str(record_video(policy, video_fn, Path(video_dir) / "episode_0.mp4", seed)))
    return result


def check_finite_actions(action: np.ndarray, step: int) -> None:
    """Refuse to go on with (and to score) a policy whose action (B, A) holds a NaN or an inf."""
    if not np.isfinite(action).all():
        bad = np.flatnonzero(~np.isfinite(action).all(axis=-1)).tolist()
        raise ValueError(f"the policy's action is NaN or inf in sub-env(s) {bad} at step {step} of the evaluation "
                         "(its recurrent state diverged), so no score is reported; evaluate an earlier checkpoint "
                         "(e.g. RUN_DIR/checkpoints/best) or retrain with a lower algo.lr")  # fmt: skip


def _rollouts(policy, envs: gym.vector.VectorEnv, quota: int, seed: int
              ) -> tuple[list[list[float]], list[list[int]], list[list[bool | None]], list[float]]:  # fmt: skip
    """Step ``policy`` in ``envs`` (closed at the end) until every sub-env finished ``quota`` episodes: per
    sub-env the returns, lengths and successes of its first ``quota`` episodes, and the per-call latencies."""
    n = envs.num_envs
    returns, lengths, successes = ([[] for _ in range(n)] for _ in range(3))
    ep_ret, ep_len, latencies = np.zeros(n), np.zeros(n, dtype=int), []
    try:
        obs, info = envs.reset(seed=seed)
        policy.reset(n)
        while min(len(r) for r in returns) < quota:
            t0 = time.perf_counter()
            action = act(policy, obs, info).cpu().numpy()
            latencies.append(time.perf_counter() - t0)
            check_finite_actions(action, len(latencies))
            obs, reward, terminated, truncated, info = envs.step(action)
            ep_ret, ep_len, done = ep_ret + reward, ep_len + 1, terminated | truncated
            for i in np.flatnonzero(done):
                if len(returns[i]) < quota:
                    returns[i].append(float(ep_ret[i]))
                    lengths[i].append(int(ep_len[i]))
                    succ = _final_info(info, "is_success", i)
                    successes[i].append(None if succ is None else bool(succ))
            if done.any():
                ep_ret[done], ep_len[done] = 0.0, 0
                policy.reset_where(done)
    finally:
        envs.close()
    return returns, lengths, successes, latencies


def camera_images(policy, info: dict) -> Tensor | None:
    """The camera frames ``policy`` observes, from a vector env's ``info`` (its cameras' frames, (n, H, W, 3) uint8
    each, :mod:`cadence.envs.camera`): stacked along C in the policy's ``camera_keys`` order and brought to its
    ``image_shape`` as the training cache was (:func:`cadence.policies.image_encoder.assemble_frames`), (n, C, H, W); None
    for a policy without cameras."""
    keys = tuple(getattr(policy, "camera_keys", ()))
    if not keys:
        if getattr(policy, "image_shape", None) is not None:
            raise ValueError("this policy observes camera frames but its checkpoint names no camera_keys, so a "
                             "rollout cannot tell which of the env's frames to give it; build it with "
                             "camera_keys=[...] (cadence-train records them)")  # fmt: skip
        return None
    if missing := [k for k in keys if k not in info]:
        rendered = sorted(k for k in info if k.startswith(IMAGES_PREFIX)) or "no camera"
        raise ValueError(f"the policy observes the camera(s) {list(keys)} and the env renders {rendered}: evaluate on "
                         f"an env config whose camera section renders {missing} (cadence.envs.CameraConfig; e.g. "
                         "the env the policy was trained on)")  # fmt: skip
    return assemble_frames(info, keys, policy.image_shape)


def act(policy, obs: np.ndarray, info: dict) -> Tensor:
    """``policy.act`` on a vector env's observations (n, O), with the camera frames of ``info`` when it sees any."""
    images = camera_images(policy, info)
    return policy.act(obs) if images is None else policy.act(obs, images)


def _interleave(per_env: list[list], n: int) -> list:
    """Episodes in the order (episode index, sub-env index), the first ``n``."""
    out = [env[ep] for ep in range(max(map(len, per_env))) for env in per_env if ep < len(env)]
    return out[:n]


def _final_info(info: dict, key: str, i: int):
    """``key`` of the last step of sub-env ``i``'s episode, which has just ended, or None when the task does not
    report it. Same-step autoreset puts the next episode's reset info in ``info`` and the ended episode's last
    info in ``info["final_info"]``: read the latter (a task's reset info may say ``is_success: False``)."""
    if info.get("_final_info", np.zeros(i + 1, bool))[i]:
        info = info["final_info"]
    if key in info and info.get(f"_{key}", np.ones(len(info[key]), bool))[i]:
        return info[key][i]
    return None


@torch.no_grad()
def record_video(policy, video_fn, path: Path, seed: int = 0, fps: int | None = None) -> Path:
    """Roll out one episode in ``video_fn()`` (an ``rgb_array`` env) and write it to ``path`` as MP4."""
    import imageio.v2 as imageio

    env = video_fn()
    frames = []
    try:
        obs, info = env.reset(seed=seed)
        policy.reset(1)
        frames.append(env.render())
        done = False
        while not done:
            batch = {k: np.asarray(v)[None] for k, v in info.items() if k.startswith(IMAGES_PREFIX)}
            action = act(policy, np.asarray(obs, np.float32)[None], batch)[0].cpu().numpy()
            obs, _, terminated, truncated, info = env.step(action)
            frames.append(env.render())
            done = terminated or truncated
        fps = fps or env.metadata.get("render_fps") or 30
    finally:
        env.close()
    with atomic_path(path) as tmp:
        imageio.mimwrite(tmp, frames, fps=fps, macro_block_size=1)
    return path


def write_result(result: EvalResult, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write the result as JSON atomically."""
    return write_text(path, json.dumps(result.to_dict() | (extra or {}), indent=2))


def check_env_matches(policy, env: gym.Env, name: str, trained_on: str | None, checkpoint: Path) -> None:
    """Refuse to evaluate ``policy`` on an env whose observation or action size is not the policy's, naming the
    env it was trained on."""
    obs, act = (int(np.prod(s.shape)) for s in (env.observation_space, env.action_space))
    if (obs, act) != (policy.obs_dim, policy.act_dim):
        raise ValueError(f"checkpoint {checkpoint} was trained on {trained_on or 'another env'} ({policy.obs_dim}-dim "
                         f"observations, {policy.act_dim}-dim actions) but env={name} has {obs} and {act}; pass "
                         f"env={trained_on or 'NAME'}" + (" or leave env= out" if trained_on else ""))  # fmt: skip


def evaluate_checkpoint(checkpoint: str | os.PathLike, env: DictConfig | dict | str | None = None, episodes: int = 20,
                        num_envs: int = 5, seed: int = 100, asynchronous: bool = False, device: str = "cpu",
                        video: bool = False, out: str | os.PathLike | None = None) -> tuple[EvalResult, Path]:  # fmt: skip
    """``cadence-eval``: roll the checkpoint out on ``env`` (default: the env it was trained on, recorded in the
    checkpoint) and write ``results.json`` (and ``episode_0.mp4`` with ``video``) to ``out`` (default
    ``CHECKPOINT/../../eval``). The normalized score uses the reference returns recorded with the training
    dataset when the checkpoint carries them. Returns the result and the results file."""
    from .envs import EnvConfig, make_env
    from .policies import SequencePolicy
    from .policies.policy import read_checkpoint_config

    check_device(device)
    ckpt = Path(checkpoint)
    run_info = read_checkpoint_config(ckpt).get("extra", {}).get("run", {})
    env = env if env is not None else run_info.get("env")
    if env is None:
        raise ValueError(f"checkpoint {ckpt} does not record its env; pass env=NAME (see cadence/configs/env/)")
    if isinstance(env, str):  # a config name or gymnasium id
        env = asdict(EnvConfig.load(env))
    env = OmegaConf.create(OmegaConf.to_container(env, resolve=True) if isinstance(env, DictConfig) else env)
    policy = SequencePolicy.from_pretrained(ckpt, map_location=device).eval()
    probe = make_env(env)
    try:
        check_env_matches(policy, probe, env.name, (run_info.get("env") or {}).get("name"), ckpt)
    finally:
        probe.close()
    reference = run_info.get("reference")  # (expert, random) returns of the training dataset
    out = Path(out) if out else ckpt.parent.parent / "eval"
    result = evaluate(policy, [partial(make_env, env) for _ in range(num_envs)], episodes, seed=seed,
                      asynchronous=asynchronous, reference=tuple(reference) if reference else None,
                      video_dir=out if video else None, video_fn=partial(make_env, env, render_mode="rgb_array"))  # fmt: skip
    path = write_result(result, out / "results.json", {"checkpoint": str(ckpt), "env": env.name})
    return result, path
