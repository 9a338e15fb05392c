"""``cadence-eval checkpoint=DIR [env=NAME] episodes=N [video=true]``: roll a checkpoint out and report.

Writes ``results.json`` (and ``episode_0.mp4`` with ``video=true``) to ``out`` and prints a one-line
summary. The env defaults to the one the checkpoint was trained on; the normalized score uses the
expert and random returns recorded with the training dataset when the checkpoint carries them.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path


import hydra
from omegaconf import DictConfig, OmegaConf

from cadence.envs import make_env
from cadence.evaluation import evaluate, write_result
from cadence.policies import SequencePolicy
from cadence.policies.policy import read_checkpoint_config

log = logging.getLogger("cadence.eval")


def run_eval(cfg: DictConfig) -> dict:
    ckpt = Path(cfg.checkpoint)
    run_info = read_checkpoint_config(ckpt).get("extra", {}).get("run", {})
    env_cfg = cfg.env if cfg.get("env") is not None else run_info.get("env")
    if env_cfg is None:
        raise ValueError(f"checkpoint {ckpt} does not record its env; pass env=NAME (see cadence/configs/env/)")
    env_cfg = OmegaConf.create(OmegaConf.to_container(env_cfg, resolve=True) if isinstance(env_cfg, DictConfig) else env_cfg)
    policy = SequencePolicy.from_pretrained(ckpt, map_location=cfg.device).eval()
    reference = run_info.get("reference")  # (expert, random) returns of the training dataset
    out = Path(cfg.out) if cfg.out else ckpt.parent.parent / "eval"
    result = evaluate(
        policy,
        [partial(make_env, env_cfg) for _ in range(cfg.num_envs)],
        cfg.episodes,
        seed=cfg.seed,
        asynchronous=cfg.asynchronous,
        reference=tuple(reference) if reference else None,
        video_dir=out if cfg.video else None,
        video_fn=partial(make_env, env_cfg, render_mode="rgb_array"),
    )
    write_result(result, out / "results.json", {"checkpoint": str(ckpt), "env": env_cfg.name})
    print(f"{env_cfg.name} {ckpt}: {result.summary()} -> {out / 'results.json'}")
    return result.to_dict()


@hydra.main(config_path="../configs", config_name="eval", version_base=None)
def main(cfg: DictConfig) -> None:
    run_eval(cfg)


if __name__ == "__main__":
    main()
