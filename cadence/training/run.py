"""What every trainer does before its first step: guard the run directory and build the policy."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from cadence.configs import to_dataclass
from cadence.policies import PolicyConfig, make_policy


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to start over a run directory that already holds checkpoints, unless resuming."""
    if (run_dir / "checkpoints" / "last").exists() and not resume:
        raise ValueError(f"{run_dir} already holds a run; pass resume=true to continue it or run_dir=NEW_DIR to start another")


def build_policy(cfg: DictConfig, env, stats: dict | None = None):
    """The policy for ``env``'s spaces from ``cfg.policy``, with normalization statistics if given."""
    pcfg = to_dataclass(PolicyConfig, cfg.policy, "policy")
    policy = make_policy(pcfg, env.observation_space, env.action_space, control_period=env.unwrapped.dt)
    if stats is not None:
        policy.obs_norm.set_stats(stats["observation"]["mean"], stats["observation"]["std"])
        policy.action_norm.set_stats(stats["action"]["mean"], stats["action"]["std"])
    return policy
