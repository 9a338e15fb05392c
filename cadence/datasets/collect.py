"""Collect expert demonstrations into a LeRobot dataset, crash-safely and resumably.

DART-style collection: the expert sees the full state and its clean action is the label; the env executes
that action plus Gaussian noise of std ``noise`` (action units, clipped to the action space), so the
demonstrations visit and label the states a slightly wrong student drifts into. Episode e is reset with a
seed and draws its noise from a generator, both derived from ``(seed, e)`` alone, so an interrupted and
resumed collection writes exactly the frames an uninterrupted one would.

Crash safety: episodes are written in parts of ``part_episodes``; each part ends with ``finalize()`` and
a commit to ``meta/cadence_progress.json`` (episode count, returns, the parquet files and their sha256, and
copies of LeRobot's info.json and stats.json). A later call on the same folder rolls back whatever an
interrupted part left (its files, LeRobot's counters), verifies the committed files against their sha256 (a
file whose bytes changed is refused, naming it; every load verifies them too) and continues with
``LeRobotDataset.resume``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import gymnasium as gym
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.utils.utils import SuppressProgressBars
from omegaconf import DictConfig

from ..envs import EXPERTS, CameraConfig, EnvConfig, Expert, make_env, make_expert, make_floor, reset_expert
from ..policies.expert import PolicyExpert, pretrained_expert
from ..progress import progress_bar
from .format import (ACTION, DONE, METADATA_FILE, OBS, PROGRESS_FILE, REWARD, STATE, data_files, episode_files,
                     features, file_sha256, read_json, verify_files, video_files, write_json)  # fmt: skip

MAIN, CLEAN, RANDOM = 0, 1, 2
"""Seed streams: recorded episodes, clean-expert reference episodes, floor-policy (random) reference episodes."""


@dataclass
class Episode:
    """What one rollout returned; ``success`` is None when the task does not report ``is_success``."""

    ret: float
    length: int
    success: bool | None


@dataclass
class Progress:
    """The committed state of a collection (``meta/cadence_progress.json``)."""

    settings: dict
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[bool | None] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    sha256: dict[str, str] = field(default_factory=dict)
    """The committed files' sha256 (``cadence.datasets.format.verify_files``); empty in older collections."""
    info: dict | None = None
    stats: dict | None = None


@dataclass(frozen=True)
class VideoEncoding:
    """How recorded camera frames are encoded: LeRobot video features written with LeRobot's encoder
    (``lerobot.configs.video.RGBEncoderConfig``: codec, pixel format, crf).

    The default is H.264 with full-resolution colour (``yuv444p``) at crf 0: what is decoded equals what the policy
    sees in the env up to the RGB <-> YUV rounding (at most 2 grey levels, ~530 bytes per 64 x 64 frame). LeRobot's
    own default (AV1, ``yuv420p``, crf 30) halves the colour resolution and quantizes hard, and erased every pixel of
    the 2-pixel red target of ``reach_pixels`` (max error 131 grey levels; ``tools/video_encoding_probe.py``):
    policies trained on those frames never saw what they were asked to reach (``docs/tasks.md``, "Reacher from
    pixels"). Choose LeRobot's default with
    ``video={codec:libsvtav1,pix_fmt:yuv420p,crf:30}`` for large scenes where size matters more than small details.
    """

    codec: str = "h264"
    pix_fmt: str = "yuv444p"
    crf: int = 0

    def encoder(self):
        """The LeRobot encoder config of these settings."""
        from lerobot.configs.video import RGBEncoderConfig

        return RGBEncoderConfig(vcodec=self.codec, pix_fmt=self.pix_fmt, crf=self.crf)


def episode_rng(seed: int, stream: int, episode: int) -> tuple[int, np.random.Generator]:
    """(reset seed, noise generator) of one episode, a function of (seed, stream, episode) only."""
    seq = np.random.SeedSequence([seed, stream, episode])
    return int(seq.generate_state(1)[0]), np.random.default_rng(seq)


def rollout(env: gym.Env, policy: Callable[[np.ndarray], np.ndarray], reset_seed: int, noise: float = 0.0,
            rng: np.random.Generator | None = None,
            record: Callable[[np.ndarray, dict, np.ndarray, float, bool], None] | None = None) -> Episode:  # fmt: skip
    """One episode: ``policy(full_state)`` is executed with N(0, noise²) added (clipped to the action space);
    ``record(obs, info, clean_action, reward, done)`` is called after every step, with the observation and the
    info (full state, camera frames) the action was chosen from."""
    space = env.action_space
    obs, info = env.reset(seed=reset_seed)
    total, length, done = 0.0, 0, False
    while not done:
        full = info["full_state"]
        clean = np.asarray(policy(full), dtype=space.dtype)
        executed = np.clip(clean + rng.normal(0.0, noise, clean.shape), space.low, space.high) if noise else clean
        next_obs, reward, terminated, truncated, next_info = env.step(executed.astype(space.dtype))
        done = bool(terminated or truncated)
        if record is not None:
            record(obs, info, clean, float(reward), done)
        obs, info, total, length = next_obs, next_info, total + float(reward), length + 1
    success = info.get("is_success")
    return Episode(total, length, None if success is None else bool(success))


def reference_returns(env: gym.Env, expert: Expert, episodes: int, seed: int) -> dict[str, list[float] | str]:
    """Returns of the clean expert and of the floor policy, ``episodes`` each, on fresh seeds.

    The floor is the task's registered floor policy (``cadence.envs.FLOORS``: its best memory-less policy)
    where it has one, else a uniform random policy; its returns are ``random_returns`` either way, so
    normalized scores read them alike, and ``floor_policy`` says which it was.
    """
    floor = make_floor(env)
    floor_policy = floor if floor is not None else (lambda _: env.action_space.sample())
    clean, rand = [], []
    for e in range(episodes):
        reset_expert(expert)
        clean.append(rollout(env, expert, episode_rng(seed, CLEAN, e)[0]).ret)
        reset_seed, _ = episode_rng(seed, RANDOM, e)
        env.action_space.seed(reset_seed)
        reset_expert(floor_policy)
        rand.append(rollout(env, floor_policy, reset_seed).ret)
    return {"clean_expert_returns": clean, "random_returns": rand,
            "floor_policy": "random" if floor is None else type(floor).__name__}  # fmt: skip


def reference_summary(returns: dict) -> dict[str, float]:
    """``{expert, random}``: the mean returns of :func:`reference_returns`'s episodes, 100 and 0 of the normalized
    score."""
    return {"expert": float(np.mean(returns["clean_expert_returns"])), "random": float(np.mean(returns["random_returns"]))}


def measure_reference(env: EnvConfig | DictConfig | dict | str, expert: str | Expert, episodes: int = 5,
                      seed: int = 0) -> dict:  # fmt: skip
    """The reference returns of ``env``'s task without recording a dataset (what normalizes the scores of policies
    trained by RL): :func:`reference_returns` with ``expert`` (as :func:`collect_dataset` takes it), the settings, and
    :func:`reference_summary` under ``reference``."""
    cfg = EnvConfig.load(env)
    gym_env = make_env(cfg)
    try:
        expert_name, expert_fn = _resolve_expert(expert, gym_env)
        returns = reference_returns(gym_env, expert_fn, episodes, seed)
    finally:
        gym_env.close()
    return {"env": asdict(cfg), "expert": expert_name, "seed": int(seed), **returns,
            "reference": reference_summary(returns)}  # fmt: skip


def _resolve_expert(expert: str | Expert, env: gym.Env) -> tuple[str, Expert]:
    """A registered expert's name, ``ppo`` (the shipped expert of the task), a checkpoint directory (a
    trained policy) or a callable."""
    if expert == "ppo":
        return expert, pretrained_expert(env)
    if isinstance(expert, str) and expert not in EXPERTS and ("/" in expert or Path(expert).exists()):
        if not (Path(expert) / "config.json").is_file():
            raise FileNotFoundError(
                f"expert checkpoint {expert} does not exist; train the full-state expert first: `cadence-train "
                "algo=ppo policy=mlp policy.head=gaussian policy.d_model=64 env=ENV` (ENV the fully observed task, "
                "e.g. hopper for hopper_p) writes runs/ppo/ENV/mlp/seed0/checkpoints/best (docs/rl.md)")
        return expert, PolicyExpert(expert)
    if isinstance(expert, str):
        return expert, make_expert(expert, env)
    if not callable(expert):
        raise ValueError(f"expert must be a registered name or a callable expert(full_state) -> action, got {expert!r}")
    return getattr(expert, "name", type(expert).__name__), expert


def _committed_files(root: Path) -> list[str]:
    """The files a part commits. A resumed recording starts new data and video files, so committed ones never
    change (LeRobot appends only to the files of its own session)."""
    return [str(p.relative_to(root)) for p in [*data_files(root), *episode_files(root), *video_files(root)]]


def _load_progress(root: Path, settings: dict) -> Progress:
    """The committed progress in ``root`` with everything after the last commit rolled back; an empty
    Progress (and no folder) when there is nothing to continue."""
    path = root / PROGRESS_FILE
    if not root.exists():
        return Progress(settings)
    if not path.exists():
        if any(root.iterdir()):
            raise ValueError(f"{root} exists and is not a collection by cadence; choose another out=DIR or delete it")
        root.rmdir()
        return Progress(settings)
    progress = Progress(**read_json(path))
    if progress.settings != settings:
        diff = {k: (progress.settings.get(k), settings.get(k)) for k in settings if progress.settings.get(k) != settings[k]}
        raise ValueError(f"{root} holds a collection with other settings (recorded, requested): {diff}; "
                         "rerun with the recorded settings to continue it, or choose another out=DIR")  # fmt: skip
    if not progress.returns:
        shutil.rmtree(root)
        return Progress(settings)
    for stale in set(_committed_files(root)) - set(progress.files):
        (root / stale).unlink()
    verify_files(root, progress.sha256)
    write_json(root / "meta" / "info.json", progress.info)
    write_json(root / "meta" / "stats.json", progress.stats)
    return progress


def collect_dataset(env: EnvConfig | DictConfig | dict | str, expert: str | Expert, episodes: int,
                    root: str | Path, noise: float = 0.0, seed: int = 0, part_episodes: int = 10,
                    reference_episodes: int = 5, render: bool | None = None,
                    video: VideoEncoding | dict | None = None) -> dict:  # fmt: skip
    """Records ``episodes`` expert episodes of ``env`` into the LeRobot dataset at ``root`` and returns its
    ``meta/cadence.json`` metadata.

    ``env``: an env config, config name or gymnasium id; ``expert``: a name in ``EXPERTS`` or any callable
    ``expert(full_state) -> action`` (with optional ``reset()``). If ``root`` holds an interrupted or
    shorter collection with the same settings, it is continued (module docstring); other settings raise.
    ``reference_episodes`` clean-expert and floor-policy episodes (:func:`reference_returns`) give the
    reference returns of normalized scores. ``render``: record the env's camera (``env.camera``) as a LeRobot
    video feature — None: when the env config has one; True: always (the default :class:`CameraConfig` when it
    has none); False: never (the camera section is dropped). ``video``: how the frames are encoded
    (:class:`VideoEncoding`, a dict of its fields, or None for its lossless default); part of the settings.
    """
    if episodes < 1 or part_episodes < 1:
        raise ValueError(f"episodes and part_episodes must be >= 1, got {episodes} and {part_episodes}")
    cfg = EnvConfig.load(env)
    if render is not None and render != (cfg.camera is not None):
        cfg = replace(cfg, camera=CameraConfig() if render else None)
    root = Path(root)
    gym_env = make_env(cfg)
    expert_name, expert_fn = _resolve_expert(expert, gym_env)
    settings = {"env": asdict(cfg), "expert": expert_name, "noise": float(noise), "seed": int(seed)}
    if cfg.camera is not None:
        if not isinstance(video, VideoEncoding):
            if unknown := sorted(set(video or {}) - {f.name for f in fields(VideoEncoding)}):
                raise ValueError(f"video has unknown key(s) {unknown}; its keys are codec, pix_fmt and crf "
                                 "(cadence.datasets.collect.VideoEncoding)")  # fmt: skip
            video = VideoEncoding(**(video or {}))
        settings["video"] = asdict(video)
    progress = _load_progress(root, settings)
    if len(progress.returns) > episodes:
        raise ValueError(f"{root} already holds {len(progress.returns)} episodes, more than the {episodes} requested")
    fps = round(1.0 / gym_env.unwrapped.dt)
    shapes = [gym_env.observation_space.shape[0], gym_env.unwrapped.observation_space.shape[0],
              gym_env.action_space.shape[0]]  # fmt: skip
    try:
        with progress_bar(episodes, f"collect {cfg.name}", initial=len(progress.returns)) as bar:
            while len(progress.returns) < episodes:
                _record_part(root, progress, gym_env, expert_fn, cfg, fps, shapes,
                             range(len(progress.returns), min(len(progress.returns) + part_episodes, episodes)), bar)  # fmt: skip
        meta = settings | {
            "fps": fps, "episodes": len(progress.returns), "frames": int(sum(progress.lengths)),
            "episode_returns": progress.returns, "episode_lengths": progress.lengths,
            "episode_successes": progress.successes,
            **reference_returns(gym_env, expert_fn, reference_episodes, seed),
        }  # fmt: skip
    finally:
        gym_env.close()
    meta["reference"] = reference_summary(meta)
    write_json(root / METADATA_FILE, meta)
    return meta


def _record_part(root: Path, progress: Progress, env: gym.Env, expert: Expert, cfg: EnvConfig, fps: int,
                 shapes: list[int], part: range, bar) -> None:  # fmt: skip
    """Records the episodes ``part`` and commits them (module docstring)."""
    repo_id = f"cadence/{cfg.name}"
    cameras = {} if cfg.camera is None else {cfg.camera.feature: (cfg.camera.height, cfg.camera.width)}
    encoder = VideoEncoding(**progress.settings["video"]).encoder() if cameras else None
    if cameras:  # LeRobot hands libav's logging back to libav, whose mp4 muxer prints two lines per episode
        import av

        av.logging.set_libav_level(av.logging.WARNING)
    if progress.returns:
        ds = LeRobotDataset.resume(repo_id, root=root, video_backend="pyav", rgb_encoder=encoder)
    else:
        ds = LeRobotDataset.create(repo_id=repo_id, root=root, fps=fps, features=features(*shapes, cameras),
                                   robot_type=cfg.id, use_videos=bool(cameras), video_backend="pyav",
                                   rgb_encoder=encoder)  # fmt: skip
        write_json(root / PROGRESS_FILE, asdict(progress))

    def record(obs, info, clean, reward, done):
        ds.add_frame({OBS: np.asarray(obs, np.float32), STATE: np.asarray(info["full_state"], np.float32),
                      ACTION: np.asarray(clean, np.float32), REWARD: np.array([reward], np.float32),
                      DONE: np.array([done]), "task": cfg.id, **{k: info[k] for k in cameras}})  # fmt: skip

    episodes = []
    try:
        for e in part:
            reset_seed, rng = episode_rng(progress.settings["seed"], MAIN, e)
            reset_expert(expert)
            episodes.append(rollout(env, expert, reset_seed, progress.settings["noise"], rng, record))
            with SuppressProgressBars():  # save_episode's datasets.map bar
                ds.save_episode()
            bar.update(1)
            bar.set_postfix(ret=f"{episodes[-1].ret:.1f}")
    finally:
        ds.finalize()
    progress.returns += [ep.ret for ep in episodes]
    progress.lengths += [ep.length for ep in episodes]
    progress.successes += [ep.success for ep in episodes]
    progress.files = _committed_files(root)
    progress.sha256 = {f: file_sha256(root / f) for f in progress.files}
    progress.info, progress.stats = read_json(root / "meta" / "info.json"), read_json(root / "meta" / "stats.json")
    write_json(root / PROGRESS_FILE, asdict(progress))
